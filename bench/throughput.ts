/**
 * Mesh throughput: many clients submitting RunJob through the one gateway of a devnet, against the sum
 * of what the same warm workers serve when their own RunJob is called directly, one worker at a time,
 * on the same devnet in the same run. The ratio says how much of the workers' capacity the mesh
 * path delivers.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { parse } from 'yaml'
import { connectControl, connectNode, type NodeClient } from '../src/api/client.ts'
import { startDevnet, type Devnet, type DevnetNode } from '../src/cli/devnet.ts'
import { summarise, type Summary } from './stats.ts'
import { cpuMs, rssMiB, settle } from './proc.ts'
import { WARM_ECHO_ID, warmEcho } from './warm-echo.ts'
import type { BenchContext } from './run.ts'

export interface LoadResult {
  /** Successful jobs that finished inside the measured window. */
  jobs: number
  /** Jobs that finished inside the window with an error or a failed state (not in the latencies). */
  failed: number
  jobsPerSecond: number
  /** Client-observed RunJob call time of the successful jobs. */
  latency: Summary
  /** Failures by kind (gRPC status or job state, with the message), for reading a bad run. */
  errors: Record<string, number>
  /** CPU time per successful job, summed over every node process (idle work of the mesh included). */
  nodeCpuMsPerJob: number
}

export interface ThroughputResult {
  nodes: number
  clients: number
  warmupSeconds: number
  seconds: number
  /** Clients → the gateway's RunJob; the scheduler spreads the jobs over the warm workers. */
  mesh: LoadResult
  /** Clients → one warm worker's own RunJob, each worker on its own in turn. */
  workers: Array<LoadResult & { name: string }>
  workersJobsPerSecond: number
  /** mesh.jobsPerSecond / workersJobsPerSecond. */
  ratio: number
  /**
   * Not the baseline, for reading it: the same clients spread over every warm worker's own RunJob at
   * once, so the workers share the machine's cores as they do under mesh load. On a machine with fewer
   * cores than busy processes this stays well below the sum of one-at-a-time runs.
   */
  workersTogether: LoadResult
  /** Right after the mesh phase. */
  rssMiB: { gateway: number, warmWorkers: number[], otherWorkerMean: number, validator: number }
  /** Time the fresh mesh took to settle before the first phase (each later phase waits for quiet too). */
  settledAfterMs: number
  /** CPU cores the settled devnet's node processes use with no jobs (heartbeats, gossip, DHT upkeep). */
  idleCores: number
  /** Workers given the warm container; the others run config.yaml's one-shot containers only. */
  warmWorkers: number
  /** config.yaml's jobs.concurrency, which every devnet node gets: a worker's slots, the baseline's limit. */
  workerConcurrency: number
}

const INPUT = new TextEncoder().encode('a short sentence for the warm container')
/** Generous: under 64 clients a job may queue behind many others; a stuck one still ends. */
const CALL_TIMEOUT_MS = 30_000
/** A rejected job comes back at once; without a pause its client would spin and take CPU from the nodes. */
const FAILURE_PAUSE_MS = 20
const READY_TIMEOUT_MS = 120_000
const IDLE_WINDOW_MS = 3_000

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function describe (err: unknown): string {
  const e = err as { code?: number, details?: string, message?: string }
  return (e.code !== undefined ? `grpc ${e.code}: ${e.details ?? ''}` : String(e.message ?? err)).slice(0, 160)
}

/**
 * `clients` closed loops of RunJob over `targets` (client i uses target i mod n) for warm-up plus the
 * measured window. Only calls that finish inside the window count, so neither the warm-up nor the
 * calls still running when it closes are in the numbers.
 */
async function closedLoop (targets: NodeClient[], opts: { clients: number, warmupMs: number, measureMs: number, pids: Array<number | undefined> }): Promise<LoadResult> {
  const from = performance.now() + opts.warmupMs
  const to = from + opts.measureMs
  const latencies: number[] = []
  const errors = new Map<string, number>()
  let failed = 0
  // CPU over the same window as the jobs counted in it.
  const cpuAt = async (): Promise<number[]> => await Promise.all(opts.pids.map(async (p) => await cpuMs(p)))
  const cpuInWindow = sleep(opts.warmupMs).then(async () => {
    const before = await cpuAt()
    await sleep(opts.measureMs)
    const after = await cpuAt()
    return after.reduce((sum, v, i) => sum + v - before[i]!, 0)
  })
  await Promise.all(Array.from({ length: opts.clients }, async (_, i) => {
    const client = targets[i % targets.length]!
    while (performance.now() < to) {
      const t0 = performance.now()
      let error: string | undefined
      try {
        const job = await client.runJob({ containerId: WARM_ECHO_ID, input: INPUT }, { timeoutMs: CALL_TIMEOUT_MS })
        if (job.state !== 'JOB_STATE_SUCCESS') error = `${job.state}: ${job.error}`.slice(0, 160)
      } catch (err) {
        error = describe(err)
      }
      const t1 = performance.now()
      if (t1 >= from && t1 < to) {
        if (error === undefined) latencies.push(t1 - t0)
        else {
          failed++
          errors.set(error, (errors.get(error) ?? 0) + 1)
        }
      }
      if (error !== undefined) await sleep(FAILURE_PAUSE_MS)
    }
  }))
  const cpu = await cpuInWindow
  return {
    jobs: latencies.length,
    failed,
    jobsPerSecond: latencies.length / (opts.measureMs / 1000),
    latency: summarise(latencies),
    errors: Object.fromEntries(errors),
    nodeCpuMsPerJob: cpu / Math.max(1, latencies.length)
  }
}

