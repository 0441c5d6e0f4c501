/**
 * Responsiveness while intake is shed (issue 10, item 8): read-only calls (GetInfo, GetJob of an
 * existing job, grpc.health.v1.Health/Check) from one client, on an idle node and then during a
 * burst of SubmitJob calls from many concurrent clients that overflows the node's queue. The node is
 * a real process; the burst runs in a worker thread of the bench at a lower priority, so its gRPC work
 * neither shares an event loop with the reads being timed nor takes the CPU the node needs.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import * as grpc from '@grpc/grpc-js'
import { stringify } from 'yaml'
import { NODE_FLAGS } from '../src/cli/devnet.ts'
import { connectNode, type NodeClient } from '../src/api/client.ts'
import { NODE_SERVICE, serviceConstructor } from '../src/api/proto.ts'
import { NODE_FILE } from '../src/types.ts'
import { cpuMs } from './proc.ts'
import { summarise, type Summary } from './stats.ts'
import type { BenchContext } from './run.ts'

const IMAGE = 'inframind/echo:1'
const INPUT = new TextEncoder().encode('a short line for the echo container\n')
/** Nice value of the burst's thread (19 is the lowest priority). */
const BURST_NICE = 10
const READS = ['getInfo', 'getJob', 'health'] as const
type Read = typeof READS[number]

export interface BurstCounts { submitted: number, accepted: number, refused: number, other: Record<string, number>, seconds: number }

export interface ResponsivenessResult {
  concurrency: number
  queueSize: number
  burst: BurstCounts & { clients: number, runs: 'worker thread', nice: number }
  idle: Record<Read, Summary>
  during: Record<Read, Summary>
  /** during p99 / idle p99, per call; the target is <= 3. */
  ratioP99: Record<Read, number>
  ratioP50: Record<Read, number>
  machineCpus: number
  /** The largest of ratioP99. */
  worstRatioP99: number
  /** CPU per second of wall time, in ms (1000 = one core), idle phase and burst phase: the node process, the bench process (reads and the burst's thread), the whole machine. */
  nodeCpuMsPerSecond: { idle: number, during: number }
  benchCpuMsPerSecond: { idle: number, during: number }
  machineCpuMsPerSecond: { idle: number, during: number }
  /** The node's event-loop delay (p99, max) and GC time in each phase, ms. */
  nodeLoop: { idle: LoopSample, during: LoopSample }
  /** The timing client's own event-loop delay p99 in each phase, ms (a slow read can also be the client's wait). */
  clientLoopP99Ms: { idle: number, during: number }
  /** How long the node's event-loop thread waited for a CPU while runnable, ms per second of wall time. */
  nodeRunQueueMsPerSecond: { idle: number, during: number }
  /** The node's CPU during the burst by thread kind, ms per second of wall time. */
  nodeThreadsDuringMsPerSecond: Record<string, number>
}

/** This process's CPU so far (every thread, the burst's worker among them), ms. */
function benchCpuMs (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** Busy CPU of the whole machine so far (all but idle and iowait, from /proc/stat), ms. */
async function machineCpuMs (): Promise<number> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
  const busy = fields.reduce((a, b) => a + b, 0) - (fields[3] ?? 0) - (fields[4] ?? 0)
  return busy * 10
}

/** The node's event-loop delay since the last scrape (prom-client resets it on each collection) and its GC time so far. */
export interface LoopSample { lagP99Ms: number, lagMaxMs: number, gcMs: number }

async function scrapeLoop (metricsUrl: string): Promise<LoopSample> {
  const text = await (await fetch(metricsUrl)).text()
  const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN)
  let gcSeconds = 0
  for (const m of text.matchAll(/^inframind_nodejs_gc_duration_seconds_sum\{[^}]*\} ([0-9.e+-]+)$/gm)) gcSeconds += Number(m[1])
  return { lagP99Ms: value('inframind_nodejs_eventloop_lag_p99_seconds') * 1000, lagMaxMs: value('inframind_nodejs_eventloop_lag_max_seconds') * 1000, gcMs: gcSeconds * 1000 }
}

