import anyTest, { type TestFn } from 'ava'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { subscriptionHandlers } from '../../src/api/subscription-service.ts'
import { signEnvelope, type SignedEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed, type Identity } from '../../src/identity/index.ts'
import {
  decodeSubscriptionEvent, encodeSubscriptionCancel, encodeSubscriptionEvent, encodeSubscriptionRequest, PAYLOAD_TYPES,
  type SubscriptionEvent, type SubscriptionRequest, type SubscriptionResponse
} from '../../src/protocol/index.ts'
import { computeJobHash, sha256, signReceipt } from '../../src/receipt/index.ts'
import { openSealed, SEAL_CONTEXTS } from '../../src/seal/index.ts'
import { levelStore } from '../../src/store/index.ts'
import type { JobStore } from '../../src/store/types.ts'
import {
  checkCancel, checkRequest, subscriptionId, subscriptionJobId, subscriptions, SUBSCRIPTION_ID_DOMAIN,
  type RunJobArgs, type RunJobResult, type Subscriptions
} from '../../src/subscriptions/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.ts'
import { until } from '../helpers/fake-runtime.ts'

const owner = identityFromSeed(new Uint8Array(32).fill(1))
const stranger = identityFromSeed(new Uint8Array(32).fill(2))
const coordA = identityFromSeed(new Uint8Array(32).fill(3))
const coordB = identityFromSeed(new Uint8Array(32).fill(4))
const workers = [5, 6, 7].map((b) => identityFromSeed(new Uint8Array(32).fill(b)))
const [w1, w2, w3] = workers as [Identity, Identity, Identity]

/** Unix seconds all tests start at (a whole second, so created_at is exact). */
const T0 = 1_800_000_000

interface Node {
  subs: Subscriptions
  store: JobStore
  mesh: FakeMesh
  replicated: SignedEnvelope[]
  stored: Uint8Array[]
}

interface Ctx {
  dir: string
  nowMs: number
  nodes: Node[]
  aborts: AbortController[]
}

const test = anyTest as TestFn<Ctx>

test.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-subs-'))
  t.context.nowMs = T0 * 1000
  t.context.nodes = []
  t.context.aborts = []
})

test.afterEach.always(async (t) => {
  for (const a of t.context.aborts) a.abort()
  for (const n of t.context.nodes.reverse()) {
    await n.subs.stop()
    await n.store.stop()
  }
  await rm(t.context.dir, { recursive: true, force: true })
})

function request (overrides: Partial<SubscriptionRequest> = {}): SubscriptionRequest {
  return {
    containers: ['echo'],
    input: new TextEncoder().encode('{"x":1}'),
    frequency: 2,
    period: 2,
    redundancy: 2,
    verification: null,
    lazy: false,
    nonce: 'n-1',
    expiresAt: T0 + 60,
    deadlineMs: 0,
    ...overrides
  }
}

const signRequest = (r: SubscriptionRequest, by: Identity = owner, type: string = PAYLOAD_TYPES.subscriptionRequest): SignedEnvelope =>
  signEnvelope(by, type, encodeSubscriptionRequest(r))

const signCancel = (id: string, by: Identity = owner, issuedAtMs = T0 * 1000): SignedEnvelope =>
  signEnvelope(by, PAYLOAD_TYPES.subscriptionCancel, encodeSubscriptionCancel({ subscriptionId: id, issuedAtMs }))

/** A worker's answer to one job, as the lead's runJob would hand it back. */
function result (worker: Identity, jobId: string, output: Uint8Array = new TextEncoder().encode(`out of ${jobId}`)): RunJobResult {
  const receipt = signReceipt(worker, {
    jobId,
    jobHash: computeJobHash(jobId, ['echo'], sha256(new Uint8Array(0))),
    inputHash: sha256(new Uint8Array(0)),
    outputHash: sha256(output),
    steps: [],
    status: 'success',
    exitCode: 0,
    latencyMs: 1,
    startedAtMs: 1,
    finishedAtMs: 2,
    workerId: worker.nodeId,
    schedulerId: coordA.nodeId,
    error: ''
  })
  return { workerId: worker.nodeId, receipt, output, outputHash: sha256(output) }
}

/** runJob as a mesh the test answers by hand: each call waits until answer() or fail(). */
class FakeMesh {
  readonly calls: RunJobArgs[] = []
  readonly #waiting = new Map<string, { resolve: (r: RunJobResult) => void, reject: (e: Error) => void }>()

  runJob = async (args: RunJobArgs): Promise<RunJobResult> => {
    this.calls.push(args)
    return await new Promise((resolve, reject) => {
      this.#waiting.set(args.jobId, { resolve, reject })
      args.signal.addEventListener('abort', () => { reject(new Error('aborted')) })
    })
  }

