import test, { type ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { decodeAck, encodeAssignment, encodeAssignmentSecret, encodeJobResult, PAYLOAD_TYPES, TOPICS, type JobResultNotice } from '../../src/protocol/index.ts'
import { sealTo, SEAL_CONTEXTS } from '../../src/seal/index.ts'
import type { AssignmentSent } from '../../src/scheduler/index.ts'
import { sha256, signReceipt, verifyReceipt } from '../../src/receipt/index.ts'
import { containerYaml, eventually, gossipPeer, meshAddr, startFor as start, text, waitJob, type TestNode } from '../helpers/node.ts'

// Real nodes (LevelDB, Docker, gRPC, libp2p over 127.0.0.1): a scheduler+gateway and workers.
// Serial: each test runs two or three whole nodes in this one process; all at once (twenty-odd libp2p
// nodes with pnet, gRPC servers and jobs on two cores) stalls event loops for seconds, and a worker's
// heartbeats then look late.




async function meshOf (t: ExecutionContext, gatewayMesh: Record<string, unknown> = {}): Promise<{ gateway: TestNode, worker: TestNode }> {
  const worker = await start(t, { mesh: {}, containers: [containerYaml('echo')] })
  // The gateway lists what it admits (its Guardian and limits apply) and runs none of it.
  const gateway = await start(t, { mesh: { bootstrap: [meshAddr(worker)], ...gatewayMesh }, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo'), containerYaml('sentiment')] })
  // The gateway knows the worker once its heartbeat arrives (heartbeats go only to schedulers), and
  // the worker can report to the gateway once it sees it on the results topic.
  // A heartbeat sent before the worker's gRPC listener was bound names no address (the scheduler would gossip).
  await eventually(() => gateway.node.mesh?.livePeer(worker.node.identity.nodeId)?.grpcAddress)
  await eventually(() => topicPeer(worker, TOPICS.receipts, gateway.node.identity.nodeId))
  return { gateway, worker }
}

/** `a` subscribes to `topic` with `peerId` among its gossip peers there. */
function topicPeer (a: TestNode, topic: string, peerId: string): boolean {
  return a.node.mesh?.libp2p().services.pubsub.getSubscribers(topic).some((p) => p.toString() === peerId) === true
}

function assignment (scheduler: Identity, workerId: string, fields: { jobId?: string, deadlineAtMs?: number, input?: Uint8Array } = {}) {
  const jobId = fields.jobId ?? `grpc-${randomBytes(4).toString('hex')}`
  const secret = encodeAssignmentSecret({ input: fields.input ?? text('by grpc'), inputInline: true, origin: null })
  return signEnvelope(scheduler, PAYLOAD_TYPES.assignment, encodeAssignment({
    jobId,
    containers: ['echo'],
    sealed: sealTo(workerId, secret, SEAL_CONTEXTS.assignment(jobId)),
    inputHash: new Uint8Array(),
    inputSize: 0,
    inputProvider: '',
    workerId,
    schedulerId: scheduler.nodeId,
    issuedAtMs: Date.now(),
    deadlineAtMs: fields.deadlineAtMs ?? Date.now() + 30_000,
    requiresProof: false,
    replyAddress: '',
    purpose: '',
    checkedReceipt: null
  }))
}

/** Assignments the scheduler sent, and assignment messages the worker saw on the gossip topic. */
function watchAssignments (gateway: TestNode, worker: TestNode): { sent: AssignmentSent[], gossiped: string[] } {
  const seen = { sent: [] as AssignmentSent[], gossiped: [] as string[] }
  gateway.node.scheduler?.on('assigned', (a) => seen.sent.push(a))
  worker.node.mesh?.subscribe('assignments', (m) => seen.gossiped.push(m.value.jobId))
  return seen
}

test.serial('by default a job is assigned through the worker\'s gRPC AssignJob, which no other node sees', async (t) => {
  const { gateway, worker } = await meshOf(t)
  const seen = watchAssignments(gateway, worker)
  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text('point to point') })
  const done = await waitJob(gateway.client, jobId)
  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(Buffer.from(done.output).toString(), 'point to point')
  t.deepEqual(seen.sent.map((a) => `${a.jobId}:${a.workerId}:${a.via}`), [`${jobId}:${worker.node.identity.nodeId}:grpc`])
  t.deepEqual(seen.gossiped, [], 'nothing went over the assignments topic')
  const metrics = await (await fetch(gateway.node.telemetry.metricsUrl())).text()
  t.regex(metrics, /inframind_assignments_sent_total\{via="grpc"\} 1/)
  t.regex(metrics, /inframind_jobs_total\{container="echo",status="success",lane="mesh"\} 1/)
  // The gateway lists what it admits and runs none of it: no container, no image check, state "mesh".
  t.deepEqual((await gateway.control.listContainers()).map((c) => `${c.id}:${c.state}`), ['echo:mesh', 'sentiment:mesh'])
  t.deepEqual(gateway.node.runtime.containerStatuses(), [])
  t.is((await gateway.control.getStatus()).meshJobsInFlight, 0)
})

test.serial('when the worker\'s gRPC port cannot be reached, the same assignment goes by gossip', async (t) => {
  const { gateway, worker } = await meshOf(t)
  const seen = watchAssignments(gateway, worker)
  // The worker keeps heartbeating its (now closed) gRPC address.
  await worker.node.api.stop()
  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text('fallback') })
  const done = await waitJob(gateway.client, jobId)
  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(Buffer.from(done.output).toString(), 'fallback')
  t.deepEqual(seen.sent.map((a) => a.via), ['gossip_fallback'])
  t.deepEqual(seen.gossiped, [jobId])
})

