import { randomUUID } from 'node:crypto'
import { guardian, GuardianRejectedError, type Guardian } from '../guardian/index.ts'
import { computeJobHash, sha256, signReceipt } from '../receipt/index.ts'
import { TypedEmitter } from '../events.ts'
import { DeadlineSlots, DeadlineUnreachableError } from '../slots.ts'
import {
  DEADLINE_REASON, FAILURE_CODES, STOP_REASON, toFinished, toRequeued, type Ending, type Executor
} from '../executor/index.ts'
import { DEFAULT_STOP_TIMEOUT_MS, LATENCY_WINDOW, MAX_TIMER_MS } from './constants.ts'
import { GatewayFullError, NoExecutorError, NoLiveWorkerError, NotStartedError, QueueFullError } from './errors.ts'
import { chainOf, validateSubmit, type ValidSubmit } from './admit.ts'
import { receiptFor } from './receipt.ts'
import { runRemoteJob } from './remote.ts'
import { watchJob, waitJob } from './watch.ts'
import { OutputHub, outputStream } from './output.ts'
import { registerJobMetrics } from './metrics.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { PolicyLimits } from '../verification/index.ts'
import type { ContainerConfig } from '../config/types.ts'
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { JobCounters, JobRecord, JobStore } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { JobState } from '../types.ts'
import type {
  HardwareProfile, JobChange, JobEvent, JobsEvents, JobsService, JobStats, Lane, OutputChunk, RemoteExecutor, SubmitRequest, SubmitResult
} from './types.ts'

export * from './errors.ts'
export { JOB_ID_PATTERN, MAX_CHAIN_LENGTH, MAX_DEADLINE_MS } from './constants.ts'
export { chainOf, checkJobId, checkResources } from './admit.ts'
export { checkRemoteResult } from './remote.ts'
export type * from './types.ts'

export interface JobsServiceInit {
  /** Containers this node admits jobs for: their Guardian rules, input limits and schemas (config.containers). */
  containers: ContainerConfig[]
  /** Jobs waiting for an executor slot (jobs.queue_size); beyond it QUEUE_FULL. */
  queueSize: number
  /** Deadline of a job submitted without one (jobs.default_deadline_ms). */
  defaultDeadlineMs: number
  /** Mesh jobs awaiting their worker at once (gateway.max_in_flight). */
  maxInFlight: number
  /** Mesh jobs waiting for an in-flight place (gateway.queue_size); beyond it GATEWAY_FULL. */
  meshQueueSize: number
  /** What this machine offers jobs it runs itself. */
  hardware: HardwareProfile
  /** How long stop() waits for aborted runs to settle (default DEFAULT_STOP_TIMEOUT_MS). */
  stopTimeoutMs?: number
  /** gateway.verification: the default policy and the largest v honoured (used only with the mesh). */
  verification?: PolicyLimits
}

export interface JobsServiceComponents {
  store: JobStore
  /** Runs the jobs whose containers it serves (all of them on a worker, none on a pure gateway). */
  executor: Executor
  identity: Identity
  logger: Logger
  /** Runs jobs on the mesh (a scheduler); absent on a node without the mesh. */
  remote?: RemoteExecutor
  /** Where this service registers its metric group (jobs, latency, queue, refusals). */
  metrics?: Metrics
}

export function jobsService (init: JobsServiceInit): (components: JobsServiceComponents) => JobsService {
  return (components) => new Jobs(init, components)
}

function terminal (job: JobRecord): boolean {
  return job.state === 'success' || job.state === 'failed'
}

