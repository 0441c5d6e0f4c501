/**
 * Subscriptions at scale, measured: N recurring subscriptions (redundancy 1) on a 5-node devnet of
 * real processes (2 scheduler+gateways, 2 workers serving a trivial warm container, 1 validator that
 * is also the archive), run for several full periods once every one is active.
 *
 * Delivered on time: every (subscription, interval) that lies entirely inside the measured window
 * should have exactly one response accepted inside that interval, read back after the window from
 * both gateways' ListSubscriptions (union: a response one gateway holds and the other has not
 * replicated yet still counts, and two different ones for one interval count as a double delivery).
 *
 * Cost: each gateway's CPU (user + system from /proc) per period over the window, against the same
 * gateway's CPU over one period before any subscription existed (the same run's baseline), and RSS
 * before creating and at the end.
 */
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { connectControl, connectNode } from '../src/api/client.ts'
import { startDevnet, type Devnet, type DevnetNode } from '../src/cli/devnet.ts'
import { inframindClient, type InframindClient, type SubscriptionStatus } from '../src/client/index.ts'
import { identityFromSeed } from '../src/identity/index.ts'
import type { Identity } from '../src/identity/types.ts'
import { NODE_FILE } from '../src/types.ts'
import { cpuMs, machineCpuMs, rssMiB, settle } from './proc.ts'
import { until } from './reassign.ts'
import { summarise, type Summary } from './stats.ts'
import { warmEcho, WARM_ECHO_ID } from './warm-echo.ts'
import type { BenchContext } from './run.ts'

/** 2 scheduler+gateways, 2 workers, 1 validator (also the archive). */
const NODES = 5
const GATEWAYS = 2
const WORKERS = 2
/** Subscriptions per owner: distinct owners, each with its own nonces, and a ListSubscriptions page per owner stays small. */
const PER_OWNER = 50
/** CreateSubscription calls in flight at once (half on each gateway). */
const CREATE_CONCURRENCY = 32
/** Full periods measured once every subscription is active; the window is one period longer so each has at least this many whole intervals in it. */
const MEASURED_PERIODS = 3
/** After the window, before reading: the last responses' replication to the other gateway lands. */
const REPLICATION_GRACE_MS = 3_000
/** Frequency covers creation (bounded by this), the wait for active, the window and the reads. */
const RUN_BUDGET_S = 900
const READY_TIMEOUT_MS = 180_000

export interface SubscriptionsOptions { subs: number, periodS: number }

interface GatewayCost {
  name: string
  /** CPU seconds per period: idle (no subscription yet) and over the window. */
  idleCpuSPerPeriod: number
  cpuSPerPeriod: number
  rssMiBBefore: number
  rssMiBAfter: number
  /** Subscriptions whose owner (rendezvous over the live schedulers) this gateway was at the end. */
  owned: number
  /** The gateway's own counters at the end (Prometheus), for the misses' causes. */
  counters: Record<string, number>
}

/** CPU seconds per period over the window, by process group, and the whole machine's (other users included). */
export interface WindowCpu { workers: number, validator: number, bench: number, machine: number, cores: number }

