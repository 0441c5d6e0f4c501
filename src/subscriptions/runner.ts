/**
 * The runner: for each active subscription this node owns, at the start of each interval (or on
 * taking a subscription over mid-interval) it launches the jobs the interval still lacks, and judges
 * each result by the Coordinator's rules at the moment it arrives.
 *
 * An owner life starts when owns(id) turns true (or at start) and ends when it turns false, the
 * subscription ends, or the node stops; within one life each (interval, index) is launched at most
 * once. Job ids are deterministic (subscriptionJobId), so a coordinator that takes a subscription over
 * asks for jobs a worker may already hold, and a worker's idempotency keeps it from running one twice.
 */
import { createHash } from 'node:crypto'
import type { SignedEnvelope } from '../envelope/index.ts'
import type { Identity } from '../identity/index.ts'
import type { Subscription, SubscriptionRequest, SubscriptionResponse } from '../protocol/index.ts'
import { sameBytes, verifyReceipt } from '../receipt/index.ts'
import type { JobOrigin } from '../runtime/types.ts'
import { SEAL_CONTEXTS, sealTo } from '../seal/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { HeldSubscription, SubscriptionBook } from './book.ts'
import { STOP_TIMEOUT_MS } from './constants.ts'
import type { SubscriptionMetrics } from './metrics.ts'
import { subscriptionJobId, subscriptionOrigin } from './request.ts'
import { intervalAt, intervalBounds, lastInterval } from './rules.ts'

export interface RunJobArgs {
  subscription: Subscription
  request: SubscriptionRequest
  interval: number
  /** 1..redundancy: which of the interval's jobs this is. */
  index: number
  jobId: string
  /** Workers that already answered this interval: another answer from them would be refused. */
  excludeWorkers: string[]
  /** The job's deadline: the request's deadline_ms (or the default) from launch, never past the interval's end. */
  deadlineAtMs: number
  /**
   * The owner as delegate (subscriptionOrigin), proven by the owner's signature on the request: submit
   * it with delegateVerified: true so the Guardian's allowed_delegates judges the signed owner.
   */
  origin: JobOrigin
  /** Aborted when this node stops owning the subscription, it is cancelled, or the node stops. */
  signal: AbortSignal
}

export interface RunJobResult {
  workerId: string
  /** The worker's signed receipt for jobId. */
  receipt: SignedEnvelope
  output: Uint8Array
  outputHash: Uint8Array
  certificate?: SignedEnvelope
}

export type RunJob = (args: RunJobArgs) => Promise<RunJobResult>

export interface RunnerContext {
  book: SubscriptionBook
  identity: Identity
  logger: Logger
  metrics: SubscriptionMetrics
  nowMs: () => number
  defaultDeadlineMs: number
  runJob: RunJob
  owns: (subscriptionId: string) => boolean
  storeOutput?: (bytes: Uint8Array) => unknown
  /** Replicates, then shows to watchers, a response the book accepted. */
  publishDelivered: (response: SubscriptionResponse) => Promise<void>
}

export interface Runner {
  tick(): Promise<void>
  /** Ends the owner life of `id` now (cancelled): its jobs are aborted, nothing more is launched. */
  forget(id: string): void
  /** Resolves once every job launched so far has been judged. */
  settled(): Promise<void>
  stop(): Promise<void>
}

/** One job of an interval: response `index`, its `attempt`-th try (0 = the first). */
interface JobPlan { interval: number, index: number, jobId: string, excludeWorkers: string[], deadlineAtMs: number, attempt: number }

/** A response whose job failed or did not count is tried again at most this many times in its interval. */
const MAX_RESPONSE_RETRIES = 2
/** ...and only with this much of its interval left (a job on a warm path takes tens of ms, a cold one a second or more). */
const MIN_RETRY_BUDGET_MS = 1_000

interface Life {
  controller: AbortController
  launched: Set<string>
  /** The interval last seen in this life (0 = none yet). */
  interval: number
  /** Jobs of this life still running (a one-time subscription counts a miss when it drops to 0 short). */
  running: number
}

