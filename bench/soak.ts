/**
 * `npm run soak -- --minutes N` (issue 10): a 5-node private devnet (scheduler+gateway, 3 workers, a
 * validator; separate node processes on 127.0.0.1) takes one-shot echo jobs at a steady rate while a
 * worker, picked at random, and the gateway are killed with SIGKILL now and then and restarted on
 * their data dirs. Every job has its own id (the idempotency key), so a submission retried through
 * the gateway's absence never makes a second job, and each job is followed to its end. Writes
 * bench/results/soak.{json,md}; exits non-zero when a job was lost or duplicated, or a container
 * was left in the engine after a clean stop of every node.
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Docker from 'dockerode'
import { parse, stringify } from 'yaml'
import { connectNode, type NodeClient } from '../src/api/client.ts'
import { NODE_FLAGS, startDevnet, type Devnet, type DevnetNode } from '../src/cli/devnet.ts'
import { parseArgs, str } from '../src/cli/args.ts'
import { LABEL_JOB, LABEL_KIND, LABEL_NODE, KIND_ONESHOT } from '../src/runtime/constants.ts'
import { NODE_FILE } from '../src/types.ts'
import type { Job as WireJob } from '../src/protocol/index.ts'
import { rssMiB } from './proc.ts'
import { summarise, type Summary } from './stats.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RESULTS = path.join(ROOT, 'bench', 'results')
const ENTRYPOINT = path.join(ROOT, 'entrypoint.ts')
/** config.yaml's one-shot echo (`cat`): a job's output must be its input. */
const CONTAINER = 'echo'

/** Options and their defaults: a modest rate a 2-core machine sustains with kills going on. */
const DEFAULTS = { minutes: 5, rate: 2, workerKillS: 40, gatewayKillS: 90, downS: 3, drainS: 180, keepLogs: false }
/** A client retries a submission this long through the gateway's absence before it gives up. */
const SUBMIT_GIVE_UP_MS = 90_000
const SUBMIT_CALL_MS = 5_000
/** Clients back off between retries (doubling up to the max), as real ones would, rather than hammer a restarting gateway. */
const RETRY_PAUSE_MS = 250
const RETRY_PAUSE_MAX_MS = 4_000
const backoff = (tries: number): number => Math.min(RETRY_PAUSE_MAX_MS, RETRY_PAUSE_MS * 2 ** Math.min(tries, 10))
/** A finished job is read again this long after its end, to see that it stays finished as it was. */
const RECHECK_AFTER_MS = 5_000
const SAMPLE_MS = 5_000
/** RSS of a node's first seconds is start-up, not a trend: the slope begins after this. */
const RSS_WARMUP_MS = 30_000
const RESTART_TIMEOUT_MS = 120_000
/** Submissions answered with these were refused for good (retrying the same request cannot help). */
const FINAL_REFUSALS = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'PERMISSION_DENIED', 'FAILED_PRECONDITION'])

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) }
const STATUS = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED']

/** A gRPC failure as `STATUS` or `STATUS/NODE_CODE` (the node's error code trailer), for counting. */
function reason (err: unknown): string {
  const e = err as { code?: number, metadata?: { get(k: string): unknown[] } }
  if (typeof e.code !== 'number') return (err as Error).message.slice(0, 80)
  const code = e.metadata?.get('inframind-error-code')?.[0]
  return `${STATUS[e.code] ?? e.code}${code !== undefined ? `/${String(code)}` : ''}`
}

function count (map: Record<string, number>, key: string): void { map[key] = (map[key] ?? 0) + 1 }

// ——— node processes: kill -9 and restart on the same data dir ———

/** One run of a node process: its RSS samples (ms since the soak began, MiB). */
interface Life { pid: number, startedMs: number, rss: Array<[number, number]> }
interface Tracked { node: DevnetNode, lives: Life[], metricsUrl: string }
interface Kill { node: string, atMs: number, downMs: number, restartMs: number }

interface NodeFile { public: string, control: string, metrics: string, mesh: string[] }
async function nodeFile (dir: string): Promise<NodeFile | undefined> {
  return await readFile(path.join(dir, NODE_FILE), 'utf8').then((t) => JSON.parse(t) as NodeFile, () => undefined)
}

const alive = (t: Tracked): boolean => t.node.child.exitCode === null && t.node.child.signalCode === null