export interface SubscriptionsResult {
  subs: number
  periodS: number
  frequency: number
  created: number
  createFailed: number
  createErrors: string[]
  /** First create call → last answered, and each call's latency. */
  createSeconds: number
  createLatencyMs: Summary
  windowSeconds: number
  /** (subscription, interval) pairs entirely inside the window. */
  expected: number
  onTime: number
  fraction: number
  misses: { none: number, outsideInterval: number, moreThanOne: number }
  /** Misses by the gateway owning the subscription at the end. */
  missesByOwner: Record<string, number>
  /** Responses accepted before the window's end that one gateway held and the other did not, when read (replication lag or loss). */
  heldByOneGatewayOnly: number
  gateways: GatewayCost[]
  /** The workers' counters at the end, summed. */
  workerCounters: Record<string, number>
  windowCpu: WindowCpu
  /** Sum over gateways: window minus idle CPU s per period, and window / idle. */
  cpuDeltaSPerPeriod: number
  cpuRatio: number
  /** Accept → now lateness inside the interval: how far into its interval each on-time response was accepted. */
  acceptedAfterIntervalStartMs: Summary
  settledAfterMs: number
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
const describe = (err: unknown): string => ((err as { details?: string }).details ?? (err as Error).message ?? String(err)).slice(0, 160)

/** Counters read from each node's Prometheus endpoint: the subscriptions' own, and the job outcomes behind them. */
const COUNTERS = /^inframind_(subscription_[a-z_]+_total|jobs_total|submissions_rejected_total|jobs_reassigned_total|late_results_total)(\{[^}]*\})?\s+([0-9.e+-]+)$/

/** A node's counters of COUNTERS, by short name and label values (container label left out), zeros dropped. */
async function counters (n: DevnetNode): Promise<Record<string, number>> {
  try {
    const info = JSON.parse(await readFile(path.join(n.dir, NODE_FILE), 'utf8')) as { metrics?: string }
    if (info.metrics === undefined || info.metrics === '') return {}
    const text = await (await fetch(info.metrics, { signal: AbortSignal.timeout(5_000) })).text()
    const out: Record<string, number> = {}
    for (const line of text.split('\n')) {
      const m = COUNTERS.exec(line)
      if (m === null || Number(m[3]) === 0) continue
      const labels = [...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].filter(([, k]) => k !== 'container').map(([, , v]) => v)
      const key = `${m[1]!.replace(/^subscription_/, 'sub_').replace(/_total$/, '')}${labels.length > 0 ? `{${labels.join(',')}}` : ''}`
      out[key] = (out[key] ?? 0) + Number(m[3])
    }
    return out
  } catch {
    return {}
  }
}

/** Until both gateways see both workers offering the warm container and a job runs through each. */
async function waitUntilServing (gateways: DevnetNode[]): Promise<void> {
  let last = 'nothing tried yet'
  for (const g of gateways) {
    const control = connectControl(g.controlAddr)
    const node = connectNode(g.publicAddr)
    try {
      await until(`${g.name} did not serve ${WARM_ECHO_ID} from ${WORKERS} workers (last: ${last})`, READY_TIMEOUT_MS, async () => {
        try {
          const { peers } = await control.listPeers({ timeoutMs: 2_000 })
          const offering = peers.filter((p) => p.alive && p.containers.includes(WARM_ECHO_ID) && p.rosterRoles.includes('worker')).length
          if (offering < WORKERS) { last = `${offering} workers offer it`; return undefined }
          const job = await node.runJob({ containerId: WARM_ECHO_ID, input: new TextEncoder().encode('ready?'), deadlineMs: 10_000 }, { timeoutMs: 15_000 })
          if (job.state !== 'JOB_STATE_SUCCESS') { last = `${job.state} ${job.errorCode}`; return undefined }
          return true
        } catch (err) {
          last = describe(err)
          return undefined
        }
      }, 500)
    } finally {
      control.close()
      node.close()
    }
  }
}

/** Creates every subscription, CREATE_CONCURRENCY at a time, alternating gateways; returns the statuses in hand. */
async function createAll (clients: InframindClient[], owners: Identity[], n: number, spec: { periodS: number, frequency: number }) {
  const statuses: SubscriptionStatus[] = []
  const latencies: number[] = []
  const errors = new Map<string, number>()
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, async () => {
    for (let i = next++; i < n; i = next++) {
      const c0 = performance.now()
      try {
        statuses.push(await clients[i % clients.length]!.createSubscription(owners[Math.floor(i / PER_OWNER)]!, {
          containers: [WARM_ECHO_ID], input: `tick ${i}`, frequency: spec.frequency, period: spec.periodS, redundancy: 1, nonce: `bench-${i}`
        }, { timeoutMs: 60_000 }))
        latencies.push(performance.now() - c0)
      } catch (err) {
        const why = describe(err)
        errors.set(why, (errors.get(why) ?? 0) + 1)
      }
    }
  }))
  return { statuses, latencies, seconds: (performance.now() - t0) / 1000, errors }
}

