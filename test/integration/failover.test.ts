import test, { type ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { defaultConfig } from '../../src/config/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { mesh, type Mesh } from '../../src/mesh/index.ts'
import { verifyReceipt } from '../../src/receipt/index.ts'
import type { AssignmentSent } from '../../src/scheduler/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { containerYaml, eventually, gossipPeer, meshAddr, rosterMember, startFor as start, testMeshKey, text, waitJob, type TestNode, type TestNodeOptions } from '../helpers/node.ts'

// Scheduler failover with real nodes (LevelDB, Docker, gRPC on port 0, libp2p on 127.0.0.1): a
// gateway+scheduler that runs nothing itself, workers that refuse, stay silent or leave.

/** A gateway+scheduler that admits echo (its Guardian and limits apply) and runs none of it. */
async function gatewayNode (t: ExecutionContext): Promise<TestNode> {
  return await start(t, { mesh: {}, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo')] })
}

async function workerNode (t: ExecutionContext, gateway: TestNode, opts: TestNodeOptions = {}): Promise<TestNode> {
  const worker = await start(t, { mesh: { bootstrap: [meshAddr(gateway)] }, node: { roles: ['worker'] }, ...opts })
  // The scheduler assigns only to workers it has heard from; the worker reports to the gateway once they are gossip peers.
  await eventually(() => gateway.node.mesh?.livePeer(worker.node.identity.nodeId))
  await eventually(() => gossipPeer(worker, gateway))
  return worker
}

function assignedTo (gateway: TestNode): AssignmentSent[] {
  const sent: AssignmentSent[] = []
  const off = gateway.node.scheduler?.on('assigned', (a) => sent.push(a))
  if (off === undefined) throw new Error('the gateway has no scheduler')
  return sent
}

/** The worker that signed the job's receipt, checked against the output the gateway returned. */
function receiptWorker (t: ExecutionContext, job: Awaited<ReturnType<typeof waitJob>>): string {
  t.truthy(job.receipt, 'the job carries a receipt')
  const verdict = verifyReceipt(envelopeFromWire(job.receipt!), { output: new Uint8Array(job.output) })
  t.true(verdict.valid, 'the receipt verifies against the output')
  return verdict.valid ? verdict.receipt.workerId : ''
}

test('a worker that refuses the assignment is passed over and the job runs on the next one', async (t) => {
  const gateway = await gatewayNode(t)
  const stranger = identityFromSeed(randomBytes(32)).nodeId
  // Its Guardian admits echo only from another peer, so it refuses this scheduler's assignments.
  // More slots make it the scheduler's first choice.
  const refusing = await workerNode(t, gateway, { jobs: { concurrency: 4 }, containers: [containerYaml('echo', { allowed_peers: [stranger] })] })
  const accepting = await workerNode(t, gateway, { jobs: { concurrency: 1 } })
  const refusingId = refusing.node.identity.nodeId
  const acceptingId = accepting.node.identity.nodeId
  await eventually(() => gateway.node.mesh?.livePeer(refusingId)?.freeSlots === 4)
  const sent = assignedTo(gateway)
  const refusals: Array<{ reason: string, code: string, containerId: string }> = []
  refusing.node.jobs.on('rejected', (r) => refusals.push(r))

  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text('second choice') })
  const done = await waitJob(gateway.client, jobId)

  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(Buffer.from(done.output).toString(), 'second choice')
  t.deepEqual(sent.map((a) => a.workerId), [refusingId, acceptingId], 'the refusing worker was tried first, then the other')
  t.true(sent.every((a) => a.jobId === jobId))
  t.deepEqual(refusals, [{ reason: 'PEER_NOT_ALLOWED', code: 'PERMISSION_DENIED', containerId: 'echo' }], 'the refusal came from its Guardian')
  t.is(receiptWorker(t, done), acceptingId, 'the receipt is the accepting worker\'s')
  t.deepEqual(await refusing.client.listJobs(), [], 'the refusing worker stored nothing')
  t.is((await accepting.client.getJob(jobId)).state, 'JOB_STATE_SUCCESS')
})

test('a peer that heartbeats as a worker but never acknowledges is passed over after the ack timeout', async (t) => {
  const gateway = await gatewayNode(t)
  const real = await workerNode(t, gateway)
  // A bare mesh node: it claims many free slots and no gRPC address, so the scheduler picks it
  // first, assigns over gossip and waits for an ack that never comes.
  // It is a rostered worker of the private mesh: admission lets it in; only its silence is at fault.
  const silentIdentity = identityFromSeed(randomBytes(32))
  await rosterMember(silentIdentity.nodeId, ['worker'])
  const silent: Mesh = mesh({
    config: { ...defaultConfig().mesh, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatIntervalMs: 1000, provideIntervalMs: 60_000, bootstrap: [meshAddr(gateway)] },
    roles: ['worker'],
    containers: ['echo'],
    networkKey: testMeshKey(),
    hearsHeartbeats: false
  })({
    identity: silentIdentity,
    logger: silentLogger(),
    heartbeat: () => ({ cpuCores: 8, memoryBytes: 1 << 30, gpus: 0, grpcAddress: '', freeSlots: 64, stats: null, rosterVersion: 0 }),
    content: async () => undefined
  })
  await silent.start()
  t.teardown(async () => await silent.stop())
  const received: string[] = []
  silent.subscribe('assignments', (m) => { if (m.value.workerId === silentIdentity.nodeId) received.push(m.value.jobId) })
  // The scheduler has its heartbeat, and it is the scheduler's gossip peer on the assignments topic.
  await eventually(() => gateway.node.mesh?.livePeer(silentIdentity.nodeId)?.freeSlots === 64)
  await eventually(() => silent.libp2p().services.pubsub.getSubscribers('inframind/assignments/1').some((p) => p.toString() === gateway.node.identity.nodeId))
  const sent = assignedTo(gateway)

  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text('after the silence') })
  const done = await waitJob(gateway.client, jobId)

  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(Buffer.from(done.output).toString(), 'after the silence')
  t.deepEqual(sent.map((a) => `${a.workerId}:${a.via}`), [`${silentIdentity.nodeId}:gossip`, `${real.node.identity.nodeId}:grpc`],
    'the silent peer was tried first (by gossip: it names no gRPC address), then the real worker')
  t.deepEqual(received, [jobId], 'the silent peer did receive its assignment')
  t.is(receiptWorker(t, done), real.node.identity.nodeId)
  t.is((await real.client.getJob(jobId)).state, 'JOB_STATE_SUCCESS')
})

