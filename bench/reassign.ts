/**
 * Issue 10 item 1, measured: a worker's node process is SIGKILLed while its container runs a mesh
 * job, and the bench times how long the job takes to be running on another worker and to reach the
 * client. A devnet of separate node processes on loopback (a scheduler+gateway, 3 workers serving a
 * one-shot container that sleeps, a validator); each round submits one job through the gateway,
 * waits for a worker to accept it and for its container to run, kills that worker, and after the
 * result restarts it (same identity, same store), as an operator's supervisor would.
 *
 * Times come from three clocks of this machine: the kill (this process), the gateway's job history
 * (when it saw the worker lost and when another accepted), Docker's events (when the job's container
 * started on the other worker), and the client's WatchJob stream (when the result arrived).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { open, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { parse } from 'yaml'
import { connectControl, connectNode, type ControlClient, type NodeClient } from '../src/api/client.ts'
import { NODE_FLAGS, startDevnet, type DevnetNode } from '../src/cli/devnet.ts'
import { NODE_FILE } from '../src/types.ts'
import { settle } from './proc.ts'
import { summarise, type Summary } from './stats.ts'
import type { BenchContext } from './run.ts'
import { DISCONNECT_GRACE_MS, WATCH_INTERVAL_MS } from '../src/scheduler/index.ts'
import { LIVENESS_INTERVALS } from '../src/mesh/index.ts'

const CONTAINER_ID = 'sleep-echo'
/** The job sleeps this long, then echoes its input: long enough to be killed in the middle of. */
const JOB_SLEEP_S = 4
/** The worker is killed this long after its container started: mid-job, not at its first instant. */
const KILL_AFTER_MS = 1_000
/** Every wait of a round ends by then: a job that is never reassigned fails its round, not the bench. */
const ROUND_TIMEOUT_MS = 60_000
/*
 * What the scheduler allows itself to notice a lost worker: it checks the job's worker every
 * WATCH_INTERVAL_MS and takes it as lost after DISCONNECT_GRACE_MS without a mesh connection, or once
 * its heartbeats stop (LIVENESS_INTERVALS intervals). A killed process's sockets close at once, so the
 * connection path is the one a SIGKILL takes: context for the figure, not a target.
 */

export interface ReassignRound {
  /** Node names (worker-1…) of the worker killed and of the one that finished the job. */
  killed: string
  finishedBy: string
  /** From the kill, ms: the gateway's history says the worker is lost; another worker accepted; its container started (Docker); the client got the result. */
  detectedMs: number
  acceptedMs: number
  runningMs: number
  resultMs: number
  /** The same acceptance, seen by the client on its WatchJob stream. */
  clientSawAcceptedMs: number
  /** The second run's container, start to exit (Docker): most of acceptedMs → resultMs. */
  secondRunMs: number
  /** The second run's container, created → started (Docker): the engine's share of acceptedMs → runningMs. */
  engineStartMs: number
  /** 1-minute load average of the machine at the kill (other users' work included). */
  loadAtKill: number
  /** Terminal events the client's WatchJob delivered (1 = exactly one result). */
  results: number
  /** Counters of the gateway over the round, the killed worker's restart included. */
  reassigned: number
  lateResults: number
  meshSuccess: number
  meshFailed: number
  /** What the restarted worker's own store says of the job, and its leftover containers of it afterwards. */
  killedWorkerSays: string
  leftoverContainers: number
  /** Restart of the killed worker → the gateway sees it alive and connected again. */
  backAfterMs: number
  /** Empty when the round went as it should (one result, the input echoed, by another worker). */
  problems: string[]
}