/** Until the gateway sees every warm worker offer the container and a job succeeds both ways (through the gateway, and at each worker). */
async function waitUntilServing (net: Devnet, warm: DevnetNode[]): Promise<void> {
  const until = Date.now() + READY_TIMEOUT_MS
  const control = connectControl(net.gateway.controlAddr)
  const clients = [net.gateway, ...warm].map((n) => ({ node: n, client: connectNode(n.publicAddr) }))
  let last = 'nothing tried yet'
  try {
    for (;;) {
      try {
        const { peers } = await control.listPeers({ timeoutMs: 2000 })
        const offering = peers.filter((p) => p.alive && p.containers.includes(WARM_ECHO_ID)).length
        if (offering < warm.length) throw new Error(`the gateway sees ${offering} of ${warm.length} warm workers offer ${WARM_ECHO_ID}`)
        for (const { node, client } of clients) {
          const job = await client.runJob({ containerId: WARM_ECHO_ID, input: INPUT }, { timeoutMs: 10_000 })
          if (job.state !== 'JOB_STATE_SUCCESS') throw new Error(`a warm-up job at ${node.name} ended ${job.state}: ${job.error}`)
        }
        return
      } catch (err) {
        last = describe(err)
      }
      // A gateway admits only containers its own config lists: if that is why, the last error says so.
      if (Date.now() > until) throw new Error(`the ${net.nodes.length}-node devnet did not serve ${WARM_ECHO_ID} within ${READY_TIMEOUT_MS / 1000} s; last: ${last}`)
      await sleep(500)
    }
  } finally {
    control.close()
    for (const { client } of clients) client.close()
  }
}

export async function benchThroughput (ctx: BenchContext, opts: { nodes: number, warmWorkers: number, clients: number, warmupSeconds: number, seconds: number }): Promise<ThroughputResult> {
  process.stderr.write(`bench: throughput, ${opts.clients} clients, ${opts.nodes}-node mesh vs its ${opts.warmWorkers} warm workers called directly\n`)
  const echo = await warmEcho(ctx.root)
  const net = await startDevnet({
    nodes: opts.nodes,
    baseDir: path.join(ctx.tmp, `throughput-${opts.nodes}`),
    warmOnFirstWorker: false,
    workerContainers: { count: opts.warmWorkers, containers: [echo] },
    logLevel: 'warn',
    progress: () => {}
  })
  try {
    const workers = net.nodes.filter((n) => n.roles.includes('worker'))
    const warm = workers.slice(0, opts.warmWorkers)
    await waitUntilServing(net, warm)
    const pids = net.nodes.map((n) => n.child.pid)
    const settledAfterMs = await settle(pids)
    // What the mesh costs with no jobs is CPU the jobs cannot have on a small machine.
    const idleFrom = await Promise.all(pids.map(async (p) => await cpuMs(p)))
    await sleep(IDLE_WINDOW_MS)
    const idleTo = await Promise.all(pids.map(async (p) => await cpuMs(p)))
    const idleCores = idleTo.reduce((sum, v, i) => sum + v - idleFrom[i]!, 0) / IDLE_WINDOW_MS
    let first = true
    const phase = async (addrs: string[]): Promise<LoadResult> => {
      // Each phase starts from a quiet mesh: work left over from the last one must not count against the next.
      if (!first) await settle(pids)
      first = false
      // One client per address: grpc-js would share one connection per address among more of them anyway.
      const targets = addrs.map((a) => connectNode(a))
      try {
        return await closedLoop(targets, { clients: opts.clients, warmupMs: opts.warmupSeconds * 1000, measureMs: opts.seconds * 1000, pids })
      } finally {
        for (const c of targets) c.close()
      }
    }

    process.stderr.write(`bench: throughput through the gateway (${opts.seconds} s after ${opts.warmupSeconds} s warm-up)\n`)
    const mesh = await phase([net.gateway.publicAddr])
    const rss = {
      gateway: await rssMiB(net.gateway.child.pid),
      warmWorkers: await Promise.all(warm.map(async (w) => await rssMiB(w.child.pid))),
      otherWorkerMean: 0,
      validator: await rssMiB(net.nodes[net.nodes.length - 1]!.child.pid)
    }
    const others = await Promise.all(workers.slice(opts.warmWorkers).map(async (w) => await rssMiB(w.child.pid)))
    rss.otherWorkerMean = others.reduce((a, b) => a + b, 0) / Math.max(1, others.length)

    const direct: Array<LoadResult & { name: string }> = []
    for (const w of warm) {
      process.stderr.write(`bench: throughput at ${w.name} directly\n`)
      direct.push({ name: w.name, ...await phase([w.publicAddr]) })
    }
    process.stderr.write('bench: throughput at every warm worker at once\n')
    const together = await phase(warm.map((w) => w.publicAddr))

    const sum = direct.reduce((a, d) => a + d.jobsPerSecond, 0)
    return {
      nodes: opts.nodes,
      clients: opts.clients,
      warmupSeconds: opts.warmupSeconds,
      seconds: opts.seconds,
      mesh,
      workers: direct,
      workersJobsPerSecond: sum,
      ratio: sum > 0 ? mesh.jobsPerSecond / sum : 0,
      workersTogether: together,
      rssMiB: rss,
      settledAfterMs,
      idleCores,
      warmWorkers: opts.warmWorkers,
      workerConcurrency: Number((parse(await readFile(path.join(ctx.root, 'config.yaml'), 'utf8')) as { jobs?: { concurrency?: number } }).jobs?.concurrency ?? 0)
    }
  } finally {
    await net.stop()
  }
}