  answer (jobId: string, worker: Identity, output?: Uint8Array): void {
    const w = this.#waiting.get(jobId)
    if (w === undefined) throw new Error(`no job ${jobId} waiting`)
    this.#waiting.delete(jobId)
    w.resolve(result(worker, jobId, output))
  }

  answerWith (jobId: string, r: RunJobResult): void {
    const w = this.#waiting.get(jobId)
    if (w === undefined) throw new Error(`no job ${jobId} waiting`)
    this.#waiting.delete(jobId)
    w.resolve(r)
  }

  fail (jobId: string, message = 'NO_WORKER'): void {
    const w = this.#waiting.get(jobId)
    if (w === undefined) throw new Error(`no job ${jobId} waiting`)
    this.#waiting.delete(jobId)
    w.reject(new Error(message))
  }

  jobIds (): string[] {
    return this.calls.map((c) => c.jobId)
  }
}

interface NodeOpts {
  identity?: Identity
  db?: string
  owns?: (id: string) => boolean
  isCoordinator?: (id: string) => boolean
  replicate?: (env: SignedEnvelope) => Promise<void> | void
  metrics?: Metrics
}

async function startNode (t: { context: Ctx }, opts: NodeOpts = {}): Promise<Node> {
  const store = levelStore({ path: path.join(t.context.dir, opts.db ?? 'a'), maxResults: 10 })({ logger: silentLogger() })
  await store.start()
  const mesh = new FakeMesh()
  const replicated: SignedEnvelope[] = []
  const stored: Uint8Array[] = []
  const subs = subscriptions({ maxClockSkewMs: 0, defaultDeadlineMs: 30_000, tickMs: 3_600_000, now: () => t.context.nowMs })({
    store,
    identity: opts.identity ?? coordA,
    logger: silentLogger(),
    runJob: mesh.runJob,
    owns: opts.owns ?? (() => true),
    replicate: opts.replicate ?? ((env) => { replicated.push(env) }),
    storeOutput: (bytes) => { stored.push(bytes) },
    isCoordinator: opts.isCoordinator ?? ((id) => id === coordA.nodeId || id === coordB.nodeId),
    metrics: opts.metrics
  })
  await subs.start()
  const node = { subs, store, mesh, replicated, stored }
  t.context.nodes.push(node)
  return node
}

async function stopNode (t: { context: Ctx }, node: Node): Promise<void> {
  await node.subs.stop()
  await node.store.stop()
  t.context.nodes = t.context.nodes.filter((n) => n !== node)
}

/** Moves the clock to `s` seconds after T0 and runs one pass of the runner. */
async function at (t: { context: Ctx }, node: Node, s: number): Promise<void> {
  t.context.nowMs = (T0 + s) * 1000
  await node.subs.tick()
}

const nextDelivered = async (node: Node): Promise<SubscriptionResponse> => await new Promise((resolve) => {
  const off = node.subs.on('delivered', (r) => { off(); resolve(r) })
})

const events = (node: Node): SubscriptionEvent[] => node.replicated.map((e) => decodeSubscriptionEvent(e.payload))

// ---- requests -----------------------------------------------------------------------------------

test('subscriptionId is sha256 over the documented layout; (owner, nonce) alone decides it', (t) => {
  const expected = createHash('sha256')
    .update(Buffer.concat([Buffer.from('inframind/subscription-id/v1'), Buffer.of(0), owner.publicKey, Buffer.from('n-1', 'utf8')]))
    .digest('hex')
  t.is(SUBSCRIPTION_ID_DOMAIN, 'inframind/subscription-id/v1')
  t.is(subscriptionId(owner.publicKey, 'n-1'), expected)
  t.not(subscriptionId(owner.publicKey, 'n-2'), expected)
  t.not(subscriptionId(stranger.publicKey, 'n-1'), expected)
  const opened = checkRequest(signRequest(request({ frequency: 5 })), { nowS: T0, maxClockSkewMs: 0 })
  t.is(opened.id, expected)
  t.is(opened.owner, owner.nodeId)
  t.is(subscriptionJobId(expected, 3, 2), `s:${expected.slice(0, 24)}:3:2`)
})

