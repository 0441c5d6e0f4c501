import * as grpc from '@grpc/grpc-js'
import { CONTROL_SERVICE, NODE_SERVICE, serviceConstructor } from './proto.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { envelopeFromWire, envelopeToWire } from './convert.ts'
import type {
  ContainerInfo, Job, JobEvent, JobState, JobSummary, ListPeersResponse, NodeEvent, OutputChunk, ReputationResponse, NodeInfo, NodeStatus, ReportResultResponse, RosterStatus, SubmitJobResponse
} from '../protocol/generated.ts'

/** Client-side default: long enough for a cold model run, short enough that nothing waits forever. */
const DEFAULT_CALL_TIMEOUT_MS = 30_000

export interface CallOptions { timeoutMs?: number, signal?: AbortSignal }

export interface NodeClient {
  getInfo(opts?: CallOptions): Promise<NodeInfo>
  /** Sends a signed assignment (scheduler → worker); resolves with the worker's signed ack. */
  assignJob(assignment: SignedEnvelope, opts?: CallOptions): Promise<SignedEnvelope>
  /** Sends a worker's signed result notice (worker → the scheduler that assigned the job). */
  reportResult(notice: SignedEnvelope, opts?: CallOptions): Promise<ReportResultResponse>
  submitJob(req: SubmitArgs, opts?: CallOptions): Promise<SubmitJobResponse>
  /** Submits and waits in one call; resolves with the finished job. */
  runJob(req: SubmitArgs, opts?: CallOptions): Promise<Job>
  getJob(jobId: string, opts?: CallOptions & { includeSteps?: boolean }): Promise<Job>
  listJobs(req?: { state?: JobState, limit?: number }, opts?: CallOptions): Promise<JobSummary[]>
  /** Yields each state change; the last event carries the finished job. */
  watchJob(jobId: string, opts?: CallOptions): AsyncIterable<JobEvent>
  /** Yields the job's output as it is produced; the last message has done = true and the terminal state. */
  streamJobOutput(jobId: string, opts?: CallOptions): AsyncIterable<OutputChunk>
  /** Resolves once the channel is connected, or rejects with the reason after timeoutMs. */
  waitReady(timeoutMs: number): Promise<void>
  close(): void
}

export interface ControlClient {
  getStatus(opts?: CallOptions): Promise<NodeStatus>
  listContainers(opts?: CallOptions): Promise<ContainerInfo[]>
  streamEvents(opts?: CallOptions): AsyncIterable<NodeEvent>
  listPeers(opts?: CallOptions): Promise<ListPeersResponse>
  /** Applies an operator-signed roster on the node (and the mesh); rejects FAILED_PRECONDITION with the reason when refused. */
  updateRoster(roster: SignedEnvelope, opts?: CallOptions): Promise<RosterStatus>
  /** The roster the node holds (roster null, version 0 when none), its admission mode and operators. */
  getRoster(opts?: CallOptions): Promise<RosterStatus>
  getReputation(opts?: CallOptions): Promise<ReputationResponse>
  waitReady(timeoutMs: number): Promise<void>
  close(): void
}

function channelOptions (maxMessageBytes?: number): grpc.ClientOptions {
  const size = maxMessageBytes ?? 64 * 1024 * 1024
  return {
    'grpc.max_receive_message_length': size,
    'grpc.max_send_message_length': size,
    // Job submission is not idempotent without a job id, so transparent retries stay off (and their buffering with them).
    'grpc.enable_retries': 0
  }
}

function deadline (opts?: CallOptions): Date {
  return new Date(Date.now() + (opts?.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS))
}

function call<Res> (client: grpc.Client, method: string, req: unknown, opts?: CallOptions): Promise<Res> {
  return new Promise((resolve, reject) => {
    const c = (client as any)[method](req, { deadline: deadline(opts) }, (err: grpc.ServiceError | null, res: Res) => {
      if (err !== null) reject(err)
      else resolve(res)
    }) as grpc.ClientUnaryCall
    opts?.signal?.addEventListener('abort', () => c.cancel(), { once: true })
  })
}

async function * stream<T> (client: grpc.Client, method: string, req: unknown, opts?: CallOptions): AsyncIterable<T> {
  const callOpts: grpc.CallOptions = opts?.timeoutMs !== undefined ? { deadline: deadline(opts) } : {}
  const s = (client as any)[method](req, callOpts) as grpc.ClientReadableStream<T>
  const onAbort = (): void => s.cancel()
  opts?.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const item of s) yield item as T
  } finally {
    opts?.signal?.removeEventListener('abort', onAbort)
    s.cancel()
  }
}