export interface ReassignResult {
  nodes: number
  workers: number
  jobSleepS: number
  killAfterMs: number
  heartbeatIntervalMs: number
  /** How soon the scheduler can notice a SIGKILLed worker at the latest: grace + one check interval. */
  detectionBudgetMs: number
  /** The heartbeat path (a worker whose connection stays up but which stopped beating). */
  livenessBudgetMs: number
  rounds: ReassignRound[]
  detected: Summary
  accepted: Summary
  running: Summary
  result: Summary
  clientSawAccepted: Summary
  secondRun: Summary
  engineStart: Summary
  loadAtKill: Summary
  machineCpus: number
  backAfter: Summary
  /** accepted.p50 / heartbeatIntervalMs and accepted.p50 / detectionBudgetMs. */
  acceptedPerHeartbeat: number
  acceptedPerDetectionBudget: number
  /** Rounds with a problem (see ReassignRound.problems). */
  failedRounds: number
  settledAfterMs: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export async function until<T> (what: string, deadlineMs: number, probe: () => Promise<T | undefined> | T | undefined, everyMs = 50): Promise<T> {
  const end = Date.now() + deadlineMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`bench: ${what} within ${deadlineMs / 1000} s`)
    await sleep(everyMs)
  }
}

async function slowContainer (root: string): Promise<Record<string, unknown>> {
  const lock = JSON.parse(await readFile(path.join(root, 'containers', 'images.lock.json'), 'utf8')) as Record<string, string>
  return {
    id: CONTAINER_ID, image: 'inframind/echo:1', digest: lock['inframind/echo:1'], command: ['sh', '-c', `sleep ${JOB_SLEEP_S}; cat`],
    resources: { cpus: 0.5, memory: '64m', pids: 32 }, timeout_ms: 60_000, input_schema: 'text', output_schema: 'text'
  }
}

/** Creation, start and exit of one-shot job containers, by job and node, from `docker events` (engine timestamps). */
interface ContainerEvents {
  at(jobId: string, nodeId: string, action: 'create' | 'start' | 'die'): number | undefined
  stop(): void
}

function containerEvents (): ContainerEvents {
  const seen = new Map<string, number>()
  const p = spawn('docker', ['events', '--format', '{{json .}}', '--filter', 'type=container', '--filter', 'event=create', '--filter', 'event=start', '--filter', 'event=die', '--filter', 'label=inframind.kind=oneshot'], { stdio: ['ignore', 'pipe', 'ignore'] })
  createInterface({ input: p.stdout }).on('line', (line) => {
    try {
      const e = JSON.parse(line) as { Action?: string, status?: string, timeNano?: number, Actor?: { Attributes?: Record<string, string> } }
      const a = e.Actor?.Attributes ?? {}
      const key = `${a['inframind.job']} ${a['inframind.node']} ${e.Action ?? e.status}`
      if (!seen.has(key)) seen.set(key, (e.timeNano ?? 0) / 1e6)
    } catch {}
  })
  p.on('error', () => {})
  return { at: (jobId, nodeId, action) => seen.get(`${jobId} ${nodeId} ${action}`), stop: () => { p.kill() } }
}

