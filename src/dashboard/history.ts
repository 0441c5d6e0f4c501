import type { GuardianRejection, JobEvent, Refusal } from '../gateway/types.ts'
import { BUCKET_MS, BUCKETS_KEPT, LATENCY_SAMPLES_PER_BUCKET, REFUSALS_KEPT } from './constants.ts'

/** One point of the charts: the jobs that finished in [t, t + BUCKET_MS). */
export interface Point {
  /** Start of the bucket (epoch ms). */
  t: number
  succeeded: number
  failed: number
  /** Latency percentiles of the jobs that finished in it (ms; 0 when none did). */
  p50: number
  p95: number
  max: number
}

interface Bucket { t: number, succeeded: number, failed: number, samples: number[], seen: number, max: number }

/**
 * Throughput and latency of finished jobs over the last BUCKETS_KEPT buckets, kept in memory from
 * the jobs service's events (since the dashboard started; a restart begins a new history).
 */
export class Series {
  readonly #buckets: Bucket[] = []
  readonly #now: () => number
  readonly #since: number

  /** `now` is the clock (tests pass their own); the series begins at the first call's time. */
  constructor (now: () => number = Date.now) {
    this.#now = now
    this.#since = align(now())
  }

  /** Counts a terminal job event; other events are ignored. */
  record (event: JobEvent): void {
    if (event.state !== 'success' && event.state !== 'failed') return
    const b = this.#bucket(event.atMs)
    if (event.state === 'success') b.succeeded += 1
    else b.failed += 1
    const latency = event.latencyMs
    if (latency === undefined) return
    b.max = Math.max(b.max, latency)
    b.seen += 1
    // Reservoir sampling: every latency has the same chance to be kept, memory stays bounded.
    if (b.samples.length < LATENCY_SAMPLES_PER_BUCKET) b.samples.push(latency)
    else {
      const i = Math.floor(Math.random() * b.seen)
      if (i < LATENCY_SAMPLES_PER_BUCKET) b.samples[i] = latency
    }
  }

  /**
   * Every bucket from the oldest kept (or the series' start, when that is later: nothing was
   * recorded before it) to now, empty ones included (a chart's x axis without gaps).
   */
  points (): Point[] {
    const end = align(this.#now())
    const start = Math.max(end - (BUCKETS_KEPT - 1) * BUCKET_MS, Math.min(this.#since, end))
    const byT = new Map(this.#buckets.map((b) => [b.t, b]))
    const out: Point[] = []
    for (let t = start; t <= end; t += BUCKET_MS) out.push(toPoint(byT.get(t) ?? { t, succeeded: 0, failed: 0, samples: [], seen: 0, max: 0 }))
    return out
  }

  /** The last `n` buckets up to now (what a live update carries). */
  latest (n = 2): Point[] {
    return this.points().slice(-n)
  }

  #bucket (atMs: number): Bucket {
    const t = align(atMs)
    // Nearly every event lands in the newest bucket.
    const newest = this.#buckets[this.#buckets.length - 1]
    if (newest?.t === t) return newest
    let b = this.#buckets.find((x) => x.t === t)
    if (b === undefined) {
      b = { t, succeeded: 0, failed: 0, samples: [], seen: 0, max: 0 }
      this.#buckets.push(b)
      this.#buckets.sort((x, y) => x.t - y.t)
      const oldest = align(this.#now()) - (BUCKETS_KEPT - 1) * BUCKET_MS
      while (this.#buckets.length > 0 && this.#buckets[0].t < oldest) this.#buckets.shift()
    }
    return b
  }
}

function align (ms: number): number {
  return ms - (ms % BUCKET_MS)
}

function toPoint (b: Bucket): Point {
  const sorted = [...b.samples].sort((x, y) => x - y)
  const pct = (p: number): number => sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
  return { t: b.t, succeeded: b.succeeded, failed: b.failed, p50: pct(0.5), p95: pct(0.95), max: b.max }
}

export interface RefusalView {
  atMs: number
  /** The Guardian's rule that refused it. */
  reason: string
  /** The container it named ('' when unknown or none). */
  containerId: string
  /** The error code the client got. */
  code: string
}

export interface RefusalsView {
  /** The latest Guardian refusals, newest first. */
  recent: RefusalView[]
  /** Guardian refusals by rule, since the dashboard started. */
  guardianByReason: Record<string, number>
  /** Every refusal (Guardian or not) by reason, since the dashboard started. */
  allByReason: Record<string, number>
}

/** The latest refusals of job submissions, never the client's origin (the events carry none). */
export class Refusals {
  readonly #recent: RefusalView[] = []
  readonly #guardian: Record<string, number> = {}
  readonly #all: Record<string, number> = {}

  /** Records a Guardian refusal; returns what the page is told. */
  guardian (r: GuardianRejection, atMs = Date.now()): RefusalView {
    this.#guardian[r.reason] = (this.#guardian[r.reason] ?? 0) + 1
    const view: RefusalView = { atMs, reason: r.reason, containerId: r.containerId, code: r.code }
    this.#recent.unshift(view)
    if (this.#recent.length > REFUSALS_KEPT) this.#recent.pop()
    return view
  }

  /** Counts any refusal (the Guardian's arrive here too, labelled by rule). */
  refused (r: Refusal): void {
    this.#all[r.reason] = (this.#all[r.reason] ?? 0) + 1
  }

  view (): RefusalsView {
    return { recent: [...this.#recent], guardianByReason: { ...this.#guardian }, allByReason: { ...this.#all } }
  }
}
