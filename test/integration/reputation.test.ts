import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Heartbeat, NodeReputation } from '../../src/protocol/index.ts'
import { pickWorker } from '../../src/scheduler/index.ts'
import { containerYaml, eventually, meshAddr, startTestNode, text, type TestNode, type TestNodeOptions } from '../helpers/node.ts'

// Real nodes (LevelDB, Docker, gRPC, libp2p over 127.0.0.1): a scheduler+gateway, an honest worker, a
// worker whose echo alters its output, and three validators. The scheduler records what it sees of
// the workers, is stopped and started again on the same data dir, and must still know it. One mesh
// shared by these serial tests (each well under ava's 2 min of silence), stopped after the last.

const echo = containerYaml('echo', { deterministic: true })
// Same image and digest (so it passes the gateway's pin check), another command: a tampering worker.
const cheat = containerYaml('echo', { deterministic: true, command: ['sh', '-c', 'cat; echo tampered'] })
const verified = { method: 'reexecute' as const, validators: 1, quorum: 1 }

const run: {
  nodes: TestNode[]
  dir: string
  gateway?: TestNode
  workers: TestNode[]
  validators: TestNode[]
  cheatId: string
  honestId: string
  before: NodeReputation[]
} = { nodes: [], dir: '', workers: [], validators: [], cheatId: '', honestId: '', before: [] }

test.after.always(async () => {
  // Both runs of the scheduler share one data dir: stop every node before any dir goes.
  await Promise.all(run.nodes.map(async (n) => { await n.stop() }))
  await Promise.all([...new Set([...run.nodes.map((n) => n.dir), run.dir])].filter((d) => d !== '').map(async (d) => { await rm(d, { recursive: true, force: true }) }))
})

async function start (opts: TestNodeOptions): Promise<TestNode> {
  const n = await startTestNode(opts)
  run.nodes.push(n)
  return n
}

function gatewayOpts (bootstrap: string[]): TestNodeOptions {
  return { dir: run.dir, node: { roles: ['scheduler', 'gateway'] }, containers: [echo], mesh: { bootstrap } }
}

async function runVerified (gateway: TestNode, input: string): Promise<Awaited<ReturnType<TestNode['client']['runJob']>>> {
  return await gateway.client.runJob({ containerId: 'echo', input: text(input), deadlineMs: 100_000, verification: verified }, { timeoutMs: 100_000 + 10_000 })
}

const byId = (nodes: NodeReputation[]): NodeReputation[] => [...nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId))

test.serial('a mesh of a scheduler+gateway, a cheating and an honest worker, and three validators', async (t) => {
  run.dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-rep-gateway-'))
  const gateway = await start(gatewayOpts([]))
  const join = { bootstrap: [meshAddr(gateway)] }
  // The cheat has more free slots, so it is first in line until its record keeps it out.
  run.workers = await Promise.all([[cheat, 2], [echo, 1]].map(async ([c, concurrency]) => await start({ mesh: join, containers: [c as Record<string, unknown>], jobs: { concurrency } })))
  // Three: the disputed job runs again checked by a validator that did not judge the disputed result.
  run.validators = await Promise.all([0, 1, 2].map(async () => await start({ mesh: join, node: { roles: ['validator'] }, containers: [echo] })))
  for (const n of [...run.workers, ...run.validators]) await eventually(() => gateway.node.mesh?.livePeer(n.node.identity.nodeId)?.grpcAddress, 60_000)
  run.gateway = gateway
  run.cheatId = run.workers[0]!.node.identity.nodeId
  run.honestId = run.workers[1]!.node.identity.nodeId
  t.pass()
})

test.serial('a scheduler records reputation: the cheat loses a dispute and is excluded, the honest worker counts successes', async (t) => {
  const gateway = run.gateway
  if (gateway === undefined) return t.fail('the mesh did not start')
  // The first job goes to the cheat and is disputed: the validator's re-run (q = 1) is the certified
  // result. The cheat gets no more; the other two go to the honest worker.
  for (let i = 0; i < 3; i++) {
    const job = await runVerified(gateway, `truth ${i}`)
    t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
    t.is(Buffer.from(job.output).toString(), `truth ${i}`)
    t.not(job.workerId, run.cheatId)
    if (i > 0) t.is(job.workerId, run.honestId)
    if (i === 0) t.regex(job.verificationReason, new RegExp(`after 1 disputed result\\(s\\) from ${run.cheatId}`))
    else t.false(job.history.some((h) => h.detail.includes(run.cheatId)), job.history.map((h) => h.detail).join(' | '))
  }
  const rep = byId((await gateway.control.getReputation()).nodes)
  const cheatRecord = rep.find((r) => r.nodeId === run.cheatId)
  const honestRecord = rep.find((r) => r.nodeId === run.honestId)
  t.is(cheatRecord?.disputesLost, 1)
  t.is(cheatRecord?.exclusions, 1)
  t.true((cheatRecord?.excludedUntilMs ?? 0) > Date.now())
  t.is(honestRecord?.successes, 2)
  t.is(honestRecord?.disputesLost, 0)
  t.true((honestRecord?.ackLatencyMs ?? 0) > 0)
  run.before = rep
})

test.serial('stopped and started again on the same data dir, the scheduler shows the same records', async (t) => {
  const first = run.gateway
  if (first === undefined || run.before.length === 0) return t.fail('the first run did not record reputation')
  const firstId = first.node.identity.nodeId
  await first.stop()
  run.gateway = undefined
  // The same scheduler (same data dir, same identity) comes back and finds the mesh through a worker.
  const second = await start(gatewayOpts(run.workers.map(meshAddr)))
  run.gateway = second
  t.is(second.node.identity.nodeId, firstId)
  // Read before any job could add to them: exactly what the first run recorded.
  t.deepEqual(byId((await second.control.getReputation()).nodes), run.before)
})

test.serial('after the restart the cheat is still excluded and a new job goes to the honest worker', async (t) => {
  const gateway = run.gateway
  if (gateway === undefined) return t.fail('the scheduler did not restart')
  for (const w of [...run.workers, ...run.validators]) await eventually(() => gateway.node.mesh?.livePeer(w.node.identity.nodeId)?.grpcAddress, 60_000)
  // Both workers are live and idle, and the cheat has more free slots: only its record keeps it out.
  const heartbeats = await eventually(() => {
    const hbs = run.workers.map((w) => gateway.node.mesh?.livePeer(w.node.identity.nodeId))
    return hbs[0]?.freeSlots === 2 && hbs[1]?.freeSlots === 1 && hbs as Heartbeat[]
  }, 60_000)
  t.is(pickWorker(heartbeats, ['echo'], new Set())?.nodeId, run.cheatId, 'without its record the cheat would be picked')
  for (let i = 0; i < 2; i++) {
    const job = await runVerified(gateway, `after restart ${i}`)
    t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
    t.is(Buffer.from(job.output).toString(), `after restart ${i}`)
    t.is(job.workerId, run.honestId)
    t.false(job.history.some((h) => h.detail.includes(run.cheatId)), job.history.map((h) => h.detail).join(' | '))
  }
  const rep = (await gateway.control.getReputation()).nodes
  const before = run.before.find((r) => r.nodeId === run.cheatId)
  t.deepEqual(rep.find((r) => r.nodeId === run.cheatId), before, 'nothing new recorded of the cheat')
  t.true((before?.excludedUntilMs ?? 0) > Date.now())
  t.is(rep.find((r) => r.nodeId === run.honestId)?.successes, 4)
})
