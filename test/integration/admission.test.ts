import test from 'ava'
import { randomBytes } from 'node:crypto'
import { signEnvelope } from '../../src/envelope/index.ts'
import { decodeEnvelope } from '../../src/envelope/index.ts'
import {
  decodeAck, decodeAssignment, decodeAssignmentSecret, decodeAttestation, encodeAck, encodeAssignment, encodeAssignmentSecret,
  encodeAttestation, encodeHeartbeat, encodeJobResult, PAYLOAD_TYPES, TOPICS, type Heartbeat
} from '../../src/protocol/index.ts'
import { computeJobHash, sha256, signReceipt } from '../../src/receipt/index.ts'
import { openSealed, sealTo, SEAL_CONTEXTS } from '../../src/seal/index.ts'
import { startOutsider, type Outsider } from '../helpers/outsider.ts'
import { containerYaml, eventually, meshAddr, rosterMember, startFor, testMeshKey, text, waitJob, type TestNode } from '../helpers/node.ts'

// Real nodes (LevelDB, Docker, gRPC, libp2p over 127.0.0.1) and an outsider built from the public
// libp2p packages with a fresh key: who may join, act and see.
// Serial: each test runs two or three whole nodes in this one process; all at once (twenty-odd libp2p
// nodes with pnet, gRPC servers and jobs on two cores) stalls event loops for seconds, and a worker's
// heartbeats then look late.

const LOCK_ECHO = containerYaml('echo').digest as string