/** Time the process's main thread (the event loop) was runnable but waiting for a CPU so far, ms (/proc/<pid>/schedstat). */
async function runQueueWaitMs (pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0
  const text = await readFile(`/proc/${pid}/schedstat`, 'utf8').catch(() => '')
  return Number(text.split(' ')[1] ?? 0) / 1e6
}

/** CPU so far of each kind of thread of a process (main, V8 workers, libuv workers...), ms, by thread name. */
async function threadCpuMs (pid: number | undefined): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  if (pid === undefined) return out
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[])
  for (const tid of tids) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '')
    if (stat === '') continue
    const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '').trim()
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    out[name] = (out[name] ?? 0) + (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10
  }
  return out
}

/** grpc.health.v1.Health/Check, bytes in and out: an empty request asks about the whole server. */
function healthClient (address: string): { check: () => Promise<void>, close: () => void } {
  const identity = (b: Buffer): Buffer => b
  const Ctor = grpc.makeGenericClientConstructor({
    Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity }
  }, 'Health')
  const client = new Ctor(address, grpc.credentials.createInsecure())
  return {
    check: async () => await new Promise((resolve, reject) => {
      (client as any).Check(Buffer.alloc(0), { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: Buffer) => {
        // HealthCheckResponse { status = 1 }: field 1 varint, SERVING = 1.
        if (err !== null) reject(err)
        else if (res[0] !== 0x08 || res[1] !== 1) reject(new Error(`health: not SERVING (${res.toString('hex')})`))
        else resolve()
      })
    }),
    close: () => client.close()
  }
}

/** Times each read once, round robin, until `until()` says stop (or `count` rounds). */
async function readLoop (client: NodeClient, health: ReturnType<typeof healthClient>, jobId: string, stop: { count?: number, until?: () => boolean }): Promise<Record<Read, number[]>> {
  const times: Record<Read, number[]> = { getInfo: [], getJob: [], health: [] }
  const calls: Record<Read, () => Promise<unknown>> = {
    getInfo: async () => await client.getInfo(),
    getJob: async () => await client.getJob(jobId),
    health: async () => await health.check()
  }
  for (let round = 0; stop.count !== undefined ? round < stop.count : stop.until?.() !== true; round++) {
    for (const r of READS) {
      const t0 = performance.now()
      await calls[r]()
      times[r].push(performance.now() - t0)
    }
  }
  return times
}

/** The burst (in the worker thread): `total` SubmitJob calls from `clients` channels of their own, closed loop. */
async function burst (address: string, clients: number, total: number): Promise<BurstCounts> {
  const Ctor = serviceConstructor(NODE_SERVICE)
  // A distinct option per client, or grpc-js would share one subchannel (one connection) among them all.
  const channels = Array.from({ length: clients }, (_, i) => new Ctor(address, grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0, 'inframind.bench.client': i }))
  await Promise.all(channels.map(async (c) => await new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (e) => e != null ? reject(e) : resolve()))))
  const counts: BurstCounts = { submitted: 0, accepted: 0, refused: 0, other: {}, seconds: 0 }
  const req = { containerId: 'echo', containers: [], input: Buffer.from(INPUT), deadlineMs: 0, jobId: '', requiresProof: false, allowProbation: false, delegate: '' }
  const t0 = performance.now()
  await Promise.all(channels.map(async (c) => {
    while (counts.submitted < total) {
      counts.submitted++
      await new Promise<void>((resolve) => {
        (c as any).SubmitJob(req, { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null) => {
          if (err === null) counts.accepted++
          else if (err.code === grpc.status.RESOURCE_EXHAUSTED) counts.refused++
          else counts.other[grpc.status[err.code] ?? String(err.code)] = (counts.other[grpc.status[err.code] ?? String(err.code)] ?? 0) + 1
          resolve()
        })
      })
    }
  }))
  counts.seconds = (performance.now() - t0) / 1000
  for (const c of channels) c.close()
  return counts
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'responsiveness-burst') {
  const { address, clients, total } = workerData as { address: string, clients: number, total: number }
  // On Linux this is the thread's own nice value: on a 2-core box the load generator yields the CPU to
  // the node and to the timed reads, so what is measured is the node, not the generator's scheduling.
  os.setPriority(BURST_NICE)
  parentPort?.on('message', (m: string) => {
    if (m !== 'go') return
    burst(address, clients, total).then((c) => parentPort?.postMessage(c), (err: unknown) => parentPort?.postMessage({ error: String((err as Error).stack ?? err) }))
  })
  parentPort?.postMessage('ready')
}

