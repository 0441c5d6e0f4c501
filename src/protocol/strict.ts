/**
 * Strict protobuf checking for bytes from outside the process (gRPC bodies, gossip, fetch, envelopes,
 * receipts, files given to `infra verify`). protobufjs decodes leniently: a truncated length, a wrong
 * wire type for a known field, a group tag or a packed run cut mid-value still yields an object. This
 * pass runs first, so such bytes are refused with the reason instead of becoming a half-right message.
 *
 * Beyond the wire format it refuses what the typed view cannot hold: strings that are not UTF-8, enum
 * numbers with no name, and 64-bit integers beyond 2^53 (decoded messages carry them as JS numbers).
 * Unknown fields pass (forward compatibility).
 */
import { isUtf8 } from 'node:buffer'
import protobuf from 'protobufjs'

/** Nesting deeper than this is refused rather than recursed into. */
export const MAX_DEPTH = 32
/** Largest field number protobuf allows (2^29 - 1). */
const MAX_FIELD_NUMBER = 536_870_911

const VARINT = 0
const I64 = 1
const LEN = 2
const I32 = 5

const WIRE_BY_TYPE: Record<string, number> = {
  double: I64, fixed64: I64, sfixed64: I64,
  float: I32, fixed32: I32, sfixed32: I32,
  int32: VARINT, int64: VARINT, uint32: VARINT, uint64: VARINT, sint32: VARINT, sint64: VARINT, bool: VARINT,
  string: LEN, bytes: LEN
}

export interface WireViolation {
  /** Dotted snake_case path of the offending field, or '' when the bytes fail before any field. */
  field: string
  reason: string
}

/** Why `bytes` is not a well-formed `type` message (field path first), or undefined when it is. */
export function wireViolation (type: protobuf.Type, bytes: Uint8Array): string | undefined {
  const v = findViolation(type, bytes)
  if (v === undefined) return undefined
  return v.field === '' ? v.reason : `${v.field}: ${v.reason}`
}

export function findViolation (type: protobuf.Type, bytes: Uint8Array): WireViolation | undefined {
  try {
    checkMessage(type, { buf: bytes, pos: 0 }, bytes.length, 0, '')
    return undefined
  } catch (err) {
    if (err instanceof Violation) return { field: err.field, reason: err.reason }
    throw err
  }
}

/** Thrown inside the walk only, so every check can stop it in one line; never escapes this module. */
class Violation {
  readonly field: string
  readonly reason: string
  constructor (field: string, reason: string) {
    this.field = field
    this.reason = reason
  }
}

function fail (field: string, reason: string): never {
  throw new Violation(field, reason)
}

interface Cursor { buf: Uint8Array, pos: number }

/** Where a value goes: a field, or the key or value of a map entry. */
interface Slot {
  path: string
  type: string
  resolved: protobuf.Type | protobuf.Enum | null
  repeated: boolean
}

function checkMessage (type: protobuf.Type, c: Cursor, end: number, depth: number, prefix: string): void {
  if (depth > MAX_DEPTH) fail(prefix, `messages nested more than ${MAX_DEPTH} deep`)
  while (c.pos < end) {
    const at = c.pos
    const [fieldNo, wire] = tag(c, end, prefix)
    const field = type.fieldsById[fieldNo]
    if (field === undefined) {
      skipUnknown(c, end, wire, at, join(prefix, `#${fieldNo}`))
      continue
    }
    const path = join(prefix, snake(field.name))
    if (field instanceof protobuf.MapField) {
      if (wire !== LEN) fail(path, `map entry sent with wire type ${wire} instead of ${LEN} (byte ${at})`)
      const stop = lengthPrefix(c, end, path)
      checkMapEntry(field, c, stop, depth + 1, path)
    } else {
      checkSlot({ path, type: field.type, resolved: field.resolvedType, repeated: field.repeated }, wire, c, end, depth, at)
    }
  }
}

function checkMapEntry (field: protobuf.MapField, c: Cursor, end: number, depth: number, path: string): void {
  if (depth > MAX_DEPTH) fail(path, `messages nested more than ${MAX_DEPTH} deep`)
  const key: Slot = { path: `${path}.key`, type: field.keyType, resolved: null, repeated: false }
  const value: Slot = { path: `${path}.value`, type: field.type, resolved: field.resolvedType, repeated: false }
  while (c.pos < end) {
    const at = c.pos
    const [fieldNo, wire] = tag(c, end, path)
    if (fieldNo === 1) checkSlot(key, wire, c, end, depth, at)
    else if (fieldNo === 2) checkSlot(value, wire, c, end, depth, at)
    else skipUnknown(c, end, wire, at, `${path}.#${fieldNo}`)
  }
}

function checkSlot (slot: Slot, wire: number, c: Cursor, end: number, depth: number, at: number): void {
  const expected = expectedWire(slot)
  if (wire === expected) {
    checkValue(slot, wire, c, end, depth)
    return
  }
  // Repeated numeric fields may arrive packed: one length-delimited run of values.
  if (slot.repeated && wire === LEN && expected !== LEN) {
    const stop = lengthPrefix(c, end, slot.path)
    while (c.pos < stop) checkValue(slot, expected, c, stop, depth)
    return
  }
  fail(slot.path, `${slot.type} sent with wire type ${wire} instead of ${expected} (byte ${at})`)
}