test('checkRequest refuses a bad signature, another payload type, and terms out of bounds, naming the field', (t) => {
  const opts = { nowS: T0, maxClockSkewMs: 0 }
  const tampered = signRequest(request())
  tampered.payload = encodeSubscriptionRequest(request({ redundancy: 3 }))
  t.is(codeOf(t.throws(() => checkRequest(tampered, opts))), 'SUBSCRIPTION_BAD_SIGNATURE')
  t.is(codeOf(t.throws(() => checkRequest(signRequest(request(), owner, PAYLOAD_TYPES.subscriptionCancel), opts))), 'SUBSCRIPTION_WRONG_PAYLOAD_TYPE')
  const bad: Array<[Partial<SubscriptionRequest>, string]> = [
    [{ frequency: 0 }, 'frequency'],
    [{ frequency: 1_000_001 }, 'frequency'],
    [{ redundancy: 0 }, 'redundancy'],
    [{ redundancy: 17 }, 'redundancy'],
    [{ period: 365 * 86400 + 1 }, 'period'],
    [{ period: 0, frequency: 2 }, 'frequency'],
    [{ containers: [] }, 'containers'],
    [{ containers: Array.from({ length: 17 }, (_, i) => `c${i}`) }, 'containers'],
    [{ containers: ['Not/AnId'] }, 'containers'],
    [{ input: new Uint8Array(256 * 1024 + 1) }, 'input'],
    [{ nonce: '' }, 'nonce'],
    [{ nonce: 'x'.repeat(129) }, 'nonce'],
    [{ expiresAt: 0 }, 'expires_at'],
    [{ deadlineMs: 24 * 3600 * 1000 + 1 }, 'deadline_ms'],
    [{ verification: { method: 'vibes', validators: 0, quorum: 0 } }, 'verification.method']
  ]
  for (const [overrides, field] of bad) {
    const err = t.throws(() => checkRequest(signRequest(request(overrides)), opts)) as unknown as { code: string, field: string }
    t.is(err.code, 'INVALID_SUBSCRIPTION', field)
    t.is(err.field, field)
  }
  // The bounds themselves are allowed.
  t.notThrows(() => checkRequest(signRequest(request({ nonce: 'é'.repeat(128), redundancy: 16, containers: Array.from({ length: 16 }, (_, i) => `c${i}`) })), opts))
  t.notThrows(() => checkRequest(signRequest(request({ period: 0, frequency: 1 })), opts))
})

test('checkRequest: expired at expires_at (the SDK\'s >=), the message says when; the skew widens it', (t) => {
  const env = signRequest(request({ expiresAt: T0 + 10 }))
  t.notThrows(() => checkRequest(env, { nowS: T0 + 9, maxClockSkewMs: 0 }))
  const err = t.throws(() => checkRequest(env, { nowS: T0 + 10, maxClockSkewMs: 0 })) as unknown as { code: string, expiresAt: number, message: string }
  t.is(err.code, 'SUBSCRIPTION_EXPIRED')
  t.is(err.expiresAt, T0 + 10)
  t.true(err.message.includes(new Date((T0 + 10) * 1000).toISOString().replace('.000Z', 'Z')))
  t.notThrows(() => checkRequest(env, { nowS: T0 + 11, maxClockSkewMs: 2_000 }))
  t.is(codeOf(t.throws(() => checkRequest(env, { nowS: T0 + 12, maxClockSkewMs: 2_000 }))), 'SUBSCRIPTION_EXPIRED')
})

test('checkCancel: only the owner, only for this subscription, not from the future', (t) => {
  const id = subscriptionId(owner.publicKey, 'n-1')
  const sub = { id, owner: owner.nodeId }
  t.is(checkCancel(signCancel(id), sub).subscriptionId, id)
  t.is(codeOf(t.throws(() => checkCancel(signCancel(id, stranger), sub))), 'NOT_SUBSCRIPTION_OWNER')
  t.is(codeOf(t.throws(() => checkCancel(signCancel('a'.repeat(64)), sub))), 'INVALID_SUBSCRIPTION_CANCEL')
  const future = signCancel(id, owner, T0 * 1000 + 5_001)
  t.notThrows(() => checkCancel(future, sub, { nowMs: T0 * 1000, maxClockSkewMs: 5_001 }))
  t.is(codeOf(t.throws(() => checkCancel(future, sub, { nowMs: T0 * 1000, maxClockSkewMs: 5_000 }))), 'INVALID_SUBSCRIPTION_CANCEL')
})

// ---- the component --------------------------------------------------------------------------------

test('a delegated request creates the owner\'s subscription; replaying (owner, nonce) returns it, even past its expiry', async (t) => {
  const node = await startNode(t)
  // Presented by someone else: the signature, not the connection, names the owner.
  const first = await node.subs.create(signRequest(request()), { submittedBy: 'ipv4:10.0.0.9:5000' })
  t.is(first.subscription?.owner, owner.nodeId)
  t.is(first.subscription?.acceptedBy, coordA.nodeId)
  t.is(first.subscription?.createdAt, T0)
  t.is(first.subscription?.activeAt, T0 + 2)
  t.is(first.state, 'pending')
  t.is(first.currentInterval, 0)
  const id = first.subscription?.id as string
  t.is(id, subscriptionId(owner.publicKey, 'n-1'))

  t.context.nowMs = (T0 + 1) * 1000
  const again = await node.subs.create(signRequest(request()))
  t.is(again.subscription?.id, id)
  t.is(again.subscription?.createdAt, T0, 'the stored subscription, not a new one')
  // Other terms under the same nonce: still the same subscription (EIP712Coordinator returns the existing id).
  t.is((await node.subs.create(signRequest(request({ redundancy: 1 })))).subscription?.request?.payload.length, first.subscription?.request?.payload.length)
  // Past expires_at, the replay still answers with the subscription; a new nonce is refused with its expiry.
  t.context.nowMs = (T0 + 61) * 1000
  t.is((await node.subs.create(signRequest(request()))).subscription?.id, id)
  const err = await t.throwsAsync(node.subs.create(signRequest(request({ nonce: 'n-2' })))) as unknown as { code: string, expiresAt: number }
  t.is(err.code, 'SUBSCRIPTION_EXPIRED')
  t.is(err.expiresAt, T0 + 60)
  t.is((await node.subs.list()).length, 1)
  t.is(events(node).filter((e) => e.created !== undefined).length, 1, 'one created event')
})