/** Sums the samples of one metric whose labels include `labels`, from the gateway's /metrics. */
async function metric (url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

interface Counters { reassigned: number, late: number, success: number, failed: number }
async function counters (url: string): Promise<Counters> {
  return {
    reassigned: await metric(url, 'inframind_jobs_reassigned_total'),
    late: await metric(url, 'inframind_late_results_total'),
    success: await metric(url, 'inframind_jobs_total', { container: CONTAINER_ID, status: 'success', lane: 'mesh' }),
    failed: await metric(url, 'inframind_jobs_total', { container: CONTAINER_ID, status: 'failed', lane: 'mesh' })
  }
}

/**
 * Starts a devnet node again from its own config (same identity, store and roster), as a supervisor
 * would after a crash. The devnet's record of the node takes the new process, so its stop() ends it.
 */
export async function restart (node: DevnetNode, root: string): Promise<void> {
  await rm(path.join(node.dir, NODE_FILE), { force: true })
  const log = await open(node.logFile, 'a')
  const child: ChildProcess = spawn(process.execPath, [...NODE_FLAGS, path.join(root, 'entrypoint.ts'), '--config', path.join(node.dir, 'config.yaml')], { stdio: ['ignore', log.fd, log.fd] })
  child.once('exit', () => { log.close().catch(() => {}) })
  node.child = child
  const info = await until(`${node.name} did not listen again`, ROUND_TIMEOUT_MS, async () => {
    if (child.exitCode !== null) throw new Error(`${node.name} exited on restart (log ${node.logFile})`)
    const text = await readFile(path.join(node.dir, NODE_FILE), 'utf8').catch(() => undefined)
    return text === undefined ? undefined : JSON.parse(text) as { public: string, control: string }
  }, 100)
  node.publicAddr = info.public
  node.controlAddr = info.control
}

/** One round: submit, wait for the container, kill its worker, follow the job to its result, restart the worker. */
async function round (ctx: BenchContext, i: number, workers: DevnetNode[], gateway: { client: NodeClient, control: ControlClient, metricsUrl: string }, events: ContainerEvents): Promise<ReassignRound> {
  const byId = new Map(workers.map((w) => [w.nodeId, w]))
  const input = `reassign round ${i}`
  const before = await counters(gateway.metricsUrl)
  const { jobId } = await gateway.client.submitJob({ containerId: CONTAINER_ID, input: new TextEncoder().encode(input), deadlineMs: 180_000 })
  // The client's view, followed from the submit on: when it hears of each acceptance, and every terminal event.
  const accepts: Array<{ workerId: string, at: number }> = []
  const terminal: Array<{ state: string, output: string, workerId: string, at: number, error: string }> = []
  // Its failure (a stream cut short) shows as a missing terminal event in the checks, not as a throw.
  const watched = (async (): Promise<void> => {
    for await (const e of gateway.client.watchJob(jobId, { timeoutMs: 3 * ROUND_TIMEOUT_MS })) {
      const m = /^accepted by (\S+)/.exec(e.detail)
      if (m !== null) accepts.push({ workerId: m[1]!, at: Date.now() })
      if (e.job !== null) terminal.push({ state: e.job.state, output: Buffer.from(e.job.output).toString(), workerId: e.job.workerId, at: Date.now(), error: e.job.error })
    }
  })().catch(() => {})
  const first = await until('no worker accepted the job', ROUND_TIMEOUT_MS, () => accepts[0])
  const doomed = byId.get(first.workerId)
  if (doomed === undefined) throw new Error(`reassign bench: the job went to ${first.workerId}, not a devnet worker`)
  await until(`the job's container did not start on ${doomed.name}`, ROUND_TIMEOUT_MS, () => events.at(jobId, doomed.nodeId, 'start'))
  await sleep(KILL_AFTER_MS)
  const loadAtKill = os.loadavg()[0]!
  const killedAt = Date.now()
  doomed.child.kill('SIGKILL')
  await watched
  const done = terminal[0]
  const job = await gateway.client.getJob(jobId)
  const lost = job.history.find((h) => h.detail.startsWith(`worker ${doomed.nodeId} lost`))
  const second = [...job.history].reverse().find((h) => h.detail.startsWith('accepted by ') && !h.detail.includes(doomed.nodeId))
  const secondId = /^accepted by (\S+)/.exec(second?.detail ?? '')?.[1] ?? ''
  const created = events.at(jobId, secondId, 'create')
  const started = events.at(jobId, secondId, 'start')
  const exited = await until('the second run\'s container exit was not seen', 10_000, () => events.at(jobId, secondId, 'die')).catch(() => undefined)

  const restartAt = Date.now()
  await restart(doomed, ctx.root)
  await until(`the gateway did not see ${doomed.name} alive again`, ROUND_TIMEOUT_MS, async () => {
    const { peers } = await gateway.control.listPeers({ timeoutMs: 2_000 })
    const p = peers.find((x) => x.nodeId === doomed.nodeId)
    return p !== undefined && p.alive && p.connected && p.lastSeenMs > restartAt ? true : undefined
  }, 200)
  const backAfterMs = Date.now() - restartAt
  // The restarted worker's store still has the job it was running when killed.
  const own = connectNode(doomed.publicAddr)
  const killedWorkerSays = await own.getJob(jobId, { timeoutMs: 5_000 }).then((j) => `${j.state.replace('JOB_STATE_', '')}${j.errorCode !== '' ? ` ${j.errorCode}` : ''}`, (err: { details?: string }) => `no record (${err.details ?? String(err)})`)
  own.close()
  const leftoverContainers = await dockerPs(['--filter', `label=inframind.job=${jobId}`, '--filter', `label=inframind.node=${doomed.nodeId}`]).then((ids) => ids.length)
  // Gives a late result from the restarted worker time to arrive and be counted in this round.
  await sleep(2_000)
  const after = await counters(gateway.metricsUrl)

  const problems: string[] = []
  if (terminal.length !== 1) problems.push(`${terminal.length} terminal events`)
  if (done?.state !== 'JOB_STATE_SUCCESS') problems.push(`ended ${done?.state ?? 'without a result'} ${done?.error ?? ''}`)
  else if (done.output !== input) problems.push('output is not the input')
  if (done !== undefined && (done.workerId === doomed.nodeId || done.workerId !== secondId)) problems.push(`result by ${done.workerId}, the second acceptance was by ${secondId}`)
  if (after.success - before.success !== 1 || after.failed - before.failed !== 0) problems.push(`gateway counted ${after.success - before.success} successes and ${after.failed - before.failed} failures`)
  if (after.reassigned - before.reassigned !== 1) problems.push(`reassigned counter moved by ${after.reassigned - before.reassigned}`)
  if (leftoverContainers !== 0) problems.push(`${leftoverContainers} containers of the job left on the killed worker after its restart`)
  const since = (at: number | undefined): number => at === undefined ? Number.NaN : at - killedAt
  const r: ReassignRound = {
    killed: doomed.name,
    finishedBy: byId.get(secondId)?.name ?? secondId,
    detectedMs: since(lost?.atMs),
    acceptedMs: since(second?.atMs),
    runningMs: since(started),
    resultMs: since(done?.at),
    clientSawAcceptedMs: since(accepts.find((a) => a.workerId === secondId)?.at),
    secondRunMs: started !== undefined && exited !== undefined ? exited - started : Number.NaN,
    engineStartMs: created !== undefined && started !== undefined ? started - created : Number.NaN,
    loadAtKill,
    results: terminal.length,
    reassigned: after.reassigned - before.reassigned,
    lateResults: after.late - before.late,
    meshSuccess: after.success - before.success,
    meshFailed: after.failed - before.failed,
    killedWorkerSays,
    leftoverContainers,
    backAfterMs,
    problems
  }
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
  process.stderr.write(`bench: reassign ${i + 1}: killed ${r.killed} → ${r.finishedBy}: lost after ${s(r.detectedMs)}, accepted ${s(r.acceptedMs)}, running ${s(r.runningMs)} (Docker create → start ${s(r.engineStartMs)}), result ${s(r.resultMs)}; late results ${r.lateResults}; killed worker says ${killedWorkerSays}; back in ${s(backAfterMs)}${problems.length > 0 ? `; PROBLEMS: ${problems.join('; ')}` : ''}\n`)
  return r
}

async function dockerPs (filters: string[]): Promise<string[]> {
  return await new Promise((resolve) => {
    const p = spawn('docker', ['ps', '-aq', ...filters], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.on('close', () => resolve(out.split('\n').filter((l) => l !== '')))
    p.on('error', () => resolve([]))
  })
}

/** Containers the devnet's nodes left (a killed worker's, if its restart failed): removed, so the bench leaves nothing behind. */
async function removeLeftovers (nodeIds: string[]): Promise<void> {
  for (const id of nodeIds) {
    const ids = await dockerPs(['--filter', `label=inframind.node=${id}`])
    if (ids.length > 0) await new Promise((resolve) => spawn('docker', ['rm', '-f', ...ids], { stdio: 'ignore' }).on('close', resolve).on('error', resolve))
  }
}

export async function benchReassign (ctx: BenchContext, opts: { rounds: number }): Promise<ReassignResult> {
  process.stderr.write(`bench: reassign, ${opts.rounds} rounds of a worker SIGKILLed mid-job\n`)
  const config = parse(await readFile(path.join(ctx.root, 'config.yaml'), 'utf8')) as { mesh?: { heartbeat_interval_ms?: number } }
  const heartbeatIntervalMs = config.mesh?.heartbeat_interval_ms ?? 2_000
  const workerCount = 3
  const events = containerEvents()
  const net = await startDevnet({
    nodes: workerCount + 2,
    baseDir: path.join(ctx.tmp, 'reassign'),
    warmOnFirstWorker: false,
    workerContainers: { count: workerCount, containers: [await slowContainer(ctx.root)] },
    // The gateway logs each lost worker at warn: the log shows what happened in a bad round.
    logLevel: 'warn',
    progress: () => {}
  }).catch((err: unknown) => { events.stop(); throw err })
  const workers = net.nodes.filter((n) => n.roles.includes('worker'))
  const client = connectNode(net.gateway.publicAddr)
  const control = connectControl(net.gateway.controlAddr)
  try {
    const { metrics: metricsUrl } = JSON.parse(await readFile(path.join(net.gateway.dir, NODE_FILE), 'utf8')) as { metrics: string }
    // One job that is not killed: the image is loaded, the path works, and Docker's events are flowing.
    const warm = await client.runJob({ containerId: CONTAINER_ID, input: new TextEncoder().encode('warm-up') }, { timeoutMs: 120_000 })
    if (warm.state !== 'JOB_STATE_SUCCESS') throw new Error(`reassign bench: the warm-up job failed: ${warm.error}`)
    await until('Docker\'s events did not report the warm-up container', 10_000, () => events.at(warm.jobId, warm.workerId, 'die'))
    const settledAfterMs = await settle(net.nodes.map((n) => n.child.pid))
    const rounds: ReassignRound[] = []
    for (let i = 0; i < opts.rounds; i++) {
      rounds.push(await round(ctx, i, workers, { client, control, metricsUrl }, events))
      // The restarted node's start-up (identify, DHT, provider records) must not be in the next round's figures.
      await settle(net.nodes.map((n) => n.child.pid))
    }
    const of = (k: keyof ReassignRound): Summary => summarise(rounds.map((r) => r[k] as number).filter(Number.isFinite))
    const accepted = of('acceptedMs')
    const detectionBudgetMs = DISCONNECT_GRACE_MS + WATCH_INTERVAL_MS
    return {
      nodes: net.nodes.length,
      workers: workerCount,
      jobSleepS: JOB_SLEEP_S,
      killAfterMs: KILL_AFTER_MS,
      heartbeatIntervalMs,
      detectionBudgetMs,
      livenessBudgetMs: LIVENESS_INTERVALS * heartbeatIntervalMs + WATCH_INTERVAL_MS,
      rounds,
      detected: of('detectedMs'),
      accepted,
      running: of('runningMs'),
      result: of('resultMs'),
      clientSawAccepted: of('clientSawAcceptedMs'),
      secondRun: of('secondRunMs'),
      engineStart: of('engineStartMs'),
      loadAtKill: of('loadAtKill'),
      machineCpus: os.availableParallelism(),
      backAfter: of('backAfterMs'),
      acceptedPerHeartbeat: accepted.p50 / heartbeatIntervalMs,
      acceptedPerDetectionBudget: accepted.p50 / detectionBudgetMs,
      failedRounds: rounds.filter((r) => r.problems.length > 0).length,
      settledAfterMs
    }
  } finally {
    client.close()
    control.close()
    await net.stop()
    events.stop()
    await removeLeftovers(net.nodes.map((n) => n.nodeId))
  }
}

export function renderReassign (r: ReassignResult, target: { met: boolean }): string {
  const s = (v: number): string => `${(v / 1000).toFixed(2)} s`
  const late = r.rounds.reduce((a, x) => a + x.lateResults, 0)
  const single = r.rounds.filter((x) => x.results === 1).length
  return `| worker SIGKILLed mid-job, ${r.nodes} nodes (${r.workers} workers), ${r.rounds.length} rounds${r.failedRounds > 0 ? ` (${r.failedRounds} with PROBLEMS)` : ''}: kill → accepted by another worker | p50 ${s(r.accepted.p50)}, max ${s(r.accepted.max)} (its container running there: p50 ${s(r.running.p50)}, max ${s(r.running.max)}, of which Docker's create → start p50 ${s(r.engineStart.p50)}; result at the client: p50 ${s(r.result.p50)}, max ${s(r.result.max)}, with the job's ${r.jobSleepS} s sleep) | detection budget ${s(r.detectionBudgetMs)} (${s(DISCONNECT_GRACE_MS)} without a connection, checked every ${s(WATCH_INTERVAL_MS)}); heartbeat interval ${s(r.heartbeatIntervalMs)} | p50 ${r.acceptedPerDetectionBudget.toFixed(2)}x the detection budget, ${r.acceptedPerHeartbeat.toFixed(2)}x the heartbeat interval; ${single}/${r.rounds.length} rounds exactly one result, ${late} late results | <= 5 s ${target.met ? 'met' : 'NOT met'} |`
}

export function reassignNote (r: ReassignResult): string {
  const s = (v: number): string => `${(v / 1000).toFixed(2)} s`
  const says = new Map<string, number>()
  for (const x of r.rounds) says.set(x.killedWorkerSays, (says.get(x.killedWorkerSays) ?? 0) + 1)
  const problems = r.rounds.flatMap((x, i) => x.problems.map((p) => `round ${i + 1}: ${p}`))
  return `Reassign: a devnet of ${r.nodes} node processes (gateway+scheduler, ${r.workers} workers, a validator) with a one-shot container that sleeps ${r.jobSleepS} s then echoes its input; each round submits one job through the gateway, waits for a worker to accept it and for Docker to report its container started, kills that worker's node process with SIGKILL ${s(r.killAfterMs)} later, follows the job on the client's WatchJob to its result, then restarts the killed worker (same identity and store) and waits for the mesh to go quiet (first settle ${(r.settledAfterMs / 1000).toFixed(0)} s). ` +
    `Times from the kill: the gateway's job history (worker lost: p50 ${s(r.detected.p50)}, max ${s(r.detected.max)}; accepted by another worker), Docker's start event of the job's container on that worker (of which Docker's own create → start: p50 ${s(r.engineStart.p50)}, max ${s(r.engineStart.max)}), and the client receiving the result (the client saw the acceptance on its stream p50 ${s(r.clientSawAccepted.p50)} after the kill; the second run's container, start to exit, took p50 ${s(r.secondRun.p50)} of kill → result). ` +
    `The scheduler takes a worker as lost after ${s(DISCONNECT_GRACE_MS)} with no mesh connection (checked every ${s(WATCH_INTERVAL_MS)}; a killed process's sockets close at once) or after ${LIVENESS_INTERVALS} missed heartbeats (${s(r.livenessBudgetMs)} at the ${s(r.heartbeatIntervalMs)} interval, for a worker that hangs with its connection up: not measured here). ` +
    `Checked each round: one terminal event, the input echoed, the result and receipt from the second worker, the gateway's counters (reassigned +1, one mesh success, no failure), and no container of the job left on the killed worker once it restarted (it removes its leftovers at start). The restarted worker's own record of the job: ${[...says].map(([k, v]) => `${k} (${v})`).join(', ')}; it was back in the gateway's live peers p50 ${s(r.backAfter.p50)} after its restart. ` +
    `The machine's 1-minute load average at the kills (${r.machineCpus} cores, other users' work included): p50 ${r.loadAtKill.p50.toFixed(1)}, max ${r.loadAtKill.max.toFixed(1)}.` +
    (problems.length > 0 ? ` PROBLEMS: ${problems.join('; ')}.` : '')
}