test.serial('a job submitted to the gateway is assigned over gossip, run by the worker, and returned with its receipt', async (t) => {
  const { gateway, worker } = await meshOf(t, { assign_via: 'gossip' })
  const seen = watchAssignments(gateway, worker)
  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text('through the mesh') })
  const states: string[] = []
  let done
  for await (const e of gateway.client.watchJob(jobId)) {
    states.push(`${e.state}:${e.detail}`)
    if (e.job !== null) done = e.job
  }
  t.truthy(done)
  t.is(done!.state, 'JOB_STATE_SUCCESS', done!.error)
  t.is(Buffer.from(done!.output).toString(), 'through the mesh')
  t.true(states.some((s) => s.includes(`accepted by ${worker.node.identity.nodeId}`)), states.join(' | '))
  const verdict = verifyReceipt(envelopeFromWire(done!.receipt!), { output: new Uint8Array(done!.output) })
  t.true(verdict.valid)
  if (verdict.valid) {
    t.is(verdict.receipt.workerId, worker.node.identity.nodeId, 'the receipt is the worker\'s own')
    t.is(verdict.receipt.schedulerId, gateway.node.identity.nodeId)
  }
  // The worker holds the same job, run once.
  const onWorker = await worker.client.getJob(jobId)
  t.is(onWorker.state, 'JOB_STATE_SUCCESS')
  t.deepEqual(seen.sent.map((a) => a.via), ['gossip'])
  t.deepEqual(seen.gossiped, [jobId])
})

test.serial('inputs and outputs above the inline limit travel by hash over the fetch protocol', async (t) => {
  const { gateway } = await meshOf(t)
  const big = randomBytes(20_000).toString('hex')
  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text(big) })
  const done = await waitJob(gateway.client, jobId)
  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(Buffer.from(done.output).toString(), big)
})

test.serial('assignment through gRPC AssignJob is acknowledged, and a duplicate never runs twice', async (t) => {
  const { gateway, worker } = await meshOf(t)
  const scheduler = gateway.node.identity
  const env = assignment(scheduler, worker.node.identity.nodeId, { jobId: 'dup-1' })
  const first = decodeAck((await worker.client.assignJob(env)).payload)
  t.true(first.accepted, first.reason)
  t.false(first.duplicate)
  const second = decodeAck((await worker.client.assignJob(env)).payload)
  t.true(second.accepted)
  t.true(second.duplicate)
  const job = await waitJob(worker.client, 'dup-1')
  t.is(job.state, 'JOB_STATE_SUCCESS')
  // The worker's public API shows the job's state and receipt, never the client's output.
  t.is(job.output.byteLength, 0)
  const verdict = verifyReceipt(envelopeFromWire(job.receipt!), { output: text('by grpc') })
  t.true(verdict.valid, verdict.valid ? '' : verdict.reason)
  t.is((await worker.control.getStatus()).jobsServed, 1, 'ran once')
})