test('the runner: exactly redundancy accepted per interval from distinct workers, outputs sealed to the owner', async (t) => {
  const node = await startNode(t)
  const { subscription } = await node.subs.create(signRequest(request()))
  const id = subscription?.id as string
  await at(t, node, 1)
  t.is(node.mesh.calls.length, 0, 'nothing before activeAt')

  await at(t, node, 2)
  t.deepEqual(node.mesh.jobIds(), [subscriptionJobId(id, 1, 1), subscriptionJobId(id, 1, 2)])
  const call = node.mesh.calls[0] as RunJobArgs
  t.deepEqual(call.origin, { ip: '', peerId: '', delegate: owner.nodeId })
  t.deepEqual(call.excludeWorkers, [])
  t.is(call.deadlineAtMs, (T0 + 4) * 1000, 'capped at the end of the interval')
  await at(t, node, 3)
  t.is(node.mesh.calls.length, 2, 'launched once per (interval, index)')

  node.mesh.answer(subscriptionJobId(id, 1, 1), w1)
  node.mesh.answer(subscriptionJobId(id, 1, 2), w2)
  await node.subs.settled()
  let status = await node.subs.get(id)
  t.deepEqual(status.responses.map((r) => [r.interval, r.index, r.nodeId]), [[1, 1, w1.nodeId], [1, 2, w2.nodeId]])
  const r1 = status.responses[0] as SubscriptionResponse
  const plain = openSealed(owner, r1.sealedOutput, SEAL_CONTEXTS.subscriptionOutput(id, r1.jobId))
  t.is(new TextDecoder().decode(plain), `out of ${r1.jobId}`)
  t.throws(() => openSealed(coordA, r1.sealedOutput, SEAL_CONTEXTS.subscriptionOutput(id, r1.jobId)), undefined, 'the coordinator cannot open it')
  t.throws(() => openSealed(owner, r1.sealedOutput, SEAL_CONTEXTS.subscriptionOutput(id, subscriptionJobId(id, 1, 2))), undefined, 'bound to its job')

  // Interval 2: both jobs come back from the same worker: the second is refused, and that response
  // is tried again (another job id) away from the worker that answered.
  await at(t, node, 4)
  t.is(node.mesh.calls.length, 4)
  node.mesh.answer(subscriptionJobId(id, 2, 1), w3)
  node.mesh.answer(subscriptionJobId(id, 2, 2), w3)
  await until(() => node.mesh.calls.length === 5)
  const again = node.mesh.calls[4] as RunJobArgs
  t.is(again.jobId, subscriptionJobId(id, 2, 2, 1))
  t.is(again.index, 2)
  t.deepEqual(again.excludeWorkers, [w3.nodeId])
  node.mesh.answer(subscriptionJobId(id, 2, 2, 1), w1)
  await node.subs.settled()
  status = await node.subs.get(id)
  t.deepEqual(status.responses.filter((r) => r.interval === 2).map((r) => r.nodeId), [w3.nodeId, w1.nodeId])
  t.is(node.subs.stats().refused.NODE_RESPONDED_ALREADY, 1)
  t.is(node.subs.stats().accepted.local, 4)

  await at(t, node, 6)
  status = await node.subs.get(id)
  t.is(status.state, 'completed')
  t.is(node.mesh.calls.length, 5, 'nothing after the last interval')
  t.is(node.subs.stats().missed, 0, 'every interval got its responses')
})

test('a failed job is tried again in its interval, at most twice, and never once the interval is nearly over', async (t) => {
  const node = await startNode(t)
  const id = (await node.subs.create(signRequest(request({ redundancy: 1 })))).subscription?.id as string
  await at(t, node, 2)
  node.mesh.fail(subscriptionJobId(id, 1, 1))
  await until(() => node.mesh.calls.length === 2)
  node.mesh.fail(subscriptionJobId(id, 1, 1, 1))
  await until(() => node.mesh.calls.length === 3)
  t.is((node.mesh.calls[2] as RunJobArgs).jobId, subscriptionJobId(id, 1, 1, 2))
  node.mesh.fail(subscriptionJobId(id, 1, 1, 2))
  await node.subs.settled()
  t.is(node.mesh.calls.length, 3, 'two retries, no more')
  // Interval 2, with less than a second of it left when its job fails: no retry.
  await at(t, node, 4)
  t.is(node.mesh.calls.length, 4)
  t.context.nowMs = (T0 + 6) * 1000 - 500
  node.mesh.fail(subscriptionJobId(id, 2, 1))
  await node.subs.settled()
  t.is(node.mesh.calls.length, 4)
})