function waitReady (client: grpc.Client, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => err != null ? reject(err) : resolve())
  })
}

/** What a client submits; `verification` unset = the gateway's default policy. */
export interface SubmitArgs {
  containerId?: string
  containers?: string[]
  input: Uint8Array
  deadlineMs?: number
  jobId?: string
  requiresProof?: boolean
  delegate?: string
  allowProbation?: boolean
  verification?: { method: 'none' | 'signature' | 'reexecute', validators?: number, quorum?: number }
}

function submitRequest (req: SubmitArgs): Record<string, unknown> {
  return {
    containerId: req.containerId ?? '',
    containers: req.containers ?? [],
    input: Buffer.from(req.input.buffer, req.input.byteOffset, req.input.byteLength),
    deadlineMs: req.deadlineMs ?? 0,
    jobId: req.jobId ?? '',
    requiresProof: req.requiresProof ?? false,
    allowProbation: req.allowProbation ?? false,
    delegate: req.delegate ?? '',
    verification: req.verification !== undefined ? { method: req.verification.method, validators: req.verification.validators ?? 0, quorum: req.verification.quorum ?? 0 } : null
  }
}

/** A client of the public inframind.v1.Node service at host:port. */
export function connectNode (address: string, opts: { maxMessageBytes?: number } = {}): NodeClient {
  const Ctor = serviceConstructor(NODE_SERVICE)
  const client = new Ctor(address, grpc.credentials.createInsecure(), channelOptions(opts.maxMessageBytes))
  return {
    getInfo: async (o) => await call(client, 'GetInfo', {}, o),
    submitJob: async (req, o) => await call(client, 'SubmitJob', submitRequest(req), o),
    runJob: async (req, o) => await call(client, 'RunJob', submitRequest(req), o),
    assignJob: async (env, o) => envelopeFromWire(await call<SignedEnvelope>(client, 'AssignJob', envelopeToWire(env), o)),
    reportResult: async (env, o) => await call<ReportResultResponse>(client, 'ReportResult', envelopeToWire(env), o),
    getJob: async (jobId, o) => await call(client, 'GetJob', { jobId, includeSteps: o?.includeSteps ?? false }, o),
    listJobs: async (req, o) => (await call<{ jobs: JobSummary[] }>(client, 'ListJobs', { state: req?.state ?? 'JOB_STATE_UNSPECIFIED', limit: req?.limit ?? 0 }, o)).jobs,
    watchJob: (jobId, o) => stream<JobEvent>(client, 'WatchJob', { jobId }, o),
    streamJobOutput: (jobId, o) => stream<OutputChunk>(client, 'StreamJobOutput', { jobId }, o),
    waitReady: async (t) => await waitReady(client, t),
    close: () => client.close()
  }
}

/** A channel unused this long is closed; the next call to that peer opens a new one. */
const PEER_CHANNEL_IDLE_MS = 60_000
/**
 * A peer's gRPC port that does not connect within this is treated as unreachable (the caller falls
 * back to gossip); callers with a longer budget pass their own (a busy 2-core box has been seen to
 * need more than 1 s for a channel's first connect).
 */
const PEER_CONNECT_MS = 1_000
/** One assignment or result report: an ack or a verdict comes back at once, so a longer wait means trouble. */
const PEER_CALL_MS = 10_000

/** A peer's gRPC port did not accept a connection in time. */
export class PeerUnreachableError extends Error {
  readonly code = 'PEER_UNREACHABLE'
  constructor (address: string, reason: string) {
    super(`cannot reach ${address} over gRPC: ${reason}`)
    this.name = 'PeerUnreachableError'
  }
}

function ready (client: grpc.Client, address: string, timeoutMs: number): Promise<void> {
  if (client.getChannel().getConnectivityState(true) === grpc.connectivityState.READY) return Promise.resolve()
  return new Promise((resolve, reject) => {
    client.waitForReady(new Date(Date.now() + timeoutMs), (err) => {
      if (err === undefined || err === null) resolve()
      else reject(new PeerUnreachableError(address, err.message))
    })
  })
}