test.serial('assignments from untrusted schedulers, for other workers, or past their deadline are refused with the reason', async (t) => {
  const { gateway, worker } = await meshOf(t)
  const stranger = identityFromSeed(randomBytes(32))
  const refused = async (env: ReturnType<typeof assignment>): Promise<string> => {
    const ack = decodeAck((await worker.client.assignJob(env)).payload)
    t.false(ack.accepted)
    return ack.code
  }
  t.is(await refused(assignment(stranger, worker.node.identity.nodeId)), 'UNTRUSTED_SCHEDULER')
  t.is(await refused(assignment(gateway.node.identity, stranger.nodeId)), 'WRONG_WORKER')
  t.is(await refused(assignment(gateway.node.identity, worker.node.identity.nodeId, { deadlineAtMs: Date.now() - 1000 })), 'EXPIRED')
  const forged = assignment(gateway.node.identity, worker.node.identity.nodeId)
  forged.signature[3] ^= 1
  t.is(await refused(forged), 'INVALID_ASSIGNMENT')
  // Still serving.
  const ok = decodeAck((await worker.client.assignJob(assignment(gateway.node.identity, worker.node.identity.nodeId))).payload)
  t.true(ok.accepted)
})

test.serial('a job assigned by gossip has its result gossiped, and anyone holding only the receipt can verify it', async (t) => {
  const { gateway, worker } = await meshOf(t, { assign_via: 'gossip' })
  const observer = await start(t, { mesh: { bootstrap: [meshAddr(worker)] }, node: { roles: ['validator', 'archive'] }, containers: [] })
  const notices: JobResultNotice[] = []
  observer.node.mesh?.subscribe('receipts', (m) => notices.push(m.value))
  await eventually(() => topicPeer(observer, TOPICS.receipts, worker.node.identity.nodeId))
  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text('gossiped') })
  const done = await waitJob(gateway.client, jobId)
  t.is(Buffer.from(done.output).toString(), 'gossiped')
  const notice = await eventually(() => notices.find((n) => n.receipt !== null && verifyReceipt(n.receipt).valid))
  // The receipt verifies alone, and against the output for whoever has it; the output itself is sealed to the scheduler.
  const verdict = verifyReceipt(notice.receipt!, { output: text('gossiped') })
  t.true(verdict.valid)
  if (verdict.valid) t.is(verdict.receipt.jobId, jobId)
  t.false(Buffer.from(notice.sealedOutput).includes(Buffer.from('gossiped')))
})

test.serial('a job assigned over gRPC has its result reported back point to point: no other node sees its output', async (t) => {
  const { gateway, worker } = await meshOf(t)
  const observer = await start(t, { mesh: { bootstrap: [meshAddr(worker)] }, node: { roles: ['validator', 'archive'] }, containers: [] })
  const notices: string[] = []
  for (const n of [observer, gateway]) n.node.mesh?.subscribe('receipts', (m) => notices.push(m.from))
  await eventually(() => topicPeer(observer, TOPICS.receipts, worker.node.identity.nodeId))
  const jobs = await Promise.all(['one', 'two', 'three'].map(async (input) => (await gateway.client.submitJob({ containerId: 'echo', input: text(`private ${input}`) })).jobId))
  for (const [i, jobId] of jobs.entries()) {
    const done = await waitJob(gateway.client, jobId)
    t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
    t.is(Buffer.from(done.output).toString(), `private ${['one', 'two', 'three'][i]}`)
    t.true(verifyReceipt(envelopeFromWire(done.receipt!), { output: new Uint8Array(done.output) }).valid)
  }
  // A heartbeat from the worker after the jobs ended proves gossip kept flowing meanwhile.
  const after = Date.now()
  await eventually(() => (gateway.node.mesh?.livePeer(worker.node.identity.nodeId)?.atMs ?? 0) > after)
  t.deepEqual(notices, [], 'no result notice crossed the receipts topic')
})

