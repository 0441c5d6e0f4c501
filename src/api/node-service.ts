import { isIP } from 'node:net'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import { checkJobId } from '../gateway/index.ts'
import { quote } from '../quote.ts'
import type { ApiComponents } from './types.ts'
import type { JobEvent as WireJobEvent, NodeInfo, ReportResultResponse, SignedEnvelope, SubmitJobRequest } from '../protocol/index.ts'
import type { OutputChunk as WireOutputChunk } from '../protocol/generated.ts'
import type { JobRecord } from '../store/types.ts'
import { containerToWire, envelopeFromWire, jobSummaryToWire, jobToWire, stateFromWire, stateToWire } from './convert.ts'
import { ERROR_CODE_KEY, InvalidAssignmentError, InvalidRequestError, JobNotFoundError, NotASchedulerError, statusFor, toServiceError } from './errors.ts'
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

/**
 * ReportOutput calls per caller IP: a worker sends one per piece of a running job's output (while one
 * is in flight the next pieces are merged, so at most one per round trip per job).
 */
export const OUTPUT_CALLS_PER_SECOND = 5_000
export const OUTPUT_CALLS_BURST = 10_000

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
    // Many per job (chunks of a running job's output): a higher rate, still one signature check each.
    ReportOutput: limitPerCaller('ReportOutput', reportOutputHandler(c), new KeyedRateLimiter({ perSecond: OUTPUT_CALLS_PER_SECOND, burst: OUTPUT_CALLS_BURST, maxKeys: MAX_TRACKED_CALLERS })),

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

    StreamJobOutput: (call: grpc.ServerWritableStream<{ jobId: string }, WireOutputChunk>) => {
      streamJobOutput(c, call).catch((err: unknown) => {
        if (call.cancelled) return
        const status = toServiceError(err)
        if (status.code === grpc.status.INTERNAL) logger.error({ err }, 'StreamJobOutput failed')
        call.emit('error', status)
      })
    },

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

/**
 * Node.StreamJobOutput: the jobs service's output stream, written no faster than the client reads
 * (the next chunk is taken only once the call's buffer drained), then the last message with the state.
 */
async function streamJobOutput (c: ApiComponents, call: grpc.ServerWritableStream<{ jobId: string }, WireOutputChunk>): Promise<void> {
  const id = requireJobId(call.request.jobId)
  const signal = callSignal(call)
  const known = await c.jobs.get(id)
  if (known === undefined) throw new JobNotFoundError(id)
  let next = 0
  // A job run for a scheduler shows no output here (see jobToWire): only how it ended.
  if (known.schedulerId === '') {
    for await (const chunk of c.jobs.outputStream(id, { signal })) {
      next = chunk.index + 1
      const fits = call.write({ ...NOT_DONE, index: chunk.index, data: Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength), atMs: chunk.atMs })
      if (!fits) await once(call, 'drain', { signal })
    }
  }
  const job = await c.jobs.wait(id, signal)
  call.write(lastChunk(job, next))
  call.end()
}

const NOT_DONE: Omit<WireOutputChunk, 'index' | 'data' | 'atMs'> = {
  done: false, state: 'JOB_STATE_UNSPECIFIED', errorCode: '', error: '', outputHash: Buffer.alloc(0), outputBytes: 0, verificationState: ''
}

/** The stream's last message: how the job ended, and the hash and size of its output (hidden with it for a scheduler's job). */
function lastChunk (job: JobRecord, index: number): WireOutputChunk {
  const output = job.schedulerId === '' && job.state === 'success' ? job.output ?? new Uint8Array(0) : undefined
  return {
    index,
    data: Buffer.alloc(0),
    atMs: job.finishedAtMs ?? Date.now(),
    done: true,
    state: stateToWire(job.state),
    errorCode: job.errorCode ?? '',
    error: job.error ?? '',
    outputHash: output !== undefined ? createHash('sha256').update(output).digest() : Buffer.alloc(0),
    outputBytes: output?.byteLength ?? 0,
    verificationState: job.verification?.state ?? ''
  }
}

/** Node.ReportOutput: a worker's signed chunk of a running job's output, for a job this node's scheduler assigned to it. */
function reportOutputHandler (c: ApiComponents): grpc.handleUnaryCall<SignedEnvelope, ReportResultResponse> {
  return unary(c.logger, 'ReportOutput', async (request: SignedEnvelope): Promise<ReportResultResponse> => {
    const scheduler = c.scheduler
    if (scheduler?.acceptOutput === undefined) throw new NotASchedulerError()
    let envelope: SignedEnvelope
    try {
      envelope = envelopeFromWire(request)
    } catch (err) {
      throw new InvalidAssignmentError((err as Error).message, { cause: err })
    }
    return scheduler.acceptOutput(envelope)
  })
}