export async function benchSubscriptions (ctx: BenchContext, opts: SubscriptionsOptions): Promise<SubscriptionsResult> {
  const P = opts.periodS
  process.stderr.write(`bench: ${opts.subs} subscriptions (period ${P} s, redundancy 1) on a ${NODES}-node devnet with ${GATEWAYS} gateways\n`)
  const echo = await warmEcho(ctx.root)
  const net: Devnet = await startDevnet({
    nodes: NODES, validators: 1, gateways: GATEWAYS, archives: 1, baseDir: path.join(ctx.tmp, 'subscriptions'),
    warmOnFirstWorker: false, workerContainers: { count: WORKERS, containers: [echo] }, logLevel: 'warn', progress: () => {}
  })
  const gateways = net.nodes.filter((n) => n.roles.includes('gateway'))
  // One client per gateway, its own gateway first: creations alternate, reads are per gateway.
  const clients = gateways.map((g, i) => inframindClient({ gateways: [g.publicAddr, ...gateways.filter((_, j) => j !== i).map((o) => o.publicAddr)] }))
  const readers = gateways.map((g) => inframindClient({ gateways: [g.publicAddr], timeoutMs: 30_000 }))
  try {
    await waitUntilServing(gateways)
    const settledAfterMs = await settle(net.nodes.map((n) => n.child.pid))

    // Baseline: the same gateways over one period with no subscription at all.
    const pids = gateways.map((g) => g.child.pid)
    const rssBefore = await Promise.all(pids.map(rssMiB))
    const idle0 = await Promise.all(pids.map(cpuMs))
    const idleT0 = performance.now()
    await sleep(P * 1000)
    const idleCpuSPerPeriod = (await Promise.all(pids.map(cpuMs))).map((v, i) => (v - idle0[i]!) / 1000 * (P * 1000) / (performance.now() - idleT0))

    const owners = Array.from({ length: Math.ceil(opts.subs / PER_OWNER) }, () => identityFromSeed(randomBytes(32)))
    const frequency = Math.ceil(RUN_BUDGET_S / P) + MEASURED_PERIODS + 2
    process.stderr.write(`bench: creating ${opts.subs} subscriptions, ${CREATE_CONCURRENCY} at a time over ${GATEWAYS} gateways\n`)
    const made = await createAll(clients, owners, opts.subs, { periodS: P, frequency })
    if (made.statuses.length === 0) throw new Error(`no subscription was created: ${[...made.errors].map(([k, v]) => `${v} x ${k}`).join('; ')}`)
    const ids = new Set(made.statuses.map((s) => s.subscription!.id))
    const lastActive = Math.max(...made.statuses.map((s) => s.subscription!.activeAt))
    process.stderr.write(`bench: ${ids.size} created in ${made.seconds.toFixed(1)} s; all active at ${new Date(lastActive * 1000).toISOString()}\n`)

    // The window: from when the last one is active, MEASURED_PERIODS + 1 periods (whole seconds, as intervals are).
    const w0 = lastActive
    const w1 = w0 + (MEASURED_PERIODS + 1) * P
    await sleep(w0 * 1000 - Date.now())
    const workers = net.nodes.filter((n) => n.roles.includes('worker'))
    const validator = net.nodes.filter((n) => n.roles.includes('validator'))
    const groupCpu = async (): Promise<number[]> => [
      (await Promise.all(workers.map(async (n) => await cpuMs(n.child.pid)))).reduce((a, b) => a + b, 0),
      (await Promise.all(validator.map(async (n) => await cpuMs(n.child.pid)))).reduce((a, b) => a + b, 0),
      (process.cpuUsage().user + process.cpuUsage().system) / 1000,
      await machineCpuMs()
    ]
    const group0 = await groupCpu()
    const cpu0 = await Promise.all(pids.map(cpuMs))
    const t0 = performance.now()
    await sleep(w1 * 1000 - Date.now())
    const cpu1 = await Promise.all(pids.map(cpuMs))
    const group1 = await groupCpu()
    const windowMs = performance.now() - t0
    const rssAfter = await Promise.all(pids.map(rssMiB))
    const gatewayCounters = await Promise.all(gateways.map(counters))
    const workerCounters: Record<string, number> = {}
    for (const c of await Promise.all(workers.map(counters))) for (const [k, v] of Object.entries(c)) workerCounters[k] = (workerCounters[k] ?? 0) + v
    await sleep(REPLICATION_GRACE_MS)

    // What each gateway holds: every owner's subscriptions, union of responses by (id, interval, node).
    type Held = { interval: number, nodeId: string, acceptedAtMs: number, jobId: string, by: Set<number> }
    const held = new Map<string, Map<string, Held>>()
    const subs = new Map<string, { activeAt: number, owner: string }>()
    for (const [gi, reader] of readers.entries()) {
      for (const owner of owners) {
        const list = await reader.listSubscriptions({ owner: owner.nodeId }, { timeoutMs: 60_000 })
        for (const st of list) {
          const id = st.subscription!.id
          if (!ids.has(id)) continue
          if (gi === 0 || !subs.has(id)) subs.set(id, { activeAt: st.subscription!.activeAt, owner: st.ownerScheduler })
          const byKey = held.get(id) ?? new Map<string, Held>()
          held.set(id, byKey)
          for (const r of st.responses) {
            const key = `${r.interval}:${r.nodeId}:${r.jobId}`
            const h = byKey.get(key) ?? { interval: r.interval, nodeId: r.nodeId, acceptedAtMs: Number(r.acceptedAtMs), jobId: r.jobId, by: new Set<number>() }
            h.by.add(gi)
            byKey.set(key, h)
          }
        }
      }
    }

    let expected = 0
    let onTime = 0
    const misses = { none: 0, outsideInterval: 0, moreThanOne: 0 }
    const missesByOwner: Record<string, number> = {}
    const into: number[] = []
    let oneOnly = 0
    const nameOf = new Map(net.nodes.map((n) => [n.nodeId, n.name]))
    for (const id of ids) {
      const sub = subs.get(id)
      const responses = [...(held.get(id)?.values() ?? [])]
      // Only those of the window: intervals after it are still being answered while the lists are read.
      oneOnly += responses.filter((r) => r.by.size < gateways.length && r.acceptedAtMs < w1 * 1000).length
      if (sub === undefined) continue
      // Interval k spans [activeAt + (k-1)P, activeAt + kP); count those with start >= w0 and end <= w1.
      const firstK = Math.max(1, Math.ceil((w0 - sub.activeAt) / P) + 1)
      for (let k = firstK; sub.activeAt + k * P <= w1; k++) {
        expected++
        const start = (sub.activeAt + (k - 1) * P) * 1000
        const end = start + P * 1000
        const got = responses.filter((r) => r.interval === k)
        let miss: keyof typeof misses | undefined
        if (got.length === 0) miss = 'none'
        else if (got.length > 1) miss = 'moreThanOne'
        else if (got[0]!.acceptedAtMs < start || got[0]!.acceptedAtMs >= end) miss = 'outsideInterval'
        if (miss === undefined) {
          onTime++
          into.push(got[0]!.acceptedAtMs - start)
        } else {
          misses[miss]++
          const who = nameOf.get(sub.owner) ?? (sub.owner === '' ? '(none)' : sub.owner.slice(0, 12))
          missesByOwner[who] = (missesByOwner[who] ?? 0) + 1
        }
      }
    }
    // Subscriptions no gateway listed count as wholly missed over their expected intervals.
    const unlisted = [...ids].filter((id) => !subs.has(id)).length
    if (unlisted > 0) {
      const each = MEASURED_PERIODS
      expected += unlisted * each
      misses.none += unlisted * each
      missesByOwner['(not listed)'] = unlisted * each
    }

    const periods = windowMs / (P * 1000)
    const costs: GatewayCost[] = gateways.map((g, i) => ({
      name: g.name,
      idleCpuSPerPeriod: idleCpuSPerPeriod[i]!,
      cpuSPerPeriod: (cpu1[i]! - cpu0[i]!) / 1000 / periods,
      rssMiBBefore: rssBefore[i]!,
      rssMiBAfter: rssAfter[i]!,
      owned: [...subs.values()].filter((s) => s.owner === g.nodeId).length,
      counters: gatewayCounters[i]!
    }))
    const idleSum = costs.reduce((a, c) => a + c.idleCpuSPerPeriod, 0)
    const busySum = costs.reduce((a, c) => a + c.cpuSPerPeriod, 0)
    return {
      subs: opts.subs,
      periodS: P,
      frequency,
      created: ids.size,
      createFailed: opts.subs - made.statuses.length,
      createErrors: [...made.errors].map(([k, v]) => `${v} x ${k}`).slice(0, 5),
      createSeconds: made.seconds,
      createLatencyMs: summarise(made.latencies),
      windowSeconds: w1 - w0,
      expected,
      onTime,
      fraction: expected === 0 ? 0 : onTime / expected,
      misses,
      missesByOwner,
      heldByOneGatewayOnly: oneOnly,
      gateways: costs,
      workerCounters,
      windowCpu: (() => {
        const per = group1.map((v, i) => (v - group0[i]!) / 1000 / periods)
        return { workers: per[0]!, validator: per[1]!, bench: per[2]!, machine: per[3]!, cores: availableParallelism() }
      })(),
      cpuDeltaSPerPeriod: busySum - idleSum,
      cpuRatio: idleSum > 0 ? busySum / idleSum : Number.POSITIVE_INFINITY,
      acceptedAfterIntervalStartMs: summarise(into),
      settledAfterMs
    }
  } finally {
    for (const c of [...clients, ...readers]) c.close()
    await net.stop()
  }
}

