/**
 * What open dashboard pages cost the node: warm jobs through gRPC RunJob by closed-loop clients with
 * no page connected, against the same with `pages` event streams connected (each reading every job
 * event and snapshot, as an open tab does), alternated in rounds on one node in the same run.
 */
import http from 'node:http'
import { connectNode, type NodeClient } from '../src/api/client.ts'
import { summarise, type Summary } from './stats.ts'
import { warmEcho, WARM_ECHO_ID } from './warm-echo.ts'
import { startStandalone, waitHealthy } from './standalone.ts'
import type { BenchContext } from './run.ts'

export interface DashboardPhase { jobsPerSecond: number, latency: Summary, failed: number }

export interface DashboardBenchResult {
  rounds: number
  seconds: number
  clients: number
  pages: number
  without: DashboardPhase
  withPages: DashboardPhase
  /** withPages.jobsPerSecond / without.jobsPerSecond (the target), and the p50 latency the other way. */
  throughputRatio: number
  latencyRatioP50: number
  /** Job events the pages received per job run while they were open (each job: accepted, running, ended, ...). */
  eventsPerJobPerPage: number
}

/** Open pages may cost at most 10 % of the node's warm-job throughput. */
export const DASHBOARD_TARGET_RATIO = 0.9

const INPUT = new TextEncoder().encode('a short sentence for the warm container')

/** An open page's event stream: counts job events until closed. */
function page (url: string): { events: () => number, close: () => void, ready: Promise<void> } {
  let events = 0
  let tail = ''
  let req: http.ClientRequest | undefined
  const ready = new Promise<void>((resolve, reject) => {
    req = http.get(`${url}api/events`, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`event stream: HTTP ${res.statusCode}`)); return }
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        const text = tail + d
        const frames = text.split('\n\n')
        tail = frames.pop() ?? ''
        for (const f of frames) if (f.startsWith('event: job\n')) events++
      })
      res.on('error', () => {})
      resolve()
    })
    req.on('error', reject)
  })
  return { events: () => events, close: () => { req?.destroy() }, ready }
}

async function load (client: NodeClient, clients: number, seconds: number): Promise<{ done: number, failed: number, latencies: number[] }> {
  const until = performance.now() + seconds * 1000
  const latencies: number[] = []
  let failed = 0
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < until) {
      const t0 = performance.now()
      try {
        const job = await client.runJob({ containerId: WARM_ECHO_ID, input: INPUT })
        if (job.state === 'JOB_STATE_SUCCESS') latencies.push(performance.now() - t0)
        else failed++
      } catch {
        failed++
      }
    }
  }))
  return { done: latencies.length, failed, latencies }
}

export async function benchDashboard (ctx: BenchContext, opts: { rounds: number, seconds: number, clients: number, pages: number }): Promise<DashboardBenchResult> {
  const node = await startStandalone(ctx, 'dashboard', { containers: [await warmEcho(ctx.root)], sections: { dashboard: { listen: '127.0.0.1:0' } } })
  const client = connectNode(node.api.publicAddress())
  const url = node.dashboard?.url() ?? ''
  try {
    await waitHealthy(node, WARM_ECHO_ID)
    await load(client, opts.clients, 2)
    const off = { done: 0, failed: 0, latencies: [] as number[] }
    const on = { done: 0, failed: 0, latencies: [] as number[] }
    let events = 0
    for (let round = 0; round < opts.rounds; round++) {
      // Alternated, and the first phase swaps each round, so neither always runs on a warmer machine.
      for (const withPages of round % 2 === 0 ? [false, true] : [true, false]) {
        const pages = withPages ? Array.from({ length: opts.pages }, () => page(url)) : []
        await Promise.all(pages.map(async (p) => await p.ready))
        const r = await load(client, opts.clients, opts.seconds)
        const into = withPages ? on : off
        into.done += r.done
        into.failed += r.failed
        into.latencies.push(...r.latencies)
        // The last events of the phase are in flight: give the streams a moment before counting.
        await new Promise((resolve) => setTimeout(resolve, 200))
        events += pages.reduce((a, p) => a + p.events(), 0)
        for (const p of pages) p.close()
      }
    }
    const phase = (x: typeof off): DashboardPhase => ({ jobsPerSecond: x.done / (opts.rounds * opts.seconds), latency: summarise(x.latencies), failed: x.failed })
    const without = phase(off)
    const withPages = phase(on)
    return {
      rounds: opts.rounds,
      seconds: opts.seconds,
      clients: opts.clients,
      pages: opts.pages,
      without,
      withPages,
      throughputRatio: withPages.jobsPerSecond / without.jobsPerSecond,
      latencyRatioP50: withPages.latency.p50 / without.latency.p50,
      eventsPerJobPerPage: on.done > 0 ? events / (on.done * opts.pages) : 0
    }
  } finally {
    client.close()
    await node.stop()
  }
}

export function dashboardMet (r: DashboardBenchResult): boolean {
  return r.without.failed === 0 && r.withPages.failed === 0 && r.throughputRatio >= DASHBOARD_TARGET_RATIO
}

export function renderDashboard (r: DashboardBenchResult): string {
  const ms = (v: number): string => `${v.toFixed(2)} ms`
  const failed = r.without.failed + r.withPages.failed
  return `| warm RunJob, ${r.clients} clients, with ${r.pages} dashboard pages open vs none, ${r.rounds} rounds of ${r.seconds} s alternated${failed > 0 ? ` (${failed} FAILED)` : ''} | ${r.withPages.jobsPerSecond.toFixed(0)} jobs/s, p50 ${ms(r.withPages.latency.p50)}, p99 ${ms(r.withPages.latency.p99)}; ${r.eventsPerJobPerPage.toFixed(1)} job events per job per page | no page: ${r.without.jobsPerSecond.toFixed(0)} jobs/s, p50 ${ms(r.without.latency.p50)}, p99 ${ms(r.without.latency.p99)} | jobs/s ${r.throughputRatio.toFixed(2)}; p50 ${r.latencyRatioP50.toFixed(2)} | jobs/s >= ${DASHBOARD_TARGET_RATIO} ${dashboardMet(r) ? 'met' : 'NOT met'} |`
}

export function dashboardNote (r: DashboardBenchResult): string {
  return `Dashboard: one node in the bench process with the warm echo container (jobs.concurrency 16) and its dashboard on; ${r.clients} closed-loop gRPC RunJob clients, in rounds that alternate no open page with ${r.pages} pages' event streams (GET /api/events, every job event and a snapshot every 2 s, read as an open tab reads them).`
}
