/**
 * Jobs through several gateways: submit with a client-chosen job id, wait for the result, and when a
 * gateway dies or is cut off, submit the same job (the same id: never a new one) to the next gateway
 * and wait there. The mesh holds a job by its id, so the second submission is the first job.
 */
import { randomUUID } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import type { Job, JobEvent, JobState } from '../protocol/generated.ts'
import { DEFAULT_OPERATION_TIMEOUT_MS, DEFAULT_RUN_TIMEOUT_MS, MAX_REMEMBERED_JOBS, RUN_DEADLINE_GRACE_MS, WATCH_PROBE_INTERVAL_MS } from './constants.ts'
import { classify, type GatewayPool, type Verdict } from './failover.ts'
import type { Call, JobSpec, NodeRpc } from './rpc.ts'

/** Bounds of one operation: the caller's signal and/or a timeout covering every failover in it. */
export interface OperationOptions {
  signal?: AbortSignal
  /** The whole operation, failovers and backoffs included. */
  timeoutMs?: number
  /** Told each time a gateway failed and the operation moves on (progress lines, logs). */
  onFailover?: (address: string, err: Error) => void
}

export interface SubmitResult {
  jobId: string
  state: JobState
  /** The gateway already had a job with this id (a retry, or a failover's resubmission). */
  duplicate: boolean
  /** The gateway that took it. */
  gateway: string
}

/** A WatchJob event and the gateway it came from (after a failover, the history restarts from the new gateway's record). */
export type ClientJobEvent = JobEvent & { gateway: string }

export interface JobsClient {
  submit(job: JobSpec, opts?: OperationOptions): Promise<SubmitResult>
  /** Submit, then wait for the finished job (SUCCESS or FAILED), failing over as needed. */
  run(job: JobSpec, opts?: OperationOptions): Promise<Job>
  get(jobId: string, opts?: OperationOptions): Promise<Job>
  /** Every state change up to the terminal event, which carries the finished job. */
  watch(jobId: string, opts?: OperationOptions): AsyncIterable<ClientJobEvent>
}

/** A client-made idempotency key: a UUID fits the gateway's job id rule (1-128 of A-Z a-z 0-9 . _ : -). */
export function newJobId (): string {
  return randomUUID()
}

export function isTerminal (state: string): boolean {
  return state === 'JOB_STATE_SUCCESS' || state === 'JOB_STATE_FAILED'
}

const isNotFound = (err: unknown): boolean => (err as { code?: unknown }).code === grpc.status.NOT_FOUND

/** For reads: a gateway that does not know the job may not be the one it went through. */
export function notFoundSkips (err: unknown): Verdict {
  return isNotFound(err) ? 'skip' : classify(err)
}

const finalEvent = (job: Job): JobEvent => ({ jobId: job.jobId, state: job.state, atMs: job.finishedAtMs, detail: '', job })

export function deadlineOf (opts: OperationOptions, fallbackMs: number): number {
  return Date.now() + (opts.timeoutMs ?? fallbackMs)
}

/** run()/watch(): the job's own deadline plus the answer's round trip, else the default. */
function waitDeadline (opts: OperationOptions, jobDeadlineMs: number | undefined): number {
  if (opts.timeoutMs !== undefined) return Date.now() + opts.timeoutMs
  if (jobDeadlineMs !== undefined && jobDeadlineMs > 0) return Date.now() + jobDeadlineMs + RUN_DEADLINE_GRACE_MS
  return Date.now() + DEFAULT_RUN_TIMEOUT_MS
}

/**
 * One WatchJob stream on one gateway. When it has been silent for the probe interval the same
 * gateway is asked for the job: a gateway that is frozen or cut off fails that call (and the caller
 * fails over), and a terminal state the stream missed ends the watch.
 */
async function * watchOnce (rpc: NodeRpc, jobId: string, o: { deadlineAt: number, signal?: AbortSignal, callTimeoutMs: number, probeMs: number }): AsyncIterable<JobEvent> {
  const cancel = new AbortController()
  const signal = o.signal !== undefined ? AbortSignal.any([o.signal, cancel.signal]) : cancel.signal
  const it = rpc.watchJob(jobId, { deadlineAt: o.deadlineAt, signal })[Symbol.asyncIterator]()
  try {
    for (;;) {
      const next = it.next().then((r) => ({ r }), (e: unknown) => ({ e }))
      let got: IteratorResult<JobEvent> | undefined
      while (got === undefined) {
        let timer: NodeJS.Timeout | undefined
        const probe = new Promise<'probe'>((resolve) => { timer = setTimeout(() => resolve('probe'), o.probeMs) })
        const won = await Promise.race([next, probe])
        clearTimeout(timer)
        if (won === 'probe') {
          const job = await rpc.getJob(jobId, { deadlineAt: Math.min(o.deadlineAt, Date.now() + o.callTimeoutMs), signal: o.signal })
          if (isTerminal(job.state)) { yield finalEvent(job); return }
          continue
        }
        if ('e' in won) throw won.e
        got = won.r
      }
      if (got.done === true) return
      yield got.value
    }
  } finally {
    cancel.abort()
    it.return?.().catch(() => undefined)
  }
}

