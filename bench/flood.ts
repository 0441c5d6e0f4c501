/**
 * Issue 9's attack, measured: a client's job through the gateway of a devnet (separate node
 * processes on loopback, a warm echo container so container time is negligible), without a flood
 * and during a flood of ~1,000 valid self-signed heartbeats/s from one outsider that holds the
 * mesh key (a leaked key, or a member removed from the roster) and connects to every node. Paired:
 * each round is a quiet phase, a control phase (the same outsider flooding a sink of its own: its
 * CPU on this shared machine without the mesh receiving anything) and a flood phase, of the same
 * length, back to back. Each flood phase is by a fresh outsider (a new key), so every one includes
 * the seconds before the node bans it: the worst case for the node, not the steady state after a ban.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { multiaddr } from '@multiformats/multiaddr'
import { connectNode, type NodeClient } from '../src/api/client.ts'
import { startDevnet, type DevnetNode } from '../src/cli/devnet.ts'
import { encodeEnvelope, signEnvelope } from '../src/envelope/index.ts'
import { identityFromSeed } from '../src/identity/index.ts'
import type { Identity } from '../src/identity/types.ts'
import { encodeHeartbeat, PAYLOAD_TYPES, TOPICS } from '../src/protocol/index.ts'
import { cpuMs, settle } from './proc.ts'
import { summarise, type Summary } from './stats.ts'
import { warmEcho, WARM_ECHO_ID } from './warm-echo.ts'
import { outsiderLibp2p, type OutsiderLibp2p } from '../test/helpers/outsider.ts'
import type { BenchContext } from './run.ts'

export interface FloodResult {
  nodes: number
  pairs: number
  phaseSeconds: number
  /** Heartbeats the outsiders published per second of flood, on average (what they managed, not what arrived). */
  floodRate: number
  /** Client-observed submit → result, jobs back to back: no outsider; the outsider flooding a sink of its own (control); flooding the mesh. */
  quiet: Summary
  control: Summary
  flood: Summary
  /** flood / quiet. */
  ratioP50: number
  ratioP99: number
  /** Median over the pairs of (flood phase p50 / quiet phase p50). */
  medianPairedRatio: number
  /** flood / control: what the mesh pays beyond the outsider's mere presence on this machine's cores. */
  controlRatioP50: number
  controlRatioP99: number
  /** CPU per second of phase, ms (1000 = one core): the gateway; the bench process (its client, and the outsider's thread); the whole machine. */
  gatewayCpuMsPerSecond: { quiet: number, control: number, flood: number }
  benchCpuMsPerSecond: { quiet: number, control: number, flood: number }
  machineCpuMsPerSecond: { quiet: number, control: number, flood: number }
  /** Outsiders the gateway banned (of `pairs`), bans in all (more than `banned`: one was let back in and banned again), and how long after its flood began. */
  banned: number
  bans: number
  banAfterMs: Summary
  /** Redials by the outsiders of nodes that had dropped them (the gateway, once it banned them). */
  redials: number
  failed: { quiet: number, control: number, flood: number }
}

/** The flood's rate, heartbeats/s; published in ticks, catching up on what a slow tick missed. */
const FLOOD_PER_SECOND = 1_000
const TICK_MS = 10
/** At most this many per tick, so catching up after a stall does not starve the bench's own client. */
const MAX_PER_TICK = 100
/** A persistent attacker redials whatever dropped it this often. */
const REDIAL_MS = 1_000

/** Busy CPU time of the whole machine so far, ms (from /proc/stat: all but idle and iowait; ticks are 10 ms). */
async function machineCpuMs (): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? ''
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const busy = f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0)
  return busy * 10
}

const ownCpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** CPU spent by the gateway, this process and the machine while `fn` runs. */
async function measured<T> (gatewayPid: number | undefined, fn: () => Promise<T>): Promise<{ value: T, gateway: number, bench: number, machine: number }> {
  const [g0, b0, m0] = [await cpuMs(gatewayPid), ownCpuMs(), await machineCpuMs()]
  const value = await fn()
  return { value, gateway: await cpuMs(gatewayPid) - g0, bench: ownCpuMs() - b0, machine: await machineCpuMs() - m0 }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function heartbeat (id: Identity, atMs: number): Uint8Array {
  return encodeEnvelope(signEnvelope(id, PAYLOAD_TYPES.heartbeat, encodeHeartbeat({
    nodeId: id.nodeId, atMs, roles: ['worker'], containers: [WARM_ECHO_ID], cpuCores: 64, memoryBytes: 2 ** 40, gpus: 8, grpcAddress: '', freeSlots: 64, stats: null, intervalMs: 1000, rosterVersion: 0
  })))
}

interface FloodStats { sent: number, seconds: number, redials: number }
interface Flood { stop(): Promise<FloodStats> }

/** A plain libp2p + gossipsub node from the public packages (test/helpers/outsider.ts), flood-publishing: every heartbeat to every subscriber it is connected to. */
async function plainNode (seed: Uint8Array, psk: Uint8Array | undefined): Promise<OutsiderLibp2p> {
  return await outsiderLibp2p(seed, { networkKey: psk, floodPublish: true })
}

/**
 * One outsider: connects to every target, floods until stopped, redials what drops it. `sink`: the
 * control: the same outsider flooding a plain gossipsub node of its own instead of the mesh (the
 * same work for the outsider, and the sink verifies every message as the gateway would until it
 * bans), so the attacker's own CPU on this shared machine is told apart from what the mesh pays.
 */
async function outsider (targets: string[], psk: Uint8Array | undefined, sink: boolean): Promise<Flood> {
  const seed = randomBytes(32)
  const id = identityFromSeed(seed)
  const sinkNode = sink ? await plainNode(randomBytes(32), psk) : undefined
  if (sinkNode !== undefined) {
    await sinkNode.start()
    sinkNode.services.pubsub.subscribe(TOPICS.heartbeats)
  }
  const node = await plainNode(seed, psk)
  await node.start()
  const addrs = sinkNode !== undefined ? sinkNode.getMultiaddrs().slice(0, 1) : targets.map((a) => multiaddr(a))
  let redials = 0
  const everConnected = new Set<string>()
  const dialAll = async (): Promise<void> => {
    await Promise.all(addrs.map(async (a) => {
      const peer = a.getPeerId() ?? ''
      if (node.getConnections().some((c) => c.remotePeer.toString() === peer)) return
      if (everConnected.has(peer)) redials++
      try {
        await node.dial(a, { signal: AbortSignal.timeout(5_000) })
        everConnected.add(peer)
      } catch {}
    }))
  }
  await dialAll()
  // Until the gateway knows what it is subscribed to, publishes would go nowhere.
  const until = Date.now() + 10_000
  while (Date.now() < until && node.services.pubsub.getSubscribers(TOPICS.heartbeats).length === 0) await sleep(50)

  let running = true
  let sent = 0
  const started = performance.now()
  const loop = (async () => {
    let atMs = Date.now()
    let lastDial = Date.now()
    while (running) {
      const due = Math.min(MAX_PER_TICK, Math.floor((performance.now() - started) * FLOOD_PER_SECOND / 1000) - sent)
      for (let i = 0; i < due; i++) {
        atMs = Math.max(Date.now(), atMs + 1)
        await node.services.pubsub.publish(TOPICS.heartbeats, heartbeat(id, atMs)).catch(() => {})
        sent++
      }
      if (Date.now() - lastDial >= REDIAL_MS) {
        lastDial = Date.now()
        void dialAll()
      }
      await sleep(TICK_MS)
    }
  })()
  return {
    async stop () {
      running = false
      await loop
      const seconds = (performance.now() - started) / 1000
      await node.stop()
      await sinkNode?.stop()
      return { sent, seconds, redials }
    }
  }
}

const OUTSIDER = 'inframind-bench-flood-outsider'

/**
 * The outsider runs in a worker thread: in the bench's own thread its signing and publishing would
 * delay the client's responses, and the bench would measure itself rather than the gateway.
 */
async function startFlood (targets: string[], psk: Uint8Array | undefined, sink = false): Promise<Flood> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: OUTSIDER, targets, psk, sink } })
  const next = async <T>(): Promise<T> => await new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  await next<'ready'>()
  return {
    async stop () {
      const stats = next<FloodStats>()
      worker.postMessage('stop')
      const result = await stats
      await worker.terminate()
      return result
    }
  }
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === OUTSIDER) {
  const { targets, psk, sink } = workerData as { targets: string[], psk?: Uint8Array, sink: boolean }
  void outsider(targets, psk, sink).then((flood) => {
    parentPort?.once('message', () => { void flood.stop().then((stats) => parentPort?.postMessage(stats)) })
    parentPort?.postMessage('ready')
  })
}