class Jobs implements JobsService {
  readonly #init: JobsServiceInit
  readonly #containers: ReadonlyMap<string, ContainerConfig>
  readonly #guardian: Guardian
  readonly #store: JobStore
  readonly #executor: Executor
  readonly #remote: RemoteExecutor | undefined
  readonly #identity: Identity
  readonly #log: Logger
  readonly #events: TypedEmitter<JobsEvents>
  /** In-flight places for mesh jobs: they wait on the network, so they never hold an executor slot. */
  readonly #meshSlots: DeadlineSlots
  #started = false
  #starting: Promise<void> | undefined
  /** Latest record of every pending or running job; the store holds the same, written first. */
  readonly #active = new Map<string, JobRecord>()
  /** Which lane each active job is in. */
  readonly #lanes = new Map<string, Lane>()
  /** The output of each launched job so far, for its readers (outputStream); dropped when it ends. */
  readonly #hubs = new Map<string, OutputHub>()
  /** Every launched job's abort controller (waiting or running). */
  readonly #controllers = new Map<string, AbortController>()
  /** Jobs whose acceptance failed to store while their run had begun: their ending is discarded. */
  readonly #dropped = new Set<string>()
  /** Acceptance writes still in flight: a job's later writes wait for them and are skipped if they failed. */
  readonly #acceptWrites = new Map<string, Promise<void>>()
  /** Submissions with a client id still being stored, so a racing duplicate waits for the first. */
  readonly #submitting = new Map<string, Promise<SubmitResult>>()
  /** Everything still in flight (runs, submissions) that stop() must wait for. */
  readonly #tasks = new Set<Promise<unknown>>()
  #counters: JobCounters = { served: 0, succeeded: 0, failed: 0 }
  #guardianRejections = 0
  #latencies: number[] = []

