import { randomUUID } from 'node:crypto'
import { guardian, GuardianRejectedError, type Guardian } from '../guardian/index.ts'
import { signReceipt } from '../receipt/index.ts'
import { detectHardware } from '../runtime/index.ts'
import { chainConfigs, runChain } from './chain.ts'
import {
  DEFAULT_ABORT_GRACE_MS, DEFAULT_STOP_TIMEOUT_MS, FAILURE_CODES, LATENCY_WINDOW
} from './constants.ts'
import { NotStartedError, QueueFullError } from './errors.ts'
import { DEADLINE_REASON, STOP_REASON } from './outcome.ts'
import { Listeners } from './listeners.ts'
import { PendingQueue } from './queue.ts'
import { receiptFor } from './receipt.ts'
import { toFinished, toRequeued, type Ending } from './transitions.ts'
import { chainOf, checkDeadline, validateSubmit, type ValidSubmit } from './validate.ts'
import { runRemoteJob, validateRemote, type RemoteExecutor } from './remote.ts'
import type { ContainerConfig, NodeConfig } from '../config/types.ts'
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Runtime } from '../runtime/types.ts'
import type { JobCounters, JobRecord, JobStore } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { JobState } from '../types.ts'
import type {
  GuardianRejection, HardwareProfile, JobEvent, JobStats, Orchestrator, SubmitRequest, SubmitResult
} from './types.ts'

export * from './errors.ts'
export { FAILURE_CODES, JOB_ID_PATTERN, MAX_CHAIN_LENGTH, MAX_DEADLINE_MS } from './constants.ts'
export { chainOf, checkResources } from './validate.ts'
export { NotServedError, type RemoteExecutor } from './remote.ts'
export type * from './types.ts'

export interface OrchestratorInit {
  config: NodeConfig
  /** What this machine offers jobs (default: detectHardware() at start). */
  hardware?: HardwareProfile
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
  /** Runs jobs this node cannot (a gateway without the containers, or without the worker role). */
  remote?: RemoteExecutor
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
  readonly #remote: RemoteExecutor | undefined
  #started = false
  #starting: Promise<void> | undefined
  /** Latest record of every pending or running job; the store holds the same, written first. */
  readonly #active = new Map<string, JobRecord>()
  readonly #queue = new PendingQueue((id) => { this.#expire(id) })
  readonly #running = new Map<string, AbortController>()
  /** Jobs whose acceptance failed to store while their run had begun: their ending is discarded. */
  readonly #dropped = new Set<string>()
  /** Acceptance writes still in flight: a job's later writes wait for them and are skipped if they failed. */
  readonly #acceptWrites = new Map<string, Promise<void>>()
  /** Submissions with a client id still being stored, so a racing duplicate waits for the first. */
  readonly #submitting = new Map<string, Promise<SubmitResult>>()
  /** Queue slots taken by submissions between the size check and the enqueue. */
  #reserved = 0
  /** Everything still in flight (runs, expiries, submissions) that stop() must wait for. */
  readonly #tasks = new Set<Promise<unknown>>()
  readonly #events: Listeners<JobEvent>
  readonly #rejections: Listeners<GuardianRejection>
  readonly #guardian: Guardian
  #hardware: HardwareProfile | undefined
  #counters: JobCounters = { served: 0, succeeded: 0, failed: 0 }
  #guardianRejections = 0
  #latencies: number[] = []