test.serial('ReportResult takes only the assigned worker\'s signed result for a job in flight; anything else changes nothing', async (t) => {
  const { gateway, worker } = await meshOf(t)
  const stranger = identityFromSeed(randomBytes(32))
  const receipt = signReceipt(stranger, {
    jobId: 'not-in-flight', jobHash: new Uint8Array(32), inputHash: new Uint8Array(32), outputHash: sha256(text('x')), steps: [],
    status: 'success', exitCode: 0, latencyMs: 1, startedAtMs: Date.now() - 1, finishedAtMs: Date.now(),
    workerId: stranger.nodeId, schedulerId: gateway.node.identity.nodeId, error: ''
  })
  const notice = (signer: Identity, r = receipt) => signEnvelope(signer, PAYLOAD_TYPES.jobResult, encodeJobResult({ receipt: r, sealedOutput: sealTo(gateway.node.identity.nodeId, text('x'), SEAL_CONTEXTS.output(r === receipt ? 'not-in-flight' : '')), outputInline: true, outputSize: 1, atMs: Date.now(), attestation: null }))
  const unknown = await gateway.client.reportResult(notice(stranger))
  t.false(unknown.accepted)
  t.regex(unknown.reason, /no job not-in-flight of this scheduler is waiting/)
  // Signed by someone other than the receipt's worker: refused before anything is looked up.
  const forged = await gateway.client.reportResult(notice(worker.node.identity))
  t.false(forged.accepted)
  t.regex(forged.reason, /INVALID_CONTENT|SIGNER_MISMATCH/)
  // A node that assigns nothing takes no results.
  const notScheduler = await t.throwsAsync(worker.client.reportResult(notice(stranger)))
  t.is((notScheduler as { code?: number }).code, 9 /* FAILED_PRECONDITION */)
  // The gateway still serves jobs.
  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text('still fine') })
  t.is((await waitJob(gateway.client, jobId)).state, 'JOB_STATE_SUCCESS')
})

test.serial('a gateway refuses a container it does not list, and one no live worker serves, before storing anything', async (t) => {
  const { gateway } = await meshOf(t)
  const unknown = await t.throwsAsync(gateway.client.submitJob({ containerId: 'embed', input: text('x') }))
  t.is((unknown as { code?: number }).code, 5 /* NOT_FOUND: not a container this gateway admits */)
  const unserved = await t.throwsAsync(gateway.client.submitJob({ containerId: 'sentiment', input: text('x') }))
  t.is((unserved as { code?: number }).code, 14 /* UNAVAILABLE: listed, but no live worker serves it now */)
  t.regex(unserved?.message ?? '', /no live worker on the mesh serves "sentiment"/)
  t.deepEqual(await gateway.client.listJobs(), [])
})

test.serial('a gateway that is also a worker runs what it serves and hands mesh_only containers to other workers', async (t) => {
  const upper = containerYaml('upper', { command: ['tr', 'a-z', 'A-Z'] })
  // It also schedules, so it hears heartbeats: the last check reads what the gateway advertises.
  const other = await start(t, { mesh: {}, node: { roles: ['worker', 'scheduler'] }, containers: [upper] })
  const both = await start(t, {
    mesh: { bootstrap: [meshAddr(other)] },
    node: { roles: ['worker', 'scheduler', 'gateway'] },
    containers: [containerYaml('echo'), { ...upper, mesh_only: true }]
  })
  await eventually(() => both.node.mesh?.livePeer(other.node.identity.nodeId) ?? undefined)
  await eventually(() => gossipPeer(other, both))
  const signer = (job: Awaited<ReturnType<typeof waitJob>>): string => {
    const verdict = verifyReceipt(envelopeFromWire(job.receipt!), { output: new Uint8Array(job.output) })
    return verdict.valid ? verdict.receipt.workerId : `invalid: ${verdict.reason}`
  }
  const local = await waitJob(both.client, (await both.client.submitJob({ containerId: 'echo', input: text('here') })).jobId)
  t.is(Buffer.from(local.output).toString(), 'here')
  t.is(signer(local), both.node.identity.nodeId, 'a container it serves runs on the node itself')
  const remote = await waitJob(both.client, (await both.client.submitJob({ containerId: 'upper', input: text('there') })).jobId)
  t.is(remote.state, 'JOB_STATE_SUCCESS', remote.error)
  t.is(Buffer.from(remote.output).toString(), 'THERE')
  t.is(signer(remote), other.node.identity.nodeId, 'a mesh_only container runs on a worker of the mesh')
  t.deepEqual((await both.control.listContainers()).map((c) => `${c.id}:${c.state}`), ['echo:ready', 'upper:mesh'])
  // It offers the mesh only what it runs itself.
  t.deepEqual((await eventually(() => other.node.mesh?.livePeer(both.node.identity.nodeId)))?.containers, ['echo'])
})
