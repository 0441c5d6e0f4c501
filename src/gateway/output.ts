/**
 * Streaming output: one OutputHub per running job holds the bytes of its output produced so far,
 * addressed by offset; readers each keep their own position and pull at their own pace. Nothing is
 * queued per reader, so a slow reader costs no memory: it reads the same bytes later, and once the job
 * has ended it catches up from the finished output (docs/ARCHITECTURE.md, "Streaming output").
 */
import { waitJob, type JobSource } from './watch.ts'
import { OutputRestartedError, WaitAbortedError } from './errors.ts'
import type { OutputChunk } from './types.ts'

/** Largest chunk a reader gets at once: pieces written since its last read are merged up to this. */
export const MAX_CHUNK_BYTES = 64 * 1024

interface Piece { start: number, data: Uint8Array, atMs: number }

/** Where one reader is: read() moves it on. */
export interface HubCursor {
  /** Bytes read so far. */
  position: number
  /** The piece holding `position`, as far as the last read knew (a hint, checked). */
  hint: number
  /** Reading the final output (after the end, from a position that agreed with it). */
  final: boolean
}

/** A new reader's cursor. */
export function startCursor (): HubCursor {
  return { position: 0, hint: 0, final: false }
}

/** What a reader got: bytes from its position and when this node had them. */
export interface HubRead { data: Uint8Array, atMs: number }

/**
 * One job's output while it runs. Producers put bytes at offsets (a local run appends; a mesh worker's
 * chunks carry their offset, so a duplicate or a rerun on another worker overlaps instead of repeating):
 * bytes that overlap what is held must match it, or the hub takes nothing more of that run. Past `cap`
 * (the last container's max_output_bytes, which the run enforces too) nothing is held.
 */
export class OutputHub {
  readonly jobId: string
  readonly #cap: number
  #pieces: Piece[] = []
  #length = 0
  /** A producer's bytes disagreed with those held (another run's output): nothing more is taken live. */
  #diverged = false
  #final: Uint8Array | undefined
  /** Readers at or below this position may carry on into the final output (it starts with what they read). */
  #agreed = 0
  #ended = false
  #error: Error | undefined
  #waiters: Array<() => void> = []

  constructor (jobId: string, cap: number) {
    this.jobId = jobId
    this.#cap = cap
  }

  /** Bytes held so far (live). */
  get length (): number {
    return this.#length
  }

  get ended (): boolean {
    return this.#ended
  }

