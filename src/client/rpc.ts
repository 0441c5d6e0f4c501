/**
 * The Node service methods the client library calls, on one gateway's channel. Thin: requests in the
 * shapes proto-loader expects, envelopes copied out of gRPC's buffers, nothing else.
 */
import * as grpc from '@grpc/grpc-js'
import { NODE_SERVICE, serviceConstructor } from '../api/proto.ts'
import { envelopeFromWire, envelopeToWire } from '../api/convert.ts'
import type {
  Job, JobEvent, ListRecordsRequest, ListRecordsResponse, RecordReply, SignedEnvelope, SubmitJobResponse,
  SubscriptionResponse, SubscriptionStatus
} from '../protocol/generated.ts'

/** What a program submits: one container or a chain, and the job's options (SubmitJobRequest). */
export interface JobSpec {
  /** One container, or a chain (the output of each is the input of the next). */
  containers: string[]
  input: Uint8Array
  /** The client's idempotency key; the client makes one (a UUID) when not given. */
  jobId?: string
  /** Whole-job budget in ms from submission (0 or unset = the gateway's default). */
  deadlineMs?: number
  requiresProof?: boolean
  delegate?: string
  allowProbation?: boolean
  verification?: { method: 'none' | 'signature' | 'reexecute', validators?: number, quorum?: number }
}

/** Per call: an absolute deadline (unix ms; Infinity = none) and a signal that cancels it. */
export interface Call { deadlineAt: number, signal?: AbortSignal }

const deadline = (c: Call): grpc.Deadline => Number.isFinite(c.deadlineAt) ? new Date(c.deadlineAt) : Infinity

export interface NodeRpc {
  submitJob(job: JobSpec & { jobId: string }, c: Call): Promise<SubmitJobResponse>
  getJob(jobId: string, c: Call): Promise<Job>
  /** WatchJob; the stream's only bound is `c.deadlineAt` (and the signal). */
  watchJob(jobId: string, c: Call): AsyncIterable<JobEvent>
  createSubscription(env: SignedEnvelope, c: Call): Promise<SubscriptionStatus>
  cancelSubscription(env: SignedEnvelope, c: Call): Promise<SubscriptionStatus>
  getSubscription(id: string, c: Call): Promise<SubscriptionStatus>
  listSubscriptions(filter: { owner?: string, state?: string }, c: Call): Promise<SubscriptionStatus[]>
  watchSubscription(id: string, fromInterval: number, c: Call): AsyncIterable<SubscriptionResponse>
  getReceipt(ref: { jobId?: string, hash?: string }, c: Call): Promise<RecordReply>
  getCertificate(ref: { jobId?: string, hash?: string }, c: Call): Promise<RecordReply>
  listRecords(req: Partial<ListRecordsRequest>, c: Call): Promise<ListRecordsResponse>
  close(): void
}

export function channelOptions (maxMessageBytes = 64 * 1024 * 1024): grpc.ClientOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    // Retries are this library's job (with the same job id, on another gateway): none behind its back.
    'grpc.enable_retries': 0
  }
}

function unaryCall<Res> (client: grpc.Client, method: string, req: unknown, c: Call): Promise<Res> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => call.cancel()
    const call = (client as any)[method](req, { deadline: deadline(c) }, (err: grpc.ServiceError | null, res: Res) => {
      c.signal?.removeEventListener('abort', onAbort)
      if (err !== null) reject(err)
      else resolve(res)
    }) as grpc.ClientUnaryCall
    if (c.signal?.aborted === true) call.cancel()
    else c.signal?.addEventListener('abort', onAbort, { once: true })
  })
}

async function * streamCall<T> (client: grpc.Client, method: string, req: unknown, c: Call): AsyncIterable<T> {
  const s = (client as any)[method](req, { deadline: deadline(c) }) as grpc.ClientReadableStream<T>
  const onAbort = (): void => s.cancel()
  if (c.signal?.aborted === true) s.cancel()
  else c.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for await (const item of s) yield item as T
  } finally {
    c.signal?.removeEventListener('abort', onAbort)
    s.cancel()
  }
}