async function killNode (t: Tracked): Promise<void> {
  if (!alive(t)) return
  const exited = new Promise((resolve) => t.node.child.once('exit', resolve))
  t.node.child.kill('SIGKILL')
  await exited
}

/**
 * Starts the node again from its config, bootstrapping from the nodes alive now (their mesh ports
 * may have changed since the devnet began), and waits until it listens. Its store, identity and
 * roster are the ones it had.
 */
async function restartNode (t: Tracked, all: Tracked[], t0: number): Promise<void> {
  const file = path.join(t.node.dir, 'config.yaml')
  const doc = parse(await readFile(file, 'utf8')) as Record<string, any>
  doc.mesh.bootstrap = all.filter((o) => o !== t && alive(o)).map((o) => o.node.meshAddr).filter((a) => a.includes('/p2p/'))
  await writeFile(file, stringify(doc))
  await rm(path.join(t.node.dir, NODE_FILE), { force: true })
  const log = await open(t.node.logFile, 'a')
  const child = spawn(process.execPath, [...NODE_FLAGS, ENTRYPOINT, '--config', file], { stdio: ['ignore', log.fd, log.fd] })
  child.once('exit', () => { log.close().catch(() => {}) })
  t.node.child = child
  const until = Date.now() + RESTART_TIMEOUT_MS
  for (;;) {
    if (!alive(t)) throw new Error(`${t.node.name} exited during its restart (log ${t.node.logFile})`)
    const info = await nodeFile(t.node.dir)
    if (info !== undefined) {
      t.node.publicAddr = info.public
      t.node.controlAddr = info.control
      t.node.meshAddr = info.mesh.find((a) => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? info.mesh[0] ?? ''
      t.metricsUrl = info.metrics
      t.lives.push({ pid: child.pid ?? 0, startedMs: Date.now() - t0, rss: [] })
      return
    }
    if (Date.now() > until) throw new Error(`${t.node.name} did not listen within ${RESTART_TIMEOUT_MS / 1000} s of its restart`)
    await sleep(100)
  }
}

/** The gateway's public address moves with each restart (port 0): clients follow it. */
interface Gateway { client: NodeClient, addr: string }
function follow (gw: Gateway, addr: string): void {
  if (addr === gw.addr) return
  const old = gw.client
  gw.client = connectNode(addr)
  gw.addr = addr
  old.close()
}

/** Kills a random worker every `workerKillS` and the gateway every `gatewayKillS`, one at a time, until `endMs`. */
async function chaos (nodes: Tracked[], gw: Gateway, o: typeof DEFAULTS, t0: number, endMs: number, kills: Kill[]): Promise<void> {
  const gateway = nodes[0]!
  const workers = nodes.filter((n) => n.node.roles.includes('worker'))
  let nextWorker = Date.now() + o.workerKillS * 1000
  let nextGateway = Date.now() + o.gatewayKillS * 1000
  for (;;) {
    const due = Math.min(nextWorker, nextGateway)
    if (due >= endMs) return
    await sleep(due - Date.now())
    // A slow restart can push the next kill past the end of the load: none after it.
    if (Date.now() >= endMs) return
    const isGateway = nextGateway <= nextWorker
    const target = isGateway ? gateway : workers[Math.floor(Math.random() * workers.length)]!
    const at = Date.now()
    await killNode(target)
    process.stderr.write(`soak: ${((at - t0) / 1000).toFixed(0)} s: kill -9 ${target.node.name}\n`)
    await sleep(o.downS * 1000)
    const down = Date.now()
    await restartNode(target, nodes, t0)
    kills.push({ node: target.node.name, atMs: at - t0, downMs: down - at, restartMs: Date.now() - down })
    if (isGateway) {
      follow(gw, target.node.publicAddr)
      nextGateway += o.gatewayKillS * 1000
    } else {
      nextWorker += o.workerKillS * 1000
    }
  }
}

// ——— jobs: submit with retries under one id, follow to the end ———

interface Final { state: string, errorCode: string, error: string, output: string, workerId: string, terminalHistory: number }
interface JobTrack {
  id: string
  input: string
  submittedMs: number
  attempts: number
  accepted: boolean
  /** A retry was answered "that job exists": the first attempt had been accepted unheard. */
  duplicateAck: boolean
  lastError: string
  final?: Final
  finalMs?: number
  /** Terminal events WatchJob delivered (1 in a correct run). */
  terminalEvents: number
  /** Disagreements of the job's later reads with its first final state (a second result). */
  changed: string[]
}

function finalOf (j: WireJob): Final {
  return {
    state: j.state.replace('JOB_STATE_', ''),
    errorCode: j.errorCode,
    error: j.error.slice(0, 160),
    output: Buffer.from(j.output).toString(),
    workerId: j.workerId,
    terminalHistory: j.history.filter((h) => h.state === 'JOB_STATE_SUCCESS' || h.state === 'JOB_STATE_FAILED').length
  }
}
const isFinal = (j: WireJob): boolean => j.state === 'JOB_STATE_SUCCESS' || j.state === 'JOB_STATE_FAILED'

function compare (job: JobTrack, seen: Final, where: string): void {
  const f = job.final
  if (f === undefined) return
  if (seen.state !== f.state || seen.output !== f.output || seen.workerId !== f.workerId) job.changed.push(`${where}: ${seen.state} on ${seen.workerId.slice(-8)} after ${f.state} on ${f.workerId.slice(-8)}`)
  if (seen.terminalHistory > 1) job.changed.push(`${where}: ${seen.terminalHistory} terminal entries in its history`)
}

async function submit (job: JobTrack, gw: Gateway, retries: Record<string, number>): Promise<void> {
  const giveUp = Date.now() + SUBMIT_GIVE_UP_MS
  for (;;) {
    job.attempts++
    try {
      const res = await gw.client.submitJob({ containerId: CONTAINER, input: Buffer.from(job.input), jobId: job.id }, { timeoutMs: SUBMIT_CALL_MS })
      job.accepted = true
      job.duplicateAck = res.duplicate
      return
    } catch (err) {
      job.lastError = reason(err)
      if (FINAL_REFUSALS.has(job.lastError.split('/')[0]!) || Date.now() > giveUp) return
      count(retries, job.lastError)
      await sleep(backoff(job.attempts - 1))
    }
  }
}

/** WatchJob until the terminal event, re-watching (at whatever address the gateway has now) when the stream breaks. */
async function watch (job: JobTrack, gw: Gateway, untilMs: number, breaks: Record<string, number>): Promise<void> {
  let tries = 0
  while (job.final === undefined && Date.now() < untilMs) {
    try {
      for await (const e of gw.client.watchJob(job.id, { timeoutMs: untilMs - Date.now() })) {
        if (e.job === null) continue
        job.terminalEvents++
        if (job.final === undefined) {
          job.final = finalOf(e.job)
          job.finalMs = Date.now()
        } else {
          compare(job, finalOf(e.job), 'a second terminal event')
        }
      }
    } catch (err) {
      count(breaks, reason(err))
      await sleep(backoff(tries++))
    }
  }
  if (job.final === undefined) return
  await sleep(RECHECK_AFTER_MS)
  const again = await gw.client.getJob(job.id).catch(() => undefined)
  if (again !== undefined) compare(job, finalOf(again), `read ${RECHECK_AFTER_MS / 1000} s later`)
}

// ——— containers per job, from the engine's events ———

interface Create { node: string, atMs: number }

/** Every one-shot container created by one of `nodeIds`, by job id (the inframind.job label). */
async function watchCreates (docker: Docker, nodeIds: Map<string, string>, t0: number): Promise<{ creates: Map<string, Create[]>, stop: () => void }> {
  const creates = new Map<string, Create[]>()
  const stream = await docker.getEvents({ filters: { type: ['container'], event: ['create'], label: [`${LABEL_KIND}=${KIND_ONESHOT}`] } })
  let buf = ''
  stream.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      try {
        const e = JSON.parse(line) as { timeNano?: number, Actor?: { Attributes?: Record<string, string> } }
        const a = e.Actor?.Attributes ?? {}
        const node = nodeIds.get(a[LABEL_NODE] ?? '')
        const jobId = a[LABEL_JOB]
        if (node === undefined || jobId === undefined) continue
        const list = creates.get(jobId) ?? []
        list.push({ node, atMs: (e.timeNano ?? Date.now() * 1e6) / 1e6 - t0 })
        creates.set(jobId, list)
      } catch {}
    }
  })
  stream.on('error', () => {})
  return { creates, stop: () => { (stream as unknown as { destroy(): void }).destroy() } }
}

