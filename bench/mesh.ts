/**
 * Mesh latency: client → gateway/scheduler → worker → signed receipt → client, on devnets of separate
 * node processes on loopback, with a trivial warm container so container time is (almost) nothing;
 * beside raw gossipsub propagation among the same number of plain libp2p nodes, measured in the same run.
 */
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub, type GossipSub } from '@chainsafe/libp2p-gossipsub'
import { identify } from '@libp2p/identify'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { connectNode } from '../src/api/client.ts'
import { startDevnet } from '../src/cli/devnet.ts'
import { decodeReceipt } from '../src/receipt/index.ts'
import { fastMessageId, MESH_DEGREE } from '../src/mesh/libp2p.ts'
import { summarise, type Summary } from './stats.ts'
import { cpuMs, rssMiB, settle } from './proc.ts'
import { warmEcho } from './warm-echo.ts'
import type { BenchContext } from './run.ts'

export interface MeshSizeResult {
  nodes: number
  jobs: number
  /** Client-observed submit → result. */
  endToEnd: Summary
  /** endToEnd minus the worker's own run time (its receipt's latency_ms): the mesh's share. */
  meshOverhead: Summary
  /** Time for one gossip message to reach every other node, plain gossipsub. */
  rawGossip: Summary
  rssMiB: { gateway: number, workerMean: number, validator: number }
  /** Time the fresh mesh took to settle before measuring (see settle()). */
  settledAfterMs: number
  /** Jobs that failed (not counted in the latencies). */
  failed: number
  /** Jobs per second the closed loop reached (one job at a time). */
  jobsPerSecond: number
  /** CPU time per job (user + system, idle work included), summed over every node process. */
  meshCpuMsPerJob: number
}

/** Connections per node in the raw gossip baseline (beyond 11 nodes). */
const RAW_LINKS = 10

/**
 * Plain libp2p + gossipsub nodes in this process, connected on a ring (every pair in small meshes), with the node's own gossipsub
 * settings (mesh degree, fast message id) but no envelopes or validators: the floor the node's mesh
 * path is compared with. All nodes share this process's one thread, so a message's propagation to
 * n-1 peers includes each peer's processing in turn.
 */
async function rawGossip (n: number, messages: number): Promise<Summary> {
  const nodes: Array<Libp2p<{ pubsub: GossipSub }>> = []
  const topic = 'inframind/bench/1'
  try {
    for (let i = 0; i < n; i++) {
      nodes.push(await createLibp2p({
        privateKey: await generateKeyPairFromSeed('Ed25519', randomBytes(32)) as never,
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, floodPublish: false, fastMsgIdFn: fastMessageId, ...MESH_DEGREE }) as never },
        // As the node's own mesh: many peers connect from 127.0.0.1 at once.
        connectionManager: { inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 1000 }
      }) as Libp2p<{ pubsub: GossipSub }>)
    }
    for (const node of nodes) node.services.pubsub.subscribe(topic)
    // Each node dials the next RAW_LINKS / 2 on a ring: every pair up to 11 nodes, ~10 peers each
    // beyond (with every pair connected, 25 nodes in one process never formed a gossip mesh).
    for (const [i, node] of nodes.entries()) {
      for (let k = 1; k <= Math.min(RAW_LINKS / 2, Math.floor((n - 1) / 2) + 1); k++) {
        const other = nodes[(i + k) % n]!
        if (other !== node && node.getConnections(other.peerId).length === 0) await node.dial(other.getMultiaddrs()[0]!)
      }
    }
    // Let the mesh form: every node knows its peers' subscriptions (heartbeats graft the mesh).
    const until = Date.now() + 20_000
    while (Date.now() < until && nodes.some((x) => x.services.pubsub.getSubscribers(topic).length < x.getConnections().length)) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const times: number[] = []
    let lost = 0
    for (let m = 0; m < messages; m++) {
      const id = `${m}:${randomBytes(4).toString('hex')}`
      const t0 = performance.now()
      const arrived = nodes.slice(1).map((node) => new Promise<void>((resolve) => {
        const on = (evt: CustomEvent<{ data: Uint8Array }>): void => {
          if (new TextDecoder().decode(evt.detail.data) === id) {
            node.services.pubsub.removeEventListener('message', on as never)
            resolve()
          }
        }
        node.services.pubsub.addEventListener('message', on as never)
      }))
      await nodes[0]!.services.pubsub.publish(topic, new TextEncoder().encode(id))
      const complete = await Promise.race([Promise.all(arrived).then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000))])
      // A message that never reached every peer is not a propagation time; count it apart.
      if (complete) times.push(performance.now() - t0)
      else lost++
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    if (lost > 0) process.stderr.write(`bench: raw gossip: ${lost} of ${messages} messages did not reach every peer within 2 s\n`)
    return summarise(times)
  } finally {
    await Promise.all(nodes.map(async (x) => await x.stop()))
  }
}

