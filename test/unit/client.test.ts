import test, { type ExecutionContext } from 'ava'
import { createHash } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import { NODE_SERVICE, packageDefinition } from '../../src/protocol/index.ts'
import { decodeStrict, encode } from '../../src/protocol/codec.ts'
import type { Job, SubscriptionResponse, SubscriptionStatus } from '../../src/protocol/generated.ts'
import { envelopeFromWire, envelopeToWire } from '../../src/api/convert.ts'
import { encodeEnvelope, verifyEnvelope, type SignedEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { sealTo } from '../../src/seal/index.ts'
import {
  inframindClient, openSubscriptionOutput, openSubscriptionRequest, openSubscriptionCancel, signSubscriptionRequest, subscriptionOutputContext,
  subscriptionIdOf, SUBSCRIPTION_REQUEST_PAYLOAD_TYPE, SUBSCRIPTION_CANCEL_PAYLOAD_TYPE, type InframindClient
} from '../../src/client/index.ts'
// The coordinators' own derivation: the client's must never drift from it.
import { subscriptionId } from '../../src/subscriptions/request.ts'

// Real gRPC servers on port 0 that implement only the Node methods a test needs (the others answer
// UNIMPLEMENTED), standing in for gateways that fail in the ways the client must survive.

type Handlers = Record<string, (call: any, callback?: any) => void>

interface FakeGateway {
  address: string
  /** Every request, by method, in arrival order. */
  calls: Array<{ method: string, req: any }>
  /** Closes the listener and every connection at once, as a killed process would. */
  kill(): void
}

async function gateway (t: ExecutionContext, handlers: Handlers): Promise<FakeGateway> {
  const server = new grpc.Server()
  const calls: FakeGateway['calls'] = []
  const recorded: Handlers = {}
  for (const [method, fn] of Object.entries(handlers)) {
    recorded[method] = (call: any, callback?: any) => {
      calls.push({ method, req: call.request })
      fn(call, callback)
    }
  }
  server.addService(packageDefinition()[NODE_SERVICE] as grpc.ServiceDefinition, recorded)
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => err !== null ? reject(err) : resolve(p)))
  let killed = false
  const kill = (): void => { if (!killed) { killed = true; server.forceShutdown() } }
  t.teardown(kill)
  return { address: `127.0.0.1:${port}`, calls, kill }
}

/**
 * An address where nothing listens (a gateway that is down): port 1, which no test binds. A port
 * freed by a killed server is not: the kernel hands it to the next server bound to port 0, often
 * another test's, whose calls would then land here.
 */
function deadAddress (): string {
  return '127.0.0.1:1'
}