/**
 * A job whose container ran more than once: expected when a node it ran on was killed while the job
 * was open (the scheduler reassigns it; the killed worker may also run a job it had queued once it is
 * back); after a gateway kill the restarted gateway asks the job's worker first, so a rerun then is
 * reported apart; any other rerun is a duplicate.
 */
function classifyRerun (job: JobTrack, runs: Create[], kills: Kill[], t0: number): 'worker_kill' | 'gateway_kill' | 'unexplained' {
  const from = job.submittedMs - t0
  const to = (job.finalMs ?? Date.now()) - t0
  const during = kills.filter((k) => k.atMs >= from - 1_000 && k.atMs <= to)
  if (during.some((k) => runs.some((r) => r.node === k.node))) return 'worker_kill'
  if (during.some((k) => k.node === 'gateway')) return 'gateway_kill'
  return 'unexplained'
}

// ——— reporting ———

/** Least-squares slope of RSS after the warm-up, MiB per minute (undefined with fewer than 6 samples). */
function slope (life: Life): number | undefined {
  const pts = life.rss.filter(([t]) => t >= life.startedMs + RSS_WARMUP_MS)
  if (pts.length < 6) return undefined
  const n = pts.length
  const mx = pts.reduce((a, [t]) => a + t, 0) / n
  const my = pts.reduce((a, [, v]) => a + v, 0) / n
  const sxy = pts.reduce((a, [t, v]) => a + (t - mx) * (v - my), 0)
  const sxx = pts.reduce((a, [t]) => a + (t - mx) ** 2, 0)
  return sxx === 0 ? undefined : sxy / sxx * 60_000
}