export function jobsClient (pool: GatewayPool, opts: { callTimeoutMs: number, probeMs?: number }): JobsClient {
  // jobId -> the job as submitted and the gateway it is at: what a failover resubmits, and where to look first.
  const known = new Map<string, { spec?: JobSpec & { jobId: string }, firstSubmitMs: number, gateway: string }>()
  const remember = (jobId: string, gateway: string, spec?: JobSpec & { jobId: string }): void => {
    const prev = known.get(jobId)
    known.delete(jobId)
    known.set(jobId, { spec: prev?.spec ?? spec, firstSubmitMs: prev?.firstSubmitMs ?? Date.now(), gateway })
    if (known.size > MAX_REMEMBERED_JOBS) known.delete(known.keys().next().value as string)
  }
  /** The job as first submitted, its deadline shortened by the time since: a failover does not extend the caller's budget. */
  const resubmission = (jobId: string): (JobSpec & { jobId: string }) | undefined => {
    const k = known.get(jobId)
    if (k?.spec === undefined) return undefined
    const budget = k.spec.deadlineMs ?? 0
    return budget > 0 ? { ...k.spec, deadlineMs: Math.max(1, budget - (Date.now() - k.firstSubmitMs)) } : k.spec
  }
  const probeMs = opts.probeMs ?? WATCH_PROBE_INTERVAL_MS

  const submitAt = async (spec: JobSpec & { jobId: string }, o: { deadlineAt: number, signal?: AbortSignal, after?: string, onFailover?: OperationOptions['onFailover'] }): Promise<SubmitResult> => {
    const { value, address } = await pool.attempt(`submit job ${spec.jobId}`, async (rpc, call) => await rpc.submitJob(spec, call), {
      deadlineAt: o.deadlineAt, signal: o.signal, after: o.after, prefer: o.after === undefined ? known.get(spec.jobId)?.gateway : undefined, onFailover: o.onFailover
    })
    remember(spec.jobId, address, spec)
    // The gateway's id is the job's id: a gateway that renamed it would break the idempotency the failover relies on.
    return { jobId: value.jobId !== '' ? value.jobId : spec.jobId, state: value.state, duplicate: value.duplicate, gateway: address }
  }

  async function * watch (jobId: string, o: OperationOptions = {}): AsyncIterable<ClientJobEvent> {
    const deadlineAt = waitDeadline(o, known.get(jobId)?.spec?.deadlineMs)
    const bounds = { deadlineAt, signal: o.signal }
    let gateway = known.get(jobId)?.gateway
    let failed: string | undefined
    for (let quiet = 1; ; quiet++) {
      pool.check(`watch job ${jobId}`, bounds)
      if (gateway === undefined) {
        const spec = resubmission(jobId)
        if (spec !== undefined) {
          // The gateway it was at is gone: the same job, the same id, through the next one.
          gateway = (await submitAt(spec, { ...bounds, after: failed, onFailover: o.onFailover })).gateway
        } else {
          const { value, address } = await pool.attempt(`find job ${jobId}`, async (rpc, call) => await rpc.getJob(jobId, call), {
            ...bounds, after: failed, classify: notFoundSkips, onFailover: o.onFailover
          })
          gateway = address
          remember(jobId, address)
          if (isTerminal(value.state)) { yield { ...finalEvent(value), gateway }; return }
        }
      }
      try {
        for await (const event of watchOnce(pool.rpc(gateway), jobId, { ...bounds, callTimeoutMs: opts.callTimeoutMs, probeMs })) {
          yield { ...event, gateway }
          if (event.job !== null && event.job !== undefined) return
        }
        // Ended without the terminal event (a gateway stopping closes its watches): ask again, after a pause.
        await pool.pause(`watch job ${jobId}`, quiet, bounds)
      } catch (err) {
        pool.check(`watch job ${jobId}`, bounds, err)
        if (classify(err) === 'fatal' && !isNotFound(err)) throw err
        o.onFailover?.(gateway, err as Error)
      }
      failed = gateway
      gateway = undefined
    }
  }

  const get = async (jobId: string, o: OperationOptions = {}): Promise<Job> => {
    const { value, address } = await pool.attempt(`get job ${jobId}`, async (rpc, call: Call) => await rpc.getJob(jobId, call), {
      deadlineAt: deadlineOf(o, DEFAULT_OPERATION_TIMEOUT_MS), signal: o.signal, prefer: known.get(jobId)?.gateway, classify: notFoundSkips, onFailover: o.onFailover
    })
    remember(jobId, address)
    return value
  }

  return {
    async submit (job, o = {}) {
      const spec = { ...job, jobId: job.jobId ?? newJobId() }
      return await submitAt(spec, { deadlineAt: deadlineOf(o, DEFAULT_OPERATION_TIMEOUT_MS), signal: o.signal, onFailover: o.onFailover })
    },
    async run (job, o = {}) {
      const spec = { ...job, jobId: job.jobId ?? newJobId() }
      const deadlineAt = waitDeadline(o, spec.deadlineMs)
      await submitAt(spec, { deadlineAt, signal: o.signal, onFailover: o.onFailover })
      for await (const event of watch(spec.jobId, { signal: o.signal, onFailover: o.onFailover, timeoutMs: Math.max(1, deadlineAt - Date.now()) })) {
        if (event.job !== null && event.job !== undefined) return event.job
      }
      // watch() ends only with the terminal event or an error; this is the last word if it ever does not.
      return await get(spec.jobId, { signal: o.signal, timeoutMs: Math.max(1, deadlineAt - Date.now()) })
    },
    get,
    watch
  }
}