  constructor (init: OrchestratorInit, components: OrchestratorComponents) {
    this.#config = init.config
    this.#containers = new Map(init.config.containers.map((c) => [c.id, c]))
    this.#guardian = guardian({ containers: init.config.containers })
    this.#hardware = init.hardware
    this.#stopTimeoutMs = init.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS
    this.#abortGraceMs = init.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS
    this.#store = components.store
    this.#runtime = components.runtime
    this.#identity = components.identity
    this.#log = components.logger
    this.#remote = components.remote
    this.#events = new Listeners(this.#log, 'job event')
    this.#rejections = new Listeners(this.#log, 'guardian rejection')
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
    this.#hardware ??= await detectHardware()
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
    // Queued jobs stay pending in the store; dropping them from memory is enough.
    this.#queue.clear()
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
    if (!this.#started || this.#hardware === undefined) throw new NotStartedError()
    const valid = this.#validate(req)
    const id = valid.jobId
    if (id === undefined) return await this.#track(this.#accept(randomUUID(), req, valid, false))
    // Everything up to #submitting.set is synchronous, so two racing submits of one id cannot both get past it.
    const existing = this.#active.get(id)
    if (existing !== undefined) return { job: existing, duplicate: true }
    const inflight = this.#submitting.get(id)
    if (inflight !== undefined) return { job: (await inflight).job, duplicate: true }
    const accepting = this.#accept(id, req, valid, true)
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
    return this.#events.add(listener)
  }

  onRejected (listener: (rejection: GuardianRejection) => void): () => void {
    return this.#rejections.add(listener)
  }

  stats (): JobStats {
    const n = this.#latencies.length
    return {
      ...this.#counters,
      active: this.#running.size,
      queued: this.#queue.size,
      avgLatencyMs: n === 0 ? 0 : this.#latencies.reduce((a, b) => a + b, 0) / n,
      guardianRejections: this.#guardianRejections
    }
  }

  /** Every submission passes the Guardian here, whatever path it came by; refusals are counted and announced. */
  #validate (req: SubmitRequest): ValidSubmit {
    if (this.#remote !== undefined && this.#goesRemote(chainOf(req))) {
      return validateRemote(req, this.#remote.servedContainers(), (ms) => checkDeadline(ms, this.#config.jobs.defaultDeadlineMs))
    }
    try {
      return validateSubmit(req, {
        containers: this.#containers,
        guardian: this.#guardian,
        hardware: this.#hardware as HardwareProfile,
        defaultDeadlineMs: this.#config.jobs.defaultDeadlineMs
      })
    } catch (err) {
      if (err instanceof GuardianRejectedError) {
        this.#guardianRejections += 1
        // The origin stays out: listeners feed metrics and status.
        this.#rejections.emit({ reason: err.reason, containerId: err.containerId, code: err.code })
      }
      throw err
    }
  }

  async #accept (id: string, req: SubmitRequest, valid: ValidSubmit, checkStore: boolean): Promise<SubmitResult> {
    if (checkStore) {
      const found = await this.#store.get(id)
      if (found !== undefined) return { job: found, duplicate: true }
      if (!this.#started) throw new NotStartedError()
    }
    const pending = this.#queue.size + this.#reserved
    const limit = this.#config.jobs.queueSize
    if (pending >= limit) throw new QueueFullError(pending, limit)
    this.#reserved += 1
    try {
      const now = Date.now()
      const containers = valid.containers.map((c) => c.id)
      const job: JobRecord = {
        id,
        containerId: containers[0] as string,
        containers,
        steps: [],
        // A private copy: the caller's buffer (e.g. a gRPC frame) may be reused after we return.
        input: new Uint8Array(req.input),
        origin: valid.origin,
        requiresProof: valid.requiresProof,
        state: 'pending',
        createdAtMs: now,
        deadlineAtMs: now + valid.deadlineMs,
        history: [{ state: 'pending', atMs: now, detail: 'accepted' }],
        schedulerId: req.schedulerId ?? ''
      }
      // Stored before the caller hears "accepted", so an accepted job survives a crash. The write
      // overlaps the job's first step: store writes are serialised, so it lands before the job's
      // later writes, and if it fails the job is dropped unreported and the caller gets the error.
      const stored = this.#store.putActive(job)
      this.#acceptWrites.set(id, stored)
      // Stopped meanwhile: the job is stored as pending and the next start() runs it.
      if (this.#started) {
        this.#enqueue(job)
        this.#emit(job)
        this.#pump()
      }
      try {
        await stored
      } catch (err) {
        this.#drop(job.id)
        throw err
      } finally {
        this.#acceptWrites.delete(id)
      }
      return { job, duplicate: false }
    } finally {
      this.#reserved -= 1
    }
  }

  /** Forgets a job whose acceptance could not be stored: it stops, and nothing more of it is written. */
  #drop (id: string): void {
    this.#active.delete(id)
    const running = this.#running.get(id)
    // Still queued: leaving #active is enough (the queue skips it). Running: its ending is discarded.
    if (running === undefined) return
    this.#dropped.add(id)
    running.abort(STOP_REASON)
  }