export async function benchMesh (ctx: BenchContext, opts: { sizes: number[], jobs: number }): Promise<MeshSizeResult[]> {
  const echo = await warmEcho(ctx.root)
  const results: MeshSizeResult[] = []
  for (const n of opts.sizes) {
    process.stderr.write(`bench: mesh of ${n} nodes\n`)
    const net = await startDevnet({
      nodes: n,
      baseDir: path.join(ctx.tmp, `mesh-${n}`),
      warmOnFirstWorker: false,
      // A few warm workers are enough to serve; every node still takes part in the gossip mesh.
      workerContainers: { count: Math.min(3, n - 2), containers: [echo] },
      logLevel: 'warn',
      progress: () => {}
    })
    const client = connectNode(net.gateway.publicAddr)
    try {
      // Wait until the warm servers are up and announced (first job succeeds).
      const ready = Date.now() + 90_000
      for (;;) {
        try {
          const { jobId } = await client.submitJob({ containerId: 'echo-warm', input: new TextEncoder().encode('warm-up') })
          let ok = false
          for await (const e of client.watchJob(jobId, { timeoutMs: 30_000 })) if (e.job !== null) ok = e.job.state === 'JOB_STATE_SUCCESS'
          if (ok) break
        } catch {}
        if (Date.now() > ready) throw new Error(`warm containers did not come up on the ${n}-node mesh`)
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
      const settledAfterMs = await settle(net.nodes.map((x) => x.child.pid))
      const e2e: number[] = []
      const overhead: number[] = []
      const cpuBefore = await Promise.all(net.nodes.map(async (x) => await cpuMs(x.child.pid)))
      const loopStart = performance.now()
      let failed = 0
      for (let i = 0; i < opts.jobs; i++) {
        const t0 = performance.now()
        const { jobId } = await client.submitJob({ containerId: 'echo-warm', input: new TextEncoder().encode(`job ${i}`) })
        let workerMs: number | undefined
        for await (const e of client.watchJob(jobId, { timeoutMs: 30_000 })) {
          if (e.job === null) continue
          if (e.job.state === 'JOB_STATE_SUCCESS') workerMs = decodeReceipt(new Uint8Array(e.job.receipt!.payload)).latencyMs
          else process.stderr.write(`bench: mesh job failed: ${e.job.error}\n`)
        }
        // A failed job has no latency to report; it is counted apart.
        if (workerMs === undefined) {
          failed++
          continue
        }
        const total = performance.now() - t0
        e2e.push(total)
        overhead.push(Math.max(0, total - workerMs))
      }
      const loopSeconds = (performance.now() - loopStart) / 1000
      const cpuAfter = await Promise.all(net.nodes.map(async (x) => await cpuMs(x.child.pid)))
      const meshCpuMs = cpuAfter.reduce((sum, after, i) => sum + after - cpuBefore[i]!, 0)
      const workers = net.nodes.filter((x) => x.roles.includes('worker'))
      const workerRss = await Promise.all(workers.map(async (w) => await rssMiB(w.child.pid)))
      results.push({
        nodes: n,
        jobs: opts.jobs,
        endToEnd: summarise(e2e),
        meshOverhead: summarise(overhead),
        rawGossip: { p50: 0, p90: 0, p99: 0, mean: 0, min: 0, max: 0, n: 0 },
        settledAfterMs,
        failed,
        jobsPerSecond: opts.jobs / loopSeconds,
        meshCpuMsPerJob: meshCpuMs / opts.jobs,
        rssMiB: {
          gateway: await rssMiB(net.gateway.child.pid),
          workerMean: workerRss.reduce((a, b) => a + b, 0) / Math.max(1, workerRss.length),
          validator: await rssMiB(net.nodes[net.nodes.length - 1]!.child.pid)
        }
      })
    } finally {
      client.close()
      await net.stop()
    }
    results[results.length - 1]!.rawGossip = await rawGossip(n, Math.min(100, opts.jobs))
  }
  return results
}