function client (t: ExecutionContext, gateways: string[], opts: { timeoutMs?: number, watchProbeMs?: number } = {}): InframindClient {
  const c = inframindClient({ gateways, ...opts })
  t.teardown(() => c.close())
  return c
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const unavailable = (details = 'gateway stopping'): Partial<grpc.StatusObject> => ({ code: grpc.status.UNAVAILABLE, details })

function wireJob (jobId: string, state: string, output = ''): Record<string, unknown> {
  return { jobId, containerId: 'echo', containers: ['echo'], state, output: Buffer.from(output), workerId: 'w1', finishedAtMs: state === 'JOB_STATE_SUCCESS' ? Date.now() : 0 }
}

/** A gateway that takes the job and finishes it: SubmitJob, WatchJob (running, then success), GetJob. */
function completing (output: string): Handlers {
  return {
    SubmitJob: (call, cb) => cb(null, { jobId: call.request.jobId, state: 'JOB_STATE_PENDING', duplicate: false }),
    WatchJob: (call) => {
      call.write({ jobId: call.request.jobId, state: 'JOB_STATE_RUNNING', atMs: Date.now(), detail: 'accepted by w1' })
      call.write({ jobId: call.request.jobId, state: 'JOB_STATE_SUCCESS', atMs: Date.now(), detail: '', job: wireJob(call.request.jobId, 'JOB_STATE_SUCCESS', output) })
      call.end()
    },
    GetJob: (call, cb) => cb(null, wireJob(call.request.jobId, 'JOB_STATE_SUCCESS', output))
  }
}

// Every test here is serial: several kill a gateway mid-run, and a port that frees could be bound by
// another test's gateway at once (the kernel reuses it for the next bind to port 0), crossing their calls.
test.serial('submit: a gateway answering UNAVAILABLE is skipped; the next gets the same client-made job id', async (t) => {
  const a = await gateway(t, { SubmitJob: (_call, cb) => cb(unavailable()) })
  const b = await gateway(t, completing('x'))
  const c = client(t, [a.address, b.address])
  const res = await c.submit({ containers: ['echo'], input: bytes('hi') })
  t.is(res.gateway, b.address)
  t.is(a.calls.length, 1)
  t.is(b.calls.length, 1)
  t.not(a.calls[0].req.jobId, '')
  t.is(a.calls[0].req.jobId, b.calls[0].req.jobId)
  t.is(res.jobId, a.calls[0].req.jobId)
  t.deepEqual(Buffer.from(b.calls[0].req.input), Buffer.from('hi'))
})

test.serial('run: the gateway dies mid-WatchJob; the same job id is submitted to the next and one result comes back', async (t) => {
  let aWatching = false
  const a = await gateway(t, {
    SubmitJob: (call, cb) => cb(null, { jobId: call.request.jobId, state: 'JOB_STATE_PENDING', duplicate: false }),
    WatchJob: (call) => {
      aWatching = true
      call.write({ jobId: call.request.jobId, state: 'JOB_STATE_RUNNING', atMs: Date.now(), detail: 'accepted by w1' })
      // Killed while the job runs: the stream breaks without a terminal event.
      setTimeout(() => a.kill(), 50)
    }
  })
  const b = await gateway(t, completing('from b'))
  const c = client(t, [a.address, b.address])
  const failovers: string[] = []
  const job = await c.run({ containers: ['echo'], input: bytes('in'), jobId: 'caller-key-1', deadlineMs: 60_000 }, { onFailover: (addr) => failovers.push(addr) })
  t.true(aWatching)
  t.is(job.state, 'JOB_STATE_SUCCESS')
  t.is(Buffer.from(job.output).toString(), 'from b')
  t.is(job.jobId, 'caller-key-1')
  const submits = [...a.calls, ...b.calls].filter((x) => x.method === 'SubmitJob').map((x) => x.req.jobId)
  t.deepEqual(submits, ['caller-key-1', 'caller-key-1'])
  t.deepEqual(b.calls.filter((x) => x.method === 'WatchJob').map((x) => x.req.jobId), ['caller-key-1'])
  t.true(failovers.includes(a.address))
  // The resubmission carries what is left of the job's deadline, not a fresh one (A died 50 ms in, at least).
  t.is(a.calls[0].req.deadlineMs, 60_000)
  t.true(b.calls[0].req.deadlineMs <= 60_000 - 50 && b.calls[0].req.deadlineMs > 0, String(b.calls[0].req.deadlineMs))
})

test.serial('watch: events come with the gateway they came from; after a failover the history restarts at the new gateway', async (t) => {
  const a = await gateway(t, {
    SubmitJob: (call, cb) => cb(null, { jobId: call.request.jobId, state: 'JOB_STATE_PENDING', duplicate: false }),
    WatchJob: (call) => {
      call.write({ jobId: call.request.jobId, state: 'JOB_STATE_PENDING', atMs: Date.now(), detail: '' })
      setTimeout(() => a.kill(), 50)
    }
  })
  const b = await gateway(t, completing('done'))
  const c = client(t, [a.address, b.address])
  const { jobId } = await c.submit({ containers: ['echo'], input: bytes('x') })
  const seen: Array<[string, string]> = []
  for await (const ev of c.watch(jobId)) seen.push([ev.state, ev.gateway])
  t.deepEqual(seen, [
    ['JOB_STATE_PENDING', a.address],
    ['JOB_STATE_RUNNING', b.address],
    ['JOB_STATE_SUCCESS', b.address]
  ])
})

test.serial('run: a frozen gateway (stream silent, GetJob unanswered) is left for the next after the probe fails', async (t) => {
  const a = await gateway(t, {
    SubmitJob: (call, cb) => cb(null, { jobId: call.request.jobId, state: 'JOB_STATE_PENDING', duplicate: false }),
    WatchJob: () => { /* never writes */ },
    GetJob: () => { /* never answers */ }
  })
  const b = await gateway(t, completing('thawed'))
  // The probe's GetJob is bounded by the per-call timeout (roomy enough that a loaded machine still submits to A first).
  const c = client(t, [a.address, b.address], { timeoutMs: 3000, watchProbeMs: 200 })
  const job = await c.run({ containers: ['echo'], input: bytes('x') }, { timeoutMs: 60_000 })
  t.is(Buffer.from(job.output).toString(), 'thawed')
  t.deepEqual(a.calls.map((x) => x.method).slice(0, 3), ['SubmitJob', 'WatchJob', 'GetJob'])
  t.is(a.calls.find((x) => x.method === 'SubmitJob')?.req.jobId, b.calls.find((x) => x.method === 'SubmitJob')?.req.jobId)
})

test.serial('run: a gateway that is down from the start (connection refused) is skipped', async (t) => {
  const dead = deadAddress()
  const b = await gateway(t, completing('ok'))
  const c = client(t, [dead, b.address])
  const job = await c.run({ containers: ['echo'], input: bytes('x') })
  t.is(Buffer.from(job.output).toString(), 'ok')
})

test.serial('a refusal (INVALID_ARGUMENT) is the answer: no other gateway is asked', async (t) => {
  const a = await gateway(t, { SubmitJob: (_call, cb) => cb({ code: grpc.status.INVALID_ARGUMENT, details: 'unknown container' }) })
  const b = await gateway(t, completing('never'))
  const c = client(t, [a.address, b.address])
  const err = await t.throwsAsync(c.submit({ containers: ['nope'], input: bytes('x') }))
  t.is((err as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT)
  t.is(b.calls.length, 0)
})

test.serial('a full gateway (RESOURCE_EXHAUSTED, GATEWAY_FULL) sends the job to the next; a message too large does not', async (t) => {
  const md = new grpc.Metadata()
  md.set('inframind-error-code', 'GATEWAY_FULL')
  const full = await gateway(t, { SubmitJob: (_call, cb) => cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'full', metadata: md }) })
  const tooBig = await gateway(t, { SubmitJob: (_call, cb) => cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'too large' }) })
  const b = await gateway(t, completing('ok'))
  t.is((await client(t, [full.address, b.address]).submit({ containers: ['echo'], input: bytes('x') })).gateway, b.address)
  const err = await t.throwsAsync(client(t, [tooBig.address, b.address]).submit({ containers: ['echo'], input: bytes('x') }))
  t.is((err as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED)
  t.is(b.calls.length, 1)
})

