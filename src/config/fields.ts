import type { Document, LineCounter } from 'yaml'
import type { ListenAddress } from './types.ts'
import { ConfigError, type ConfigErrorCode } from './errors.ts'

export type Path = ReadonlyArray<string | number>
type Obj = Record<string, unknown>

/** Collects every problem of one config file so they can be reported together. */
export class Ctx {
  readonly file: string
  readonly display: string
  readonly errors: ConfigError[] = []
  readonly #doc: Document | undefined
  readonly #lines: LineCounter | undefined

  constructor (file: string, display: string, doc?: Document, lines?: LineCounter) {
    this.file = file
    this.display = display
    this.#doc = doc
    this.#lines = lines
  }

  report (code: ConfigErrorCode, path: Path, expected: string, detail: string): void {
    this.errors.push(new ConfigError({
      code, file: this.file, display: this.display, key: keyName(path), expected, detail, line: this.lineOf(path)
    }))
  }

  /** Line of the nearest node on `path` that exists in the document (a missing key points at its parent). */
  lineOf (path: Path): number | undefined {
    if (this.#doc === undefined || this.#lines === undefined) return undefined
    for (let n = path.length; n >= 0; n--) {
      const node = this.#doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined
      if (node?.range !== undefined) return this.#lines.linePos(node.range[0]).line
    }
    return undefined
  }
}

/** `containers[1].resources.memory` */
export function keyName (path: Path): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : (out === '' ? part : `.${part}`)
  return out
}

/** How a bad value is shown back: short, and type-revealing (so `true` and `"true"` differ). */
export function describe (value: unknown): string {
  if (value === null || value === undefined) return 'nothing'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value)
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (Array.isArray(value)) return 'a list'
  if (value instanceof Uint8Array) return 'binary data'
  if (value instanceof Date) return 'a date'
  return 'a mapping'
}

function wrongType (ctx: Ctx, path: Path, expected: string, value: unknown): void {
  ctx.report('WRONG_TYPE', path, expected, `expected ${expected}, got ${describe(value)}`)
}

export function isMapping (value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) && !(value instanceof Date)
}

/** A mapping whose keys must all be `known`; absent or null = empty (every key takes its default). */
export function section (ctx: Ctx, value: unknown, path: Path, known: readonly string[]): Obj {
  if (value === undefined || value === null) return {}
  if (!isMapping(value)) {
    wrongType(ctx, path, `a mapping with keys ${known.join(', ')}`, value)
    return {}
  }
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue
    const near = closest(key, known)
    ctx.report('UNKNOWN_KEY', [...path, key], `one of: ${known.join(', ')}`,
      near !== undefined ? `unknown key (did you mean "${near}"?)` : `unknown key; known keys here: ${known.join(', ')}`)
  }
  return value
}

/** Absent and null both mean "use the default"; a required key reports MISSING instead. */
function present (ctx: Ctx, obj: Obj, key: string, path: Path, expected: string, required: boolean): unknown {
  const value = obj[key]
  if (value !== undefined && value !== null) return value
  if (required) ctx.report('MISSING', [...path, key], expected, `missing; expected ${expected}`)
  return undefined
}

export interface StringOpts {
  required?: boolean
  /** Checked after the type; `expected` describes it. */
  pattern?: RegExp
  expected?: string
  allowEmpty?: boolean
}

export function string (ctx: Ctx, obj: Obj, key: string, path: Path, def: string, opts: StringOpts = {}): string {
  const expected = opts.expected ?? 'a string'
  const value = present(ctx, obj, key, path, expected, opts.required === true)
  if (value === undefined) return def
  if (typeof value !== 'string') {
    wrongType(ctx, [...path, key], expected, value)
    return def
  }
  if ((value === '' && opts.allowEmpty !== true) || (opts.pattern !== undefined && !opts.pattern.test(value))) {
    ctx.report(value === '' && opts.required === true ? 'MISSING' : 'INVALID_VALUE', [...path, key], expected, `expected ${expected}, got ${describe(value)}`)
    return def
  }
  return value
}