test('once its only worker has left, the gateway refuses jobs with UNAVAILABLE and stores nothing', async (t) => {
  const gateway = await gatewayNode(t)
  const worker = await workerNode(t, gateway)
  const workerId = worker.node.identity.nodeId
  // While the worker is there, the same job runs.
  const first = await waitJob(gateway.client, (await gateway.client.submitJob({ containerId: 'echo', input: text('before') })).jobId)
  t.is(first.state, 'JOB_STATE_SUCCESS', first.error)

  await worker.stop()
  await eventually(() => gateway.node.mesh?.livePeer(workerId) === null)

  const err = await t.throwsAsync(gateway.client.submitJob({ containerId: 'echo', input: text('after'), jobId: 'after-the-worker-left' }))
  const status = err as unknown as { code?: number, metadata?: { get: (k: string) => unknown[] } }
  t.is(status.code, 14 /* UNAVAILABLE */)
  t.deepEqual(status.metadata?.get('inframind-error-code'), ['NO_WORKER'])
  t.regex(err?.message ?? '', /"echo"/, 'the message names the container')
  t.deepEqual((await gateway.client.listJobs()).map((j) => j.jobId), [first.jobId], 'nothing new was stored')
  const missing = await t.throwsAsync(gateway.client.getJob('after-the-worker-left'))
  t.is((missing as unknown as { code?: number }).code, 5 /* NOT_FOUND */)
})

test('a gateway with the default config keeps many more mesh jobs in flight than its jobs.concurrency', async (t) => {
  // Each job takes ~2 s on a worker, so the gateway must hold them all at once to hand them out at once.
  const slow = containerYaml('slow', { command: ['sh', '-c', 'sleep 2; cat'] })
  const gateway = await start(t, { mesh: {}, node: { roles: ['scheduler', 'gateway'] }, containers: [slow] })
  t.is(gateway.config.jobs.concurrency, 2)
  t.is(gateway.config.gateway.maxInFlight, defaultConfig().gateway.maxInFlight, 'the gateway section is left at its defaults')
  const workers = [await workerNode(t, gateway, { containers: [slow] }), await workerNode(t, gateway, { containers: [slow] })]
  let most = 0
  const watch = setInterval(() => { most = Math.max(most, gateway.node.jobs.stats().meshInFlight) }, 20)
  t.teardown(() => { clearInterval(watch) })
  const n = 12
  const ids = await Promise.all(Array.from({ length: n }, async (_, i) => (await gateway.client.submitJob({ containerId: 'slow', input: text(`job ${i}`) })).jobId))
  const done = await Promise.all(ids.map(async (id) => await waitJob(gateway.client, id)))
  clearInterval(watch)
  t.true(done.every((j) => j.state === 'JOB_STATE_SUCCESS'), done.map((j) => `${j.state} ${j.error}`).join('; '))
  t.deepEqual(done.map((j) => Buffer.from(j.output).toString()), ids.map((_, i) => `job ${i}`))
  t.true(most >= 8, `at most ${most} mesh jobs were in flight at once`)
  // Both workers took a share: the gateway did not feed one worker at a time.
  const ran = await Promise.all(workers.map(async (w) => (await w.client.listJobs()).length))
  t.true(ran.every((count) => count > 0), ran.join(' + '))
  t.is(gateway.node.runtime.containerStatuses().length, 0, 'the gateway ran nothing itself')
})