test.serial('every gateway down: the client goes round again, always with the same job id, until the caller stops it', async (t) => {
  const a = await gateway(t, { SubmitJob: (_call, cb) => cb(unavailable()) })
  const b = await gateway(t, { SubmitJob: (_call, cb) => cb(unavailable('NO_WORKER')) })
  const c = client(t, [a.address, b.address])
  const ac = new AbortController()
  const running = c.run({ containers: ['echo'], input: bytes('x') }, { signal: ac.signal, timeoutMs: 60_000 })
  await eventually(() => a.calls.length >= 3 && b.calls.length >= 3)
  ac.abort()
  t.is((await t.throwsAsync(running))?.name, 'ClientAbortedError')
  t.is(new Set([...a.calls, ...b.calls].map((x) => x.req.jobId)).size, 1)
})

test.serial('every gateway down until the deadline: GatewaysUnavailableError with each gateway\'s last failure', async (t) => {
  const a = await gateway(t, { SubmitJob: (_call, cb) => cb(unavailable()) })
  const b = await gateway(t, { SubmitJob: (_call, cb) => cb(unavailable('NO_WORKER')) })
  const c = client(t, [a.address, b.address])
  // Connections first (GetJob is UNIMPLEMENTED on both: one round, no retries), so a loaded machine's
  // slow connects do not eat the deadline below before both gateways have answered.
  await t.throwsAsync(c.get('warm-up'))
  const err = await t.throwsAsync(c.run({ containers: ['echo'], input: bytes('x') }, { timeoutMs: 3000 }))
  t.is(err?.name, 'GatewaysUnavailableError')
  t.is((err as { code?: string }).code, 'GATEWAYS_UNAVAILABLE')
  const failures = (err as unknown as { failures: Map<string, grpc.ServiceError> }).failures
  t.deepEqual([...failures.keys()].sort(), [a.address, b.address].sort())
  t.is(failures.get(b.address)?.details, 'NO_WORKER')
})

