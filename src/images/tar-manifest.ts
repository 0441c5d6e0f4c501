/**
 * Reads a `docker save` archive as it streams past, so the image id inside a downloaded tar is known
 * before anything is loaded. The image id is the sha256 of the image config, which manifest.json
 * names; small entries are hashed (32 bytes kept each), manifest.json is kept whole.
 */
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { TAR_METADATA_MAX_BYTES } from './constants.ts'

const BLOCK = 512

export interface TarImage {
  /** sha256:<hex> of the config the manifest names (= the image id once loaded). */
  id: string
  repoTags: string[]
}

interface Entry {
  name: string
  size: number
  type: string
}

export class TarManifestReader {
  #pending = Buffer.alloc(0)
  /** Bytes of the current entry still to read, then padding up to the block. */
  #remaining = 0
  #padding = 0
  #entry: Entry | undefined
  #hash: Hash | undefined
  #keep: Buffer[] | undefined
  #longName: string | undefined
  #paxPath: string | undefined
  #ended = false
  #broken = false
  readonly #hashes = new Map<string, string>()
  #manifest: Buffer | undefined

  write (chunk: Buffer): void {
    if (this.#ended || this.#broken) return
    let data = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk
    this.#pending = Buffer.alloc(0)
    while (data.length > 0 && !this.#ended && !this.#broken) {
      if (this.#entry !== undefined && this.#remaining > 0) {
        const take = Math.min(this.#remaining, data.length)
        this.#consume(data.subarray(0, take))
        this.#remaining -= take
        data = data.subarray(take)
        if (this.#remaining === 0) this.#finishEntry()
        continue
      }
      if (this.#padding > 0) {
        const skip = Math.min(this.#padding, data.length)
        this.#padding -= skip
        data = data.subarray(skip)
        continue
      }
      if (data.length < BLOCK) {
        this.#pending = Buffer.from(data)
        return
      }
      this.#header(data.subarray(0, BLOCK))
      data = data.subarray(BLOCK)
    }
  }

  /**
   * The images the archive's manifest.json lists, with the ids their configs hash to; undefined when
   * the stream is not a readable `docker save` archive (then only the engine's own check applies).
   */
  images (): TarImage[] | undefined {
    if (this.#broken || this.#manifest === undefined) return undefined
    let manifest: unknown
    try {
      manifest = JSON.parse(this.#manifest.toString('utf8'))
    } catch {
      return undefined
    }
    if (!Array.isArray(manifest)) return undefined
    const images: TarImage[] = []
    for (const item of manifest as Array<{ Config?: unknown, RepoTags?: unknown }>) {
      const hash = typeof item?.Config === 'string' ? this.#hashes.get(normalise(item.Config)) : undefined
      if (hash === undefined) return undefined
      const tags = Array.isArray(item.RepoTags) ? item.RepoTags.filter((t): t is string => typeof t === 'string') : []
      images.push({ id: `sha256:${hash}`, repoTags: tags })
    }
    return images
  }

  #header (block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.#ended = true
      return
    }
    const size = parseSize(block.subarray(124, 136))
    if (size === undefined || !validChecksum(block)) {
      this.#broken = true
      return
    }
    const type = String.fromCharCode(block[156] ?? 0)
    let name = cString(block.subarray(0, 100))
    const prefix = block.subarray(257, 262).toString('latin1') === 'ustar' ? cString(block.subarray(345, 500)) : ''
    if (prefix !== '') name = `${prefix}/${name}`
    if (type !== 'L' && type !== 'x' && type !== 'g') {
      name = this.#paxPath ?? this.#longName ?? name
      this.#paxPath = undefined
      this.#longName = undefined
    }
    this.#entry = { name: normalise(name), size, type }
    this.#remaining = size
    this.#padding = (BLOCK - (size % BLOCK)) % BLOCK
    const regular = type === '0' || type === '\0'
    const small = size <= TAR_METADATA_MAX_BYTES
    this.#hash = regular && small ? createHash('sha256') : undefined
    // Extended headers and manifest.json are read whole; they are small by construction.
    this.#keep = small && (type === 'L' || type === 'x' || (regular && this.#entry.name === 'manifest.json')) ? [] : undefined
    if (size === 0) this.#finishEntry()
  }

  #consume (data: Buffer): void {
    this.#hash?.update(data)
    this.#keep?.push(Buffer.from(data))
  }

  #finishEntry (): void {
    const entry = this.#entry
    if (entry === undefined) return
    const kept = this.#keep === undefined ? undefined : Buffer.concat(this.#keep)
    if (this.#hash !== undefined) this.#hashes.set(entry.name, this.#hash.digest('hex'))
    if (entry.type === 'L' && kept !== undefined) this.#longName = cString(kept)
    if (entry.type === 'x' && kept !== undefined) this.#paxPath = paxPath(kept)
    if (entry.name === 'manifest.json' && kept !== undefined && (entry.type === '0' || entry.type === '\0')) this.#manifest = kept
    this.#entry = undefined
    this.#hash = undefined
    this.#keep = undefined
  }
}

function normalise (name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '')
}

function cString (bytes: Buffer): string {
  const end = bytes.indexOf(0)
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8')
}

/** Octal text, or GNU base-256 (high bit set) for entries of 8 GiB and more. */
function parseSize (field: Buffer): number | undefined {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = 0
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0)
    return value
  }
  const text = cString(field).trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) return undefined
  return parseInt(text, 8)
}

function validChecksum (block: Buffer): boolean {
  const stored = parseInt(cString(block.subarray(148, 156)).trim(), 8)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0)
  return stored === sum
}

/** The `path` record of a pax extended header ("<len> path=<value>\n" records). */
function paxPath (data: Buffer): string | undefined {
  let path: string | undefined
  let offset = 0
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset)
    if (space === -1) break
    const length = parseInt(data.subarray(offset, space).toString('latin1'), 10)
    if (!Number.isFinite(length) || length <= 0) break
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8')
    const eq = record.indexOf('=')
    if (eq !== -1 && record.slice(0, eq) === 'path') path = record.slice(eq + 1)
    offset += length
  }
  return path
}