async function startNode (ctx: BenchContext, dir: string, opts: { concurrency: number, queueSize: number }): Promise<{ child: ChildProcess, address: string, metrics: string, logFile: string }> {
  const lock = JSON.parse(await readFile(path.join(ctx.root, 'containers', 'images.lock.json'), 'utf8')) as Record<string, string>
  await mkdir(dir, { recursive: true })
  const doc = {
    node: { name: 'bench-responsiveness', roles: ['worker'], data_dir: dir },
    identity: { key_file: path.join(dir, 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0' },
    jobs: { concurrency: opts.concurrency, queue_size: opts.queueSize },
    // The shipped default level: what an operator's node logs during such a burst is part of its cost.
    // Metrics on: the node's own event-loop lag and GC time per phase say where a slow read waited.
    telemetry: { metrics: { enabled: true, listen: '127.0.0.1:0' }, log_level: 'info' },
    dashboard: { listen: '' },
    mesh: { enabled: false },
    containers: [{
      id: 'echo', image: IMAGE, digest: lock[IMAGE], command: ['cat'],
      resources: { cpus: 1, memory: '64m', pids: 32 }, timeout_ms: 30_000, input_schema: 'text', output_schema: 'text'
    }]
  }
  const configFile = path.join(dir, 'config.yaml')
  await writeFile(configFile, stringify(doc))
  const logFile = path.join(dir, 'node.log')
  const log = await open(logFile, 'w')
  const child = spawn(process.execPath, [...NODE_FLAGS, path.join(ctx.root, 'entrypoint.ts'), '--config', configFile], { stdio: ['ignore', log.fd, log.fd] })
  child.once('exit', () => { log.close().catch(() => {}) })
  const until = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node exited during start (log ${logFile}):\n${await readFile(logFile, 'utf8').catch(() => '')}`)
    try {
      const info = JSON.parse(await readFile(path.join(dir, NODE_FILE), 'utf8')) as { public: string, metrics: string }
      return { child, address: info.public, metrics: info.metrics, logFile }
    } catch {}
    if (Date.now() > until) throw new Error(`node did not listen within 60 s (log ${logFile})`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export async function benchResponsiveness (ctx: BenchContext, opts: { idleRounds: number, submits: number, clients: number, concurrency?: number, queueSize?: number }): Promise<ResponsivenessResult> {
  const concurrency = opts.concurrency ?? 2
  const queueSize = opts.queueSize ?? 64
  const { child, address, metrics } = await startNode(ctx, path.join(ctx.tmp, 'responsiveness'), { concurrency, queueSize })
  const client = connectNode(address)
  const health = healthClient(address)
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'responsiveness-burst', address, clients: opts.clients, total: opts.submits } })
  // Listened for at once: a message posted before anyone listens is lost.
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('message', (m) => m === 'ready' ? resolve() : reject(new Error(String(m))))
    worker.once('error', reject)
  })
  ready.catch(() => {})
  try {
    await client.waitReady(30_000)
    // The job GetJob reads: run to its end, so it is in the store, not only in memory.
    const { jobId } = await client.submitJob({ containerId: 'echo', input: INPUT })
    for await (const e of client.watchJob(jobId, { timeoutMs: 120_000 })) {
      if (e.job !== null && e.job.state !== 'JOB_STATE_SUCCESS') throw new Error(`the first job failed: ${e.job.error}`)
    }
    await ready
    // Warm both channels and the node's code paths, then the idle phase.
    await readLoop(client, health, jobId, { count: 30 })
    let loop0 = await scrapeLoop(metrics)
    const clientLoop = monitorEventLoopDelay({ resolution: 1 })
    clientLoop.enable()
    let wait0 = await runQueueWaitMs(child.pid)
    let cpu0 = await cpuMs(child.pid)
    let bench0 = benchCpuMs()
    let machine0 = await machineCpuMs()
    let t0 = performance.now()
    const idle = await readLoop(client, health, jobId, { count: opts.idleRounds })
    let secs = (performance.now() - t0) / 1000
    const idleCpu = (await cpuMs(child.pid) - cpu0) / secs
    const idleWait = (await runQueueWaitMs(child.pid) - wait0) / secs
    const idleBench = (benchCpuMs() - bench0) / secs
    const idleMachine = (await machineCpuMs() - machine0) / secs
    let loop1 = await scrapeLoop(metrics)
    const idleLoop = { ...loop1, gcMs: loop1.gcMs - loop0.gcMs }
    const idleClientLoop = clientLoop.percentile(99) / 1e6
    clientLoop.reset()
    loop0 = loop1

    process.stderr.write(`bench: responsiveness, ${opts.submits} SubmitJob from ${opts.clients} clients (worker thread) against queue ${queueSize}\n`)
    let done = false
    const counted = new Promise<BurstCounts>((resolve, reject) => {
      worker.once('message', (m: BurstCounts | { error: string }) => {
        done = true
        if ('error' in m) reject(new Error(m.error))
        else resolve(m)
      })
      worker.once('error', (err) => { done = true; reject(err) })
    })
    cpu0 = await cpuMs(child.pid)
    wait0 = await runQueueWaitMs(child.pid)
    const threads0 = await threadCpuMs(child.pid)
    bench0 = benchCpuMs()
    machine0 = await machineCpuMs()
    t0 = performance.now()
    worker.postMessage('go')
    const [during, counts] = await Promise.all([readLoop(client, health, jobId, { until: () => done }), counted])
    secs = (performance.now() - t0) / 1000
    const duringCpu = (await cpuMs(child.pid) - cpu0) / secs
    const duringWait = (await runQueueWaitMs(child.pid) - wait0) / secs
    const threads1 = await threadCpuMs(child.pid)
    const threads = Object.fromEntries(Object.entries(threads1).map(([k, v]) => [k, (v - (threads0[k] ?? 0)) / secs]).filter(([, v]) => (v as number) > 0))
    const duringBench = (benchCpuMs() - bench0) / secs
    const duringMachine = (await machineCpuMs() - machine0) / secs
    loop1 = await scrapeLoop(metrics)
    const duringLoop = { ...loop1, gcMs: loop1.gcMs - loop0.gcMs }
    const duringClientLoop = clientLoop.percentile(99) / 1e6
    clientLoop.disable()

    const sum = (t: Record<Read, number[]>): Record<Read, Summary> => ({ getInfo: summarise(t.getInfo), getJob: summarise(t.getJob), health: summarise(t.health) })
    const idleS = sum(idle)
    const duringS = sum(during)
    const ratio = (p: 'p50' | 'p99'): Record<Read, number> => ({
      getInfo: duringS.getInfo[p] / idleS.getInfo[p], getJob: duringS.getJob[p] / idleS.getJob[p], health: duringS.health[p] / idleS.health[p]
    })
    const ratioP99 = ratio('p99')
    return {
      concurrency,
      queueSize,
      burst: { ...counts, clients: opts.clients, runs: 'worker thread', nice: BURST_NICE },
      idle: idleS,
      during: duringS,
      ratioP99,
      ratioP50: ratio('p50'),
      worstRatioP99: Math.max(...Object.values(ratioP99)),
      machineCpus: os.availableParallelism(),
      nodeCpuMsPerSecond: { idle: idleCpu, during: duringCpu },
      benchCpuMsPerSecond: { idle: idleBench, during: duringBench },
      machineCpuMsPerSecond: { idle: idleMachine, during: duringMachine },
      nodeLoop: { idle: idleLoop, during: duringLoop },
      clientLoopP99Ms: { idle: idleClientLoop, during: duringClientLoop },
      nodeRunQueueMsPerSecond: { idle: idleWait, during: duringWait },
      nodeThreadsDuringMsPerSecond: threads
    }
  } finally {
    await worker.terminate()
    health.close()
    client.close()
    child.kill('SIGTERM')
    await new Promise((resolve) => { if (child.exitCode !== null) resolve(undefined); else child.once('exit', resolve) })
  }
}

export function renderResponsiveness (r: ResponsivenessResult): string {
  const ms = (v: number): string => `${v.toFixed(1)} ms`
  const names: Record<Read, string> = { getInfo: 'GetInfo', getJob: 'GetJob', health: 'Health/Check' }
  const other = Object.entries(r.burst.other).map(([k, v]) => `, ${v} ${k}`).join('')
  return READS.map((k) =>
    `| ${names[k]} during ${r.burst.submitted} SubmitJob from ${r.burst.clients} clients (${r.burst.accepted} accepted, ${r.burst.refused} RESOURCE_EXHAUSTED${other}; queue ${r.queueSize}, concurrency ${r.concurrency}) | p50 ${ms(r.during[k].p50)}, p99 ${ms(r.during[k].p99)} (${r.during[k].n} calls) | idle node: p50 ${ms(r.idle[k].p50)}, p99 ${ms(r.idle[k].p99)} (${r.idle[k].n} calls) | p99 ${r.ratioP99[k].toFixed(2)}, p50 ${r.ratioP50[k].toFixed(2)} | p99 <= 3x ${r.ratioP99[k] <= 3 ? 'met' : 'NOT met'} |`
  ).join('\n')
}

export function responsivenessNote (r: ResponsivenessResult): string {
  const pct = (c: { idle: number, during: number }): string => `${(c.idle / 10).toFixed(0)} / ${(c.during / 10).toFixed(0)}`
  const loop = (l: LoopSample): string => `${l.lagP99Ms.toFixed(1)} / ${l.lagMaxMs.toFixed(1)} ms (GC ${l.gcMs.toFixed(0)} ms)`
  return `Responsiveness: a real node process (log level info, mesh off, one-shot echo container) answers one client's read-only calls one at a time, round robin, while idle and then during the burst; the burst's ${r.burst.clients} clients each have their own channel and run closed loop in a worker thread of the bench at nice ${BURST_NICE} (so they neither share the timed client's event loop nor outrank the node for the 2 cores). ` +
    `The burst took ${r.burst.seconds.toFixed(1)} s. CPU, % of one core, idle phase / burst: the node ${pct(r.nodeCpuMsPerSecond)}; the bench process (reads and the burst's thread) ${pct(r.benchCpuMsPerSecond)}; the whole machine (${r.machineCpus} cores, other users included) ${pct(r.machineCpuMsPerSecond)}. ` +
    `The node's event-loop delay p99 / max, idle: ${loop(r.nodeLoop.idle)}; during the burst: ${loop(r.nodeLoop.during)}; the timing client's own event-loop delay p99, idle / burst: ${r.clientLoopP99Ms.idle.toFixed(1)} / ${r.clientLoopP99Ms.during.toFixed(1)} ms. ` +
    `The node's event-loop thread waited for a CPU while runnable ${r.nodeRunQueueMsPerSecond.idle.toFixed(0)} ms/s idle, ${r.nodeRunQueueMsPerSecond.during.toFixed(0)} ms/s during the burst; ` +
    `the node's CPU during the burst by thread, % of one core: ${Object.entries(r.nodeThreadsDuringMsPerSecond).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / 10).toFixed(0)}`).join(', ')}.`
}