/** Jobs back to back for `ms`: each one's submit → result latency; failures counted apart. */
async function jobsFor (client: NodeClient, ms: number, label: string): Promise<{ latencies: number[], failed: number }> {
  const latencies: number[] = []
  let failed = 0
  const until = performance.now() + ms
  let i = 0
  while (performance.now() < until) {
    const t0 = performance.now()
    try {
      const { jobId } = await client.submitJob({ containerId: WARM_ECHO_ID, input: new TextEncoder().encode(`${label} ${i++}`) })
      let ok = false
      for await (const e of client.watchJob(jobId, { timeoutMs: 30_000 })) if (e.job !== null) ok = e.job.state === 'JOB_STATE_SUCCESS'
      if (ok) latencies.push(performance.now() - t0)
      else failed++
    } catch {
      failed++
    }
  }
  return { latencies, failed }
}

/** Every ban the gateway logged (peer, when): the bench reads them from its log, written at warn. */
async function bansInLog (gateway: DevnetNode): Promise<Array<{ peer: string, at: number }>> {
  const out: Array<{ peer: string, at: number }> = []
  const log = await readFile(gateway.logFile, 'utf8').catch(() => '')
  for (const line of log.split('\n')) {
    if (!line.includes('peer banned')) continue
    try {
      const entry = JSON.parse(line) as { peer?: string, time?: number }
      if (entry.peer !== undefined) out.push({ peer: entry.peer, at: entry.time ?? 0 })
    } catch {}
  }
  return out
}

