/** A Docker stand-in and a jobs service + executor setup for unit tests (test/unit/jobs*.test.ts). */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { containerConfig, defaultConfig } from '../../src/config/index.ts'
import { generateIdentity } from '../../src/identity/index.ts'
import { executor } from '../../src/executor/index.ts'
import { jobsService } from '../../src/gateway/index.ts'
import { levelStore } from '../../src/store/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import type { ContainerConfig, NodeConfig } from '../../src/config/types.ts'
import type { Identity } from '../../src/identity/types.ts'
import type { GuardianRejection, HardwareProfile, JobEvent, JobsService, RemoteExecutor } from '../../src/gateway/types.ts'
import type { ContainerStatus, ImageStatus, Runtime, RuntimeStats, RunRequest, RunResult } from '../../src/runtime/types.ts'
import type { JobRecord, JobStore } from '../../src/store/types.ts'
import type { Startable } from '../../src/types.ts'

export interface Ctx {
  dir: string
  identity: Identity
  /** Stopped in reverse order after each test, even a failed one. */
  started: Startable[]
}

export const DIGEST = 'sha256:' + 'cd'.repeat(32)
export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
export const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b)
/** A machine big enough for every test container unless a test says otherwise. */
export const HARDWARE: HardwareProfile = { cpuCores: 4, memoryBytes: 8 * 1024 ** 3, gpus: [] }

export async function beforeEachCtx (t: { context: Ctx }): Promise<void> {
  t.context.dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-orch-'))
  t.context.identity = generateIdentity(path.join(t.context.dir, 'identity.key'))
  t.context.started = []
}

export async function afterEachCtx (t: { context: Ctx }): Promise<void> {
  for (const s of t.context.started.reverse()) await s.stop()
  await rm(t.context.dir, { recursive: true, force: true })
}

export type Behaviour = (req: RunRequest) => Promise<RunResult> | RunResult

/** Stands in for Docker: records calls and concurrency, runs whatever behaviour the test gives it. */
export class FakeRuntime implements Runtime {
  behaviour: Behaviour
  calls: string[] = []
  /** Every request, for tests that look at containers, inputs and origins. */
  requests: RunRequest[] = []
  running = 0
  maxRunning = 0
  constructor (behaviour: Behaviour = echo()) { this.behaviour = behaviour }
  async start (): Promise<void> {}
  async stop (): Promise<void> {}
  async settled (): Promise<void> {}
  async run (req: RunRequest): Promise<RunResult> {
    this.calls.push(req.jobId)
    this.requests.push(req)
    this.running += 1
    this.maxRunning = Math.max(this.maxRunning, this.running)
    try {
      return await this.behaviour(req)
    } finally {
      this.running -= 1
    }
  }
  async imageStatus (image: string): Promise<ImageStatus> { return { image, present: true, digest: DIGEST } }
  activeContainers (): number { return this.running }
  containerStatuses (): ContainerStatus[] { return [] }
  onContainerEvent (): () => void { return () => {} }
  stats (): RuntimeStats { return { reapedAtStart: 0 } }
}

export function result (output: Uint8Array, imageDigest = DIGEST): RunResult {
  return { output, exitCode: 0, imageDigest, stderrTail: '', startedAtMs: Date.now(), finishedAtMs: Date.now() }
}

export class AbortedError extends Error {
  readonly code = 'ABORTED'
  constructor () { super('run aborted'); this.name = 'RunAbortedError' }
}

/** Resolves after ms, or rejects like the real runtime (code ABORTED) when the signal aborts. */
export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) { reject(new AbortedError()); return }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(timer); reject(new AbortedError()) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Echoes the input upper-cased after delayMs. */
export function echo (delayMs = 0): Behaviour {
  return async (req) => {
    await sleep(delayMs, req.signal)
    return result(enc(dec(req.input).toUpperCase()))
  }
}

/** A behaviour that waits until release() (or an abort). */
export function gated (): { behaviour: Behaviour, release: () => void } {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  return {
    release: () => { release() },
    behaviour: async (req) => {
      await new Promise<void>((resolve, reject) => {
        if (req.signal?.aborted === true) { reject(new AbortedError()); return }
        req.signal?.addEventListener('abort', () => { reject(new AbortedError()) }, { once: true })
        void gate.then(resolve)
      })
      return result(enc(dec(req.input)))
    }
  }
}

export function container (id: string, extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return containerConfig({
    id,
    description: '',
    image: 'inframind/echo:1',
    digest: DIGEST,
    command: [],
    env: {},
    resources: { cpus: 0.5, memoryBytes: 64 << 20, pids: 32, gpu: false },
    timeoutMs: 10_000,
    maxOutputBytes: 65_536,
    maxInputBytes: 64,
    inputSchema: 'text',
    outputSchema: 'text',
    network: 'none',
    user: '65534:65534',
    ...extra
  })
}