test('a late result is refused INTERVAL_MISMATCH, counted, never delivered', async (t) => {
  const metrics = createMetrics()
  const node = await startNode(t, { metrics })
  const id = (await node.subs.create(signRequest(request({ redundancy: 1 })))).subscription?.id as string
  await at(t, node, 2)
  t.context.nowMs = (T0 + 4) * 1000 // interval 2 has begun when the answer arrives
  node.mesh.answer(subscriptionJobId(id, 1, 1), w1)
  await node.subs.settled()
  t.is(node.subs.stats().refused.INTERVAL_MISMATCH, 1)
  t.deepEqual((await node.subs.get(id)).responses, [])
  t.false(events(node).some((e) => e.delivered != null), 'never replicated')
  t.regex(await metrics.registry.getSingleMetricAsString('inframind_subscription_refused_total'), /code="INTERVAL_MISMATCH",source="local"} 1/)
  t.regex(await metrics.registry.getSingleMetricAsString('inframind_subscriptions'), /state="active"} 1/)
  t.context.nowMs = (T0 + 6) * 1000
  await node.subs.tick()
  t.regex(await metrics.registry.getSingleMetricAsString('inframind_subscriptions'), /state="completed"} 1/)
  t.regex(await metrics.registry.getSingleMetricAsString('inframind_subscription_intervals_missed_total'), /total 2/)
})

test('a result that is not the job\'s is refused INVALID_RESULT', async (t) => {
  const node = await startNode(t)
  const id = (await node.subs.create(signRequest(request({ redundancy: 1 })))).subscription?.id as string
  await at(t, node, 2)
  // w2's receipt presented as w1's answer.
  node.mesh.answerWith(subscriptionJobId(id, 1, 1), { ...result(w2, subscriptionJobId(id, 1, 1)), workerId: w1.nodeId })
  // Never delivered; the response is tried again on another worker, whose genuine answer counts.
  await until(() => node.mesh.calls.length === 2)
  t.is(node.subs.stats().refused.INVALID_RESULT, 1)
  t.deepEqual((await node.subs.get(id)).responses, [])
  t.deepEqual((node.mesh.calls[1] as RunJobArgs).excludeWorkers, [w1.nodeId])
  node.mesh.answer(subscriptionJobId(id, 1, 1, 1), w2)
  await node.subs.settled()
  t.deepEqual((await node.subs.get(id)).responses.map((r) => [r.nodeId, r.jobId]), [[w2.nodeId, subscriptionJobId(id, 1, 1, 1)]])
})

test('cancel: anyone but the owner is refused; the owner\'s cancel stops the next interval', async (t) => {
  const node = await startNode(t)
  const id = (await node.subs.create(signRequest(request({ frequency: 3 })))).subscription?.id as string
  await at(t, node, 2)
  t.is(node.mesh.calls.length, 2)
  t.is(codeOf(await t.throwsAsync(node.subs.cancel(signCancel(id, stranger)))), 'NOT_SUBSCRIPTION_OWNER')
  t.is((await node.subs.get(id)).state, 'active')
  t.is(codeOf(await t.throwsAsync(node.subs.cancel(signCancel('b'.repeat(64))))), 'SUBSCRIPTION_NOT_FOUND')

  const status = await node.subs.cancel(signCancel(id))
  t.is(status.state, 'cancelled')
  t.true((node.mesh.calls[0] as RunJobArgs).signal.aborted, 'running jobs are aborted')
  t.is((await node.subs.cancel(signCancel(id))).state, 'cancelled', 'twice is fine')
  t.is(events(node).filter((e) => e.cancelled !== undefined).length, 1)
  await at(t, node, 4)
  await at(t, node, 6)
  t.is(node.mesh.calls.length, 2, 'no job after the cancel')
})

test('restart: the book survives, the runner resumes the interval with only the missing job', async (t) => {
  const node = await startNode(t, { db: 'r' })
  const id = (await node.subs.create(signRequest(request()))).subscription?.id as string
  await at(t, node, 2)
  const shown = nextDelivered(node)
  node.mesh.answer(subscriptionJobId(id, 1, 1), w1)
  await shown // slot 2 is still running when the node stops
  await stopNode(t, node)

  t.context.nowMs = (T0 + 3) * 1000
  const again = await startNode(t, { db: 'r' })
  await again.subs.tick()
  t.deepEqual(again.mesh.jobIds(), [subscriptionJobId(id, 1, 2)], 'slot 1 was delivered: only slot 2 again')
  t.deepEqual((again.mesh.calls[0] as RunJobArgs).excludeWorkers, [w1.nodeId])
  again.mesh.answer(subscriptionJobId(id, 1, 2), w2)
  await again.subs.settled()
  const status = await again.subs.get(id)
  t.deepEqual(status.responses.map((r) => [r.index, r.nodeId]), [[1, w1.nodeId], [2, w2.nodeId]])
  t.is(status.subscription?.createdAt, T0)
})