test.serial('a gateway that never answers: each call is bounded, and the operation ends at its deadline naming the failure', async (t) => {
  const hung = await gateway(t, { SubmitJob: () => { /* never answers */ } })
  const c = client(t, [hung.address], { timeoutMs: 200 })
  const err = await t.throwsAsync(c.submit({ containers: ['echo'], input: bytes('x') }, { timeoutMs: 1000 }))
  t.is(err?.name, 'GatewaysUnavailableError')
  const failure = (err as unknown as { failures: Map<string, grpc.ServiceError> }).failures.get(hung.address)
  t.is(failure?.code, grpc.status.DEADLINE_EXCEEDED)
})

test.serial('the caller\'s signal ends a wait at once with ClientAbortedError', async (t) => {
  const a = await gateway(t, {
    SubmitJob: (call, cb) => cb(null, { jobId: call.request.jobId, state: 'JOB_STATE_PENDING', duplicate: false }),
    WatchJob: () => { /* the job never ends */ },
    GetJob: (call, cb) => cb(null, wireJob(call.request.jobId, 'JOB_STATE_RUNNING'))
  })
  const c = client(t, [a.address])
  const ac = new AbortController()
  const running = c.run({ containers: ['echo'], input: bytes('x') }, { signal: ac.signal })
  // Aborted once the client is waiting on the stream.
  await eventually(() => a.calls.some((x) => x.method === 'WatchJob'))
  ac.abort()
  const err = await t.throwsAsync(running)
  t.is(err?.name, 'ClientAbortedError')
})

test.serial('get: a gateway that does not know the job is not the last word', async (t) => {
  const a = await gateway(t, { GetJob: (_call, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'no such job' }) })
  const b = await gateway(t, completing('there'))
  const c = client(t, [a.address, b.address])
  const job = await c.get('some-job')
  t.is(Buffer.from(job.output).toString(), 'there')
  // Nobody has it: NOT_FOUND, without rounds of retries.
  const none = client(t, [a.address])
  const err = await t.throwsAsync(none.get('other'))
  t.is((err as grpc.ServiceError).code, grpc.status.NOT_FOUND)
})

const owner = identityFromSeed(new Uint8Array(32).fill(7))
const spec = { containers: ['echo', 'sentiment'], input: 'hello', frequency: 3, period: 60, redundancy: 2, nonce: 'n-1', lazy: false, expiresAt: 2_000_000_000, verification: { method: 'reexecute' as const, validators: 2, quorum: 1 } }

function status (id: string, ownerId: string, request: SignedEnvelope | null, state = 'active'): Record<string, unknown> {
  return { subscription: { id, owner: ownerId, request: request !== null ? envelopeToWire(request) : null, createdAt: 1, activeAt: 61, acceptedBy: 'gw' }, state, currentInterval: 1, responses: [] }
}

