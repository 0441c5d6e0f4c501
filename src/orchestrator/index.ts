import { randomUUID } from 'node:crypto'
import { signReceipt } from '../receipt/index.ts'
import {
  DEFAULT_ABORT_GRACE_MS, DEFAULT_STOP_TIMEOUT_MS, FAILURE_CODES, LATENCY_WINDOW
} from './constants.ts'
import { NotStartedError, QueueFullError } from './errors.ts'
import { DEADLINE_REASON, STOP_REASON, failureOf, settle, type Outcome } from './outcome.ts'
import { receiptFor } from './receipt.ts'
import { toFinished, toRequeued, toRunning, type Ending } from './transitions.ts'
import { validateSubmit } from './validate.ts'
import type { ContainerConfig, NodeConfig } from '../config/types.ts'
import type { Identity } from '../identity/types.ts'
import type { Runtime } from '../runtime/types.ts'
import type { JobCounters, JobRecord, JobStore } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { JobState } from '../types.ts'
import type { JobEvent, JobStats, Orchestrator, SubmitRequest, SubmitResult } from './types.ts'

export * from './errors.ts'
export { FAILURE_CODES, JOB_ID_PATTERN, MAX_DEADLINE_MS } from './constants.ts'
export type * from './types.ts'

export interface OrchestratorInit {
  config: NodeConfig
  /** How long stop() waits for aborted runs to settle (default DEFAULT_STOP_TIMEOUT_MS). */
  stopTimeoutMs?: number
  /** How long a run may take to settle after an abort before its slot is freed (default DEFAULT_ABORT_GRACE_MS). */
  abortGraceMs?: number
}

export interface OrchestratorComponents {
  store: JobStore
  runtime: Runtime
  identity: Identity
  logger: Logger
}

export function orchestrator (init: OrchestratorInit): (components: OrchestratorComponents) => Orchestrator {
  return (components) => new JobOrchestrator(init, components)
}

class JobOrchestrator implements Orchestrator {
  readonly #config: NodeConfig
  readonly #containers: ReadonlyMap<string, ContainerConfig>
  readonly #stopTimeoutMs: number
  readonly #abortGraceMs: number
  readonly #store: JobStore
  readonly #runtime: Runtime
  readonly #identity: Identity
  readonly #log: Logger
  #started = false
  #starting: Promise<void> | undefined
  /** Latest record of every pending or running job; the store holds the same, written first. */
  readonly #active = new Map<string, JobRecord>()
  /** Pending job ids, FIFO. */
  #queue: string[] = []
  readonly #pendingTimers = new Map<string, NodeJS.Timeout>()
  readonly #running = new Map<string, AbortController>()
  /** Submissions with a client id still being stored, so a racing duplicate waits for the first. */
  readonly #submitting = new Map<string, Promise<SubmitResult>>()
  /** Queue slots taken by submissions between the size check and the enqueue. */
  #reserved = 0
  /** Everything still in flight (runs, expiries, submissions) that stop() must wait for. */
  readonly #tasks = new Set<Promise<unknown>>()
  readonly #listeners = new Set<(event: JobEvent) => void>()
  #counters: JobCounters = { served: 0, succeeded: 0, failed: 0 }
  #latencies: number[] = []

  constructor (init: OrchestratorInit, components: OrchestratorComponents) {
    this.#config = init.config
    this.#containers = new Map(init.config.containers.map((c) => [c.id, c]))
    this.#stopTimeoutMs = init.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS
    this.#abortGraceMs = init.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS
    this.#store = components.store
    this.#runtime = components.runtime
    this.#identity = components.identity
    this.#log = components.logger
  }