test('a node that does not own a subscription runs nothing for it', async (t) => {
  let mine = false
  const node = await startNode(t, { owns: () => mine })
  const id = (await node.subs.create(signRequest(request()))).subscription?.id as string
  await at(t, node, 2)
  t.is(node.mesh.calls.length, 0)
  mine = true // taken over mid-interval
  await at(t, node, 3)
  t.deepEqual(node.mesh.jobIds(), [subscriptionJobId(id, 1, 1), subscriptionJobId(id, 1, 2)])
  mine = false
  await at(t, node, 3)
  t.true((node.mesh.calls[0] as RunJobArgs).signal.aborted, 'ownership lost: its jobs are aborted')
})

test('one-time (period 0): active at once, one interval, completed when its redundancy is met; lazy keeps only the hash', async (t) => {
  const node = await startNode(t)
  const id = (await node.subs.create(signRequest(request({ period: 0, frequency: 1, redundancy: 1, lazy: true })))).subscription?.id as string
  await at(t, node, 0)
  t.deepEqual(node.mesh.jobIds(), [subscriptionJobId(id, 1, 1)])
  t.is((node.mesh.calls[0] as RunJobArgs).deadlineAtMs, T0 * 1000 + 30_000, 'the default deadline, no interval end')
  const output = new TextEncoder().encode('lazy output')
  node.mesh.answer(subscriptionJobId(id, 1, 1), w1, output)
  await node.subs.settled()
  const status = await node.subs.get(id)
  t.is(status.state, 'completed')
  const r = status.responses[0] as SubscriptionResponse
  t.is(r.sealedOutput.length, 0)
  t.deepEqual([...r.outputHash], [...sha256(output)])
  t.deepEqual(node.stored.map((b) => new TextDecoder().decode(b)), ['lazy output'])
  await at(t, node, 1000)
  t.is(node.mesh.calls.length, 1)
})

test('watch: replay from an interval, then live responses, replicated before shown, ending when completed', async (t) => {
  const order: string[] = []
  const node = await startNode(t, {
    replicate: (env) => { const e = decodeSubscriptionEvent(env.payload); if (e.delivered !== undefined) order.push(`replicated ${e.delivered.jobId}`) }
  })
  const id = (await node.subs.create(signRequest(request({ redundancy: 1 })))).subscription?.id as string
  await at(t, node, 2)
  node.mesh.answer(subscriptionJobId(id, 1, 1), w1)
  await node.subs.settled()

  const abort = new AbortController()
  t.context.aborts.push(abort)
  const seen: Array<[number, string]> = []
  const done = (async () => {
    for await (const r of node.subs.watch(id, 1, abort.signal)) {
      order.push(`shown ${r.jobId}`)
      seen.push([r.interval, r.nodeId])
    }
  })()
  await at(t, node, 4)
  node.mesh.answer(subscriptionJobId(id, 2, 1), w2)
  await node.subs.settled()
  await done // ends by itself: interval 2 was the last and is full
  t.deepEqual(seen, [[1, w1.nodeId], [2, w2.nodeId]])
  const j2 = subscriptionJobId(id, 2, 1)
  t.true(order.indexOf(`replicated ${j2}`) < order.indexOf(`shown ${j2}`))
  t.is(order.filter((o) => o.startsWith('shown')).length, 2, 'each once')
})

test('watch ends when the subscription is cancelled; unknown ids are refused', async (t) => {
  const node = await startNode(t)
  const id = (await node.subs.create(signRequest(request()))).subscription?.id as string
  const abort = new AbortController()
  t.context.aborts.push(abort)
  const done = (async () => { let n = 0; for await (const _ of node.subs.watch(id, 0, abort.signal)) n++; return n })()
  await node.subs.cancel(signCancel(id))
  t.is(await done, 0)
  const it = node.subs.watch('c'.repeat(64), 0)[Symbol.asyncIterator]()
  t.is(codeOf(await t.throwsAsync(it.next())), 'SUBSCRIPTION_NOT_FOUND')
})