export function config (dir: string, jobs: Partial<NodeConfig['jobs']> = {}, containers?: ContainerConfig[]): NodeConfig {
  // Built on the defaults, so sections added to NodeConfig later need no change here.
  const base = defaultConfig()
  return {
    ...base,
    node: { name: 'test', roles: ['worker'], dataDir: dir },
    identity: { keyFile: path.join(dir, 'identity.key') },
    jobs: { concurrency: 2, queueSize: 16, defaultDeadlineMs: 30_000, ...jobs },
    store: { path: path.join(dir, 'db'), maxResults: 100 },
    telemetry: { metrics: { host: '127.0.0.1', port: 0, enabled: false }, logLevel: 'silent' },
    containers: containers ?? [container('echo'), container('json', { inputSchema: 'json' })]
  }
}

export interface Setup {
  store: JobStore
  /** The jobs service under test (named for the orchestrator it replaced: admission + lanes + records). */
  orch: JobsService
  runtime: FakeRuntime
  events: JobEvent[]
  rejections: GuardianRejection[]
}

export interface SetupOptions {
  runtime?: FakeRuntime
  jobs?: Partial<NodeConfig['jobs']>
  containers?: ContainerConfig[]
  hardware?: HardwareProfile
  abortGraceMs?: number
  start?: boolean
  store?: JobStore
  /** A stand-in scheduler: jobs whose containers this node does not run go to it. */
  remote?: RemoteExecutor
  /** Containers the executor runs (default: all configured ones). */
  runs?: ContainerConfig[]
  gateway?: { maxInFlight?: number, queueSize?: number }
}

export async function setup (t: { context: Ctx }, opts: SetupOptions = {}): Promise<Setup> {
  const cfg = config(t.context.dir, opts.jobs, opts.containers)
  let store = opts.store
  if (store === undefined) {
    store = levelStore({ path: cfg.store.path, maxResults: cfg.store.maxResults })({ logger: silentLogger() })
    await store.start()
    t.context.started.push(store)
  }
  const runtime = opts.runtime ?? new FakeRuntime()
  const exec = executor({ concurrency: cfg.jobs.concurrency, containers: opts.runs ?? cfg.containers, abortGraceMs: opts.abortGraceMs ?? 1_000 })({ runtime, logger: silentLogger() })
  await exec.start()
  t.context.started.push(exec)
  const orch = jobsService({
    containers: cfg.containers,
    queueSize: cfg.jobs.queueSize,
    defaultDeadlineMs: cfg.jobs.defaultDeadlineMs,
    maxInFlight: opts.gateway?.maxInFlight ?? cfg.gateway.maxInFlight,
    meshQueueSize: opts.gateway?.queueSize ?? cfg.gateway.queueSize,
    hardware: opts.hardware ?? HARDWARE,
    stopTimeoutMs: 2_000
  })({ store, executor: exec, identity: t.context.identity, logger: silentLogger(), remote: opts.remote })
  const events: JobEvent[] = []
  const rejections: GuardianRejection[] = []
  orch.on('job', (e) => { events.push(e) })
  orch.on('rejected', (r) => { rejections.push(r) })
  if (opts.start !== false) {
    await orch.start()
    t.context.started.push(orch)
  }
  return { store, orch, runtime, events, rejections }
}

/** Resolves with the job once it reaches a terminal state. */
export async function settled (orch: JobsService, id: string, timeoutMs = 5_000): Promise<JobRecord> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const job = await orch.get(id)
    if (job !== undefined && (job.state === 'success' || job.state === 'failed')) return job
    await sleep(5)
  }
  throw new Error(`job ${id} did not finish within ${timeoutMs} ms`)
}

export async function until (check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(5)
  }
}

/** A stored record as an older node (or a test) would write it, with the chain fields filled in. */
export function record (fields: Pick<JobRecord, 'id' | 'state' | 'createdAtMs' | 'deadlineAtMs' | 'history' | 'input'> & Partial<JobRecord>): JobRecord {
  const containers = fields.containers ?? [fields.containerId ?? 'echo']
  return {
    containerId: containers[0] as string,
    containers,
    steps: [],
    origin: { ip: '', peerId: '', delegate: '' },
    requiresProof: false,
    allowProbation: false,
    schedulerId: '',
    ...fields
  }
}

/** A store that delegates to `store` except for the methods given (to slow down or break one write). */
export function storeWith (store: JobStore, overrides: Partial<JobStore>): JobStore {
  return {
    start: async () => { await store.start() },
    stop: async () => { await store.stop() },
    putActive: async (job) => { await store.putActive(job) },
    complete: async (job) => { await store.complete(job) },
    get: async (id) => await store.get(id),
    listActive: async () => await store.listActive(),
    list: async (opts) => await store.list(opts),
    completedCount: async () => await store.completedCount(),
    counters: async () => await store.counters(),
    loadReputation: async () => await store.loadReputation(),
    saveReputation: async (id, r) => { await store.saveReputation(id, r) },
    saveDispute: async (k, r) => { await store.saveDispute(k, r) },
    listDisputes: async () => await store.listDisputes(),
    section: (name) => store.section(name),
    ...overrides
  }
}