  async start (): Promise<void> {
    if (this.#started) return
    if (this.#starting !== undefined) return await this.#starting
    this.#starting = this.#resume()
    try {
      await this.#starting
    } finally {
      this.#starting = undefined
    }
  }

  async #resume (): Promise<void> {
    const jobs = await this.#store.listActive()
    let resumed = 0
    let interrupted = 0
    for (const job of jobs) {
      if (job.state === 'pending') {
        this.#enqueue(job)
        resumed += 1
      } else if (job.state === 'running') {
        // Its container died with the previous process; rerunning could repeat side effects, so it fails with a reason.
        interrupted += 1
        await this.#finish(job, {
          state: 'failed',
          detail: 'failed: the node restarted while this job was running',
          error: 'the node stopped while this job was running, so it has no result; submit it again to rerun it',
          errorCode: FAILURE_CODES.nodeRestarted
        })
      } else {
        // A finished job still filed as active (older store): file it where it belongs.
        await this.#store.complete(job)
      }
    }
    // Read after the loop: the store has already counted the jobs failed above.
    this.#counters = await this.#store.counters()
    this.#started = true
    if (jobs.length > 0) this.#log.info({ resumed, interrupted }, 'resumed jobs from the store')
    this.#pump()
  }

  /*
   * Jobs aborted by stop() go back to `pending` (persisted), not `failed`: they were accepted, the
   * node chose to interrupt them, and the next start() runs them again. Only a job the node lost
   * without warning (found `running` at start) fails, with NODE_RESTARTED.
   */
  async stop (): Promise<void> {
    // A stop during start waits for it, or the start would finish afterwards and leave jobs running.
    await this.#starting?.catch(() => {})
    if (!this.#started) return
    this.#started = false
    for (const timer of this.#pendingTimers.values()) clearTimeout(timer)
    this.#pendingTimers.clear()
    // Queued jobs stay pending in the store; dropping them from memory is enough.
    this.#queue = []
    for (const controller of this.#running.values()) controller.abort(STOP_REASON)
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      Promise.allSettled([...this.#tasks]).then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), this.#stopTimeoutMs) })
    ])
    clearTimeout(timer)
    if (timedOut) {
      this.#log.warn({ running: [...this.#running.keys()] }, 'jobs did not settle before the stop timeout; the next start marks them NODE_RESTARTED')
    }
    this.#active.clear()
    this.#running.clear()
    this.#latencies = []
  }

  async submit (req: SubmitRequest): Promise<SubmitResult> {
    if (!this.#started) throw new NotStartedError()
    const valid = validateSubmit(req, this.#containers, this.#config.jobs.defaultDeadlineMs)
    const id = valid.jobId
    if (id === undefined) return await this.#track(this.#accept(randomUUID(), req, valid.container, valid.deadlineMs, false))
    // Everything up to #submitting.set is synchronous, so two racing submits of one id cannot both get past it.
    const existing = this.#active.get(id)
    if (existing !== undefined) return { job: existing, duplicate: true }
    const inflight = this.#submitting.get(id)
    if (inflight !== undefined) return { job: (await inflight).job, duplicate: true }
    const accepting = this.#accept(id, req, valid.container, valid.deadlineMs, true)
    this.#submitting.set(id, accepting)
    try {
      return await this.#track(accepting)
    } finally {
      this.#submitting.delete(id)
    }
  }

  async get (id: string): Promise<JobRecord | undefined> {
    if (!this.#started) throw new NotStartedError()
    return this.#active.get(id) ?? await this.#store.get(id)
  }

  async list (opts: { state?: JobState, limit?: number } = {}): Promise<JobRecord[]> {
    if (!this.#started) throw new NotStartedError()
    return await this.#store.list(opts)
  }

  onEvent (listener: (event: JobEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  stats (): JobStats {
    const n = this.#latencies.length
    return {
      ...this.#counters,
      active: this.#running.size,
      queued: this.#queue.length,
      avgLatencyMs: n === 0 ? 0 : this.#latencies.reduce((a, b) => a + b, 0) / n
    }
  }

  async #accept (id: string, req: SubmitRequest, container: ContainerConfig, deadlineMs: number, checkStore: boolean): Promise<SubmitResult> {
    if (checkStore) {
      const found = await this.#store.get(id)
      if (found !== undefined) return { job: found, duplicate: true }
      if (!this.#started) throw new NotStartedError()
    }
    const pending = this.#queue.length + this.#reserved
    const limit = this.#config.jobs.queueSize
    if (pending >= limit) throw new QueueFullError(pending, limit)
    this.#reserved += 1
    try {
      const now = Date.now()
      const job: JobRecord = {
        id,
        containerId: container.id,
        // A private copy: the caller's buffer (e.g. a gRPC frame) may be reused after we return.
        input: new Uint8Array(req.input),
        state: 'pending',
        createdAtMs: now,
        deadlineAtMs: now + deadlineMs,
        history: [{ state: 'pending', atMs: now, detail: 'accepted' }],
        schedulerId: req.schedulerId ?? ''
      }
      // Stored before the caller hears "accepted", so an accepted job survives a crash.
      await this.#store.putActive(job)
      // Stopped meanwhile: the job is stored as pending and the next start() runs it.
      if (this.#started) {
        this.#enqueue(job)
        this.#emit(job)
        this.#pump()
      }
      return { job, duplicate: false }
    } finally {
      this.#reserved -= 1
    }
  }

  #enqueue (job: JobRecord): void {
    this.#active.set(job.id, job)
    this.#queue.push(job.id)
    // setTimeout caps at 2^31-1 ms; deadlines are far below that (MAX_DEADLINE_MS).
    const delay = Math.min(Math.max(0, job.deadlineAtMs - Date.now()), 2 ** 31 - 1)
    this.#pendingTimers.set(job.id, setTimeout(() => { this.#expire(job.id) }, delay))
  }

  /** A job still queued at its deadline fails without running, instead of waiting for a slot it can no longer use. */
  #expire (id: string): void {
    this.#pendingTimers.delete(id)
    const at = this.#queue.indexOf(id)
    const job = this.#active.get(id)
    if (at === -1 || job === undefined) return
    this.#queue.splice(at, 1)
    this.#track(this.#finishPendingExpired(job))
  }

  #finishPendingExpired (job: JobRecord): Promise<void> {
    const waited = Date.now() - job.createdAtMs
    return this.#finish(job, {
      state: 'failed',
      detail: 'failed: deadline passed while queued',
      error: `deadline of ${job.deadlineAtMs - job.createdAtMs} ms passed after ${waited} ms in the queue, before a slot was free; submit with a longer deadline or retry when the node is less busy`,
      errorCode: FAILURE_CODES.deadlineExceeded
    })
  }

  #pump (): void {
    while (this.#started && this.#running.size < this.#config.jobs.concurrency && this.#queue.length > 0) {
      const id = this.#queue.shift() as string
      const job = this.#active.get(id)
      if (job === undefined) continue
      clearTimeout(this.#pendingTimers.get(id))
      this.#pendingTimers.delete(id)
      const controller = new AbortController()
      this.#running.set(id, controller)
      this.#track(this.#run(job, controller)
        .catch((err: unknown) => { this.#log.error({ err, jobId: id }, 'job run failed unexpectedly') })
        .finally(() => {
          this.#running.delete(id)
          this.#pump()
        }))
    }
  }

  async #run (queued: JobRecord, controller: AbortController): Promise<void> {
    const startedAtMs = Date.now()
    if (startedAtMs >= queued.deadlineAtMs) return await this.#finishPendingExpired(queued)
    const container = this.#containers.get(queued.containerId)
    if (container === undefined) {
      // Accepted under an older config (resumed after a restart) whose container is gone.
      return await this.#finish(queued, {
        state: 'failed',
        detail: 'failed: container no longer configured',
        error: `container "${queued.containerId}" is no longer configured on this node`,
        errorCode: 'UNKNOWN_CONTAINER'
      })
    }
    const job = toRunning(queued, startedAtMs)
    this.#active.set(job.id, job)
    await this.#persist(job)
    this.#emit(job)
    // stop() came while the state was being written: nothing ran yet, so park it straight away.
    if (controller.signal.reason === STOP_REASON) return await this.#requeue(job)
    const budgetMs = job.deadlineAtMs - job.createdAtMs
    const deadline = setTimeout(() => { controller.abort(DEADLINE_REASON) }, job.deadlineAtMs - startedAtMs)
    let outcome: Outcome
    try {
      outcome = await settle(
        () => this.#runtime.run({ jobId: job.id, container, input: job.input, signal: controller.signal }),
        controller.signal,
        this.#abortGraceMs
      )
    } finally {
      clearTimeout(deadline)
    }
    if (outcome.ok) {
      const r = outcome.result
      return await this.#finish(job, {
        state: 'success', detail: 'succeeded', output: r.output, exitCode: r.exitCode, imageDigest: r.imageDigest
      })
    }
    if (controller.signal.reason === STOP_REASON) return await this.#requeue(job)
    const failure = failureOf(outcome.error, controller.signal.reason === DEADLINE_REASON, outcome.hung, budgetMs)
    if (failure.errorCode === FAILURE_CODES.internal) {
      this.#log.warn({ err: outcome.error, jobId: job.id }, 'runtime failed without an error code')
    }
    await this.#finish(job, { state: 'failed', detail: `failed: ${failure.errorCode}`, ...failure })
  }

  async #requeue (job: JobRecord): Promise<void> {
    const pending = toRequeued(job, Date.now(), 'requeued: the node is stopping; resumes on next start')
    await this.#persist(pending)
    this.#active.delete(job.id)
    this.#emit(pending)
  }

  async #finish (job: JobRecord, end: Ending): Promise<void> {
    const done = toFinished(job, end, Date.now())
    const latencyMs = done.latencyMs ?? 0
    try {
      done.receipt = signReceipt(this.#identity, receiptFor(done, this.#identity.nodeId))
    } catch (err) {
      this.#log.error({ err, jobId: job.id }, 'could not sign the receipt; the job is stored without one')
    }
    try {
      await this.#store.complete(done)
    } catch (err) {
      // The result stays visible until this process ends; after a restart the job shows as NODE_RESTARTED.
      this.#log.error({ err, jobId: job.id }, 'could not store the finished job')
    }
    this.#active.delete(job.id)
    this.#counters.served += 1
    if (end.state === 'success') this.#counters.succeeded += 1
    else this.#counters.failed += 1
    this.#latencies.push(latencyMs)
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.shift()
    this.#emit(done, latencyMs, end.errorCode)
  }

  async #persist (job: JobRecord): Promise<void> {
    try {
      await this.#store.putActive(job)
    } catch (err) {
      // The job carries on in memory; a restart before the next write would see its previous state.
      this.#log.error({ err, jobId: job.id, state: job.state }, 'could not store the job state')
    }
  }

  /** Announces the job's latest history entry. */
  #emit (job: JobRecord, latencyMs?: number, errorCode?: string): void {
    const last = job.history[job.history.length - 1]
    const event: JobEvent = {
      jobId: job.id,
      containerId: job.containerId,
      state: job.state,
      atMs: last?.atMs ?? Date.now(),
      detail: last?.detail ?? ''
    }
    if (latencyMs !== undefined) event.latencyMs = latencyMs
    if (errorCode !== undefined) event.errorCode = errorCode
    for (const listener of [...this.#listeners]) {
      try {
        listener(event)
      } catch (err) {
        this.#log.warn({ err, jobId: job.id }, 'job event listener threw')
      }
    }
  }

  #track<T> (task: Promise<T>): Promise<T> {
    this.#tasks.add(task)
    const forget = (): void => { this.#tasks.delete(task) }
    task.then(forget, forget)
    return task
  }
}