test('replication: a second coordinator applies A\'s events, idempotently, by the same rules', async (t) => {
  const a = await startNode(t, { db: 'a' })
  const b = await startNode(t, { db: 'b', identity: coordB, owns: () => false })
  const id = (await a.subs.create(signRequest(request({ redundancy: 1 })))).subscription?.id as string
  await at(t, a, 2)
  a.mesh.answer(subscriptionJobId(id, 1, 1), w1)
  await a.subs.settled()
  t.deepEqual(events(a).map((e) => Object.keys(e).filter((k) => e[k as keyof SubscriptionEvent] !== undefined)[0]), ['created', 'delivered'])

  for (const env of a.replicated) t.is((await b.subs.applyReplicated(env)).status, 'applied')
  for (const env of a.replicated) t.is((await b.subs.applyReplicated(env)).status, 'duplicate')
  const onB = await b.subs.get(id)
  t.is(onB.subscription?.createdAt, T0)
  t.deepEqual(onB.responses.map((r) => r.nodeId), [w1.nodeId])
  t.is(b.mesh.calls.length, 0)

  // Another coordinator's later response for the same (full) interval: refused as the SDK would.
  const delivered = events(a)[1]?.delivered as SubscriptionResponse
  const other = { ...delivered, nodeId: w2.nodeId, jobId: subscriptionJobId(id, 1, 2), ...pick(result(w2, subscriptionJobId(id, 1, 2))), acceptedAtMs: delivered.acceptedAtMs + 1 }
  const signed = (e: SubscriptionEvent, by = coordA): SignedEnvelope => signEnvelope(by, PAYLOAD_TYPES.subscriptionEvent, encodeSubscriptionEvent(e))
  t.deepEqual(await b.subs.applyReplicated(signed({ delivered: other })), { status: 'refused', code: 'INTERVAL_COMPLETED', reason: 'INTERVAL_COMPLETED' })
  // The same node twice in an interval with room (interval 2, redundancy 1 means room for one): first applied, second refused.
  const i2 = { ...other, interval: 2, jobId: subscriptionJobId(id, 2, 1), ...pick(result(w2, subscriptionJobId(id, 2, 1))), acceptedAtMs: (T0 + 4) * 1000 }
  t.is((await b.subs.applyReplicated(signed({ delivered: i2 }))).status, 'applied')
  const i2again = { ...i2, jobId: subscriptionJobId(id, 2, 9), ...pick(result(w2, subscriptionJobId(id, 2, 9))) }
  t.is((await b.subs.applyReplicated(signed({ delivered: i2again }))).code, 'INTERVAL_COMPLETED')
  // Accepted (by its recorder) after the subscription's last interval.
  t.is((await b.subs.applyReplicated(signed({ delivered: { ...i2, interval: 3, acceptedAtMs: (T0 + 6) * 1000 } }))).code, 'SUBSCRIPTION_COMPLETED')
  t.is(b.subs.stats().refused.INTERVAL_COMPLETED, 2)

  // Not a coordinator, or not the event's signature: refused outright.
  t.is(codeOf(await t.throwsAsync(b.subs.applyReplicated(signed({ delivered: i2 }, stranger)))), 'SUBSCRIPTION_EVENT_REFUSED')
  const forged = signed({ delivered: i2 })
  forged.payload = encodeSubscriptionEvent({ delivered: { ...i2, nodeId: w3.nodeId } })
  t.is(codeOf(await t.throwsAsync(b.subs.applyReplicated(forged))), 'SUBSCRIPTION_EVENT_REFUSED')
  // A response whose receipt is not node_id's is refused whoever signs the event.
  t.is((await b.subs.applyReplicated(signed({ delivered: { ...i2, nodeId: w3.nodeId } }))).code, 'INVALID_EVENT')
})

test('after a split: two schedulers that filled one interval differently converge on the same responses, whatever the order', async (t) => {
  const a = await startNode(t, { db: 'a', owns: () => false })
  const b = await startNode(t, { db: 'b', identity: coordB, owns: () => false })
  const c = await startNode(t, { db: 'c', owns: () => false })
  const env = signRequest(request({ redundancy: 2 }))
  const id = (await a.subs.create(env)).subscription?.id as string
  for (const e of a.replicated) { await b.subs.applyReplicated(e); await c.subs.applyReplicated(e) }
  const signed = (e: SubscriptionEvent, by: Identity): SignedEnvelope => signEnvelope(by, PAYLOAD_TYPES.subscriptionEvent, encodeSubscriptionEvent(e))
  const response = (worker: Identity, index: number, atMs: number, by: Identity): SignedEnvelope => {
    const jobId = subscriptionJobId(id, 1, index)
    return signed({
      delivered: {
        subscriptionId: id, interval: 1, index, nodeId: worker.nodeId, jobId, ...pick(result(worker, jobId)), certificate: null,
        sealedOutput: new Uint8Array(), acceptedAtMs: atMs, schedulerId: by.nodeId
      }
    }, by)
  }
  // Side A's owner (coordA) got w1 and w2; side B's owner (coordB) got w3 earlier than w2, and w1 again.
  const sideA = [response(w1, 1, (T0 + 2) * 1000 + 100, coordA), response(w2, 2, (T0 + 2) * 1000 + 900, coordA)]
  const sideB = [response(w3, 1, (T0 + 2) * 1000 + 300, coordB), response(w1, 2, (T0 + 2) * 1000 + 200, coordB)]
  t.context.nowMs = (T0 + 3) * 1000
  for (const e of [...sideA, ...sideB]) await a.subs.applyReplicated(e)
  for (const e of [...sideB].reverse().concat(sideA)) await c.subs.applyReplicated(e)
  for (const e of [...sideA].reverse().concat(sideB)) await b.subs.applyReplicated(e)
  const kept = async (n: typeof a): Promise<string[]> => (await n.subs.get(id)).responses.filter((r) => r.interval === 1).map((r) => `${r.nodeId}@${r.acceptedAtMs}`).sort()
  const expected = [`${w1.nodeId}@${(T0 + 2) * 1000 + 100}`, `${w3.nodeId}@${(T0 + 2) * 1000 + 300}`].sort()
  t.deepEqual(await kept(a), expected, 'one per node (its earliest), then the first two by acceptance')
  t.deepEqual(await kept(b), expected)
  t.deepEqual(await kept(c), expected)
})

