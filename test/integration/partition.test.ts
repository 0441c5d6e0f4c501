import test, { type ExecutionContext } from 'ava'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { verifyReceipt } from '../../src/receipt/index.ts'
import { rendezvousOrder } from '../../src/rendezvous.ts'
import { containerYaml, eventually, meshAddr, startFor as start, text, waitJob, type TestNode } from '../helpers/node.ts'

// A mesh split in two by cutting connections (each node blocks the other side: no connection either
// way, so no gossip path), real nodes on 127.0.0.1: each side with a scheduler and a worker keeps
// serving, and after the blocks are lifted the nodes find each other again without a restart.

const PARTITION_MS = 10 * 60_000

async function gatewayNode (t: ExecutionContext, bootstrap?: TestNode): Promise<TestNode> {
  return await start(t, { mesh: bootstrap === undefined ? {} : { bootstrap: [meshAddr(bootstrap)] }, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo')] })
}

async function workerNode (t: ExecutionContext, bootstrap: TestNode): Promise<TestNode> {
  return await start(t, { mesh: { bootstrap: [meshAddr(bootstrap)] }, node: { roles: ['worker'] } })
}

const id = (n: TestNode): string => n.node.identity.nodeId
const sees = (from: TestNode, to: TestNode): boolean => from.node.mesh?.livePeer(id(to)) != null
const connected = (a: TestNode, b: TestNode): boolean => a.node.mesh!.libp2p().getConnections().some((c) => c.remotePeer.toString() === id(b))

async function runOn (t: ExecutionContext, gateway: TestNode, input: string, jobId?: string): Promise<string> {
  // As a client would: NO_WORKER (UNAVAILABLE) while a busy machine delays a heartbeat is retried.
  const submitted = await eventually(async () => {
    try {
      return (await gateway.client.submitJob({ containerId: 'echo', input: text(input), ...(jobId !== undefined ? { jobId } : {}) })).jobId
    } catch (err) {
      if ((err as { code?: number }).code === 14) return undefined
      throw err
    }
  }, 30_000)
  const done = await waitJob(gateway.client, submitted)
  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(Buffer.from(done.output).toString(), input)
  const verdict = verifyReceipt(envelopeFromWire(done.receipt!), { output: new Uint8Array(done.output) })
  if (!verdict.valid) throw new Error('the receipt does not verify')
  return verdict.receipt.workerId
}

/** A job id whose placement (rendezvous over the two workers) puts it on `worker` first. */
function keyPlacedOn (worker: string, workers: string[], prefix: string): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}-${i}`
    if (rendezvousOrder(key, workers)[0] === worker) return key
  }
}

test('a split mesh keeps serving on both sides and heals without a restart', async (t) => {
  const gw1 = await gatewayNode(t)
  const gw2 = await gatewayNode(t, gw1)
  const w1 = await workerNode(t, gw1)
  const w2 = await workerNode(t, gw1)
  const all = [gw1, gw2, w1, w2]
  await eventually(() => sees(gw1, w1) && sees(gw1, w2) && sees(gw2, w1) && sees(gw2, w2) && sees(gw1, gw2), 60_000)
  // Every worker keeps a direct connection to every gateway (the roster's assigning nodes), so each
  // side's gateway hears its worker without a path through the other side.
  await eventually(() => connected(w1, gw1) && connected(w2, gw2) && connected(w1, gw2) && connected(w2, gw1), 60_000)

  const sideA = [gw1, w1]
  const sideB = [gw2, w2]
  for (const [mine, theirs] of [[sideA, sideB], [sideB, sideA]] as const) {
    for (const a of mine) for (const b of theirs) await a.node.mesh!.block(id(b), PARTITION_MS, 'test partition')
  }
  // Heartbeats from across the split stop arriving: each gateway sees only its own side's worker.
  // (each side still seeing its own worker: heartbeats on a busy machine may lag a moment).
  await eventually(() => !sees(gw1, w2) && !sees(gw2, w1) && !sees(gw1, gw2) && sees(gw1, w1) && sees(gw2, w2), 60_000)
  for (const n of all) {
    const connected = n.node.mesh!.libp2p().getConnections().map((c) => c.remotePeer.toString())
    const other = sideA.includes(n) ? sideB : sideA
    t.false(other.some((o) => connected.includes(id(o))), 'no connection crosses the split')
  }

  // Both sides serve, each on its own worker.
  for (let i = 0; i < 3; i++) {
    t.is(await runOn(t, gw1, `side A ${i}`), id(w1))
    t.is(await runOn(t, gw2, `side B ${i}`), id(w2))
  }

  // Heal: the blocks are lifted and nobody restarts; the kept connections are redialled.
  for (const a of all) for (const b of all) if (a !== b) a.node.mesh!.unblock(id(b))
  await eventually(() => sees(gw1, w2) && sees(gw2, w1) && sees(gw1, gw2), 90_000)

  // Across the old split: a job placed on the other side's worker runs there.
  const workers = [id(w1), id(w2)]
  t.is(await runOn(t, gw1, 'across A→B', keyPlacedOn(id(w2), workers, 'heal-a')), id(w2))
  t.is(await runOn(t, gw2, 'across B→A', keyPlacedOn(id(w1), workers, 'heal-b')), id(w1))
})