  #enqueue (job: JobRecord): void {
    this.#active.set(job.id, job)
    this.#queue.push(job.id, job.deadlineAtMs)
  }

  #expire (id: string): void {
    const job = this.#active.get(id)
    if (job !== undefined) this.#track(this.#finishPendingExpired(job))
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
    while (this.#started && this.#running.size < this.#config.jobs.concurrency && this.#queue.size > 0) {
      const id = this.#queue.shift() as string
      const job = this.#active.get(id)
      if (job === undefined) continue
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

  /** A chain goes to the mesh when this node is no worker or lacks one of its containers. */
  #goesRemote (containers: string[]): boolean {
    return !this.#config.node.roles.includes('worker') || containers.some((id) => !this.#containers.has(id))
  }

  async #run (queued: JobRecord, controller: AbortController): Promise<void> {
    const startedAtMs = Date.now()
    if (startedAtMs >= queued.deadlineAtMs) return await this.#finishPendingExpired(queued)
    if (this.#remote !== undefined && this.#goesRemote(queued.containers)) return await this.#runRemote(queued, controller, this.#remote)
    const containers = chainConfigs(queued, this.#containers)
    if (!Array.isArray(containers)) return await this.#finish(queued, containers)
    // One timer for the whole chain: the deadline is the job's, not a step's.
    const deadline = setTimeout(() => { controller.abort(DEADLINE_REASON) }, queued.deadlineAtMs - startedAtMs)
    let ended
    try {
      ended = await runChain(queued, containers, {
        runtime: this.#runtime,
        signal: controller.signal,
        abortGraceMs: this.#abortGraceMs,
        update: async (job) => {
          this.#active.set(job.id, job)
          await this.#persist(job)
          this.#emit(job)
        }
      })
    } finally {
      clearTimeout(deadline)
    }
    if (ended.kind === 'stopped') return await this.#requeue(ended.job)
    if (ended.internal !== undefined) {
      this.#log.warn({ err: ended.internal.error, jobId: queued.id }, 'runtime failed without an error code')
    }
    await this.#finish(ended.job, ended.end)
  }

  /** Schedules the job on the mesh and finishes it with the worker's own signed receipt. */
  async #runRemote (queued: JobRecord, controller: AbortController, remote: RemoteExecutor): Promise<void> {
    await runRemoteJob(queued, controller, remote, {
      update: async (job) => {
        this.#active.set(job.id, job)
        await this.#persist(job)
        this.#emit(job)
      },
      finish: async (job, end, receipt) => await this.#finish(job, end, receipt),
      requeue: async (job) => await this.#requeue(job)
    })
  }

  async #requeue (job: JobRecord): Promise<void> {
    if (this.#dropped.delete(job.id)) return
    const pending = toRequeued(job, Date.now(), 'requeued: the node is stopping; resumes on next start')
    await this.#persist(pending)
    this.#active.delete(job.id)
    this.#emit(pending)
  }

  /** `workerReceipt`: a job run on another node keeps that worker's signed receipt instead of one of ours. */
  async #finish (job: JobRecord, end: Ending, workerReceipt?: SignedEnvelope): Promise<void> {
    if (this.#dropped.delete(job.id)) return
    const done = toFinished(job, end, Date.now())
    const latencyMs = done.latencyMs ?? 0
    try {
      done.receipt = workerReceipt ?? signReceipt(this.#identity, receiptFor(done, this.#identity.nodeId))
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
    await this.#acceptWrites.get(job.id)?.catch(() => {})
    if (this.#dropped.has(job.id)) return
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
    // Terminal events carry the stored record, so waiters need no second read of the store.
    if (job.state === 'success' || job.state === 'failed') event.job = job
    this.#events.emit(event, { jobId: job.id })
  }

  #track<T> (task: Promise<T>): Promise<T> {
    this.#tasks.add(task)
    const forget = (): void => { this.#tasks.delete(task) }
    task.then(forget, forget)
    return task
  }
}