test.serial('createSubscription: the owner-signed request verifies and decodes; a failover sends the very same bytes', async (t) => {
  const a = await gateway(t, { CreateSubscription: (_call, cb) => cb(unavailable()) })
  const b = await gateway(t, {
    CreateSubscription: (call, cb) => {
      const env = envelopeFromWire(call.request)
      const { owner: ownerId } = openSubscriptionRequest(env)
      cb(null, status('sub-1', ownerId, env))
    }
  })
  const c = client(t, [a.address, b.address])
  const res: SubscriptionStatus = await c.createSubscription(owner, spec)
  t.is(res.subscription?.owner, owner.nodeId)
  const sentA = envelopeFromWire(a.calls[0].req)
  const sentB = envelopeFromWire(b.calls[0].req)
  t.deepEqual(encodeEnvelope(sentA), encodeEnvelope(sentB))
  t.is(sentB.payloadType, SUBSCRIPTION_REQUEST_PAYLOAD_TYPE)
  verifyEnvelope(sentB, { payloadType: SUBSCRIPTION_REQUEST_PAYLOAD_TYPE })
  const req = decodeStrict('inframind.v1.SubscriptionRequest', sentB.payload)
  t.deepEqual(req.containers, ['echo', 'sentiment'])
  t.is(Buffer.from(req.input).toString(), 'hello')
  t.like(req, { frequency: 3, period: 60, redundancy: 2, nonce: 'n-1', lazy: false, expiresAt: 2_000_000_000, deadlineMs: 0 })
  t.deepEqual(req.verification, { method: 'reexecute', validators: 2, quorum: 1 })
  // The status's request is the owner's envelope, byte for byte.
  t.deepEqual(res.subscription?.request !== null && res.subscription?.request !== undefined ? encodeEnvelope(res.subscription.request) : undefined, encodeEnvelope(sentB))
})

test.serial('a request always expires (an hour by default) and names the id the coordinators derive from (owner key, nonce)', (t) => {
  const now = 1_800_000_000_000
  const { id, owner: ownerId, request } = openSubscriptionRequest(signSubscriptionRequest(owner, { ...spec, expiresAt: undefined }, now))
  t.is(request.expiresAt, 1_800_000_000 + 3600)
  t.is(ownerId, owner.nodeId)
  t.is(id, subscriptionId(owner.publicKey, 'n-1'))
  t.is(subscriptionIdOf(owner.publicKey, 'other'), subscriptionId(owner.publicKey, 'other'))
})

test.serial('a request signed off-line is submitted as is by anyone; a tampered one does not verify', async (t) => {
  const signed = signSubscriptionRequest(owner, spec)
  const g = await gateway(t, { CreateSubscription: (call, cb) => cb(null, status('sub-2', openSubscriptionRequest(envelopeFromWire(call.request)).owner, null)) })
  const c = client(t, [g.address])
  const res = await c.createSignedSubscription(signed)
  t.is(res.subscription?.owner, owner.nodeId)
  t.deepEqual(Buffer.from(g.calls[0].req.signature), Buffer.from(signed.signature))
  const tampered = { ...signed, payload: new Uint8Array(signed.payload) }
  tampered.payload[tampered.payload.length - 1] ^= 1
  t.throws(() => openSubscriptionRequest(tampered), { name: 'InvalidSignedRequestError' })
})

test.serial('cancelSubscription: signed by the owner, naming the subscription; the same signed cancel to each gateway tried', async (t) => {
  const g = await gateway(t, {
    CancelSubscription: (call, cb) => {
      const { owner: signer, cancel } = openSubscriptionCancel(envelopeFromWire(call.request))
      if (signer !== owner.nodeId) { cb({ code: grpc.status.PERMISSION_DENIED, details: 'not the owner' }); return }
      cb(null, status(cancel.subscriptionId, signer, null, 'cancelled'))
    }
  })
  // A gateway that has not heard of it yet is passed over.
  const unaware = await gateway(t, { CancelSubscription: (_call, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'no such subscription' }) })
  const c = client(t, [unaware.address, g.address])
  const res = await c.cancelSubscription(owner, 'sub-9')
  t.is(res.state, 'cancelled')
  t.deepEqual(Buffer.from(unaware.calls[0].req.signature), Buffer.from(g.calls[0].req.signature))
  t.is(res.subscription?.id, 'sub-9')
  t.is(envelopeFromWire(g.calls[0].req).payloadType, SUBSCRIPTION_CANCEL_PAYLOAD_TYPE)
  const other = identityFromSeed(new Uint8Array(32).fill(8))
  const err = await t.throwsAsync(c.cancelSubscription(other, 'sub-9'))
  t.is((err as grpc.ServiceError).code, grpc.status.PERMISSION_DENIED)
})