  constructor (init: JobsServiceInit, components: JobsServiceComponents) {
    this.#init = init
    this.#containers = new Map(init.containers.map((c) => [c.id, c]))
    this.#guardian = guardian({ containers: init.containers })
    this.#store = components.store
    this.#executor = components.executor
    this.#remote = components.remote
    this.#identity = components.identity
    this.#log = components.logger.child({ component: 'jobs' })
    this.#events = new TypedEmitter(this.#log)
    this.#meshSlots = new DeadlineSlots(init.maxInFlight)
    if (components.metrics !== undefined) registerJobMetrics(components.metrics, this)
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
    const pending: JobRecord[] = []
    for (const job of jobs) {
      if (job.state === 'pending') {
        pending.push(job)
        resumed += 1
      } else if (job.state === 'running' && this.#laneOf(job.containers) === 'mesh') {
        // It ran on a worker, which kept it (idempotent by job id): assigned again, the worker that has it
        // answers with its result, or runs it on; only a job no worker has runs anew.
        const requeued = toRequeued(job, Date.now(), job.workerId !== undefined
          ? `resumed after a restart: asking ${job.workerId} for its result`
          : 'resumed after a restart: assigning it again')
        await this.#store.putActive(requeued)
        pending.push(requeued)
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
    for (const job of pending) this.#launch(job, this.#laneOf(job.containers))
    if (jobs.length > 0) this.#log.info({ resumed, interrupted }, 'resumed jobs from the store')
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
    for (const controller of this.#controllers.values()) controller.abort(STOP_REASON)
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      Promise.allSettled([...this.#tasks]).then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), this.#init.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS) })
    ])
    clearTimeout(timer)
    if (timedOut) {
      this.#log.warn({ running: [...this.#controllers.keys()] }, 'jobs did not settle before the stop timeout; the next start marks them NODE_RESTARTED')
    }
    this.#active.clear()
    this.#lanes.clear()
    this.#controllers.clear()
    for (const hub of this.#hubs.values()) hub.abort(new NotStartedError('jobs service'))
    this.#hubs.clear()
    this.#latencies = []
  }

  async submit (req: SubmitRequest): Promise<SubmitResult> {
    if (!this.#started) throw new NotStartedError('jobs service')
    const [valid, lane] = this.#admit(req)
    const id = valid.jobId
    if (id === undefined) return await this.#track(this.#accept(randomUUID(), req, valid, lane, false))
    // Everything up to #submitting.set is synchronous, so two racing submits of one id cannot both get past it.
    // A job still being stored is in #active too: a retry waits for that write (or hears its error), so
    // "it exists" is never said of a job a crash could still lose.
    const inflight = this.#submitting.get(id)
    if (inflight !== undefined) return { job: (await inflight).job, duplicate: true }
    const existing = this.#active.get(id)
    if (existing !== undefined) return { job: existing, duplicate: true }
    const accepting = this.#accept(id, req, valid, lane, true)
    this.#submitting.set(id, accepting)
    try {
      return await this.#track(accepting)
    } finally {
      this.#submitting.delete(id)
    }
  }

  async get (id: string): Promise<JobRecord | undefined> {
    if (!this.#started) throw new NotStartedError('jobs service')
    return this.#active.get(id) ?? await this.#store.get(id)
  }

  async handover (id: string, schedulerId: string, jobHash: Uint8Array): Promise<JobRecord | undefined> {
    if (!this.#started) throw new NotStartedError('jobs service')
    const active = this.#active.get(id)
    const job = active ?? await this.#store.get(id)
    if (job === undefined || job.schedulerId === '') return undefined
    if (!Buffer.from(computeJobHash(job.id, job.containers, sha256(job.input))).equals(Buffer.from(jobHash))) return undefined
    if (job.schedulerId === schedulerId) return job
    this.#log.info({ jobId: id, from: job.schedulerId, to: schedulerId }, 'job handed over to another scheduler')
    if (active !== undefined) {
      // Still queued or running: the receipt signed when it ends names the new scheduler.
      active.schedulerId = schedulerId
      await this.#persist(active)
      return active
    }
    const moved: JobRecord = { ...job, schedulerId }
    // The same run, reported to another scheduler: a receipt naming it, every other field as before.
    moved.receipt = signReceipt(this.#identity, receiptFor(moved, this.#identity.nodeId))
    await this.#store.complete(moved)
    return moved
  }

  async list (opts: { state?: JobState, limit?: number } = {}): Promise<JobRecord[]> {
    if (!this.#started) throw new NotStartedError('jobs service')
    return await this.#store.list(opts)
  }

  async wait (id: string, signal?: AbortSignal): Promise<JobRecord> {
    return await waitJob(id, { on: (l) => this.on('job', l), get: async (x) => await this.get(x) }, signal)
  }

  async watch (id: string, onChange: (change: JobChange) => void, signal?: AbortSignal): Promise<JobRecord> {
    return await watchJob(id, onChange, { on: (l) => this.on('job', l), get: async (x) => await this.get(x) }, signal)
  }

  outputStream (id: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<OutputChunk> {
    return outputStream(id, {
      on: (l) => this.on('job', l),
      get: async (x) => await this.get(x),
      hub: (x) => this.#hubs.get(x)
    }, opts.signal)
  }

  on<K extends keyof JobsEvents> (name: K, listener: (value: JobsEvents[K]) => void): () => void {
    return this.#events.on(name, listener)
  }

  stats (): JobStats {
    const n = this.#latencies.length
    const local = this.#executor.stats()
    return {
      ...this.#counters,
      active: local.active + this.#meshSlots.active,
      queued: local.waiting + this.#meshSlots.waiting,
      meshInFlight: this.#meshSlots.active,
      avgLatencyMs: n === 0 ? 0 : this.#latencies.reduce((a, b) => a + b, 0) / n,
      guardianRejections: this.#guardianRejections
    }
  }

  /** A job runs here when this node's executor serves its whole chain; otherwise on the mesh, when there is one. */
  #laneOf (containers: readonly string[]): Lane {
    return this.#remote !== undefined && !this.#executor.serves(containers) ? 'mesh' : 'local'
  }

  /** Every submission passes here, whatever path it came by: shape, Guardian, limits, lane. Refusals are counted and announced. */
  #admit (req: SubmitRequest): [ValidSubmit, Lane] {
    try {
      let lane = this.#laneOf(chainOf(req))
      const valid = validateSubmit(req, {
        containers: this.#containers,
        guardian: this.#guardian,
        hardware: lane === 'local' ? this.#init.hardware : undefined,
        defaultDeadlineMs: this.#init.defaultDeadlineMs,
        // Only a node with the mesh can have results checked by validators.
        verification: this.#remote !== undefined ? this.#init.verification : undefined
      })
      // A verified job runs on the mesh even when this node could run it: validators check a worker's receipt.
      if (valid.verification.method !== 'none') lane = 'mesh'
      const ids = valid.containers.map((c) => c.id)
      if (lane === 'local' && !this.#executor.serves(ids)) throw new NoExecutorError(ids)
      if (lane === 'mesh') {
        // Checked at intake so a client hears at once that nothing could run its job, rather than at its deadline.
        const served = (this.#remote as RemoteExecutor).servedContainers({ allowProbation: valid.allowProbation })
        const missing = ids.filter((c) => !served.has(c))
        if (missing.length > 0) throw new NoLiveWorkerError(missing, served)
      }
      return [valid, lane]
    } catch (err) {
      if (err instanceof GuardianRejectedError) {
        this.#guardianRejections += 1
        // The origin stays out: listeners feed metrics and status.
        this.#events.emit('rejected', { reason: err.reason, containerId: err.containerId, code: err.code })
      }
      this.#refused(err)
      throw err
    }
  }

  #refused (err: unknown): void {
    // The Guardian's rule names are a closed set; anything else is labelled by its code.
    const code = String((err as { code?: unknown } | null)?.code ?? 'INTERNAL')
    this.#events.emit('refused', { code, reason: err instanceof GuardianRejectedError ? err.reason : code })
  }

  #checkRoom (lane: Lane): void {
    if (lane === 'local') {
      const waiting = this.#executor.stats().waiting
      if (waiting >= this.#init.queueSize) throw new QueueFullError(waiting, this.#init.queueSize)
    } else {
      const waiting = this.#meshSlots.waiting
      if (waiting >= this.#init.meshQueueSize) throw new GatewayFullError(waiting, this.#init.meshQueueSize)
    }
  }

  async #accept (id: string, req: SubmitRequest, valid: ValidSubmit, lane: Lane, checkStore: boolean): Promise<SubmitResult> {
    if (checkStore) {
      const found = await this.#store.get(id)
      if (found !== undefined) return { job: found, duplicate: true }
      if (!this.#started) throw new NotStartedError('jobs service')
    }
    // From the room check to the launch nothing awaits, so no other submission can take the place
    // in between: the lane's own count (executor line or mesh line) is the only reservation.
    try {
      this.#checkRoom(lane)
    } catch (err) {
      this.#refused(err)
      throw err
    }
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
      allowProbation: valid.allowProbation,
      state: 'pending',
      createdAtMs: now,
      deadlineAtMs: now + valid.deadlineMs,
      history: [{ state: 'pending', atMs: now, detail: 'accepted' }],
      schedulerId: req.schedulerId ?? ''
    }
    // A mesh job's first worker: the one the same key reaches from any gateway (see SubmitRequest.placement).
    if (lane === 'mesh') {
      const placement = req.placement ?? (valid.jobId !== undefined && req.schedulerId === undefined ? { key: id, slot: 0 } : undefined)
      if (placement !== undefined) job.placement = placement
      if (req.excludeWorkers !== undefined && req.excludeWorkers.length > 0) job.excludeWorkers = [...req.excludeWorkers]
    }
    if (valid.verification.method !== 'none') {
      const { method, validators, quorum } = valid.verification
      job.verification = { method, validators, quorum, state: 'pending', reason: '' }
    }
    // Stored before the caller hears "accepted", so an accepted job survives a crash. The write
    // overlaps the job's first step: store writes are serialised, so it lands before the job's
    // later writes, and if it fails the job is dropped unreported and the caller gets the error.
    const stored = this.#store.putActive(job)
    this.#acceptWrites.set(id, stored)
    // Stopped meanwhile: the job is stored as pending and the next start() runs it.
    if (this.#started) {
      this.#emit(job, lane)
      this.#launch(job, lane)
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
  }

  /** Forgets a job whose acceptance could not be stored: it stops, and nothing more of it is written. */
  #drop (id: string): void {
    this.#active.delete(id)
    this.#endHub(id, undefined, new NotStartedError('jobs service'))
    const controller = this.#controllers.get(id)
    if (controller === undefined) return
    this.#dropped.add(id)
    controller.abort(STOP_REASON)
  }

  /** Starts a job's life in its lane: one deadline timer covers its wait and its run. */
  #launch (job: JobRecord, lane: Lane): void {
    this.#active.set(job.id, job)
    this.#lanes.set(job.id, lane)
    // Capped at what the last container may print: that is all the run itself would keep.
    const last = this.#containers.get(job.containers[job.containers.length - 1] ?? '')
    this.#hubs.set(job.id, new OutputHub(job.id, last?.maxOutputBytes ?? 0))
    const controller = new AbortController()
    this.#controllers.set(job.id, controller)
    const timer = setTimeout(() => { controller.abort(DEADLINE_REASON) }, Math.min(Math.max(0, job.deadlineAtMs - Date.now()), MAX_TIMER_MS))
    const run = lane === 'local' ? this.#runLocal(job, controller.signal) : this.#runOnMesh(job, controller.signal)
    this.#track(run
      .catch((err: unknown) => { this.#log.error({ err, jobId: job.id }, 'job run failed unexpectedly') })
      .finally(() => {
        clearTimeout(timer)
        if (this.#controllers.get(job.id) === controller) this.#controllers.delete(job.id)
      }))
  }

  async #runLocal (job: JobRecord, signal: AbortSignal): Promise<void> {
    const hub = this.#hubs.get(job.id)
    const ended = await this.#executor.run(job, {
      signal,
      update: async (next) => await this.#update(next),
      ...(hub !== undefined ? { onOutput: (chunk: Uint8Array) => { hub.append(chunk) } } : {})
    })
    if (ended.kind === 'stopped') return await this.#requeue(ended.job)
    if (ended.kind === 'expired') return await this.#finishExpiredInQueue(ended.job)
    await this.#finish(ended.job, ended.end)
  }

  async #runOnMesh (job: JobRecord, signal: AbortSignal): Promise<void> {
    let release: () => void
    try {
      // Earliest deadline first; the kind is the chain, whose recent runs say how long one takes.
      release = await this.#meshSlots.acquire({ deadlineAtMs: job.deadlineAtMs, kind: job.containers.join(','), signal })
    } catch (err) {
      if (err instanceof DeadlineUnreachableError) return await this.#finishShed(job, err)
      if (signal.reason === STOP_REASON) return await this.#requeue(job)
      return await this.#finishExpiredInQueue(job)
    }
    try {
      await runRemoteJob(job, signal, this.#remote as RemoteExecutor, this.#containers, {
        update: async (next) => await this.#update(next),
        note: (next) => { this.#note(next) },
        finish: async (next, end, receipt) => await this.#finish(next, end, receipt),
        requeue: async (next) => await this.#requeue(next),
        output: (chunk) => { this.#hubs.get(job.id)?.put(chunk.offset, chunk.data) }
      })
    } finally {
      release()
    }
  }

  async #update (job: JobRecord): Promise<void> {
    if (this.#dropped.has(job.id)) return
    this.#active.set(job.id, job)
    await this.#persist(job)
    this.#emit(job, this.#lanes.get(job.id) ?? 'local')
  }

  /** A change watchers should see that is not worth a store write of its own. */
  #note (job: JobRecord): void {
    if (this.#dropped.has(job.id) || !this.#active.has(job.id)) return
    this.#active.set(job.id, job)
    this.#emit(job, this.#lanes.get(job.id) ?? 'local')
  }

  /** Refused before it ran: it was waiting for an in-flight place and could no longer end in time. */
  #finishShed (job: JobRecord, err: DeadlineUnreachableError): Promise<void> {
    return this.#finish(job, {
      state: 'failed',
      detail: 'failed: shed, its deadline could not be met',
      error: `not run: the gateway is past its capacity for mesh jobs (gateway.max_in_flight in flight), and ${err.message}; submit with a longer deadline, through another gateway, or when it is less busy`,
      errorCode: FAILURE_CODES.deadlineExceeded
    })
  }

  #finishExpiredInQueue (job: JobRecord): Promise<void> {
    const waited = Date.now() - job.createdAtMs
    return this.#finish(job, {
      state: 'failed',
      detail: 'failed: deadline passed while queued',
      error: `deadline of ${job.deadlineAtMs - job.createdAtMs} ms passed after ${waited} ms in the queue, before a slot was free; submit with a longer deadline or retry when the node is less busy`,
      errorCode: FAILURE_CODES.deadlineExceeded
    })
  }

  async #requeue (job: JobRecord): Promise<void> {
    const lane = this.#lanes.get(job.id) ?? 'local'
    this.#forget(job.id)
    this.#endHub(job.id, undefined, new NotStartedError('jobs service'))
    if (this.#dropped.delete(job.id)) return
    // A job that never started is still `pending` in the store: nothing to write.
    if (job.state === 'pending') return
    const pending = toRequeued(job, Date.now(), 'requeued: the node is stopping; resumes on next start')
    await this.#persist(pending)
    this.#emit(pending, lane)
  }

  /** The job's readers carry on into its final output (or get `err`), and the hub goes. */
  #endHub (id: string, output: Uint8Array | undefined, err?: Error): void {
    const hub = this.#hubs.get(id)
    if (hub === undefined) return
    this.#hubs.delete(id)
    if (err !== undefined) hub.abort(err)
    else hub.end(output)
  }