test('replication: a cancel from another coordinator applies (even before its creation) and only with the owner\'s signature', async (t) => {
  const a = await startNode(t, { db: 'a' })
  const b = await startNode(t, { db: 'b', identity: coordB, owns: () => false })
  const id = (await a.subs.create(signRequest(request()))).subscription?.id as string
  t.context.nowMs = (T0 + 3) * 1000
  await a.subs.cancel(signCancel(id))
  const cancelEvent = a.replicated.find((e) => decodeSubscriptionEvent(e.payload).cancelled !== undefined) as SignedEnvelope
  t.is((await b.subs.applyReplicated(cancelEvent)).status, 'applied')
  const onB = await b.subs.get(id)
  t.is(onB.state, 'cancelled')
  t.is(onB.subscription?.cancelledAt, T0 + 3)

  // A coordinator cannot cancel on the owner's behalf: the cancel inside must be the owner's.
  const other = (await a.subs.create(signRequest(request({ nonce: 'n-2' })))).subscription
  const fake = signEnvelope(coordA, PAYLOAD_TYPES.subscriptionEvent, encodeSubscriptionEvent({
    cancelled: { ...other!, cancel: signCancel(other!.id, stranger), cancelledAt: T0 + 3 }
  }))
  t.is((await b.subs.applyReplicated(fake)).code, 'INVALID_EVENT')
  await t.throwsAsync(b.subs.get(other!.id), { message: /no subscription/ })
})

test('the gRPC handlers: a node without subscriptions answers FAILED_PRECONDITION NO_SUBSCRIPTIONS; errors map to their status', async (t) => {
  const call = (handler: grpc.UntypedHandleCall, request: unknown): Promise<grpc.ServiceError | null> => new Promise((resolve) => {
    (handler as grpc.handleUnaryCall<unknown, unknown>)({ request, getPeer: () => 'ipv4:127.0.0.1:1' } as never, (err) => { resolve(err as grpc.ServiceError | null) })
  })
  const none = subscriptionHandlers(undefined)
  const err = await call(none.GetSubscription as grpc.UntypedHandleCall, { id: 'a'.repeat(64) })
  t.is(err?.code, grpc.status.FAILED_PRECONDITION)
  t.is(err?.metadata?.get('inframind-error-code')[0], 'NO_SUBSCRIPTIONS')

  const node = await startNode(t)
  const handlers = subscriptionHandlers(node.subs)
  t.is((await call(handlers.GetSubscription as grpc.UntypedHandleCall, { id: 'a'.repeat(64) }))?.code, grpc.status.NOT_FOUND)
  t.is((await call(handlers.GetSubscription as grpc.UntypedHandleCall, { id: 'nope' }))?.code, grpc.status.INVALID_ARGUMENT)
  t.is((await call(handlers.CreateSubscription as grpc.UntypedHandleCall, signRequest(request({ frequency: 0 }))))?.code, grpc.status.INVALID_ARGUMENT)
  t.is((await call(handlers.CreateSubscription as grpc.UntypedHandleCall, signRequest(request({ expiresAt: T0 }))))?.code, grpc.status.FAILED_PRECONDITION)
  t.is(await call(handlers.CreateSubscription as grpc.UntypedHandleCall, signRequest(request())), null)
  const id = subscriptionId(owner.publicKey, 'n-1')
  t.is((await call(handlers.CancelSubscription as grpc.UntypedHandleCall, signCancel(id, stranger)))?.code, grpc.status.PERMISSION_DENIED)
  t.is((await call(handlers.ListSubscriptions as grpc.UntypedHandleCall, { owner: '', state: 'bogus' }))?.code, grpc.status.INVALID_ARGUMENT)
})

function codeOf (err: unknown): string {
  return (err as { code?: string } | undefined)?.code ?? ''
}

function pick (r: RunJobResult): { receipt: SignedEnvelope, outputHash: Uint8Array } {
  return { receipt: r.receipt, outputHash: r.outputHash }
}
