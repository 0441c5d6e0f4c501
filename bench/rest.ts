/**
 * The Infernet-compatible REST API against gRPC RunJob on one node and one warm container, in the
 * same run: a job as one POST /api/jobs/stream (submit, then the output until the job ends: REST's
 * one-call form, like RunJob), and as POST /api/jobs then GET /api/jobs?id= polls (how Infernet's
 * client waits), paired and alternated; then throughput with concurrent clients, both ways.
 */
import http from 'node:http'
import { connectNode, type NodeClient } from '../src/api/client.ts'
import { percentile, summarise, type Summary } from './stats.ts'
import { warmEcho, WARM_ECHO_ID } from './warm-echo.ts'
import { startStandalone, waitHealthy, throughput } from './standalone.ts'
import type { BenchContext } from './run.ts'

export interface RestBenchResult {
  pairs: number
  grpc: Summary
  /** POST /api/jobs/stream, read to the end. */
  restStream: Summary
  /** POST /api/jobs, then GET /api/jobs?id= until the job is done. */
  restPoll: Summary
  pollIntervalMs: number
  /** restStream.p50 / grpc.p50 (the target), and the same for p99 and for the polled form. */
  ratioP50: number
  ratioP99: number
  pollRatioP50: number
  /** Median over pairs of stream / gRPC. */
  medianPairedRatio: number
  throughput: { clients: number, seconds: number, grpcJobsPerSecond: number, restJobsPerSecond: number, ratio: number }
  failed: number
}

/** Throughput windows per side, alternated. */
const THROUGHPUT_WINDOWS = 4

/** REST p50 within 1.5x of gRPC RunJob (issue 13). */
export const REST_TARGET_RATIO = 1.5

const INPUT = 'a short sentence for the warm container'
const INPUT_BYTES = new TextEncoder().encode(INPUT)
const JOB_BODY = JSON.stringify({ containers: [WARM_ECHO_ID], data: INPUT })

async function viaGrpc (client: NodeClient): Promise<number> {
  const t0 = performance.now()
  const job = await client.runJob({ containerId: WARM_ECHO_ID, input: INPUT_BYTES })
  if (job.state !== 'JOB_STATE_SUCCESS') throw new Error(`gRPC job failed: ${job.error}`)
  return performance.now() - t0
}

function request (agent: http.Agent, port: number, method: string, url: string, body?: string): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, agent, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function viaStream (agent: http.Agent, port: number): Promise<number> {
  const t0 = performance.now()
  const r = await request(agent, port, 'POST', '/api/jobs/stream', JOB_BODY)
  if (r.status !== 200 || r.text.slice(r.text.indexOf('\n') + 1) !== INPUT) throw new Error(`REST stream: ${r.status} ${r.text.slice(0, 200)}`)
  return performance.now() - t0
}