function checkValue (slot: Slot, wire: number, c: Cursor, end: number, depth: number): void {
  const start = c.pos
  switch (wire) {
    case VARINT: {
      const value = varint(c, end, slot.path)
      if (slot.resolved instanceof protobuf.Enum) {
        const n = value < 2 ** 31 ? value : Number(BigInt.asIntN(32, varintBig(c.buf, start)))
        if (slot.resolved.valuesById[n] === undefined) fail(slot.path, `${n} is not a value of enum ${slot.resolved.name}`)
      } else if (slot.type === 'uint64' && value > Number.MAX_SAFE_INTEGER) {
        fail(slot.path, 'larger than 2^53 - 1 (not exactly representable)')
      } else if ((slot.type === 'int64' || slot.type === 'sint64') && value > Number.MAX_SAFE_INTEGER) {
        const raw = varintBig(c.buf, start)
        const n = slot.type === 'int64' ? BigInt.asIntN(64, raw) : (raw >> 1n) ^ -(raw & 1n)
        if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) fail(slot.path, 'outside ±(2^53 - 1) (not exactly representable)')
      }
      return
    }
    case I64: {
      if (end - c.pos < 8) fail(slot.path, `truncated 64-bit value at byte ${start}`)
      c.pos += 8
      if (slot.type === 'fixed64' || slot.type === 'sfixed64') {
        const view = new DataView(c.buf.buffer, c.buf.byteOffset + start, 8)
        const n = slot.type === 'fixed64' ? view.getBigUint64(0, true) : view.getBigInt64(0, true)
        if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) fail(slot.path, 'outside ±(2^53 - 1) (not exactly representable)')
      }
      return
    }
    case I32:
      if (end - c.pos < 4) fail(slot.path, `truncated 32-bit value at byte ${start}`)
      c.pos += 4
      return
    case LEN: {
      const stop = lengthPrefix(c, end, slot.path)
      if (slot.resolved instanceof protobuf.Type) {
        checkMessage(slot.resolved, c, stop, depth + 1, slot.path)
      } else {
        if (slot.type === 'string' && !isUtf8(c.buf.subarray(c.pos, stop))) fail(slot.path, 'string is not valid UTF-8')
        c.pos = stop
      }
      return
    }
    default:
      fail(slot.path, `unsupported wire type ${wire} at byte ${start}`)
  }
}

function expectedWire (slot: Slot): number {
  const scalar = WIRE_BY_TYPE[slot.type]
  if (scalar !== undefined) return scalar
  if (slot.resolved instanceof protobuf.Enum) return VARINT
  if (slot.resolved instanceof protobuf.Type) return LEN
  return fail(slot.path, `type ${slot.type} is not supported`)
}

/** Unknown fields are skipped whole; groups (wire types 3 and 4) are refused, proto3 has none. */
function skipUnknown (c: Cursor, end: number, wire: number, at: number, path: string): void {
  switch (wire) {
    case VARINT: varint(c, end, path); return
    case I64: if (end - c.pos < 8) fail(path, `truncated 64-bit value at byte ${c.pos}`); c.pos += 8; return
    case I32: if (end - c.pos < 4) fail(path, `truncated 32-bit value at byte ${c.pos}`); c.pos += 4; return
    case LEN: c.pos = lengthPrefix(c, end, path); return
    default: fail(path, `unsupported wire type ${wire} at byte ${at}`)
  }
}

function tag (c: Cursor, end: number, path: string): [number, number] {
  const at = c.pos
  const value = varint(c, end, path)
  if (value > 0xffff_ffff) fail(path, `field tag longer than 32 bits at byte ${at}`)
  const fieldNo = Math.floor(value / 8)
  if (fieldNo === 0 || fieldNo > MAX_FIELD_NUMBER) fail(path, `invalid field number ${fieldNo} at byte ${at}`)
  return [fieldNo, value % 8]
}

/** Reads a length and returns where the value ends; refuses lengths past `end`. */
function lengthPrefix (c: Cursor, end: number, path: string): number {
  const at = c.pos
  const len = varint(c, end, path)
  if (len > end - c.pos) fail(path, `length ${len} at byte ${at} runs past the end (${end - c.pos} bytes left)`)
  return c.pos + len
}

/** A varint's value: exact up to 2^53, approximate above (callers only compare it against limits there). */
function varint (c: Cursor, end: number, path: string): number {
  const at = c.pos
  let value = 0
  for (let i = 0; i < 10; i++) {
    if (c.pos >= end) fail(path, `truncated varint at byte ${at}`)
    const b = c.buf[c.pos++]
    value += (b & 0x7f) * 2 ** (7 * i)
    if ((b & 0x80) === 0) {
      if (i === 9 && b > 1) fail(path, `varint longer than 64 bits at byte ${at}`)
      return value
    }
  }
  return fail(path, `varint longer than 10 bytes at byte ${at}`)
}

/** The exact 64-bit value of a varint already known to be well-formed. */
function varintBig (buf: Uint8Array, start: number): bigint {
  let value = 0n
  for (let i = 0; i < 10; i++) {
    const b = buf[start + i]
    value |= BigInt(b & 0x7f) << BigInt(7 * i)
    if ((b & 0x80) === 0) break
  }
  return BigInt.asUintN(64, value)
}

function join (prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`
}

const snakeNames = new Map<string, string>()

/** The .proto spelling of a camelCased field name, so errors name fields as the .proto does (memoised: it runs for every field checked). */
function snake (name: string): string {
  let out = snakeNames.get(name)
  if (out === undefined) {
    out = name.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)
    snakeNames.set(name, out)
  }
  return out
}