function submitRequest (job: JobSpec & { jobId: string }): Record<string, unknown> {
  return {
    // One container goes as container_id, which every node version understands.
    containerId: job.containers.length === 1 ? job.containers[0] : '',
    containers: job.containers.length === 1 ? [] : job.containers,
    input: Buffer.from(job.input.buffer, job.input.byteOffset, job.input.byteLength),
    deadlineMs: job.deadlineMs ?? 0,
    jobId: job.jobId,
    requiresProof: job.requiresProof ?? false,
    allowProbation: job.allowProbation ?? false,
    delegate: job.delegate ?? '',
    verification: job.verification !== undefined
      ? { method: job.verification.method, validators: job.verification.validators ?? 0, quorum: job.verification.quorum ?? 0 }
      : null
  }
}

const optionalEnvelope = (env: SignedEnvelope | null | undefined): SignedEnvelope | null => env != null ? envelopeFromWire(env) : null

function responseFromWire (r: SubscriptionResponse): SubscriptionResponse {
  return {
    ...r,
    receipt: optionalEnvelope(r.receipt),
    certificate: optionalEnvelope(r.certificate),
    outputHash: new Uint8Array(r.outputHash),
    sealedOutput: new Uint8Array(r.sealedOutput)
  }
}

function statusFromWire (s: SubscriptionStatus): SubscriptionStatus {
  const sub = s.subscription
  return {
    ...s,
    subscription: sub !== null && sub !== undefined ? { ...sub, request: optionalEnvelope(sub.request), cancel: optionalEnvelope(sub.cancel) } : null,
    responses: s.responses.map(responseFromWire)
  }
}

function recordFromWire (r: RecordReply): RecordReply {
  return { ...r, record: r.record !== null && r.record !== undefined ? { ...r.record, data: new Uint8Array(r.record.data) } : null }
}

/** A client of one gateway's public Node service. */
export function nodeRpc (address: string, opts: { maxMessageBytes?: number, closing?: AbortSignal } = {}): NodeRpc {
  const Ctor = serviceConstructor(NODE_SERVICE)
  const client = new Ctor(address, grpc.credentials.createInsecure(), channelOptions(opts.maxMessageBytes))
  const ref = (r: { jobId?: string, hash?: string }): Record<string, string> => ({ jobId: r.jobId ?? '', hash: r.hash ?? '' })
  // Closing the client cancels every call still open on it (a watch included), not only new ones.
  const closing = opts.closing
  const bound = (c: Call): Call => closing === undefined ? c : { deadlineAt: c.deadlineAt, signal: c.signal !== undefined ? AbortSignal.any([c.signal, closing]) : closing }
  const unary = <Res>(method: string, req: unknown, c: Call): Promise<Res> => unaryCall<Res>(client, method, req, bound(c))
  const stream = <T>(method: string, req: unknown, c: Call): AsyncIterable<T> => streamCall<T>(client, method, req, bound(c))
  return {
    submitJob: async (job, c) => await unary('SubmitJob', submitRequest(job), c),
    getJob: async (jobId, c) => await unary('GetJob', { jobId, includeSteps: false }, c),
    watchJob: (jobId, c) => stream<JobEvent>('WatchJob', { jobId }, c),
    createSubscription: async (env, c) => statusFromWire(await unary('CreateSubscription', envelopeToWire(env), c)),
    cancelSubscription: async (env, c) => statusFromWire(await unary('CancelSubscription', envelopeToWire(env), c)),
    getSubscription: async (id, c) => statusFromWire(await unary('GetSubscription', { id }, c)),
    listSubscriptions: async (f, c) => (await unary<{ subscriptions: SubscriptionStatus[] }>('ListSubscriptions', { owner: f.owner ?? '', state: f.state ?? '' }, c)).subscriptions.map(statusFromWire),
    async * watchSubscription (id, fromInterval, c) {
      for await (const r of stream<SubscriptionResponse>('WatchSubscription', { id, fromInterval }, c)) yield responseFromWire(r)
    },
    getReceipt: async (r, c) => recordFromWire(await unary('GetReceipt', ref(r), c)),
    getCertificate: async (r, c) => recordFromWire(await unary('GetCertificate', ref(r), c)),
    listRecords: async (req, c) => {
      const res = await unary<ListRecordsResponse>('ListRecords', {
        jobId: req.jobId ?? '', nodeId: req.nodeId ?? '', sinceMs: req.sinceMs ?? 0, untilMs: req.untilMs ?? 0,
        kind: req.kind ?? '', pageSize: req.pageSize ?? 0, pageToken: req.pageToken ?? ''
      }, c)
      return { records: res.records.map(recordFromWire), nextPageToken: res.nextPageToken }
    },
    close: () => client.close()
  }
}