test.serial('the client refuses a spec no gateway could accept, before signing', (t) => {
  t.throws(() => signSubscriptionRequest(owner, { ...spec, frequency: 0 }), { name: 'InvalidSubscriptionSpecError' })
  t.throws(() => signSubscriptionRequest(owner, { ...spec, period: 0, frequency: 2 }), { name: 'InvalidSubscriptionSpecError' })
  t.throws(() => signSubscriptionRequest(owner, { ...spec, nonce: '' }), { name: 'InvalidSubscriptionSpecError' })
  t.throws(() => signSubscriptionRequest(owner, { ...spec, nonce: 'n'.repeat(129) }), { name: 'InvalidSubscriptionSpecError' })
  t.throws(() => signSubscriptionRequest(owner, { ...spec, containers: [] }), { name: 'InvalidSubscriptionSpecError' })
  t.throws(() => signSubscriptionRequest(owner, { ...spec, redundancy: 1.5 }), { name: 'InvalidSubscriptionSpecError' })
})

function response (interval: number, index: number, output: string, ownerId = owner.nodeId): SubscriptionResponse {
  const jobId = `sub-1:${interval}:${index}`
  const base = { subscriptionId: 'sub-1', interval, index, nodeId: `w${index}`, jobId, receipt: null, certificate: null, acceptedAtMs: Date.now(), schedulerId: 'gw' }
  const out = bytes(output)
  return { ...base, outputHash: createHash('sha256').update(out).digest(), sealedOutput: sealTo(ownerId, out, subscriptionOutputContext({ subscriptionId: 'sub-1', jobId })) }
}

const wireResponse = (r: SubscriptionResponse): Record<string, unknown> => ({ ...r, outputHash: Buffer.from(r.outputHash), sealedOutput: Buffer.from(r.sealedOutput) })

test.serial('watchSubscription: responses across a gateway\'s death, each once; the owner opens each output', async (t) => {
  const first = [response(1, 1, 'one-a'), response(1, 2, 'one-b'), response(2, 1, 'two-a')]
  const a = await gateway(t, {
    GetSubscription: (_call, cb) => cb(null, status('sub-1', owner.nodeId, null)),
    WatchSubscription: (call) => {
      for (const r of first) call.write(wireResponse(r))
      setTimeout(() => a.kill(), 50)
    }
  })
  const b = await gateway(t, {
    GetSubscription: (_call, cb) => cb(null, status('sub-1', owner.nodeId, null, 'completed')),
    WatchSubscription: (call) => {
      // A replay from the interval asked: interval 2 again (one seen, one new), then interval 3.
      const all = [response(2, 1, 'two-a'), response(2, 2, 'two-b'), response(3, 1, 'three-a')]
      for (const r of all.filter((x) => x.interval >= call.request.fromInterval)) call.write(wireResponse(r))
      call.end()
    }
  })
  const c = client(t, [a.address, b.address])
  const got: string[] = []
  for await (const r of c.watchSubscription('sub-1', 1)) got.push(`${r.interval}.${r.index}=${Buffer.from(openSubscriptionOutput(owner, r)).toString()}`)
  t.deepEqual(got, ['1.1=one-a', '1.2=one-b', '2.1=two-a', '2.2=two-b', '3.1=three-a'])
  t.is(b.calls.find((x) => x.method === 'WatchSubscription')?.req.fromInterval, 2)
})

test.serial('openSubscriptionOutput: another key cannot open it; a wrong hash is caught; lazy responses carry none', (t) => {
  const r = response(1, 1, 'secret')
  t.throws(() => openSubscriptionOutput(identityFromSeed(new Uint8Array(32).fill(9)), r), { name: 'SealOpenError' })
  t.throws(() => openSubscriptionOutput(owner, { ...r, outputHash: new Uint8Array(32) }), { name: 'OutputHashMismatchError' })
  t.throws(() => openSubscriptionOutput(owner, { ...r, sealedOutput: new Uint8Array(0) }), { name: 'NoSealedOutputError' })
})

function recordReply (kind: string, data: Uint8Array, hash?: string): Record<string, unknown> {
  return { record: { kind, data: Buffer.from(data), storedAtMs: 1000, jobId: 'j1', nodeIds: ['w1'] }, hash: hash ?? createHash('sha256').update(data).digest('hex'), archiveId: 'arch' }
}