async function viaPoll (agent: http.Agent, port: number, intervalMs: number): Promise<number> {
  const t0 = performance.now()
  const submitted = await request(agent, port, 'POST', '/api/jobs', JOB_BODY)
  if (submitted.status !== 200) throw new Error(`REST submit: ${submitted.status} ${submitted.text}`)
  const id = (JSON.parse(submitted.text) as { id: string }).id
  for (;;) {
    const r = await request(agent, port, 'GET', `/api/jobs?id=${id}`)
    const [job] = JSON.parse(r.text) as Array<{ status: string }>
    if (job?.status === 'success') return performance.now() - t0
    if (job?.status === 'failed') throw new Error(`REST job failed: ${r.text.slice(0, 200)}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

export async function benchRest (ctx: BenchContext, opts: { pairs: number, seconds: number, clients: number, pollIntervalMs: number }): Promise<RestBenchResult> {
  const node = await startStandalone(ctx, 'rest', { containers: [await warmEcho(ctx.root)], sections: { rest: { listen: '127.0.0.1:0' } } })
  const client = connectNode(node.api.publicAddress())
  const address = node.rest?.address() ?? ''
  const port = Number(address.slice(address.lastIndexOf(':') + 1))
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
  let failed = 0
  try {
    await waitHealthy(node, WARM_ECHO_ID)
    for (let i = 0; i < 50; i++) { await viaGrpc(client); await viaStream(agent, port); await viaPoll(agent, port, opts.pollIntervalMs) }
    const grpc: number[] = []
    const stream: number[] = []
    const poll: number[] = []
    const paired: number[] = []
    for (let i = 0; i < opts.pairs; i++) {
      // Each round runs the three in a rotated order, so none always goes first.
      const runs: Array<() => Promise<void>> = [
        async () => { grpc.push(await viaGrpc(client)) },
        async () => { stream.push(await viaStream(agent, port)) },
        async () => { poll.push(await viaPoll(agent, port, opts.pollIntervalMs)) }
      ]
      for (let k = 0; k < runs.length; k++) {
        try {
          await runs[(i + k) % runs.length]()
        } catch {
          failed++
        }
      }
      if (grpc.length === stream.length && grpc.length > 0) paired.push(stream[stream.length - 1] / grpc[grpc.length - 1])
    }
    // Throughput in alternating windows (gRPC, REST, REST, gRPC, ...), so a busy moment of the machine falls on both.
    let grpcRate = 0
    let restRate = 0
    const window = opts.seconds / THROUGHPUT_WINDOWS
    for (let w = 0; w < THROUGHPUT_WINDOWS; w++) {
      const grpcFirst = w % 2 === 0
      for (const side of grpcFirst ? ['grpc', 'rest'] : ['rest', 'grpc']) {
        if (side === 'grpc') grpcRate += await throughput(window, opts.clients, async () => await viaGrpc(client)) / THROUGHPUT_WINDOWS
        else restRate += await throughput(window, opts.clients, async () => await viaStream(agent, port)) / THROUGHPUT_WINDOWS
      }
    }
    const g = summarise(grpc)
    const s = summarise(stream)
    const p = summarise(poll)
    return {
      pairs: opts.pairs,
      grpc: g,
      restStream: s,
      restPoll: p,
      pollIntervalMs: opts.pollIntervalMs,
      ratioP50: s.p50 / g.p50,
      ratioP99: s.p99 / g.p99,
      pollRatioP50: p.p50 / g.p50,
      medianPairedRatio: percentile(paired, 50),
      throughput: { clients: opts.clients, seconds: opts.seconds, grpcJobsPerSecond: grpcRate, restJobsPerSecond: restRate, ratio: restRate / grpcRate },
      failed
    }
  } finally {
    agent.destroy()
    client.close()
    await node.stop()
  }
}

export function restMet (r: RestBenchResult): boolean {
  return r.failed === 0 && r.ratioP50 <= REST_TARGET_RATIO
}

export function renderRest (r: RestBenchResult): string {
  const ms = (v: number): string => `${v.toFixed(2)} ms`
  return `| warm job via REST POST /api/jobs/stream vs gRPC RunJob, ${r.pairs} rounds alternated${r.failed > 0 ? ` (${r.failed} FAILED)` : ''} | p50 ${ms(r.restStream.p50)}, p99 ${ms(r.restStream.p99)}; ${r.throughput.clients} clients: ${r.throughput.restJobsPerSecond.toFixed(0)} jobs/s; POST + poll every ${r.pollIntervalMs} ms: p50 ${ms(r.restPoll.p50)}, p99 ${ms(r.restPoll.p99)} | RunJob: p50 ${ms(r.grpc.p50)}, p99 ${ms(r.grpc.p99)}; ${r.throughput.clients} clients: ${r.throughput.grpcJobsPerSecond.toFixed(0)} jobs/s | p50 ${r.ratioP50.toFixed(2)}, p99 ${r.ratioP99.toFixed(2)} (median paired ${r.medianPairedRatio.toFixed(2)}); poll p50 ${r.pollRatioP50.toFixed(2)}; jobs/s ${r.throughput.ratio.toFixed(2)} | p50 <= ${REST_TARGET_RATIO} ${restMet(r) ? 'met' : 'NOT met'} |`
}

export function restNote (r: RestBenchResult): string {
  return `REST: one node in the bench process, the warm echo container (jobs.concurrency 16); each round runs a gRPC RunJob, a REST POST /api/jobs/stream read to its end, and a REST POST /api/jobs followed by GET /api/jobs?id= every ${r.pollIntervalMs} ms until success (Infernet's client polls every 1 s), in rotated order over keep-alive connections. Throughput: ${r.throughput.clients} closed-loop clients, ${r.throughput.seconds} s each way in ${THROUGHPUT_WINDOWS} alternating windows (RunJob; the stream read to its end).`
}
