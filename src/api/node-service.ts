import { isIP } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import { GuardianRejectedError } from '../guardian/errors.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { ApiComponents } from './types.ts'
import type { JobRecord } from '../store/types.ts'
import type { WireJobEvent, WireNodeInfo, WireSubmitJobRequest } from './wire.ts'
import { containerToWire, jobSummaryToWire, jobToWire, stateFromWire, stateToWire } from './convert.ts'
import { InvalidRequestError, JobNotFoundError, toServiceError } from './errors.ts'
import { containerInfos } from './containers.ts'

const MAX_LIST = 1000
const DEFAULT_LIST = 100

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>

/** Runs a unary handler body and turns any thrown error into the mapped status. */
function unary<Req, Res> (logger: Logger, method: string, body: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): Unary<Req, Res> {
  return (call, callback) => {
    body(call.request, call).then((res) => callback(null, res), (err: unknown) => {
      const status = toServiceError(err)
      if (status.code === grpc.status.INTERNAL) logger.error({ err, method }, 'request failed')
      else logger.debug({ method, code: status.code, details: status.details }, 'request refused')
      callback(status as grpc.ServiceError, null)
    })
  }
}

/**
 * The client IP of a call, from grpc-js's getPeer(): "1.2.3.4:port", "::1:port" or "[::1]:port" (this
 * grpc-js), or gRPC-core style "ipv4:1.2.3.4:port" / "ipv6:[::1]:port". '' when it is not an IP
 * ("unix:…", "unknown"), which the Guardian treats as an unknown origin.
 */
export function peerIp (peer: string): string {
  let text = peer.trim()
  if (/^unix:/i.test(text)) return ''
  text = text.replace(/^ipv[46]:/i, '')
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text)
  if (bracketed?.[1] !== undefined) return isIP(bracketed[1]) !== 0 ? bracketed[1] : ''
  // host:port with an unbracketed host, as this grpc-js writes it whenever the port is known: cut the
  // port first, or "::1:8080" would read as the address ::1:8080.
  const colon = text.lastIndexOf(':')
  if (colon > 0 && /^\d+$/.test(text.slice(colon + 1))) {
    const host = text.slice(0, colon)
    if (isIP(host) !== 0) return host
  }
  if (isIP(text) !== 0) return text
  return ''
}

function requireJobId (jobId: unknown): string {
  if (typeof jobId !== 'string' || jobId === '') throw new InvalidRequestError('job_id is required')
  return jobId
}

