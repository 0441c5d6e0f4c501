import { isIP } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import { checkJobId } from '../gateway/index.ts'
import { quote } from '../quote.ts'
import type { ApiComponents } from './types.ts'
import type { JobEvent as WireJobEvent, NodeInfo, SubmitJobRequest } from '../protocol/index.ts'
import { containerToWire, jobSummaryToWire, jobToWire, stateFromWire, stateToWire } from './convert.ts'
import { ERROR_CODE_KEY, InvalidRequestError, JobNotFoundError, statusFor, toServiceError } from './errors.ts'
import { containerInfos, liveStates } from './containers.ts'
import { assignJobHandler, reportResultHandler } from './mesh-service.ts'
import { unary } from './unary.ts'
import { subscriptionHandlers } from './subscription-service.ts'
import { archiveHandlers } from './archive-service.ts'
import { KeyedRateLimiter } from '../mesh/index.ts'

const MAX_LIST = 1000
const DEFAULT_LIST = 100

/**
 * AssignJob and ReportResult calls per caller IP, each method apart: 1,000/s, burst 2,000. Each is
 * one per job from a scheduler (or a worker's result), and everything behind one address counts
 * together (a devnet on 127.0.0.1, a site behind NAT): the whole mesh moved ~110 jobs/s through a
 * gateway here and one node's warm ceiling is ~1,200 jobs/s. What it stops is a flood of bodies
 * each costing a signature check.
 */
export const PEER_CALLS_PER_SECOND = 1_000
export const PEER_CALLS_BURST = 2_000
/** Caller IPs tracked per method (least recently seen forgotten first): bounded whoever calls. */
const MAX_TRACKED_CALLERS = 4_096

/**
 * A unary handler behind a per-caller-IP rate: over it the call is refused RESOURCE_EXHAUSTED
 * (error code RATE_LIMITED) before the handler decodes or verifies anything in the request.
 */
export function limitPerCaller<Req, Res> (method: string, handler: grpc.handleUnaryCall<Req, Res>, limiter: KeyedRateLimiter): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const ip = peerIp(call.getPeer())
    if (limiter.take(ip)) {
      handler(call, callback)
      return
    }
    const metadata = new grpc.Metadata()
    metadata.set(ERROR_CODE_KEY, 'RATE_LIMITED')
    callback({
      code: statusFor('RATE_LIMITED') ?? grpc.status.RESOURCE_EXHAUSTED,
      details: `too many ${method} calls from ${ip === '' ? 'this caller' : ip} (over ${PEER_CALLS_PER_SECOND}/s): slow down and retry`,
      metadata
    } as grpc.ServiceError, null)
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
  // SubmitJob's rule and error: an id that could never have been accepted is a client error, not NOT_FOUND.
  return checkJobId(jobId)
}

/** An AbortSignal that fires when the client cancels the call (or its deadline passes). */
function callSignal (call: { on: (event: 'cancelled', listener: () => void) => unknown }): AbortSignal {
  const controller = new AbortController()
  call.on('cancelled', () => controller.abort())
  return controller.signal
}

/** inframind.v1.Node: each job RPC adapts the jobs service (admission, status, watch, wait live there). */
export function nodeServiceHandlers (c: ApiComponents): grpc.UntypedServiceImplementation {
  const logger = c.logger
  const submit = async (req: SubmitJobRequest, call: grpc.ServerUnaryCall<SubmitJobRequest, unknown>) => await c.jobs.submit({
    containerId: req.containerId,
    containers: req.containers,
    input: new Uint8Array(req.input.buffer, req.input.byteOffset, req.input.byteLength),
    deadlineMs: req.deadlineMs,
    jobId: req.jobId === '' ? undefined : req.jobId,
    // The origin comes from the connection, never from the request body.
    origin: { ip: peerIp(call.getPeer()), peerId: '', delegate: req.delegate },
    requiresProof: req.requiresProof,
    allowProbation: req.allowProbation,
    verification: req.verification
  })
  const limited = (): KeyedRateLimiter => new KeyedRateLimiter({ perSecond: PEER_CALLS_PER_SECOND, burst: PEER_CALLS_BURST, maxKeys: MAX_TRACKED_CALLERS })
  return {
    ...subscriptionHandlers(c.subscriptions, logger),
    ...archiveHandlers(c.archive, logger),
    // Peers' calls on the public listener (mesh-service.ts), each behind its per-caller rate.
    AssignJob: limitPerCaller('AssignJob', assignJobHandler(c), limited()),
    ReportResult: limitPerCaller('ReportResult', reportResultHandler(c), limited()),

    GetInfo: unary(logger, 'GetInfo', async (): Promise<NodeInfo> => ({
      nodeId: c.identity.nodeId,
      version: c.version,
      roles: c.config.node.roles,
      containers: await (async () => {
        const live = liveStates(c)
        return (await containerInfos(c)).map(([cfg, present]) => containerToWire(cfg, present, live.get(cfg.id)))
      })(),
      hardware: c.hardware,
      uptimeMs: Date.now() - c.startedAtMs
    })),

    RunJob: unary(logger, 'RunJob', async (req: SubmitJobRequest, call) => {
      const { job } = await submit(req, call)
      return jobToWire(await c.jobs.wait(job.id, callSignal(call)))
    }),

    SubmitJob: unary(logger, 'SubmitJob', async (req: SubmitJobRequest, call) => {
      const { job, duplicate } = await submit(req, call)
      return { jobId: job.id, state: stateToWire(job.state), duplicate }
    }),

    GetJob: unary(logger, 'GetJob', async (req: { jobId: string, includeSteps: boolean }) => {
      const id = requireJobId(req.jobId)
      const job = await c.jobs.get(id)
      if (job === undefined) throw new JobNotFoundError(id)
      return jobToWire(job, { includeSteps: req.includeSteps })
    }),

    ListJobs: unary(logger, 'ListJobs', async (req: { state: string, limit: number }) => {
      const state = req.state === 'JOB_STATE_UNSPECIFIED' ? undefined : stateFromWire(req.state)
      if (req.state !== 'JOB_STATE_UNSPECIFIED' && state === undefined) throw new InvalidRequestError(`unknown state ${quote(req.state)}`)
      if (req.limit > MAX_LIST) throw new InvalidRequestError(`limit is at most ${MAX_LIST}, got ${req.limit}`)
      const jobs = await c.jobs.list({ state, limit: req.limit === 0 ? DEFAULT_LIST : req.limit })
      return { jobs: jobs.map(jobSummaryToWire) }
    }),

    WatchJob: (call: grpc.ServerWritableStream<{ jobId: string }, WireJobEvent>) => {
      const watch = async (): Promise<void> => {
        const id = requireJobId(call.request.jobId)
        const job = await c.jobs.watch(id, (ch) => {
          call.write({ jobId: id, state: stateToWire(ch.state), atMs: ch.atMs, detail: ch.detail, job: null })
        }, callSignal(call))
        const last = job.history[job.history.length - 1]
        call.write({ jobId: id, state: stateToWire(job.state), atMs: last?.atMs ?? Date.now(), detail: last?.detail ?? '', job: jobToWire(job) })
        call.end()
      }
      watch().catch((err: unknown) => {
        if (call.cancelled) return
        const status = toServiceError(err)
        if (status.code === grpc.status.INTERNAL) logger.error({ err }, 'WatchJob failed')
        call.emit('error', status)
      })
    }
  }
}