test.serial('getReceipt: by job id or by hash; a node without it (or not an archive) is skipped; bytes are checked against the hash', async (t) => {
  const data = encode('inframind.v1.SignedEnvelope', signSubscriptionRequest(owner, spec))
  const notArchive = await gateway(t, { GetReceipt: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'not an archive' }) })
  const archive = await gateway(t, {
    GetReceipt: (call, cb) => cb(null, recordReply('receipt', data)),
    GetCertificate: (_call, cb) => cb(null, recordReply('certificate', data, '0'.repeat(64)))
  })
  const c = client(t, [notArchive.address, archive.address])
  const byJob = await c.getReceipt('job-1')
  t.is(byJob.record?.kind, 'receipt')
  t.deepEqual(archive.calls[0].req, { jobId: 'job-1', hash: '' })
  const hash = 'AB'.repeat(32)
  await c.getReceipt(hash)
  t.deepEqual(archive.calls[1].req, { jobId: '', hash: hash.toLowerCase() })
  await c.getReceipt({ jobId: hash })
  t.deepEqual(archive.calls[2].req, { jobId: hash, hash: '' })
  const err = await t.throwsAsync(c.getCertificate('job-1'))
  t.is(err?.name, 'RecordHashMismatchError')
})

test.serial('listRecords: filters go on the wire; the page token comes back', async (t) => {
  const data = bytes('raw output')
  const g = await gateway(t, { ListRecords: (_call, cb) => cb(null, { records: [recordReply('output', data)], nextPageToken: 'next-1' }) })
  const c = client(t, [g.address])
  const page = await c.listRecords({ jobId: 'j1', nodeId: 'w1', since: new Date(1000), until: 5000, kind: 'output', pageSize: 10, pageToken: 't0' })
  t.is(page.nextPageToken, 'next-1')
  t.is(page.records.length, 1)
  t.like(g.calls[0].req, { jobId: 'j1', nodeId: 'w1', sinceMs: 1000, untilMs: 5000, kind: 'output', pageSize: 10, pageToken: 't0' })
})

test.serial('discover: gateways it returns are tried once the known ones fail', async (t) => {
  const a = await gateway(t, { SubmitJob: (_call, cb) => cb(unavailable()) })
  const b = await gateway(t, completing('found'))
  let asked = 0
  const c = inframindClient({ gateways: [a.address], discover: async () => { asked++; return [b.address] } })
  t.teardown(() => c.close())
  const res = await c.submit({ containers: ['echo'], input: bytes('x') })
  t.is(res.gateway, b.address)
  t.true(asked >= 1)
  t.deepEqual(c.gateways(), [a.address, b.address])
})

test.serial('close: idempotent; calls after it fail with ClientClosedError; no gateways at all is refused', async (t) => {
  const g = await gateway(t, completing('x'))
  const c = inframindClient({ gateways: [g.address] })
  c.close()
  c.close()
  const err = await t.throwsAsync(c.submit({ containers: ['echo'], input: bytes('x') }))
  t.is(err?.name, 'ClientClosedError')
  // A watch in progress ends too, rather than holding the stream open.
  const endless = await gateway(t, {
    SubmitJob: (call, cb) => cb(null, { jobId: call.request.jobId, state: 'JOB_STATE_PENDING', duplicate: false }),
    WatchJob: () => { /* the job never ends */ },
    GetJob: (call, cb) => cb(null, wireJob(call.request.jobId, 'JOB_STATE_RUNNING'))
  })
  // No probe in the test's time: only close() can end this watch.
  const open = inframindClient({ gateways: [endless.address], watchProbeMs: 600_000 })
  const waiting = open.run({ containers: ['echo'], input: bytes('x') })
  await eventually(() => endless.calls.some((x) => x.method === 'WatchJob'))
  open.close()
  t.is((await t.throwsAsync(waiting))?.name, 'ClientClosedError')
  const none = inframindClient({ gateways: [] })
  t.teardown(() => none.close())
  t.is((await t.throwsAsync(none.get('x')))?.name, 'NoGatewaysError')
})

async function eventually (fn: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// The job type the fakes return is the wire type the client hands back unchanged.
export type { Job }