export function nodeServiceHandlers (c: ApiComponents): grpc.UntypedServiceImplementation {
  const logger = c.logger
  /** The one path into the orchestrator for SubmitJob and RunJob: origin from the connection, refusals counted. */
  const submit = async (req: WireSubmitJobRequest, call: grpc.ServerUnaryCall<WireSubmitJobRequest, unknown>) => {
    try {
      return await c.orchestrator.submit({
        containerId: req.containerId,
        containers: req.containers,
        input: new Uint8Array(req.input.buffer, req.input.byteOffset, req.input.byteLength),
        deadlineMs: req.deadlineMs,
        jobId: req.jobId === '' ? undefined : req.jobId,
        origin: { ip: peerIp(call.getPeer()), peerId: '', delegate: req.delegate },
        requiresProof: req.requiresProof
      })
    } catch (err) {
      // The Guardian's rule names are a closed set; anything else is labelled by its code.
      const reason = err instanceof GuardianRejectedError ? err.reason : (err as { code?: string }).code ?? 'INTERNAL'
      c.telemetry.metrics.rejected.inc({ reason })
      throw err
    }
  }
  return {
    GetInfo: unary(logger, 'GetInfo', async (): Promise<WireNodeInfo> => ({
      nodeId: c.identity.nodeId,
      version: c.version,
      roles: c.config.node.roles,
      containers: (await containerInfos(c)).map(([cfg, present]) => containerToWire(cfg, present)),
      hardware: c.hardware,
      uptimeMs: Date.now() - c.startedAtMs
    })),

    // The orchestrator (and its Guardian) checks everything, including that some container is named.
    RunJob: unary(logger, 'RunJob', async (req: WireSubmitJobRequest, call) => {
      // Terminal events are caught from before the submit, so a job that ends at once is not missed.
      const ended = new Map<string, JobRecord>()
      let waiting: { id: string, resolve: (job: JobRecord | undefined) => void } | undefined
      const unsubscribe = c.orchestrator.onEvent((e) => {
        if (e.job === undefined) return
        if (waiting?.id === e.jobId) waiting.resolve(e.job)
        else ended.set(e.jobId, e.job)
      })
      try {
        const { job } = await submit(req, call)
        let done: JobRecord | undefined = job.state === 'success' || job.state === 'failed' ? job : ended.get(job.id)
        done ??= await new Promise<JobRecord | undefined>((resolve) => {
          waiting = { id: job.id, resolve }
          call.on('cancelled', () => resolve(undefined))
        })
        done ??= await c.orchestrator.get(job.id)
        if (done === undefined) throw new JobNotFoundError(job.id)
        return jobToWire(done)
      } finally {
        unsubscribe()
      }
    }),

    SubmitJob: unary(logger, 'SubmitJob', async (req: WireSubmitJobRequest, call) => {
      const { job, duplicate } = await submit(req, call)
      return { jobId: job.id, state: stateToWire(job.state), duplicate }
    }),

    GetJob: unary(logger, 'GetJob', async (req: { jobId: string, includeSteps: boolean }) => {
      const id = requireJobId(req.jobId)
      const job = await c.orchestrator.get(id)
      if (job === undefined) throw new JobNotFoundError(id)
      return jobToWire(job, { includeSteps: req.includeSteps })
    }),

    ListJobs: unary(logger, 'ListJobs', async (req: { state: string, limit: number }) => {
      const state = req.state === 'JOB_STATE_UNSPECIFIED' ? undefined : stateFromWire(req.state)
      if (req.state !== 'JOB_STATE_UNSPECIFIED' && state === undefined) throw new InvalidRequestError(`unknown state ${String(req.state)}`)
      if (req.limit > MAX_LIST) throw new InvalidRequestError(`limit is at most ${MAX_LIST}, got ${req.limit}`)
      const jobs = await c.orchestrator.list({ state, limit: req.limit === 0 ? DEFAULT_LIST : req.limit })
      return { jobs: jobs.map(jobSummaryToWire) }
    }),

    WatchJob: (call: grpc.ServerWritableStream<{ jobId: string }, WireJobEvent>) => {
      watchJob(c, call).catch((err: unknown) => {
        const status = toServiceError(err)
        if (status.code === grpc.status.INTERNAL) logger.error({ err }, 'WatchJob failed')
        call.emit('error', status)
      })
    }
  }
}

async function watchJob (c: ApiComponents, call: grpc.ServerWritableStream<{ jobId: string }, WireJobEvent>): Promise<void> {
  const id = requireJobId(call.request.jobId)
  let done = false
  // state + detail: a chain reports each step as its own `running` event.
  let lastKey = ''
  // Subscribe before reading the job so no state change falls between the read and the subscription.
  const finish = async (known?: JobRecord): Promise<void> => {
    if (done) return
    done = true
    unsubscribe()
    const job = known ?? await c.orchestrator.get(id)
    if (job === undefined) throw new JobNotFoundError(id)
    const last = job.history[job.history.length - 1]
    call.write({ jobId: id, state: stateToWire(job.state), atMs: last?.atMs ?? Date.now(), detail: last?.detail ?? '', job: jobToWire(job) })
    call.end()
  }
  const unsubscribe = c.orchestrator.onEvent((event) => {
    if (event.jobId !== id || done) return
    if (event.state === 'success' || event.state === 'failed') {
      finish(event.job).catch((err: unknown) => call.emit('error', toServiceError(err)))
      return
    }
    const key = `${event.state} ${event.detail}`
    if (key === lastKey) return
    lastKey = key
    call.write({ jobId: id, state: stateToWire(event.state), atMs: event.atMs, detail: event.detail, job: null })
  })
  call.on('cancelled', () => { done = true; unsubscribe() })
  const job = await c.orchestrator.get(id)
  if (job === undefined) {
    done = true
    unsubscribe()
    throw new JobNotFoundError(id)
  }
  if (job.state === 'success' || job.state === 'failed') {
    await finish()
    return
  }
  if (!done && lastKey === '') {
    // Replay what already happened so a late watcher still sees the whole history.
    for (const h of job.history) {
      call.write({ jobId: id, state: stateToWire(h.state), atMs: h.atMs, detail: h.detail, job: null })
      lastKey = `${h.state} ${h.detail}`
    }
  }
}