/** Sums a Prometheus counter over its label sets. */
function counter (text: string, name: string): number {
  return text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`)).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
}
const GATEWAY_COUNTERS = ['inframind_late_results_total', 'inframind_jobs_reassigned_total'] as const

interface NodeReport { name: string, roles: string[], kills: number, lives: Array<{ startedS: number, samples: number, firstMiB: number, lastMiB: number, maxMiB: number, slopeMiBPerMin: number | null }> }

export interface SoakReport {
  at: string
  options: typeof DEFAULTS
  seconds: { load: number, drain: number }
  jobs: {
    submitted: number
    accepted: number
    /** Accepted although the client never heard it (a retry was told the job existed). */
    acceptedUnheard: number
    notAccepted: Record<string, number>
    completed: number
    failed: Record<string, number>
    /** A few failed jobs of each reason, with the error the gateway recorded and the worker. */
    failedExamples: Record<string, Array<{ job: string, worker: string, error: string }>>
    wrongOutput: number
    lost: number
    duplicated: number
    latencyMs: Summary
  }
  /** One-shot containers the devnet's workers created (engine events), and how many jobs had none. */
  containers: { created: number, jobsWithout: number }
  reruns: { worker_kill: number, gateway_kill: number, unexplained: number, examples: Array<{ job: string, runs: Create[], kind: string }> }
  submitRetries: Record<string, number>
  watchBreaks: Record<string, number>
  kills: { worker: number, gateway: number, list: Kill[] }
  /** The gateway's counters, summed over its lives (each life's last scrape). */
  gateway: Record<string, number>
  nodes: NodeReport[]
  containersLeft: number
  defects: string[]
}

function markdown (r: SoakReport): string {
  const kv = (m: Record<string, number>): string => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
  const fmt = (x: number | null): string => x === null ? 'n/a' : x.toFixed(2)
  return `# Soak run (${r.at})

${r.options.minutes} min of load at ${r.options.rate} jobs/s (one-shot \`${CONTAINER}\`) through the gateway of a 5-node private devnet, then up to ${r.options.drainS} s of drain (took ${r.seconds.drain} s); kill -9 of a random worker every ${r.options.workerKillS} s and of the gateway every ${r.options.gatewayKillS} s, each restarted ${r.options.downS} s later on its data dir.

| measure | value | must be |
|---|---|---|
| jobs submitted | ${r.jobs.submitted} | |
| accepted | ${r.jobs.accepted} (${r.jobs.acceptedUnheard} accepted unheard, found on a retry) | |
| not accepted | ${kv(r.jobs.notAccepted)} | |
| completed (output = input) | ${r.jobs.completed} | |
| failed, by reason | ${kv(r.jobs.failed)} | |
| wrong output | ${r.jobs.wrongOutput} | 0 |
| lost (accepted, never final) | **${r.jobs.lost}** | 0 |
| duplicated (two results, or a rerun no kill explains) | **${r.jobs.duplicated}** | 0 |
| reruns after a kill of a node that ran the job / of the gateway | ${r.reruns.worker_kill} / ${r.reruns.gateway_kill} | |
| containers left after a clean stop | **${r.containersLeft}** | 0 |
| one-shot containers created (accepted jobs with none) | ${r.containers.created} (${r.containers.jobsWithout}) | |
| kills (worker / gateway) | ${r.kills.worker} / ${r.kills.gateway} | |
| gateway: late results refused, jobs reassigned | ${r.gateway.inframind_late_results_total ?? 0}, ${r.gateway.inframind_jobs_reassigned_total ?? 0} | |
| submit → final, successful jobs | p50 ${r.jobs.latencyMs.p50.toFixed(0)} ms, p99 ${r.jobs.latencyMs.p99.toFixed(0)} ms, max ${r.jobs.latencyMs.max.toFixed(0)} ms | |
| submission retries | ${kv(r.submitRetries)} | |
| WatchJob streams broken | ${kv(r.watchBreaks)} | |

RSS per node process (one line per life; a restarted node starts a new series; slope = least squares after the first ${RSS_WARMUP_MS / 1000} s, every ${SAMPLE_MS / 1000} s):

| node | life from | samples | RSS first → last (max), MiB | slope, MiB/min |
|---|---|---|---|---|
${r.nodes.flatMap((n) => n.lives.map((l, i) => `| ${i === 0 ? `${n.name} (${n.kills} kills)` : ''} | ${l.startedS} s | ${l.samples} | ${l.firstMiB.toFixed(0)} → ${l.lastMiB.toFixed(0)} (${l.maxMiB.toFixed(0)}) | ${fmt(l.slopeMiBPerMin)} |`)).join('\n')}
${r.defects.length === 0 ? '\nNo defects.\n' : `\n## Defects\n\n${r.defects.map((d) => `- ${d}`).join('\n')}\n`}`
}

// ——— the run ———

function options (argv: string[]): typeof DEFAULTS {
  const args = parseArgs(argv, ['minutes', 'rate', 'worker-kill-s', 'gateway-kill-s', 'down-s', 'drain-s'], ['keep-logs'])
  const num = (name: string, dflt: number): number => {
    const v = Number(str(args, name) ?? dflt)
    if (!(v > 0)) throw new Error(`--${name} must be a number > 0`)
    return v
  }
  return {
    minutes: num('minutes', DEFAULTS.minutes),
    rate: num('rate', DEFAULTS.rate),
    workerKillS: num('worker-kill-s', DEFAULTS.workerKillS),
    gatewayKillS: num('gateway-kill-s', DEFAULTS.gatewayKillS),
    downS: num('down-s', DEFAULTS.downS),
    drainS: num('drain-s', DEFAULTS.drainS),
    keepLogs: args.flags.has('keep-logs')
  }
}

async function main (): Promise<void> {
  const o = options(process.argv.slice(2))
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'inframind-soak-'))
  process.stderr.write(`soak: starting a 5-node devnet in ${baseDir}\n`)
  const docker = new Docker()
  let net: Devnet | undefined
  // Node logs are kept when the run fails or finds a defect (removed after a clean run).
  let keep = true
  const stopAll = async (): Promise<void> => { await net?.stop() }
  const onSignal = (): void => { void stopAll().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    net = await startDevnet({ nodes: 5, baseDir, warmOnFirstWorker: false, logLevel: 'info', progress: (l) => process.stderr.write(`soak: ${l}\n`) })
    const t0 = Date.now()
    const nodes: Tracked[] = await Promise.all(net.nodes.map(async (node) => ({ node, lives: [{ pid: node.child.pid ?? 0, startedMs: 0, rss: [] }], metricsUrl: (await nodeFile(node.dir))?.metrics ?? '' })))
    const ids = new Map(net.nodes.map((n) => [n.nodeId, n.name]))
    const engine = await watchCreates(docker, ids, t0)
    const gw: Gateway = { client: connectNode(net.gateway.publicAddr), addr: net.gateway.publicAddr }
    const gatewayLives: Array<Record<string, number>> = [{}]

    // RSS of every node and the gateway's counters, every SAMPLE_MS, for the whole run.
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        for (const t of nodes) {
          const life = t.lives[t.lives.length - 1]!
          const mib = alive(t) ? await rssMiB(t.node.child.pid) : 0
          if (mib > 0) life.rss.push([Date.now() - t0, mib])
        }
        const g = nodes[0]!
        const text = alive(g) ? await fetch(g.metricsUrl, { signal: AbortSignal.timeout(2_000) }).then(async (r) => await r.text(), () => '') : ''
        if (text !== '') {
          while (gatewayLives.length < g.lives.length) gatewayLives.push({})
          for (const name of GATEWAY_COUNTERS) gatewayLives[g.lives.length - 1]![name] = counter(text, name)
        }
        await sleep(SAMPLE_MS)
      }
    })()

    const endMs = t0 + o.minutes * 60_000
    const followUntil = endMs + o.drainS * 1000
    const jobs: JobTrack[] = []
    const retries: Record<string, number> = {}
    const breaks: Record<string, number> = {}
    const kills: Kill[] = []
    const tasks: Array<Promise<void>> = []
    const run = `${Date.now().toString(36)}`
    process.stderr.write(`soak: ${o.minutes} min at ${o.rate} jobs/s\n`)
    const killing = chaos(nodes, gw, o, t0, endMs, kills)
    // Awaited after the load; a failed restart ends the run then.
    killing.catch(() => {})
    // Open loop: a job every 1/rate s whatever the earlier ones are doing, as independent clients would.
    for (let i = 0; Date.now() < endMs; i++) {
      const job: JobTrack = { id: `soak-${run}-${i}`, input: `soak job ${i} of run ${run}`, submittedMs: Date.now(), attempts: 0, accepted: false, duplicateAck: false, lastError: '', terminalEvents: 0, changed: [] }
      jobs.push(job)
      tasks.push(submit(job, gw, retries).then(async () => { if (job.accepted) await watch(job, gw, followUntil, breaks) }))
      if (i % (o.rate * 30) === 0 && i > 0) process.stderr.write(`soak: ${((Date.now() - t0) / 1000).toFixed(0)} s: ${i} submitted, ${jobs.filter((j) => j.final !== undefined).length} final\n`)
      await sleep(t0 + (i + 1) * 1000 / o.rate - Date.now())
    }
    await killing
    process.stderr.write(`soak: load over; draining (up to ${o.drainS} s)\n`)
    const drainFrom = Date.now()
    await Promise.all(tasks)
    const drained = Math.round((Date.now() - drainFrom) / 1000)

    // Submissions given up on may still have been accepted; every job is read once more at the end.
    for (const job of jobs) {
      const j = await gw.client.getJob(job.id).catch(() => undefined)
      if (j === undefined) continue
      if (!job.accepted) job.accepted = true
      if (job.final === undefined && isFinal(j)) { job.final = finalOf(j); job.finalMs = Date.now() } else if (isFinal(j)) compare(job, finalOf(j), 'read at the end')
    }
    sampling = false
    await sampler
    gw.client.close()
    engine.stop()
    process.stderr.write('soak: stopping every node cleanly\n')
    await net.stop()
    let containersLeft = 0
    for (const id of ids.keys()) {
      const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${id}`] } })
      containersLeft += left.length
      await Promise.all(left.map(async (c) => await docker.getContainer(c.Id).remove({ force: true }).catch(() => {})))
    }

    const accepted = jobs.filter((j) => j.accepted)
    const lost = accepted.filter((j) => j.final === undefined)
    const wrong = accepted.filter((j) => j.final?.state === 'SUCCESS' && j.final.output !== j.input)
    const reruns = { worker_kill: 0, gateway_kill: 0, unexplained: 0, examples: [] as SoakReport['reruns']['examples'] }
    const unexplained = new Set<string>()
    for (const job of jobs) {
      const runs = engine.creates.get(job.id) ?? []
      if (runs.length < 2) continue
      const kind = classifyRerun(job, runs, kills, t0)
      reruns[kind]++
      if (kind === 'unexplained') unexplained.add(job.id)
      if (reruns.examples.length < 20) reruns.examples.push({ job: job.id, runs, kind })
    }
    const twice = accepted.filter((j) => j.terminalEvents > 1 || j.changed.length > 0)
    for (const j of twice) unexplained.add(j.id)
    const failed: Record<string, number> = {}
    const failedExamples: SoakReport['jobs']['failedExamples'] = {}
    for (const j of accepted) {
      if (j.final?.state !== 'FAILED') continue
      const why = j.final.errorCode || 'unknown'
      count(failed, why)
      const list = failedExamples[why] ??= []
      if (list.length < 3) list.push({ job: j.id, worker: j.final.workerId, error: j.final.error })
    }
    const notAccepted: Record<string, number> = {}
    for (const j of jobs) if (!j.accepted) count(notAccepted, j.lastError || 'unknown')
    const gateway: Record<string, number> = {}
    for (const life of gatewayLives) for (const [k, v] of Object.entries(life)) gateway[k] = (gateway[k] ?? 0) + v
    const defects = [
      ...lost.slice(0, 10).map((j) => `lost: ${j.id} (accepted${j.duplicateAck ? ' as "it exists" on a retry' : ''} after ${j.attempts} attempts, last error ${j.lastError || 'none'}; no final state)`),
      ...wrong.slice(0, 10).map((j) => `wrong output: ${j.id} returned ${JSON.stringify(j.final?.output.slice(0, 60))}`),
      ...twice.slice(0, 10).map((j) => `two results: ${j.id}: ${j.terminalEvents} terminal events; ${j.changed.join('; ')}`),
      ...reruns.examples.filter((e) => e.kind === 'unexplained').slice(0, 10).map((e) => `rerun with no kill to explain it: ${e.job} ran on ${e.runs.map((r) => `${r.node} at ${(r.atMs / 1000).toFixed(1)} s`).join(', ')}`),
      ...(containersLeft > 0 ? [`${containersLeft} containers of the devnet's nodes left in the engine after a clean stop`] : [])
    ]
    const report: SoakReport = {
      at: new Date(t0).toISOString(),
      options: o,
      seconds: { load: o.minutes * 60, drain: drained },
      jobs: {
        submitted: jobs.length,
        accepted: accepted.length,
        acceptedUnheard: jobs.filter((j) => j.duplicateAck).length,
        notAccepted,
        completed: accepted.filter((j) => j.final?.state === 'SUCCESS' && j.final.output === j.input).length,
        failed,
        failedExamples,
        wrongOutput: wrong.length,
        lost: lost.length,
        duplicated: unexplained.size,
        latencyMs: summarise(accepted.filter((j) => j.final?.state === 'SUCCESS').map((j) => j.finalMs! - j.submittedMs))
      },
      containers: { created: [...engine.creates.values()].reduce((a, l) => a + l.length, 0), jobsWithout: accepted.filter((j) => !engine.creates.has(j.id)).length },
      reruns,
      submitRetries: retries,
      watchBreaks: breaks,
      kills: { worker: kills.filter((k) => k.node !== 'gateway').length, gateway: kills.filter((k) => k.node === 'gateway').length, list: kills },
      gateway,
      nodes: nodes.map((t) => ({
        name: t.node.name,
        roles: t.node.roles,
        kills: kills.filter((k) => k.node === t.node.name).length,
        lives: t.lives.map((l) => {
          const v = l.rss.map(([, m]) => m)
          return { startedS: Math.round(l.startedMs / 1000), samples: v.length, firstMiB: v[0] ?? 0, lastMiB: v[v.length - 1] ?? 0, maxMiB: Math.max(0, ...v), slopeMiBPerMin: slope(l) ?? null }
        })
      })),
      containersLeft,
      defects
    }
    await mkdir(RESULTS, { recursive: true })
    await writeFile(path.join(RESULTS, 'soak.json'), JSON.stringify(report, null, 2) + '\n')
    await writeFile(path.join(RESULTS, 'soak.md'), markdown(report))
    process.stdout.write(markdown(report))
    const bad = report.jobs.lost > 0 || report.jobs.duplicated > 0 || report.containersLeft > 0 || report.jobs.wrongOutput > 0
    keep = bad || o.keepLogs
    if (keep) process.stderr.write(`soak: node logs kept in ${baseDir}\n`)
    process.exitCode = bad ? 1 : 0
  } finally {
    await stopAll()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (!keep) await rm(baseDir, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