/** The target: at least 99 % of whole intervals in the window delivered exactly once, on time. */
export const SUBSCRIPTIONS_TARGET = 0.99

export function subscriptionsMet (r: SubscriptionsResult): boolean {
  return r.fraction >= SUBSCRIPTIONS_TARGET
}

export function renderSubscriptions (r: SubscriptionsResult): string {
  const pct = (v: number): string => `${(100 * v).toFixed(2)} %`
  const missed = r.expected - r.onTime
  const cpu = r.gateways.map((g) => `${g.name} ${g.cpuSPerPeriod.toFixed(2)} s (idle ${g.idleCpuSPerPeriod.toFixed(2)} s)`).join(', ')
  return `| ${r.created} subscriptions (period ${r.periodS} s, redundancy 1) on 5 nodes (2 gateways, 2 warm workers), ${r.windowSeconds} s window${r.createFailed > 0 ? ` (${r.createFailed} creations FAILED)` : ''} | delivered on time ${pct(r.fraction)} (${r.onTime} of ${r.expected} whole intervals${missed > 0 ? `; missed: ${r.misses.none} none accepted, ${r.misses.moreThanOne} more than one, ${r.misses.outsideInterval} outside the interval` : ''}); gateway CPU per period: ${cpu} | the same gateways with no subscription: ${r.gateways.reduce((a, g) => a + g.idleCpuSPerPeriod, 0).toFixed(2)} CPU s per period | CPU ${r.cpuRatio.toFixed(1)}x idle (+${r.cpuDeltaSPerPeriod.toFixed(2)} CPU s per ${r.periodS} s period, ${(1000 * r.cpuDeltaSPerPeriod / Math.max(1, r.created)).toFixed(2)} ms per subscription per period); RSS ${r.gateways.map((g) => `${g.name} ${g.rssMiBBefore.toFixed(0)} → ${g.rssMiBAfter.toFixed(0)} MiB`).join(', ')} | >= 99 % ${subscriptionsMet(r) ? 'met' : 'NOT met'} (${pct(r.fraction)}) |`
}