/** Point-to-point calls between mesh nodes: assignments out to workers, results back to schedulers. */
export interface PeerClients {
  /** Sends a scheduler's signed assignment to a worker's public AssignJob and returns the signed ack. */
  assign(address: string, assignment: SignedEnvelope, signal: AbortSignal, opts?: { connectTimeoutMs?: number }): Promise<SignedEnvelope>
  /** Sends a worker's signed result notice to the assigning scheduler's public ReportResult. */
  report(address: string, notice: SignedEnvelope, signal: AbortSignal): Promise<ReportResultResponse>
  /** Sends a worker's signed output chunk of a running job to the assigning scheduler's public ReportOutput. */
  reportOutput(address: string, chunk: SignedEnvelope, signal: AbortSignal): Promise<ReportResultResponse>
  close(): void
}

/**
 * One channel per peer address, kept while calls flow: a connection (TCP + HTTP/2) per job would
 * cost more than the call itself. Idle channels close on their own.
 */
export function peerClients (): PeerClients {
  const Ctor = serviceConstructor(NODE_SERVICE)
  const open = new Map<string, { client: grpc.Client, lastUsedMs: number }>()
  const drop = (address: string): void => {
    open.get(address)?.client.close()
    open.delete(address)
  }
  // One sweep for every channel (armed while any is open), rather than a timer armed and cleared on each call.
  let sweep: NodeJS.Timeout | undefined
  const sweepIdle = (): void => {
    const cutoff = Date.now() - PEER_CHANNEL_IDLE_MS
    for (const [address, entry] of open) if (entry.lastUsedMs < cutoff) drop(address)
    if (open.size === 0) {
      clearInterval(sweep)
      sweep = undefined
    }
  }
  const channel = async (address: string, connectTimeoutMs = PEER_CONNECT_MS): Promise<grpc.Client> => {
    let entry = open.get(address)
    if (entry === undefined) {
      entry = { client: new Ctor(address, grpc.credentials.createInsecure(), channelOptions()), lastUsedMs: Date.now() }
      open.set(address, entry)
      if (sweep === undefined) {
        sweep = setInterval(sweepIdle, PEER_CHANNEL_IDLE_MS / 2)
        sweep.unref()
      }
    }
    entry.lastUsedMs = Date.now()
    await ready(entry.client, address, connectTimeoutMs)
    return entry.client
  }
  return {
    async assign (address, assignment, signal, opts = {}) {
      const client = await channel(address, opts.connectTimeoutMs)
      return envelopeFromWire(await call<SignedEnvelope>(client, 'AssignJob', envelopeToWire(assignment), { signal, timeoutMs: PEER_CALL_MS }))
    },
    async report (address, notice, signal) {
      const client = await channel(address)
      return await call<ReportResultResponse>(client, 'ReportResult', envelopeToWire(notice), { signal, timeoutMs: PEER_CALL_MS })
    },
    async reportOutput (address, chunk, signal) {
      const client = await channel(address)
      return await call<ReportResultResponse>(client, 'ReportOutput', envelopeToWire(chunk), { signal, timeoutMs: PEER_CALL_MS })
    },
    /** Closes every channel; the clients stay usable (the next call opens a new one). */
    close () {
      clearInterval(sweep)
      sweep = undefined
      for (const address of [...open.keys()]) drop(address)
    }
  }
}

/** A client of the local inframind.v1.Control service (host:port or unix:/path). */
export function connectControl (address: string, opts: { maxMessageBytes?: number } = {}): ControlClient {
  const Ctor = serviceConstructor(CONTROL_SERVICE)
  const client = new Ctor(address, grpc.credentials.createInsecure(), channelOptions(opts.maxMessageBytes))
  return {
    getStatus: async (o) => await call(client, 'GetStatus', {}, o),
    listContainers: async (o) => (await call<{ containers: ContainerInfo[] }>(client, 'ListContainers', {}, o)).containers,
    streamEvents: (o) => stream<NodeEvent>(client, 'StreamEvents', {}, o),
    listPeers: async (o) => await call(client, 'ListPeers', {}, o),
    updateRoster: async (env, o) => rosterStatusFromWire(await call<RosterStatus>(client, 'UpdateRoster', { roster: envelopeToWire(env) }, o)),
    getRoster: async (o) => rosterStatusFromWire(await call<RosterStatus>(client, 'GetRoster', {}, o)),
    getReputation: async (o) => await call(client, 'GetReputation', {}, o),
    waitReady: async (t) => await waitReady(client, t),
    close: () => client.close()
  }
}

/** The envelope copied out of gRPC's buffers, so it can be verified and re-encoded safely. */
function rosterStatusFromWire (s: RosterStatus): RosterStatus {
  return { ...s, roster: s.roster !== null ? envelopeFromWire(s.roster) : null }
}