  #forget (id: string): void {
    this.#active.delete(id)
    this.#lanes.delete(id)
  }

  /** `workerReceipt`: a job run on another node keeps that worker's signed receipt instead of one of ours. */
  async #finish (job: JobRecord, end: Ending, workerReceipt?: SignedEnvelope): Promise<void> {
    const lane = this.#lanes.get(job.id) ?? 'local'
    if (this.#dropped.delete(job.id)) {
      this.#forget(job.id)
      return
    }
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
    this.#forget(job.id)
    // After the store has the result: a reader that finds no hub finds the finished record.
    this.#endHub(job.id, done.state === 'success' ? done.output ?? new Uint8Array(0) : undefined)
    this.#counters.served += 1
    if (end.state === 'success') this.#counters.succeeded += 1
    else this.#counters.failed += 1
    this.#latencies.push(latencyMs)
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.shift()
    this.#emit(done, lane, latencyMs, end.errorCode)
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
  #emit (job: JobRecord, lane: Lane, latencyMs?: number, errorCode?: string): void {
    const last = job.history[job.history.length - 1]
    const event: JobEvent = {
      jobId: job.id,
      containerId: job.containerId,
      state: job.state,
      atMs: last?.atMs ?? Date.now(),
      detail: last?.detail ?? '',
      lane
    }
    if (latencyMs !== undefined) event.latencyMs = latencyMs
    if (errorCode !== undefined) event.errorCode = errorCode
    // Terminal events carry the stored record, so waiters need no second read of the store.
    if (terminal(job)) event.job = job
    this.#events.emit('job', event)
  }

  #track<T> (task: Promise<T>): Promise<T> {
    this.#tasks.add(task)
    const forget = (): void => { this.#tasks.delete(task) }
    task.then(forget, forget)
    return task
  }
}
