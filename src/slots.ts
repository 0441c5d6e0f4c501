/** Thrown by Slots.acquire when its signal aborts first; `reason` is the signal's reason. */
export class SlotWaitAbortedError extends Error {
  readonly code = 'SLOT_WAIT_ABORTED'
  readonly reason: unknown
  constructor (reason: unknown) {
    super('gave up waiting for a free slot')
    this.name = 'SlotWaitAbortedError'
    this.reason = reason
  }
}

/**
 * A counting semaphore with a FIFO wait line: at most `limit` holders at once, the oldest waiter
 * served first, and a waiter whose signal aborts leaves the line without taking a slot.
 */
export class Slots {
  readonly limit: number
  #active = 0
  readonly #waiting: Array<{ grant: () => void }> = []

  constructor (limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slot limit must be a positive integer, got ${limit}`)
    this.limit = limit
  }

  get active (): number {
    return this.#active
  }

  get waiting (): number {
    return this.#waiting.length
  }

  /** Resolves with a release function once a slot is free; call it exactly once when done. */
  async acquire (signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted === true) throw new SlotWaitAbortedError(signal.reason)
    if (this.#active < this.limit && this.#waiting.length === 0) {
      this.#active += 1
      return this.#releaser()
    }
    return await new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          this.#active += 1
          resolve(this.#releaser())
        }
      }
      const onAbort = (): void => {
        const at = this.#waiting.indexOf(entry)
        if (at !== -1) this.#waiting.splice(at, 1)
        reject(new SlotWaitAbortedError(signal?.reason))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(entry)
    })
  }

  #releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.#active -= 1
      const next = this.#waiting.shift()
      next?.grant()
    }
  }
}

/** Thrown by DeadlineSlots.acquire for a waiter whose deadline is nearer than its kind's usual run. */
export class DeadlineUnreachableError extends Error {
  readonly code = 'DEADLINE_UNREACHABLE'
  readonly remainingMs: number
  readonly typicalMs: number
  constructor (remainingMs: number, typicalMs: number) {
    super(`${Math.max(0, Math.round(remainingMs))} ms were left before the deadline when a slot came free, and a run of this kind takes ${Math.round(typicalMs)} ms here now`)
    this.name = 'DeadlineUnreachableError'
    this.remainingMs = remainingMs
    this.typicalMs = typicalMs
  }
}

/** Runs of one kind remembered for its usual durations. */
const RUNS_REMEMBERED = 32
/** Kinds tracked at once; past this the oldest is forgotten (bounded whatever the jobs name). */
const KINDS_TRACKED = 256
/** The in-flight limit never goes below this (or the configured limit, if smaller). */
export const MIN_ADAPTIVE_LIMIT = 8
/** On congestion the limit is multiplied by this, at most once per CUT_SPACING_MS. */
const CUT_FACTOR = 0.75
const CUT_SPACING_MS = 250
/** A late run is congestion only when it took this many times its kind's median run that ended in time. */
const SLOW_FACTOR = 2
/** ...and only once the kind has this many such runs to compare with. */
const MIN_RUNS_COMPARED = 4

interface DeadlineWaiter { deadlineAtMs: number, seq: number, kind: string, grant: () => void, shed: (err: DeadlineUnreachableError) => void }

interface KindRuns {
  /** Every recent run (grant to release), ended in time or not: what the shed test expects. */
  all: number[]
  /** Recent runs that ended before their deadline: the kind's pace when not congested. */
  inTime: number[]
  p90: number | undefined
  median: number | undefined
}

/**
 * A counting semaphore for work with deadlines:
 *
 * - **Earliest deadline first.** The wait line is served by deadline (ties in arrival order).
 * - **Shedding.** When a slot comes free, a waiter with less time left than nine in ten of its kind's
 *   recent runs took (grant to release) is refused at once: granted, it would most likely end late.
 *   A slot free on arrival is taken without the test: nothing waits, nothing is overloaded.
 * - **An adaptive limit.** Between MIN_ADAPTIVE_LIMIT and `limit` in flight. A run that ends past its
 *   deadline after taking more than twice its kind's median in-time run means the work in flight is
 *   sharing too little capacity: the limit drops by a quarter (at most every CUT_SPACING_MS). Each run
 *   that ends in time raises it by 1/limit (one place per limit's worth of runs).
 *
 * Why: past capacity, more work in flight only makes every run slower: with a first-come line and a
 * fixed limit nearly every job ended late and its run was wasted. Keeping in flight what ends in
 * time, serving the nearest deadline that can still be met and telling the others at once keeps the
 * work done on time near capacity (and lets callers go elsewhere). A late run that was not slow (a
 * deadline too short for the kind) says nothing about load and never lowers the limit.
 */
export class DeadlineSlots {
  readonly limit: number
  #current: number
  #credit = 0
  #lastCutMs = -Infinity
  #active = 0
  #seq = 0
  readonly #waiting: DeadlineWaiter[] = []
  readonly #runs = new Map<string, KindRuns>()
  readonly #now: () => number

  constructor (limit: number, opts: { nowMs?: () => number } = {}) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slot limit must be a positive integer, got ${limit}`)
    this.limit = limit
    this.#current = limit
    this.#now = opts.nowMs ?? Date.now
  }

  get active (): number {
    return this.#active
  }

  get waiting (): number {
    return this.#waiting.length
  }

  /** The in-flight limit now (the adaptive one, at most `limit`). */
  get current (): number {
    return this.#current
  }

  /** The 90th percentile of `kind`'s recent runs (undefined before its first). */
  typicalMs (kind: string): number | undefined {
    const runs = this.#runs.get(kind)
    if (runs === undefined) return undefined
    runs.p90 ??= percentile(runs.all, 0.9)
    return runs.p90
  }

  /**
   * Resolves with a release function once a slot is free; call it exactly once when done. Rejects
   * with DeadlineUnreachableError when the slot came too late for `deadlineAtMs`, and with
   * SlotWaitAbortedError when the signal aborts first.
   */
  async acquire (opts: { deadlineAtMs: number, kind: string, signal?: AbortSignal }): Promise<() => void> {
    const { signal } = opts
    if (signal?.aborted === true) throw new SlotWaitAbortedError(signal.reason)
    if (this.#active < this.#current && this.#waiting.length === 0) return this.#take(opts.kind, opts.deadlineAtMs)
    return await new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.#waiting.indexOf(entry)
        if (at !== -1) this.#waiting.splice(at, 1)
        reject(new SlotWaitAbortedError(signal?.reason))
      }
      const entry: DeadlineWaiter = {
        deadlineAtMs: opts.deadlineAtMs,
        seq: this.#seq++,
        kind: opts.kind,
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve(this.#take(opts.kind, opts.deadlineAtMs))
        },
        shed: (err) => {
          signal?.removeEventListener('abort', onAbort)
          reject(err)
        }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.splice(this.#insertAt(entry), 0, entry)
    })
  }

  /** Where `entry` goes in the line: after every waiter with an earlier (or the same) deadline. */
  #insertAt (entry: DeadlineWaiter): number {
    let lo = 0
    let hi = this.#waiting.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const w = this.#waiting[mid] as DeadlineWaiter
      if (w.deadlineAtMs < entry.deadlineAtMs || (w.deadlineAtMs === entry.deadlineAtMs && w.seq < entry.seq)) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  #take (kind: string, deadlineAtMs: number): () => void {
    this.#active += 1
    const grantedAt = this.#now()
    let released = false
    return () => {
      if (released) return
      released = true
      this.#active -= 1
      const now = this.#now()
      this.#record(kind, now - grantedAt, now <= deadlineAtMs)
      this.#grantNext()
    }
  }

  #grantNext (): void {
    const now = this.#now()
    while (this.#active < this.#current) {
      const next = this.#waiting.shift()
      if (next === undefined) return
      const typical = this.typicalMs(next.kind)
      if (typical !== undefined && next.deadlineAtMs - now < typical) {
        next.shed(new DeadlineUnreachableError(next.deadlineAtMs - now, typical))
        continue
      }
      next.grant()
    }
  }

  #record (kind: string, ms: number, inTime: boolean): void {
    let runs = this.#runs.get(kind)
    if (runs === undefined) {
      if (this.#runs.size >= KINDS_TRACKED) this.#runs.delete(this.#runs.keys().next().value as string)
      runs = { all: [], inTime: [], p90: undefined, median: undefined }
      this.#runs.set(kind, runs)
    }
    remember(runs.all, ms)
    runs.p90 = undefined
    if (inTime) {
      remember(runs.inTime, ms)
      runs.median = undefined
      this.#credit += 1 / this.#current
      if (this.#credit >= 1) {
        this.#credit = 0
        this.#current = Math.min(this.limit, this.#current + 1)
      }
      return
    }
    if (runs.inTime.length < MIN_RUNS_COMPARED) return
    runs.median ??= percentile(runs.inTime, 0.5)
    const now = this.#now()
    if (ms <= SLOW_FACTOR * runs.median || now - this.#lastCutMs < CUT_SPACING_MS) return
    this.#lastCutMs = now
    this.#credit = 0
    this.#current = Math.max(Math.min(this.limit, MIN_ADAPTIVE_LIMIT), Math.floor(this.#current * CUT_FACTOR))
  }
}

/** Keeps the last RUNS_REMEMBERED values (oldest first). */
function remember (values: number[], v: number): void {
  values.push(v)
  if (values.length > RUNS_REMEMBERED) values.shift()
}

/** The q-quantile (nearest rank) of values, which must not be empty. */
function percentile (values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number
}
