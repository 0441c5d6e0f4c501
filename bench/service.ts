/**
 * A warm service container: a job through the node (gRPC SubmitJob → WatchJob → result) against a
 * direct HTTP call to the same container on its 127.0.0.1 port, paired; then throughput with
 * concurrent clients, both ways.
 */
import http from 'node:http'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { connectNode, type NodeClient } from '../src/api/client.ts'
import { percentile, summarise, type Summary } from './stats.ts'
import { startStandalone, throughput } from './standalone.ts'
import type { BenchContext } from './run.ts'

export interface ServiceBenchResult {
  pairs: number
  node: Summary
  direct: Summary
  /** Median of (node − direct) over pairs: the node's own cost per job. */
  overheadP50Ms: number
  overheadP99Ms: number
  /** SubmitJob + WatchJob (two calls) instead of RunJob. */
  submitWatch: Summary
  throughput: Array<{ clients: number, nodeJobsPerSecond: number, directCallsPerSecond: number }>
}

const INPUT = 'a short sentence for the warm container'

const INPUT_BYTES = new TextEncoder().encode(INPUT)

/** One job through the node: RunJob (submit and wait for the result in one gRPC call). */
async function viaNode (client: NodeClient): Promise<number> {
  const t0 = performance.now()
  const job = await client.runJob({ containerId: 'echo-warm', input: INPUT_BYTES })
  if (job.state !== 'JOB_STATE_SUCCESS') throw new Error(`job failed: ${job.error}`)
  return performance.now() - t0
}

/** The same job as SubmitJob then WatchJob (two calls), for comparison. */
async function viaNodeWatch (client: NodeClient): Promise<number> {
  const t0 = performance.now()
  const { jobId } = await client.submitJob({ containerId: 'echo-warm', input: INPUT_BYTES })
  for await (const e of client.watchJob(jobId, { timeoutMs: 30_000 })) {
    if (e.job !== null && e.job.state !== 'JOB_STATE_SUCCESS') throw new Error(`job failed: ${e.job.error}`)
  }
  return performance.now() - t0
}

function direct (agent: http.Agent, port: number, n: number): Promise<number> {
  const body = JSON.stringify({ job_id: `direct-${n}`, input: INPUT, origin: { ip: '', peer_id: '', delegate: '' } })
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        if (res.statusCode !== 200) { reject(new Error(`HTTP ${res.statusCode}`)); return }
        JSON.parse(Buffer.concat(chunks).toString())
        resolve(performance.now() - t0)
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

export async function benchService (ctx: BenchContext, opts: { pairs: number, seconds: number }): Promise<ServiceBenchResult> {
  const lock = JSON.parse(await readFile(path.join(ctx.root, 'containers', 'images.lock.json'), 'utf8')) as Record<string, string>
  const node = await startStandalone(ctx, 'service', {
    containers: [{
      id: 'echo-warm', image: 'inframind/nlp:1', digest: lock['inframind/nlp:1'], command: ['testserver'], mode: 'service',
      service: { port: 8080, startup_timeout_ms: 60_000 }, resources: { cpus: 1, memory: '128m', pids: 64 },
      timeout_ms: 10_000, input_schema: 'text', output_schema: 'text'
    }]
  })
  const client = connectNode(node.api.publicAddress())
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
  try {
    let port = 0
    for (let i = 0; i < 600 && port === 0; i++) {
      const s = node.runtime.containerStatuses().find((c) => c.id === 'echo-warm')
      if (s?.state === 'healthy') port = s.hostPort
      else if (s?.state === 'failed') throw new Error(`warm container failed: ${s.lastError}`)
      else await new Promise((resolve) => setTimeout(resolve, 100))
    }
    if (port === 0) throw new Error('warm container did not become healthy')
    for (let i = 0; i < 50; i++) { await viaNode(client); await direct(agent, port, i) }
    const nodeTimes: number[] = []
    const directTimes: number[] = []
    const diffs: number[] = []
    for (let i = 0; i < opts.pairs; i++) {
      let a: number
      let b: number
      if (i % 2 === 0) { a = await viaNode(client); b = await direct(agent, port, i) } else { b = await direct(agent, port, i); a = await viaNode(client) }
      nodeTimes.push(a)
      directTimes.push(b)
      diffs.push(a - b)
    }
    const watchTimes: number[] = []
    for (let i = 0; i < Math.min(100, opts.pairs); i++) watchTimes.push(await viaNodeWatch(client))
    const tput = []
    for (const clients of [1, 4, 16]) {
      let n = 0
      tput.push({
        clients,
        nodeJobsPerSecond: await throughput(opts.seconds, clients, async () => await viaNode(client)),
        directCallsPerSecond: await throughput(opts.seconds, clients, async () => await direct(agent, port, n++))
      })
    }
    return {
      pairs: opts.pairs,
      node: summarise(nodeTimes),
      direct: summarise(directTimes),
      overheadP50Ms: percentile(diffs, 50),
      overheadP99Ms: percentile(diffs, 99),
      submitWatch: summarise(watchTimes),
      throughput: tput
    }
  } finally {
    agent.destroy()
    client.close()
    await node.stop()
  }
}