  /** The next bytes of the output, produced in order (a local run). */
  append (data: Uint8Array, atMs = Date.now()): void {
    this.put(this.#length, data, atMs)
  }

  /**
   * Bytes at `offset` of the output. Already-held bytes are checked, new ones appended; a gap (a piece
   * lost on the way) leaves them for the final output. Returns false when none could be taken.
   */
  put (offset: number, data: Uint8Array, atMs = Date.now()): boolean {
    if (this.#ended || this.#diverged || offset < 0 || offset > this.#length) return false
    const overlap = Math.min(this.#length - offset, data.byteLength)
    if (overlap > 0 && !this.#matches(offset, data.subarray(0, overlap))) {
      this.#diverged = true
      return false
    }
    let fresh = data.subarray(overlap)
    const room = this.#cap - this.#length
    if (fresh.byteLength > room) fresh = fresh.subarray(0, Math.max(0, room))
    if (fresh.byteLength === 0) return overlap > 0
    this.#pieces.push({ start: this.#length, data: fresh, atMs })
    this.#length += fresh.byteLength
    this.#wake()
    return true
  }

  /**
   * The job ended. `output` is its output (undefined: it failed without one); readers carry on into it
   * from where they are when what they read is its start, else they get OutputRestartedError.
   */
  end (output: Uint8Array | undefined): void {
    if (this.#ended) return
    this.#ended = true
    if (output !== undefined) {
      this.#final = output
      this.#agreed = this.#commonPrefix(output)
      // From here readers read the final output; the live copies can go.
      this.#pieces = []
    } else {
      // Nothing final to continue into: readers get what was held, and the stream ends.
      this.#agreed = this.#length
    }
    this.#wake()
  }

  /** The job left this node's hands without an ending (the node is stopping): readers get `err`. */
  abort (err: Error): void {
    if (this.#ended) return
    this.#ended = true
    this.#error = err
    this.#pieces = []
    this.#wake()
  }

  /**
   * The bytes at the cursor (at most MAX_CHUNK_BYTES), moving it on; undefined when there are none yet
   * (or none will come: see done()).
   */
  read (cursor: HubCursor): HubRead | undefined {
    if (this.#error !== undefined) return undefined
    if (this.#ended && this.#final !== undefined) {
      // A reader that read past what agrees with the final output cannot carry on into it.
      if (!cursor.final && cursor.position > this.#agreed) return undefined
      cursor.final = true
      if (cursor.position >= this.#final.byteLength) return undefined
      const data = this.#final.subarray(cursor.position, cursor.position + MAX_CHUNK_BYTES)
      cursor.position += data.byteLength
      return { data, atMs: Date.now() }
    }
    return this.#readLive(cursor)
  }

  /** After read() returned undefined: whether the stream is over for this reader (throws when it broke). */
  done (cursor: HubCursor): boolean {
    if (this.#error !== undefined) throw this.#error
    if (!this.#ended) return false
    if (!cursor.final && cursor.position > this.#agreed) throw new OutputRestartedError(this.jobId, cursor.position, this.#agreed)
    return true
  }

  /** Resolves at the next change (bytes or the end), or rejects when `signal` aborts. */
  async changed (signal?: AbortSignal): Promise<void> {
    if (this.#ended) return
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(new WaitAbortedError(this.jobId, { cause: signal?.reason })) }
      if (signal?.aborted === true) return onAbort()
      this.#waiters.push(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      })
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  #readLive (cursor: HubCursor): HubRead | undefined {
    const position = cursor.position
    const limit = this.#length
    if (position >= limit) return undefined
    let i = Math.min(cursor.hint, this.#pieces.length - 1)
    while (i > 0 && (this.#pieces[i] as Piece).start > position) i -= 1
    while (i < this.#pieces.length - 1 && (this.#pieces[i + 1] as Piece).start <= position) i += 1
    const first = this.#pieces[i] as Piece
    const slices: Uint8Array[] = []
    let at = position
    let size = 0
    while (i < this.#pieces.length && size < MAX_CHUNK_BYTES && at < limit) {
      const p = this.#pieces[i] as Piece
      const from = at - p.start
      const take = Math.min(p.data.byteLength - from, MAX_CHUNK_BYTES - size, limit - at)
      slices.push(p.data.subarray(from, from + take))
      size += take
      at += take
      if (from + take < p.data.byteLength) break
      i += 1
    }
    const data = slices.length === 1 ? slices[0] as Uint8Array : Buffer.concat(slices, size)
    cursor.position = at
    cursor.hint = Math.min(i, this.#pieces.length - 1)
    return { data, atMs: first.atMs }
  }

  #matches (offset: number, bytes: Uint8Array): boolean {
    let at = offset
    let k = 0
    for (const p of this.#pieces) {
      const end = p.start + p.data.byteLength
      if (end <= at) continue
      const from = at - p.start
      const n = Math.min(end - at, bytes.byteLength - k)
      if (!Buffer.from(p.data.buffer, p.data.byteOffset + from, n).equals(Buffer.from(bytes.buffer, bytes.byteOffset + k, n))) return false
      k += n
      at += n
      if (k === bytes.byteLength) return true
    }
    return k === bytes.byteLength
  }

  /** How many of the held bytes are the start of `output`. */
  #commonPrefix (output: Uint8Array): number {
    let n = 0
    for (const p of this.#pieces) {
      const len = Math.min(p.data.byteLength, output.byteLength - p.start)
      if (len <= 0) break
      const a = Buffer.from(p.data.buffer, p.data.byteOffset, len)
      const b = Buffer.from(output.buffer, output.byteOffset + p.start, len)
      if (a.equals(b)) {
        n += len
        if (len < p.data.byteLength) break
        continue
      }
      let k = 0
      while (k < len && a[k] === b[k]) k += 1
      return n + k
    }
    return n
  }

  #wake (): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }
}

/** Where a reader finds a job's hub (while it runs here) and its record (before and after). */
export interface OutputSource extends JobSource {
  hub(id: string): OutputHub | undefined
}

/**
 * A job's output as chunks: live from its hub while it runs here, else (queued elsewhere, finished)
 * its stored output once it has ended. Throws JobNotFoundError, WaitAbortedError, OutputRestartedError.
 */
export async function * outputStream (id: string, source: OutputSource, signal?: AbortSignal): AsyncGenerator<OutputChunk> {
  if (signal?.aborted === true) throw new WaitAbortedError(id, { cause: signal.reason })
  const hub = source.hub(id)
  if (hub === undefined) {
    const job = await waitJob(id, source, signal)
    const output = job.output ?? new Uint8Array(0)
    let index = 0
    for (let at = 0; at < output.byteLength; at += MAX_CHUNK_BYTES) {
      yield { jobId: id, index: index++, data: output.subarray(at, at + MAX_CHUNK_BYTES), atMs: Date.now() }
    }
    return
  }
  const cursor = startCursor()
  let index = 0
  for (;;) {
    if (aborted(signal)) throw new WaitAbortedError(id, { cause: signal?.reason })
    const got = hub.read(cursor)
    if (got !== undefined) {
      yield { jobId: id, index: index++, data: got.data, atMs: got.atMs }
      continue
    }
    if (hub.done(cursor)) return
    await hub.changed(signal)
  }
}

/** A function, so the check is made afresh each time (the signal may abort between reads). */
function aborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}
