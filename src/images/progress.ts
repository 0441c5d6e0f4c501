/**
 * Byte progress of an image fetch: a throttle that hands it on at most every IMAGE_PROGRESS_INTERVAL_MS
 * (and the last value once the reports stop, so a stalled download never shows a stale count), and
 * the tally of a registry pull's per-layer progress as the engine streams it.
 */
import type { ImageProgress } from '../runtime/types.ts'
import { IMAGE_PROGRESS_INTERVAL_MS } from './constants.ts'

export type ProgressListener = (progress: ImageProgress) => void

/** What a fetch step calls on every chunk or engine line: two numbers, no object (the throttle's `report`). */
export type ByteReport = (doneBytes: number, totalBytes: number) => void

/** The clock and timer the throttle uses; tests hand in a manual pair. */
export interface ThrottleClock {
  now: () => number
  /** Runs `fn` once after `ms`; returns a cancel. */
  later: (fn: () => void, ms: number) => () => void
}

const REAL_CLOCK: ThrottleClock = {
  now: Date.now,
  later: (fn, ms) => {
    const timer = setTimeout(fn, ms)
    // A pending progress report must never keep the process alive.
    timer.unref()
    return () => { clearTimeout(timer) }
  }
}

/**
 * Passes progress on at once, then at most every `intervalMs`; a report that arrives inside the
 * interval is held and delivered when it ends (only the newest one). `close()` delivers what is held
 * and stops everything, leaving no timer.
 */
export class ProgressThrottle {
  readonly #listener: ProgressListener
  readonly #intervalMs: number
  readonly #clock: ThrottleClock
  #lastAtMs = Number.NEGATIVE_INFINITY
  #held: ImageProgress | undefined
  #cancel: (() => void) | undefined
  #closed = false

  constructor (listener: ProgressListener, intervalMs = IMAGE_PROGRESS_INTERVAL_MS, clock: ThrottleClock = REAL_CLOCK) {
    this.#listener = listener
    this.#intervalMs = intervalMs
    this.#clock = clock
  }

  report (doneBytes: number, totalBytes: number): void {
    if (this.#closed) return
    const now = this.#clock.now()
    const wait = this.#lastAtMs + this.#intervalMs - now
    if (wait <= 0) {
      this.#emit({ doneBytes, totalBytes }, now)
      return
    }
    this.#held = { doneBytes, totalBytes }
    this.#cancel ??= this.#clock.later(() => {
      this.#cancel = undefined
      this.#flushHeld()
    }, wait)
  }

  /** Delivers a held report now and stops; later reports are ignored. Safe to call more than once. */
  close (): void {
    if (this.#closed) return
    this.#cancel?.()
    this.#cancel = undefined
    this.#flushHeld()
    this.#closed = true
  }

  #flushHeld (): void {
    const held = this.#held
    if (held !== undefined) this.#emit(held, this.#clock.now())
  }

  #emit (progress: ImageProgress, now: number): void {
    this.#held = undefined
    this.#lastAtMs = now
    try {
      this.#listener(progress)
    } catch {
      // A listener's bug must not break the download it watches.
    }
  }
}

interface Layer { done: number, total: number, complete: boolean }

/**
 * Sums the engine's pull progress over layers. Docker (and Podman's compat API) stream one JSON line
 * per layer event: "Pulling fs layer"/"Waiting" announce a layer, "Downloading" carries
 * `progressDetail: {current, total}` in bytes, "Verifying Checksum"/"Download complete"/"Extracting"/
 * "Pull complete" mean its download is done, "Already exists" means there is nothing to fetch.
 * The total is known once every announced layer has said its size (a small layer may finish without
 * a "Downloading" line: it counts as done with no size, so it never holds the total back).
 */
export class PullProgressTally {
  readonly #layers = new Map<string, Layer>()
  #last: ImageProgress = { doneBytes: 0, totalBytes: 0 }

  /** Takes one line of the stream; true when progress() changed with it. */
  line (line: Record<string, unknown>): boolean {
    if (!this.#apply(line)) return false
    const now = this.progress()
    if (now.doneBytes === this.#last.doneBytes && now.totalBytes === this.#last.totalBytes) return false
    this.#last = now
    return true
  }

  /** Applies a layer event; false when the line is no layer event. */
  #apply (line: Record<string, unknown>): boolean {
    const id = line['id']
    const status = line['status']
    if (typeof id !== 'string' || id === '' || typeof status !== 'string') return false
    const before = this.#layers.get(id)
    const layer: Layer = before === undefined ? { done: 0, total: 0, complete: false } : { ...before }
    if (status === 'Pulling fs layer' || status === 'Waiting') {
      if (before !== undefined) return false
    } else if (status === 'Downloading') {
      const detail = line['progressDetail'] as { current?: unknown, total?: unknown } | undefined
      const total = count(detail?.total)
      if (total > 0) layer.total = total
      layer.done = layer.total > 0 ? Math.min(count(detail?.current), layer.total) : count(detail?.current)
    } else if (status === 'Verifying Checksum' || status === 'Download complete' || status === 'Extracting' || status === 'Pull complete') {
      layer.complete = true
      if (layer.total > 0) layer.done = layer.total
    } else if (status === 'Already exists') {
      return this.#layers.delete(id)
    } else if (status.startsWith('Retrying')) {
      layer.done = 0
    } else {
      // "Pulling from <repo>" (id: the tag), digests, and anything newer engines add: not a layer.
      return false
    }
    this.#layers.set(id, layer)
    return true
  }

  progress (): ImageProgress {
    let doneBytes = 0
    let totalBytes = 0
    let sized = true
    for (const layer of this.#layers.values()) {
      doneBytes += layer.done
      totalBytes += layer.total
      if (layer.total === 0 && !layer.complete) sized = false
    }
    return { doneBytes, totalBytes: sized && this.#layers.size > 0 ? totalBytes : 0 }
  }
}

function count (value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0
}