/** Polls an async condition until it holds (20 s at most). */
async function until (fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

function heartbeatOf (o: Outsider): Heartbeat {
  return {
    nodeId: o.identity.nodeId, atMs: Date.now(), roles: ['worker', 'scheduler', 'validator'], containers: ['echo', 'sentiment'],
    cpuCores: 64, memoryBytes: 2 ** 40, gpus: 0, grpcAddress: '', freeSlots: 64, stats: null, intervalMs: 1000, rosterVersion: 0
  }
}

/** The outsider heartbeats (claiming every role, container and 64 free slots) until stopped. */
function heartbeatLoop (o: Outsider): () => void {
  const send = (): void => { o.publish(TOPICS.heartbeats, PAYLOAD_TYPES.heartbeat, encodeHeartbeat(heartbeatOf(o))).catch(() => {}) }
  send()
  const timer = setInterval(send, 1000)
  return () => clearInterval(timer)
}

async function outsiderFor (t: Parameters<typeof startFor>[0], opts: Parameters<typeof startOutsider>[0]): Promise<Outsider> {
  const o = await startOutsider(opts)
  t.teardown(async () => await o.stop())
  return o
}

async function privateMesh (t: Parameters<typeof startFor>[0]): Promise<{ gateway: TestNode, worker: TestNode }> {
  const worker = await startFor(t, { mesh: {}, containers: [containerYaml('echo')] })
  const gateway = await startFor(t, { mesh: { bootstrap: [meshAddr(worker)] }, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo')] })
  await eventually(() => gateway.node.mesh?.livePeer(worker.node.identity.nodeId) ?? undefined)
  return { gateway, worker }
}

test.serial('private mesh: a peer without the mesh key cannot open a connection at all', async (t) => {
  const { gateway } = await privateMesh(t)
  const stranger = await outsiderFor(t, {})
  await t.throwsAsync(stranger.dial(meshAddr(gateway)))
  const wrongKey = await outsiderFor(t, { networkKey: new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`) })
  await t.throwsAsync(wrongKey.dial(meshAddr(gateway)))
  t.false(gateway.node.mesh!.peers().some((p) => p.nodeId === stranger.identity.nodeId || p.nodeId === wrongKey.identity.nodeId))
})

test.serial('private mesh: with the key but not in the roster, a peer gets no assignment, cannot assign, and its attestations do not count', async (t) => {
  const { gateway, worker } = await privateMesh(t)
  const outsider = await outsiderFor(t, { networkKey: testMeshKey() })
  await outsider.dial(meshAddr(gateway))
  await outsider.dial(meshAddr(worker))
  const stop = heartbeatLoop(outsider)
  t.teardown(stop)
  // Its heartbeats reach the gateway and are ignored as not admitted: it never becomes a live worker.
  await eventually(() => (gateway.node.mesh!.ignored()[`${TOPICS.heartbeats}:NOT_ADMITTED`] ?? 0) > 0)
  t.is(gateway.node.mesh!.livePeer(outsider.identity.nodeId), null)
  const assigned: string[] = []
  gateway.node.scheduler!.on('assigned', (a) => assigned.push(a.workerId))
  const jobs = await Promise.all([1, 2, 3].map(async (i) => (await gateway.client.submitJob({ containerId: 'echo', input: text(`job ${i}`) })).jobId))
  for (const id of jobs) t.is((await waitJob(gateway.client, id)).state, 'JOB_STATE_SUCCESS')
  t.deepEqual([...new Set(assigned)], [worker.node.identity.nodeId], 'every job went to the rostered worker')
  t.false(outsider.received.some((m) => m.topic === TOPICS.assignments))

  // It assigns a job to the worker over gRPC: a signed refusal, and nothing runs.
  const jobId = `outsider-${randomBytes(4).toString('hex')}`
  const env = signEnvelope(outsider.identity, PAYLOAD_TYPES.assignment, encodeAssignment({
    jobId, containers: ['echo'], sealed: sealTo(worker.node.identity.nodeId, encodeAssignmentSecret({ input: text('x'), inputInline: true, origin: null }), SEAL_CONTEXTS.assignment(jobId)),
    inputHash: sha256(text('x')), inputSize: 1, inputProvider: '', workerId: worker.node.identity.nodeId, schedulerId: outsider.identity.nodeId,
    issuedAtMs: Date.now(), deadlineAtMs: Date.now() + 30_000, requiresProof: false, replyAddress: '', purpose: '', checkedReceipt: null
  }))
  const answer = await worker.client.assignJob(env)
  t.is(answer.payloadType, PAYLOAD_TYPES.ack)
  const ack = decodeAck(answer.payload)
  t.false(ack.accepted)
  t.is(ack.code, 'UNTRUSTED_SCHEDULER')
  t.is(ack.workerId, worker.node.identity.nodeId)
  await t.throwsAsync(worker.client.getJob(jobId), { message: /not found|NOT_FOUND/i })

  // Its attestations are ignored (not admitted); a rostered validator's are delivered.
  const validator = await startFor(t, { mesh: { bootstrap: [meshAddr(gateway)] }, node: { roles: ['validator'] }, containers: [] })
  const delivered: string[] = []
  gateway.node.mesh!.subscribe('attestations', (m) => delivered.push(m.from))
  const attestation = (validatorId: string) => encodeAttestation({
    receiptHash: sha256(text('a receipt')), jobId: jobs[0] as string, workerId: worker.node.identity.nodeId, validatorId,
    verdict: 'agree', method: 'signature', outputHash: new Uint8Array(), reason: '', atMs: Date.now()
  })
  await until(async () => {
    await outsider.publish(TOPICS.attestations, PAYLOAD_TYPES.attestation, attestation(outsider.identity.nodeId))
    return (gateway.node.mesh!.ignored()[`${TOPICS.attestations}:NOT_ADMITTED`] ?? 0) > 0
  })
  await until(async () => {
    await validator.node.mesh!.publish('attestations', decodeAttestation(attestation(validator.node.identity.nodeId)))
    return delivered.includes(validator.node.identity.nodeId)
  })
  t.false(delivered.includes(outsider.identity.nodeId))
})

test.serial('no job input, output or origin appears in any gossip message, on the gRPC path or the gossip fallback', async (t) => {
  const { gateway, worker } = await privateMesh(t)
  const viaGossip = await startFor(t, { mesh: { bootstrap: [meshAddr(worker)], assign_via: 'gossip', inline_bytes: 64 }, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo')] })
  await eventually(() => viaGossip.node.mesh?.livePeer(worker.node.identity.nodeId) ?? undefined)
  // A rostered member that hears everything it can: every topic, connected to every node.
  const outsider = await outsiderFor(t, { networkKey: testMeshKey() })
  await rosterMember(outsider.identity.nodeId, ['worker', 'validator', 'archive'])
  for (const n of [gateway, worker, viaGossip]) await outsider.dial(meshAddr(n))
  const secrets: string[] = []
  const delegate = `12D3KooW${randomBytes(16).toString('hex')}`
  const ids: Array<[TestNode, string]> = []
  for (const [n, size] of [[gateway, 20], [viaGossip, 20], [viaGossip, 3000]] as const) {
    const input = `secret-input-${randomBytes(6).toString('hex')}-`.padEnd(size, 'x')
    secrets.push(input)
    const { jobId } = await n.client.submitJob({ containerId: 'echo', input: text(input), delegate })
    ids.push([n, jobId])
  }
  for (const [n, id] of ids) {
    const done = await waitJob(n.client, id)
    t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
    t.true(secrets.includes(Buffer.from(done.output).toString()))
  }
  // The gossip path was used (assignments and results crossed the topics), and carried nothing readable.
  await eventually(() => outsider.received.some((m) => m.topic === TOPICS.assignments) && outsider.received.some((m) => m.topic === TOPICS.receipts))
  const all = Buffer.concat(outsider.received.map((m) => Buffer.from(m.data)))
  for (const secret of secrets) t.false(all.includes(Buffer.from(secret.slice(0, 24))), `input/output ${secret.slice(0, 24)} seen on gossip`)
  t.false(all.includes(Buffer.from(delegate)), 'the origin was seen on gossip')
  // Nor can it fetch a large input or output by hash: only the job's worker and scheduler may.
  const assignment = outsider.received.filter((m) => m.topic === TOPICS.assignments).map((m) => decodeAssignment(decodeEnvelope(m.data).payload)).find((a) => a.inputSize >= 3000)
  t.truthy(assignment)
  t.throws(() => openSealed(outsider.identity, assignment!.sealed, SEAL_CONTEXTS.assignment(assignment!.jobId)), { name: 'SealOpenError' })
})

test.serial('open mesh: an unrostered worker gets only jobs whose client allowed probation, and its output is marked unverified', async (t) => {
  const open = { admission: { mode: 'open' } }
  const worker = await startFor(t, { mesh: { ...open }, containers: [containerYaml('echo')] })
  const gateway = await startFor(t, { mesh: { ...open, bootstrap: [meshAddr(worker)], assign_via: 'gossip' }, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo')] })
  await eventually(() => gateway.node.mesh?.livePeer(worker.node.identity.nodeId) ?? undefined)
  // Anyone may connect to an open mesh: no key.
  const outsider = await outsiderFor(t, {})
  await outsider.dial(meshAddr(gateway))
  t.teardown(heartbeatLoop(outsider))
  await eventually(() => gateway.node.mesh?.livePeer(outsider.identity.nodeId) ?? undefined)
  // It acknowledges and answers every assignment it gets, with a forged output and a receipt it signs.
  const forged: string[] = []
  outsider.node.services.pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic !== TOPICS.assignments) return
    const a = decodeAssignment(decodeEnvelope(evt.detail.data).payload)
    if (a.workerId !== outsider.identity.nodeId) return
    const secret = decodeAssignmentSecret(openSealed(outsider.identity, a.sealed, SEAL_CONTEXTS.assignment(a.jobId)))
    forged.push(a.jobId)
    const output = text(`FORGED by outsider for ${Buffer.from(secret.input).toString()}`)
    const now = Date.now()
    const receipt = signReceipt(outsider.identity, {
      jobId: a.jobId, jobHash: computeJobHash(a.jobId, a.containers, a.inputHash), inputHash: a.inputHash, outputHash: sha256(output),
      steps: [{ containerId: 'echo', imageDigest: LOCK_ECHO, outputHash: sha256(output), exitCode: 0 }],
      status: 'success', exitCode: 0, latencyMs: 1, startedAtMs: now - 1, finishedAtMs: now, workerId: outsider.identity.nodeId, schedulerId: a.schedulerId, error: ''
    })
    void (async () => {
      await outsider.publish(TOPICS.acks, PAYLOAD_TYPES.ack, encodeAck({ jobId: a.jobId, workerId: outsider.identity.nodeId, schedulerId: a.schedulerId, accepted: true, code: '', reason: '', atMs: Date.now(), duplicate: false, attestation: null }))
      await outsider.publish(TOPICS.receipts, PAYLOAD_TYPES.jobResult, encodeJobResult({
        receipt, sealedOutput: sealTo(a.schedulerId, output, SEAL_CONTEXTS.output(a.jobId)), outputInline: true, outputSize: output.byteLength, atMs: Date.now(), attestation: null
      }))
    })().catch(() => {})
  })
  // Without the client's consent it gets nothing, though it claims 64 free slots: the rostered worker runs them.
  for (let i = 0; i < 4; i++) {
    const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text(`plain ${i}`) })
    const done = await waitJob(gateway.client, jobId)
    t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
    t.is(Buffer.from(done.output).toString(), `plain ${i}`)
    t.is(done.workerId, worker.node.identity.nodeId)
    t.false(done.workerOnProbation)
  }
  t.deepEqual(forged, [])
  // With it, the job may go to the worker on probation, and its answer says so.
  const { jobId } = await gateway.client.submitJob({ containerId: 'echo', input: text('probation ok'), allowProbation: true })
  const done = await waitJob(gateway.client, jobId)
  t.deepEqual(forged, [jobId])
  t.is(done.workerId, outsider.identity.nodeId)
  t.true(done.workerOnProbation, 'a result from a worker on probation is marked unverified')
})

test.serial('a roster pushed to one node reaches the others without restarts: a new worker starts getting jobs', async (t) => {
  const { gateway, worker } = await privateMesh(t)
  // A worker the operator has not added yet: it holds the mesh key, so it connects, but nobody uses it.
  const newcomer = await startFor(t, { mesh: { bootstrap: [meshAddr(worker)] }, containers: [containerYaml('echo')], rostered: false })
  const newId = newcomer.node.identity.nodeId
  await eventually(() => (gateway.node.mesh!.ignored()[`${TOPICS.heartbeats}:NOT_ADMITTED`] ?? 0) > 0)
  t.is(gateway.node.mesh!.livePeer(newId), null)
  // The operator adds it and pushes the signed roster to the worker only (infra roster push).
  const env = await rosterMember(newId, ['worker'], { push: false })
  const status = await worker.control.updateRoster(env)
  t.true(status.version > 0)
  // The gateway and the newcomer take it from the mesh, without a restart.
  await eventually(() => gateway.node.roster!.rolesOf(newId).includes('worker'))
  await eventually(() => newcomer.node.roster!.version() === status.version)
  await eventually(() => gateway.node.mesh!.livePeer(newId)?.grpcAddress)
  // Now it is used: with the old worker made busy-looking by the newcomer's free slots, jobs spread to it.
  const ran = new Set<string>()
  for (let i = 0; i < 6 && !ran.has(newId); i++) {
    const done = await waitJob(gateway.client, (await gateway.client.submitJob({ containerId: 'echo', input: text(`after the update ${i}`) })).jobId)
    t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
    ran.add(done.workerId)
  }
  t.true(ran.has(newId), 'the newly rostered worker ran a job')
  // A stale roster (the one before) is refused with the reason, and changes nothing.
  const stale = await t.throwsAsync(worker.control.updateRoster(env))
  t.regex((stale as Error).message, /stale|not newer|ROSTER_STALE/i)
})