export function subscriptionRunner (ctx: RunnerContext): Runner {
  const log = ctx.logger
  const lives = new Map<string, Life>()
  const inflight = new Set<Promise<void>>()

  function end (id: string): void {
    const life = lives.get(id)
    if (life === undefined) return
    life.controller.abort()
    lives.delete(id)
  }

  /** Intervals from `from` up to (not including) `to` that ended with fewer responses than the redundancy. */
  async function countMissed (h: HeldSubscription, from: number, to: number): Promise<void> {
    const last = Math.min(to - 1, lastInterval(h.terms))
    if (from < 1 || from > last) return
    const got = (await ctx.book.delivered(h.subscription.id, from)).length
    // Intervals skipped entirely (the node paused longer than a period) are misses too.
    ctx.metrics.missed((got < h.terms.redundancy ? 1 : 0) + (last - from))
  }

  async function launch (h: HeldSubscription, life: Life, interval: number, nowMs: number): Promise<void> {
    const id = h.subscription.id
    const done = await ctx.book.delivered(id, interval)
    let need = h.terms.redundancy - done.length
    if (need <= 0) return
    const doneJobs = new Set(done.map((d) => d.jobId))
    const excludeWorkers = done.map((d) => d.nodeId)
    const { endS } = intervalBounds(h.terms, interval)
    const budget = h.request.deadlineMs > 0 ? h.request.deadlineMs : ctx.defaultDeadlineMs
    const deadlineAtMs = Math.min(nowMs + budget, endS * 1000)
    for (let index = 1; index <= h.terms.redundancy && need > 0; index++) {
      const jobId = subscriptionJobId(id, interval, index)
      const key = `${interval}:${index}`
      if (doneJobs.has(jobId) || life.launched.has(key)) continue
      life.launched.add(key)
      need--
      life.running++
      start(h, life, { interval, index, jobId, excludeWorkers, deadlineAtMs, attempt: 0 })
    }
  }

  function start (h: HeldSubscription, life: Life, job: JobPlan): void {
    const running = run(h, life, job)
    inflight.add(running)
    void running.finally(() => inflight.delete(running))
  }

  /**
   * A response that did not count (its job failed, or its worker had answered this interval already,
   * e.g. two slots placed on one worker while the other was out of sight) is tried again once on
   * another worker while its interval has time left; a late one is not (its interval is over).
   */
  async function retry (h: HeldSubscription, life: Life, job: JobPlan, answered?: string): Promise<boolean> {
    if (job.attempt >= MAX_RESPONSE_RETRIES || life.controller.signal.aborted) return false
    const nowMs = ctx.nowMs()
    if (job.deadlineAtMs - nowMs < MIN_RETRY_BUDGET_MS) return false
    const current = ctx.book.get(h.subscription.id)
    if (current === undefined || ctx.book.state(current, Math.floor(nowMs / 1000)) !== 'active') return false
    if (intervalAt(current.terms.activeAt, current.terms.period, Math.floor(nowMs / 1000)) !== job.interval) return false
    const done = await ctx.book.delivered(h.subscription.id, job.interval)
    if (done.length >= current.terms.redundancy) return false
    const attempt = job.attempt + 1
    const excludeWorkers = [...new Set([...done.map((d) => d.nodeId), ...(answered !== undefined ? [answered] : [])])]
    life.running++
    start(h, life, { ...job, attempt, excludeWorkers, jobId: subscriptionJobId(h.subscription.id, job.interval, job.index, attempt) })
    return true
  }

  async function run (h: HeldSubscription, life: Life, job: JobPlan): Promise<void> {
    const id = h.subscription.id
    let result: RunJobResult
    try {
      const { attempt: _attempt, ...plan } = job
      result = await ctx.runJob({
        subscription: h.subscription,
        request: h.request,
        ...plan,
        origin: subscriptionOrigin(h.subscription),
        signal: life.controller.signal
      })
    } catch (err) {
      if (!life.controller.signal.aborted) {
        ctx.metrics.jobFailed()
        log.info({ err, subscription: id, jobId: job.jobId }, 'subscription job failed')
        // Out of time (shed by an overloaded gateway, or past its deadline): another try would be too.
        if ((err as { jobCode?: unknown }).jobCode !== 'DEADLINE_EXCEEDED') await retry(h, life, job).catch(() => false)
      }
      await settle(h, life)
      return
    }
    try {
      const code = await judge(id, job.interval, job.jobId, result)
      if (code === 'NODE_RESPONDED_ALREADY' || code === 'INVALID_RESULT') await retry(h, life, job, result.workerId)
    } catch (err) {
      log.error({ err, subscription: id, jobId: job.jobId }, 'subscription result could not be recorded')
    }
    await settle(h, life)
  }

  /** A one-time subscription never leaves interval 1: its miss is counted when its last job comes back short. */
  async function settle (h: HeldSubscription, life: Life): Promise<void> {
    life.running--
    if (h.terms.period !== 0 || life.running > 0 || life.controller.signal.aborted) return
    const now = ctx.book.get(h.subscription.id)
    if (now !== undefined && now.terms.cancelledAt === 0 && now.deliveredInLast < now.terms.redundancy) ctx.metrics.missed(1)
  }

  /** Judges a result at the moment it arrives: a result past its interval is refused, never delivered. */
  async function judge (id: string, interval: number, jobId: string, result: RunJobResult): Promise<string | undefined> {
    const arrivedMs = ctx.nowMs()
    const h = ctx.book.get(id)
    if (h === undefined) return
    const problem = invalidResult(jobId, result)
    if (problem !== undefined) {
      ctx.metrics.refused('INVALID_RESULT', 'local')
      log.warn({ subscription: id, jobId, worker: result.workerId, problem }, 'subscription result refused')
      return 'INVALID_RESULT'
    }
    const response: SubscriptionResponse = {
      subscriptionId: id,
      interval,
      index: 0,
      nodeId: result.workerId,
      jobId,
      receipt: result.receipt,
      certificate: result.certificate ?? null,
      outputHash: result.outputHash,
      // Only the owner can open it; a lazy subscription gets the hash alone (the bytes go to storeOutput).
      sealedOutput: h.request.lazy ? new Uint8Array(0) : sealTo(h.subscription.owner, result.output, SEAL_CONTEXTS.subscriptionOutput(id, jobId)),
      acceptedAtMs: arrivedMs,
      schedulerId: ctx.identity.nodeId
    }
    const outcome = await ctx.book.accept(response, Math.floor(arrivedMs / 1000))
    if (!outcome.accepted) {
      ctx.metrics.refused(outcome.code, 'local')
      log.info({ subscription: id, jobId, worker: result.workerId, code: outcome.code }, 'subscription response refused')
      return outcome.code
    }
    ctx.metrics.accepted('local')
    if (h.request.lazy && ctx.storeOutput !== undefined) {
      try {
        await ctx.storeOutput(result.output)
      } catch (err) {
        // Best effort: the response (its hash) stands; an archive may get the bytes from the worker.
        log.warn({ err, subscription: id, jobId }, 'lazy output not stored')
      }
    }
    await ctx.publishDelivered(outcome.response)
  }

  async function tick (): Promise<void> {
    const nowMs = ctx.nowMs()
    const nowS = Math.floor(nowMs / 1000)
    for (const h of ctx.book.all()) {
      const id = h.subscription.id
      const state = ctx.book.state(h, nowS)
      let life = lives.get(id)
      const owned = state === 'active' && ctx.owns(id)
      if (!owned) {
        // It ended by time while this node owned it: the interval it was in may have come up short.
        if (life !== undefined && state === 'completed' && h.terms.period > 0) await countMissed(h, life.interval, intervalAt(h.terms.activeAt, h.terms.period, nowS))
        end(id)
        continue
      }
      if (life === undefined) {
        life = { controller: new AbortController(), launched: new Set(), interval: 0, running: 0 }
        lives.set(id, life)
      }
      const interval = intervalAt(h.terms.activeAt, h.terms.period, nowS)
      if (interval === life.interval) continue
      const previous = life.interval
      life.interval = interval
      if (previous > 0) await countMissed(h, previous, interval)
      await launch(h, life, interval, nowMs)
    }
  }

  return {
    tick,
    forget: end,
    async settled () {
      while (inflight.size > 0) await Promise.allSettled([...inflight])
    },
    async stop () {
      for (const id of [...lives.keys()]) end(id)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        Promise.allSettled([...inflight]),
        new Promise((resolve) => { timer = setTimeout(resolve, STOP_TIMEOUT_MS) })
      ])
      clearTimeout(timer)
    }
  }
}

/** A result that is not what the job asked for: another job's receipt, a failed run, bytes that are not the output. */
function invalidResult (jobId: string, r: RunJobResult): string | undefined {
  const v = verifyReceipt(r.receipt, { output: r.output })
  if (!v.valid) return `receipt: ${v.reason}`
  if (v.receipt.workerId !== r.workerId) return 'the receipt is not signed by the worker that answered'
  if (v.receipt.jobId !== jobId) return 'the receipt is for another job'
  if (v.receipt.status !== 'success') return 'the job failed'
  if (!sameBytes(v.receipt.outputHash, r.outputHash)) return 'output_hash is not the receipt\'s'
  if (!sameBytes(createHash('sha256').update(r.output).digest(), r.outputHash)) return 'output_hash is not the output\'s sha256'
  return undefined
}