export function integer (ctx: Ctx, obj: Obj, key: string, path: Path, def: number, min: number, max: number): number {
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`
  const value = present(ctx, obj, key, path, expected, false)
  if (value === undefined) return def
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    wrongType(ctx, [...path, key], expected, value)
    return def
  }
  return inRange(ctx, [...path, key], value, min, max, expected) ? value : def
}

/** A positive finite number (CPU cores may be fractional). */
export function positiveNumber (ctx: Ctx, obj: Obj, key: string, path: Path, def: number, max: number): number {
  const expected = `a number > 0 and ≤ ${max}`
  const value = present(ctx, obj, key, path, expected, false)
  if (value === undefined) return def
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    wrongType(ctx, [...path, key], expected, value)
    return def
  }
  if (value > 0 && value <= max) return value
  ctx.report('OUT_OF_RANGE', [...path, key], expected, `expected ${expected}, got ${value}`)
  return def
}

function inRange (ctx: Ctx, path: Path, value: number, min: number, max: number, expected: string): boolean {
  if (value >= min && value <= max) return true
  ctx.report('OUT_OF_RANGE', path, expected, `expected ${expected}, got ${value}`)
  return false
}

export function boolean (ctx: Ctx, obj: Obj, key: string, path: Path, def: boolean): boolean {
  const value = present(ctx, obj, key, path, 'true or false', false)
  if (value === undefined) return def
  if (typeof value === 'boolean') return value
  wrongType(ctx, [...path, key], 'true or false', value)
  return def
}

export function oneOf<T extends string> (ctx: Ctx, obj: Obj, key: string, path: Path, def: T, values: readonly T[]): T {
  const expected = `one of ${values.join(', ')}`
  const value = present(ctx, obj, key, path, expected, false)
  if (value === undefined) return def
  if (typeof value === 'string' && (values as readonly string[]).includes(value)) return value as T
  if (typeof value !== 'string') wrongType(ctx, [...path, key], expected, value)
  else ctx.report('INVALID_VALUE', [...path, key], expected, `expected ${expected}, got ${describe(value)}`)
  return def
}

export function stringList (ctx: Ctx, obj: Obj, key: string, path: Path, def: string[], expected: string): string[] {
  const value = present(ctx, obj, key, path, expected, false)
  if (value === undefined) return def
  if (!Array.isArray(value)) {
    wrongType(ctx, [...path, key], expected, value)
    return def
  }
  let ok = true
  value.forEach((item, i) => {
    if (typeof item !== 'string') {
      wrongType(ctx, [...path, key, i], 'a string', item)
      ok = false
    }
  })
  return ok ? value as string[] : def
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }
// Docker's notation ("256m", "1g"), with optional "b"/"ib" suffixes; units are binary (m = MiB) as in Docker.
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i

/** A size given as a number of bytes or as "256m" / "1g" / "512k". */
export function size (ctx: Ctx, obj: Obj, key: string, path: Path, def: number, min: number, max: number): number {
  const expected = 'a size like "256m" or a number of bytes'
  const value = present(ctx, obj, key, path, expected, false)
  if (value === undefined) return def
  let bytes: number | undefined
  if (typeof value === 'number' && Number.isInteger(value)) bytes = value
  else if (typeof value === 'string') {
    const m = SIZE.exec(value)
    if (m !== null) bytes = Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()])
  }
  if (bytes === undefined) {
    ctx.report(typeof value === 'string' ? 'INVALID_VALUE' : 'WRONG_TYPE', [...path, key], expected, `expected ${expected}, got ${describe(value)}`)
    return def
  }
  if (bytes >= min && bytes <= max) return bytes
  ctx.report('OUT_OF_RANGE', [...path, key], `a size from ${formatSize(min)} to ${formatSize(max)}`,
    `expected a size from ${formatSize(min)} to ${formatSize(max)}, got ${describe(value)}`)
  return def
}

export function formatSize (bytes: number): string {
  for (const [unit, factor] of [['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`
  }
  return `${bytes} bytes`
}

/** "host:port" or "[v6]:port"; port 0 asks the OS for a free port (tests). */
export function address (ctx: Ctx, obj: Obj, key: string, path: Path, def: ListenAddress): ListenAddress {
  const expected = 'an address like "127.0.0.1:9001" or "[::1]:9001"'
  const value = present(ctx, obj, key, path, expected, false)
  if (value === undefined) return { ...def }
  if (typeof value !== 'string') {
    wrongType(ctx, [...path, key], expected, value)
    return { ...def }
  }
  const parsed = parseAddress(value)
  if (parsed === undefined) {
    ctx.report('INVALID_VALUE', [...path, key], expected, `expected ${expected}, got ${describe(value)}`)
    return { ...def }
  }
  return parsed
}

export function parseAddress (text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim())
  if (m === null) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  return { host: m[1] ?? m[2], port }
}

/** The known key nearest to a typo, when it is plausibly the one meant. */
export function closest (word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

function levenshtein (a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]
}