export async function benchFlood (ctx: BenchContext, opts: { nodes: number, pairs: number, phaseSeconds: number }): Promise<FloodResult> {
  process.stderr.write(`bench: flood, ${opts.nodes} nodes, ${opts.pairs} pairs of ${opts.phaseSeconds} s phases\n`)
  const echo = await warmEcho(ctx.root)
  const baseDir = path.join(ctx.tmp, 'flood')
  const net = await startDevnet({
    nodes: opts.nodes,
    baseDir,
    warmOnFirstWorker: false,
    workerContainers: { count: Math.min(3, opts.nodes - 2), containers: [echo] },
    // The gateway logs each ban at warn (with the peer and the time): that is how the bench sees them.
    logLevel: 'warn',
    progress: () => {}
  })
  const client = connectNode(net.gateway.publicAddr)
  try {
    const ready = Date.now() + 90_000
    for (;;) {
      const { latencies } = await jobsFor(client, 1, 'warm-up')
      if (latencies.length > 0) break
      if (Date.now() > ready) throw new Error('the warm echo container did not come up on the flood bench devnet')
      await sleep(500)
    }
    await settle(net.nodes.map((n) => n.child.pid))
    const keyFile = path.join(baseDir, 'mesh.key')
    const psk = existsSync(keyFile) ? await readFile(keyFile) : undefined
    const targets = net.nodes.map((n) => n.meshAddr).filter((a) => a.includes('/p2p/'))
    const gatewayPid = net.gateway.child.pid

    type Phase = 'quiet' | 'control' | 'flood'
    const phases: Phase[] = ['quiet', 'control', 'flood']
    const latencies: Record<Phase, number[]> = { quiet: [], control: [], flood: [] }
    const failed: Record<Phase, number> = { quiet: 0, control: 0, flood: 0 }
    const cpu = { gateway: { quiet: 0, control: 0, flood: 0 }, bench: { quiet: 0, control: 0, flood: 0 }, machine: { quiet: 0, control: 0, flood: 0 } }
    const paired: number[] = []
    const floodStarts: number[] = []
    let sent = 0
    let floodSeconds = 0
    let redials = 0
    const pct = (ms: number): string => `${(ms / opts.phaseSeconds / 10).toFixed(0)}%`
    for (let p = 0; p < opts.pairs; p++) {
      const p50: Partial<Record<Phase, number>> = {}
      const line: string[] = []
      for (const phase of phases) {
        const attacker = phase === 'quiet' ? undefined : await startFlood(targets, psk, phase === 'control')
        // From its first heartbeat on (its thread's start-up and dials are not the flood).
        if (phase === 'flood') floodStarts.push(Date.now())
        const m = await measured(gatewayPid, async () => await jobsFor(client, opts.phaseSeconds * 1000, phase))
        const stats = await attacker?.stop()
        if (phase === 'flood' && stats !== undefined) {
          sent += stats.sent
          floodSeconds += stats.seconds
          redials += stats.redials
        }
        latencies[phase].push(...m.value.latencies)
        failed[phase] += m.value.failed
        cpu.gateway[phase] += m.gateway
        cpu.bench[phase] += m.bench
        cpu.machine[phase] += m.machine
        p50[phase] = summarise(m.value.latencies).p50
        line.push(`${phase} p50 ${p50[phase]!.toFixed(1)} ms (${m.value.latencies.length} jobs${stats !== undefined ? `, ${(stats.sent / stats.seconds).toFixed(0)} heartbeats/s` : ''}; CPU gateway ${pct(m.gateway)}, bench ${pct(m.bench)}, machine ${pct(m.machine)})`)
      }
      if (Number.isFinite(p50.flood) && Number.isFinite(p50.quiet)) paired.push(p50.flood! / p50.quiet!)
      process.stderr.write(`bench: flood ${p + 1}/${opts.pairs}: ${line.join('; ')}\n`)
    }
    const bans = await bansInLog(net.gateway)
    // Each outsider's first ban belongs to the flood phase that began last before it.
    const firstBans = new Map<string, number>()
    for (const b of bans) if (!firstBans.has(b.peer)) firstBans.set(b.peer, b.at)
    const banAfter = [...firstBans.values()].map((at) => at - (floodStarts.filter((s) => s <= at).pop() ?? at))
    const qs = summarise(latencies.quiet)
    const cs = summarise(latencies.control)
    const fs = summarise(latencies.flood)
    const sortedPaired = [...paired].sort((a, b) => a - b)
    const seconds = opts.pairs * opts.phaseSeconds
    const perSecond = (x: Record<Phase, number>): Record<Phase, number> => ({ quiet: x.quiet / seconds, control: x.control / seconds, flood: x.flood / seconds })
    return {
      nodes: opts.nodes,
      pairs: opts.pairs,
      phaseSeconds: opts.phaseSeconds,
      floodRate: sent / Math.max(1e-9, floodSeconds),
      quiet: qs,
      control: cs,
      flood: fs,
      ratioP50: fs.p50 / qs.p50,
      ratioP99: fs.p99 / qs.p99,
      medianPairedRatio: sortedPaired[Math.floor(sortedPaired.length / 2)] ?? Number.NaN,
      controlRatioP50: fs.p50 / cs.p50,
      controlRatioP99: fs.p99 / cs.p99,
      gatewayCpuMsPerSecond: perSecond(cpu.gateway),
      benchCpuMsPerSecond: perSecond(cpu.bench),
      machineCpuMsPerSecond: perSecond(cpu.machine),
      banned: firstBans.size,
      bans: bans.length,
      banAfterMs: summarise(banAfter),
      redials,
      failed
    }
  } finally {
    client.close()
    await net.stop()
  }
}
