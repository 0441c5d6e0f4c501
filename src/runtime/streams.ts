/** Byte handling of the engine's output streams (attach, logs): demultiplexing, a hard stdout cap, a stderr tail. */

export const STREAM_STDOUT = 1
export const STREAM_STDERR = 2

const HEADER_BYTES = 8

/**
 * Splits Docker's multiplexed stream (non-TTY attach): frames of an 8-byte header
 * [stream, 0, 0, 0, size as uint32 BE] followed by `size` payload bytes. Incremental, so frames may be
 * split across chunks anywhere; payload slices are passed on without copying.
 */
export class StreamDemuxer {
  readonly #onFrame: (stream: number, payload: Buffer) => void
  readonly #header = Buffer.alloc(HEADER_BYTES)
  #headerFill = 0
  #stream = 0
  #remaining = 0

  constructor (onFrame: (stream: number, payload: Buffer) => void) {
    this.#onFrame = onFrame
  }

  push (chunk: Buffer): void {
    let offset = 0
    while (offset < chunk.length) {
      if (this.#remaining === 0) {
        const n = Math.min(HEADER_BYTES - this.#headerFill, chunk.length - offset)
        chunk.copy(this.#header, this.#headerFill, offset, offset + n)
        this.#headerFill += n
        offset += n
        if (this.#headerFill === HEADER_BYTES) {
          this.#stream = this.#header[0] ?? 0
          this.#remaining = this.#header.readUInt32BE(4)
          this.#headerFill = 0
        }
        continue
      }
      const n = Math.min(this.#remaining, chunk.length - offset)
      this.#onFrame(this.#stream, chunk.subarray(offset, offset + n))
      this.#remaining -= n
      offset += n
    }
  }

  /** True when the stream stopped at a frame boundary (nothing half-read). */
  get idle (): boolean {
    return this.#remaining === 0 && this.#headerFill === 0
  }
}

/**
 * Collects bytes up to `max`; the first byte beyond it makes add() return false and nothing more is kept.
 * With `keep: false` it only counts (a cap on a stream whose bytes are read again elsewhere).
 */
export class CappedBuffer {
  readonly #max: number
  readonly #keep: boolean
  readonly #onKept: ((bytes: Buffer) => void) | undefined
  readonly #chunks: Buffer[] = []
  #length = 0
  #overflowed = false

  /** `onKept` sees each accepted piece (a private copy, the same one kept), in order, as it arrives. */
  constructor (max: number, opts: { keep?: boolean, onKept?: (bytes: Buffer) => void } = {}) {
    this.#max = max
    this.#keep = opts.keep ?? true
    this.#onKept = opts.onKept
  }

  add (bytes: Buffer): boolean {
    if (this.#overflowed) return false
    if (this.#length + bytes.length > this.#max) {
      this.#overflowed = true
      return false
    }
    this.#length += bytes.length
    if (!this.#keep && this.#onKept === undefined) return true
    // Copy: a slice would pin the whole socket chunk it came from. One copy serves both the kept
    // output and a live reader, so streaming costs no second copy of the output.
    const copy = Buffer.from(bytes)
    if (this.#keep) this.#chunks.push(copy)
    if (copy.length > 0) this.#onKept?.(copy)
    return true
  }

  get length (): number {
    return this.#length
  }

  get overflowed (): boolean {
    return this.#overflowed
  }

  bytes (): Uint8Array {
    // Returning nothing here would pass for an empty output.
    if (!this.#keep) throw new TypeError('this CappedBuffer only counts bytes (keep: false)')
    return Buffer.concat(this.#chunks, this.#length)
  }
}

/** Keeps only the last `max` bytes written. */
export class TailBuffer {
  readonly #max: number
  #tail = Buffer.alloc(0)

  constructor (max: number) {
    this.#max = max
  }

  add (bytes: Buffer): void {
    if (bytes.length >= this.#max) {
      this.#tail = Buffer.from(bytes.subarray(bytes.length - this.#max))
      return
    }
    const joined = Buffer.concat([this.#tail, bytes])
    this.#tail = joined.length > this.#max ? joined.subarray(joined.length - this.#max) : joined
  }

  /** The tail as text; a multi-byte character cut at the start becomes U+FFFD. */
  text (): string {
    return new TextDecoder('utf-8').decode(this.#tail)
  }
}

/**
 * One job's output from a multiplexed stream: stdout up to `maxStdout` (or only counted, with
 * `keepStdout: false`), the last `stderrTail` bytes of stderr. `onOverflow` runs once, at the first
 * stdout byte past the cap; nothing past it is kept.
 */
export class JobOutput {
  readonly stdout: CappedBuffer
  readonly stderr: TailBuffer
  readonly #demux: StreamDemuxer

  #stderrBytes = 0

  /** `onStdout`: each piece of stdout within the cap, as it arrives (see CappedBuffer's onKept). */
  constructor (opts: { maxStdout: number, stderrTail: number, keepStdout?: boolean, onOverflow: () => void, maxStderr?: number, onStderrFlood?: () => void, onStdout?: (bytes: Buffer) => void }) {
    this.stdout = new CappedBuffer(opts.maxStdout, { keep: opts.keepStdout ?? true, onKept: opts.onStdout })
    this.stderr = new TailBuffer(opts.stderrTail)
    this.#demux = new StreamDemuxer((kind, payload) => {
      if (kind === STREAM_STDOUT) {
        const overflowing = !this.stdout.overflowed
        if (!this.stdout.add(payload) && overflowing) opts.onOverflow()
      } else if (kind === STREAM_STDERR) {
        this.stderr.add(payload)
        const before = this.#stderrBytes
        this.#stderrBytes += payload.byteLength
        if (opts.maxStderr !== undefined && before <= opts.maxStderr && this.#stderrBytes > opts.maxStderr) opts.onStderrFlood?.()
      }
    })
  }

  push (chunk: Buffer): void {
    this.#demux.push(chunk)
  }

  /** True when the stream stopped at a frame boundary (nothing half-read). */
  get idle (): boolean {
    return this.#demux.idle
  }
}