export function subscriptionsNote (r: SubscriptionsResult): string {
  const ms = (v: number): string => `${v.toFixed(0)} ms`
  const byOwner = Object.entries(r.missesByOwner).map(([k, v]) => `${k} ${v}`).join(', ')
  const counters = r.gateways.map((g) => `${g.name} (owner of ${g.owned}): ${Object.entries(g.counters).map(([k, v]) => `${k} ${v}`).join(', ') || 'none read'}`).join('; ')
  return `Subscriptions: a devnet of 5 node processes (2 scheduler+gateways, 2 workers serving ${WARM_ECHO_ID}, a validator that is also the archive), with ${r.created} subscriptions of redundancy 1, period ${r.periodS} s and frequency ${r.frequency}, ${PER_OWNER} per owner key with distinct nonces, created ${CREATE_CONCURRENCY} at a time alternating between the gateways in ${r.createSeconds.toFixed(1)} s (${(r.created / r.createSeconds).toFixed(0)}/s; each call p50 ${ms(r.createLatencyMs.p50)}, p99 ${ms(r.createLatencyMs.p99)})${r.createErrors.length > 0 ? `; creation errors: ${r.createErrors.join(' | ')}` : ''}. ` +
    `The window starts when the last one is active and lasts ${r.windowSeconds} s (${MEASURED_PERIODS} periods and one more, so each subscription has at least ${MEASURED_PERIODS} whole intervals in it); every (subscription, interval) wholly inside it counts, on time = exactly one response whose accepted_at_ms lies in that interval, read afterwards from both gateways' ListSubscriptions (union; ${r.heldByOneGatewayOnly} responses accepted before the window's end were held by one gateway only, ${REPLICATION_GRACE_MS / 1000} s after it). ` +
    (r.onTime === 0 ? 'No response was on time. ' : `On-time responses were accepted p50 ${ms(r.acceptedAfterIntervalStartMs.p50)}, p99 ${ms(r.acceptedAfterIntervalStartMs.p99)}, max ${ms(r.acceptedAfterIntervalStartMs.max)} after their interval began. `) +
    (byOwner !== '' ? `Misses by the gateway owning the subscription: ${byOwner}. ` : '') +
    `Counters at the window's end (a late result is refused INTERVAL_MISMATCH, so it shows as a miss "none accepted" plus a refusal here): ${counters}; the workers together: ${Object.entries(r.workerCounters ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'none read'}. ` +
    (r.windowCpu === undefined ? '' : `CPU s per ${r.periodS} s period over the window: both gateways ${r.gateways.reduce((a, g) => a + g.cpuSPerPeriod, 0).toFixed(2)}, workers ${r.windowCpu.workers.toFixed(2)}, validator ${r.windowCpu.validator.toFixed(2)}, the bench process ${r.windowCpu.bench.toFixed(2)}, the whole machine ${r.windowCpu.machine.toFixed(2)} of ${r.windowCpu.cores * r.periodS} (its ${r.windowCpu.cores} cores; containers and other users included). `) +
    `CPU is user + system from /proc over the window (10 ms ticks), per ${r.periodS} s; the baseline is one period of the same gateways on the settled devnet (settled after ${(r.settledAfterMs / 1000).toFixed(0)} s) before the first subscription.`
}
