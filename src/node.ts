import type { NodeConfig } from './config/types.ts'
import type { Identity } from './identity/types.ts'
import type { Runtime } from './runtime/types.ts'
import type { JobStore } from './store/types.ts'
import type { Startable } from './types.ts'
import type { Logger } from './telemetry/logger.ts'
import { loadOrCreateIdentity } from './identity/index.ts'
import { levelStore } from './store/index.ts'
import { dockerRuntime, detectHardware } from './runtime/index.ts'
import { imageCache, type ImageCache } from './images/index.ts'
import { executor as executorComponent, type Executor } from './executor/index.ts'
import { jobsService, type JobsService } from './gateway/index.ts'
import { telemetry, createLogger, type Telemetry } from './telemetry/index.ts'
import { heartbeatFields } from './telemetry/heartbeat.ts'
import { mesh as meshComponent, type Mesh } from './mesh/index.ts'
import { workerAgent, type WorkerAgent } from './worker/index.ts'
import { scheduler as schedulerComponent, type Scheduler } from './scheduler/index.ts'
import { apiServer, type ApiComponents, type ApiServer } from './api/index.ts'
import { dashboard as dashboardComponent, type Dashboard } from './dashboard/index.ts'
import { restServer, type RestServer } from './rest/index.ts'
import { peerClients } from './api/client.ts'
import { reachableAddress } from './api/address.ts'
import { admission as admissionComponent, ASSIGNING_ROLES, type Admission } from './admission/index.ts'
import { networkKeyFor } from './admission/network-key.ts'
import { rosterBook, rosterSync, type RosterBook, type RosterSync } from './roster/index.ts'
import { archive as archiveComponent, archiveSink, type Archive, type ArchiveSink } from './archive/index.ts'
import { encodeEnvelope } from './envelope/index.ts'
import { coordination, type Coordination } from './coordination/index.ts'
import { guardian } from './guardian/index.ts'
import { runSubscriptionJob } from './coordination/subscription-jobs.ts'
import { subscriptions as subscriptionsComponent, type Subscriptions } from './subscriptions/index.ts'
import { VERSION } from './version.ts'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { NODE_FILE } from './types.ts'

export interface InframindNode extends Startable {
  readonly config: NodeConfig
  readonly identity: Identity
  readonly logger: Logger
  readonly store: JobStore
  readonly images: ImageCache
  readonly runtime: Runtime
  /** The chain runner with the node's concurrency limit. */
  readonly executor: Executor
  /** Job intake: admission, durability, local or mesh, status and watch. */
  readonly jobs: JobsService
  readonly telemetry: Telemetry
  readonly api: ApiServer
  /** The Infernet-compatible REST API (docs/REST.md); present when rest.listen names an address. */
  readonly rest?: RestServer
  /** The read-only web dashboard; present unless dashboard.listen is "". */
  readonly dashboard?: Dashboard
  /** Present when mesh.enabled. */
  readonly mesh?: Mesh
  /** Present on mesh nodes with the worker role. */
  readonly worker?: WorkerAgent
  /** Present on mesh nodes with the scheduler or gateway role. */
  readonly scheduler?: Scheduler
  /** Present on mesh nodes with the scheduler role: subscription ownership and replication among schedulers. */
  readonly coordination?: Coordination
  /** Present on mesh nodes with the scheduler role. */
  readonly subscriptions?: Subscriptions
  /** Present on mesh nodes with the archive role. */
  readonly archive?: Archive
  /** Present on mesh nodes: the operator-signed roster this node holds, and who may act as what. */
  readonly roster?: RosterBook
  readonly rosterSync?: RosterSync
  readonly admission?: Admission
}

export interface CreateNodeOptions {
  config: NodeConfig
  logger?: Logger
}

/** A component and the name it is logged and reported under when it fails to start or stop. */
interface Part { name: string, component: Startable }

/** Thrown by start() when a component fails: every component already started has been stopped again. */
export class NodeStartError extends Error {
  readonly code = 'NODE_START_FAILED'
  readonly component: string
  constructor (component: string, cause: unknown) {
    super(`the node could not start: ${component} failed: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'NodeStartError'
    this.component = component
  }
}

/**
 * Composes the components a node's roles need. This is the only place that knows how components
 * connect: each gets its own config slice and its collaborators (metrics included); they start in
 * dependency order and stop in reverse.
 */
export async function createNode (opts: CreateNodeOptions): Promise<InframindNode> {
  const { config } = opts
  const roles = config.node.roles
  const { identity, created } = await loadOrCreateIdentity(config.identity.keyFile)
  const logger = opts.logger ?? createLogger({ level: config.telemetry.logLevel, nodeId: identity.nodeId })
  if (created) logger.info({ nodeId: identity.nodeId, keyFile: identity.keyFile }, 'created a new node identity')
  else logger.info({ nodeId: identity.nodeId, keyFile: identity.keyFile }, 'loaded node identity')

  const onMesh = config.mesh.enabled
  // A node runs jobs itself when it is a worker, a validator (re-executions run in its own sandbox),
  // or when it is alone (no mesh to hand them to).
  // A pure gateway lists containers to admit them (Guardian, limits, schemas) but never runs them.
  // A container marked mesh_only is admitted here and run by the mesh's workers.
  const runsJobs = roles.includes('worker') || roles.includes('validator') || !onMesh
  const localContainers = runsJobs ? config.containers.filter((c) => !(onMesh && c.meshOnly)) : []
  const hardware = await detectHardware()
  const socket = config.runtime.socket === '' ? undefined : config.runtime.socket

  const tel = telemetry({ metrics: config.telemetry.metrics })({ logger })
  const metrics = tel.metrics
  const store = levelStore({ path: config.store.path, maxResults: config.store.maxResults })({ logger: logger.child({ component: 'store' }) })
  const images = imageCache({
    socket,
    engineTimeoutMs: config.runtime.engineTimeoutMs,
    pullTimeoutMs: config.runtime.pullTimeoutMs,
    budgetBytes: config.runtime.imageBudgetBytes,
    dataDir: config.node.dataDir,
    configured: config.containers
  })({ logger, metrics })
  const runtime = dockerRuntime({
    nodeId: identity.nodeId,
    socket,
    engineTimeoutMs: config.runtime.engineTimeoutMs,
    startTimeoutMs: config.runtime.startTimeoutMs,
    containers: localContainers,
    images,
    detectHardware: async () => hardware
  })({ logger })
  const executor = executorComponent({ concurrency: config.jobs.concurrency, containers: localContainers })({ runtime, logger })

  // Where peers can call this node's gRPC: known once the API has bound (after the mesh started; its
  // port may be 0), so heartbeats carry '' until then and that address from then on.
  let grpcAddress = ''
  const adm = config.mesh.admission
  const roster: RosterBook | undefined = onMesh
    ? rosterBook({ meshName: adm.meshName, operators: adm.operators, file: adm.rosterFile })({ logger, metrics })
    : undefined
  const admission: Admission | undefined = roster !== undefined
    ? admissionComponent({ mode: adm.mode, trustedSchedulers: config.mesh.trustedSchedulers })({ roster })
    : undefined
  // A private mesh's key: the first node of a new mesh (nobody to join) creates it; others must be given it.
  let networkKey: Uint8Array | undefined
  if (onMesh && adm.mode === 'private') {
    const joining = config.mesh.bootstrap.length > 0 || config.mesh.relays.length > 0
    const nk = networkKeyFor(adm.networkKeyFile, joining)
    networkKey = nk.key
    if (nk.created) logger.warn({ file: adm.networkKeyFile }, 'created a new private mesh key: copy this file (mode 0600) to every node that joins this mesh')
  }
  if (onMesh && adm.operators.length === 0) {
    logger.warn('mesh.admission.operators is empty: no roster is accepted, so no other node may assign to, work for or attest to this one (see "infra roster init")')
  }
  // Schedulers and gateways choose workers, so only they hear heartbeats.
  const choosesWorkers = roles.some((r) => ASSIGNING_ROLES.includes(r))
  const mesh: Mesh | undefined = onMesh
    ? meshComponent({ config: config.mesh, roles, containers: localContainers.map((c) => c.id), networkKey, hearsHeartbeats: choosesWorkers, hearsVerification: choosesWorkers || roles.includes('archive') })({
      identity,
      logger,
      heartbeat: heartbeatFields({
        hardware,
        grpcAddress: () => grpcAddress,
        slots: () => executor.stats(),
        jobs: () => jobs.stats(),
        cacheHitRatio: () => images.stats().hitRatio,
        rosterVersion: () => roster?.version() ?? 0
      }),
      content: async (hash, requester): Promise<Uint8Array | undefined> => (await worker?.content(hash, requester)) ?? (await scheduler?.content(hash, requester)),
      authorize: (topic, author) => admission?.mayPublish(topic, author) ?? false,
      // The roster's schedulers and gateways: this node's heartbeats reach them directly.
      keepConnected: () => (roster?.current()?.roster.members ?? [])
        .filter((m) => m.nodeId !== identity.nodeId && m.roles.some((r) => (ASSIGNING_ROLES as readonly string[]).includes(r)))
        .map((m) => m.nodeId),
      metrics
    })
    : undefined
  const sync: RosterSync | undefined = mesh !== undefined && roster !== undefined
    ? rosterSync()({ mesh, roster, identity, logger })
    : undefined
  // Assignments go out and results come back point to point over the peers' public gRPC.
  const peers = mesh !== undefined ? peerClients() : undefined
  const scheduler: Scheduler | undefined = mesh !== undefined && (roles.includes('scheduler') || roles.includes('gateway'))
    ? schedulerComponent({
      assignVia: config.mesh.assignVia,
      inlineBytes: config.mesh.inlineBytes,
      ackTimeoutMs: config.mesh.ackTimeoutMs,
      maxClockSkewMs: config.mesh.maxClockSkewMs
    })({ mesh, admission: admission as Admission, identity, logger, grpc: peers, metrics, replyAddress: () => grpcAddress, store })
    : undefined
  const jobs = jobsService({
    containers: config.containers,
    queueSize: config.jobs.queueSize,
    defaultDeadlineMs: config.jobs.defaultDeadlineMs,
    maxInFlight: config.gateway.maxInFlight,
    meshQueueSize: config.gateway.queueSize,
    hardware,
    verification: config.gateway.verification
  })({ store, executor, identity, logger, remote: scheduler, metrics })
  // A validator takes the scheduler's re-execution assignments through the same agent (and the same queue).
  const worker: WorkerAgent | undefined = mesh !== undefined && (roles.includes('worker') || roles.includes('validator'))
    ? workerAgent({ inlineBytes: config.mesh.inlineBytes, roles, pins: new Map(localContainers.map((c) => [c.id, c.digest])), queueSize: config.jobs.queueSize })({ mesh, admission: admission as Admission, jobs, identity, logger, grpc: peers, metrics })
    : undefined
  // Archives keep every receipt, attestation, certificate and dispute record (and lazy outputs) they
  // see or are sent; schedulers and gateways send theirs to the two holders rendezvous hashing picks.
  const keeper: Archive | undefined = mesh !== undefined && admission !== undefined && roles.includes('archive')
    ? archiveComponent(config.archive)({ mesh, admission, store, logger, metrics })
    : undefined
  const sink: ArchiveSink | undefined = mesh !== undefined && admission !== undefined && scheduler !== undefined
    ? archiveSink({ replicas: config.archive.replicas })({ mesh, admission, logger, metrics })
    : undefined
  // A mesh job's proofs: the worker's receipt and the scheduler's certificate (which carries the attestations).
  if (sink !== undefined) {
    jobs.on('job', (event) => {
      const job = event.job
      if (job === undefined || job.workerId === undefined) return
      if (job.receipt !== undefined) sink.push('receipt', encodeEnvelope(job.receipt))
      if (job.verification?.certificate !== undefined) sink.push('certificate', encodeEnvelope(job.verification.certificate))
    })
  }
  // Subscriptions run on the roster's schedulers: each owns those that rendezvous hashing gives it and
  // replicates every change to the others, so any of them takes over one whose owner died.
  const rosterSchedulers = (): string[] => (roster?.current()?.roster.members ?? []).filter((m) => m.roles.includes('scheduler')).map((m) => m.nodeId)
  let subs: Subscriptions | undefined
  const subscriptionGuard = guardian({ containers: config.containers })
  const coord: Coordination | undefined = mesh !== undefined && roles.includes('scheduler')
    ? coordination()({ mesh, identity, store, logger, metrics, schedulers: rosterSchedulers, apply: async (env) => { await subs?.applyReplicated(env) } })
    : undefined
  subs = coord !== undefined
    ? subscriptionsComponent({ maxClockSkewMs: config.mesh.maxClockSkewMs, defaultDeadlineMs: config.jobs.defaultDeadlineMs })({
      store,
      identity,
      logger,
      metrics,
      runJob: async (a) => await runSubscriptionJob(jobs, identity.nodeId, {
        jobId: a.jobId,
        containers: a.request.containers,
        input: a.request.input,
        deadlineAtMs: a.deadlineAtMs,
        owner: a.origin.delegate,
        // One placement per interval, a slot per response: the interval's jobs go to distinct workers,
        // and a scheduler taking over reaches the workers the previous owner used.
        placementKey: `${a.subscription.id}:${a.interval}`,
        slot: a.index - 1,
        excludeWorkers: a.excludeWorkers,
        verification: a.request.verification ?? { method: 'none', validators: 0, quorum: 0 }
      }, a.signal),
      owns: (id) => coord.owns(id),
      ownerOf: (id) => coord.ownerOf(id),
      replicate: async (env) => { await coord.replicate(env) },
      ...(sink !== undefined ? { storeOutput: (bytes: Uint8Array) => { sink.push('output', bytes) } } : {}),
      isCoordinator: (id) => rosterSchedulers().includes(id),
      // The Guardian the interval jobs will meet, with the owner as the proven delegate.
      admit: (request, owner) => {
        subscriptionGuard.check({ containers: request.containers, origin: { ip: '', peerId: '', delegate: owner }, requiresProof: false, delegateVerified: true })
      }
    })
    : undefined
  const apiComponents: ApiComponents = {
    config, identity, jobs, runsLocally: (id) => executor.serves([id]), runtime, telemetry: tel, logger, hardware: toWireHardware(hardware),
    version: VERSION, startedAtMs: Date.now(), images, mesh, worker, scheduler, subscriptions: subs, archive: keeper,
    roster: roster !== undefined ? { book: roster, sync } : undefined
  }
  const api = apiServer()(apiComponents)
  // Infernet-compatible REST intake: the same jobs service (Guardian, limits, queues) as gRPC SubmitJob.
  const rest: RestServer | undefined = config.rest.enabled
    ? restServer({ host: config.rest.host, port: config.rest.port, maxBodyBytes: config.rest.maxBodyBytes, maxBatch: config.rest.maxBatch })({
      jobs, logger, containers: config.containers, runtime, runsLocally: (id) => executor.serves([id]), hardware, nodeId: identity.nodeId, roles, version: VERSION
    })
    : undefined
  // The dashboard reads what the control plane reads, through the same builders; it changes nothing.
  const dash: Dashboard | undefined = config.dashboard.enabled
    ? dashboardComponent({ host: config.dashboard.host, port: config.dashboard.port })({
      view: apiComponents,
      listeners: () => ({ public: api.publicAddress(), control: api.controlAddress(), metrics: tel.metricsUrl(), rest: rest?.address() ?? '' })
    })
    : undefined

  // Dependency order: the jobs service resumes stored jobs only once the mesh and scheduler can take them.
  const parts: Part[] = [
    { name: 'telemetry', component: tel },
    { name: 'store', component: store },
    { name: 'images', component: images },
    { name: 'runtime', component: runtime },
    { name: 'executor', component: executor }
  ]
  // The roster is loaded before the mesh starts, so the first messages are judged by it.
  if (roster !== undefined) parts.push({ name: 'roster', component: roster })
  if (mesh !== undefined) parts.push({ name: 'mesh', component: mesh })
  if (sync !== undefined) parts.push({ name: 'roster sync', component: sync })
  if (keeper !== undefined) parts.push({ name: 'archive', component: keeper })
  // Stopped after the scheduler and worker that call through them.
  if (peers !== undefined) parts.push({ name: 'peer clients', component: { start: async () => {}, stop: async () => { peers.close() } } })
  // Before the scheduler whose results it sends on; stopped after it (its queue is flushed).
  if (sink !== undefined) parts.push({ name: 'archive sink', component: sink })
  if (scheduler !== undefined) parts.push({ name: 'scheduler', component: scheduler })
  parts.push({ name: 'jobs', component: jobs })
  if (worker !== undefined) parts.push({ name: 'worker', component: worker })
  // After the jobs service their jobs go through; stopped before it (running interval jobs are aborted first).
  if (coord !== undefined) parts.push({ name: 'coordination', component: coord })
  if (subs !== undefined) parts.push({ name: 'subscriptions', component: subs })
  parts.push({ name: 'api', component: api })
  if (rest !== undefined) parts.push({ name: 'rest', component: rest })
  if (dash !== undefined) parts.push({ name: 'dashboard', component: dash })

  let started: Part[] = []
  // start() and stop() run one at a time, in call order: a stop during a start waits for it (and
  // then stops), a start during a stop waits for it (and then starts), a second call of either
  // resolves only once the first has finished.
  let lifecycle: Promise<unknown> = Promise.resolve()
  const serial = async (step: () => Promise<void>): Promise<void> => {
    const run = lifecycle.then(step, step)
    lifecycle = run.catch(() => {})
    await run
  }

  const stopStarted = async (): Promise<void> => {
    const toStop = started.reverse()
    started = []
    for (const part of toStop) {
      try {
        await part.component.stop()
      } catch (err) {
        logger.error({ err, component: part.name }, 'component failed to stop cleanly')
      }
    }
  }

  const startAll = async (): Promise<void> => {
    for (const part of parts) {
      try {
        await part.component.start()
      } catch (err) {
        // Roll back: whatever started (sockets, containers, the DB) is released before the error surfaces.
        await stopStarted()
        throw new NodeStartError(part.name, err)
      }
      started.push(part)
    }
    // Configured images are fetched at boot, in the background: a slow download never delays the node.
    if (config.runtime.prefetch && localContainers.length > 0) {
      images.prefetch(localContainers).then((results) => {
        for (const r of results.filter((x) => !x.ok)) logger.warn({ container: r.containerId, image: r.image, error: r.error }, 'image prefetch failed')
      }, (err: unknown) => logger.warn({ err }, 'image prefetch failed'))
    }
    grpcAddress = reachableAddress(api.publicAddress(), {
      publicHost: config.api.public.host,
      meshAddresses: [...config.mesh.announce, ...config.mesh.listen],
      behindNat: config.mesh.behindNat
    })
    // Publish a heartbeat now that the gRPC address is known, rather than at the next tick.
    await mesh?.heartbeatNow().catch(() => {})
    await writeNodeFile(config, identity, api, tel, mesh, dash).catch((err: unknown) => logger.warn({ err }, 'could not write node.json'))
    logger.info({ roles, containers: config.containers.map((c) => c.id), runs: localContainers.map((c) => c.id), version: VERSION, mesh: mesh?.addresses() ?? [] }, 'node started')
  }

  return {
    config, identity, logger, store, images, runtime, executor, jobs, telemetry: tel, api, rest, dashboard: dash, mesh, worker, scheduler,
    roster, rosterSync: sync, admission, coordination: coord, subscriptions: subs, archive: keeper,
    async start () {
      await serial(async () => {
        if (started.length > 0) return
        await startAll()
      })
    },
    async stop () {
      await serial(async () => {
        if (started.length === 0) return
        await stopStarted()
        logger.info('node stopped')
      })
    }
  }
}

/**
 * `<data_dir>/node.json`: where this running node listens (ports chosen by the OS when configured as
 * 0), for tools that start nodes (devnet) and for operators. No secrets: ids and addresses only.
 */
async function writeNodeFile (config: NodeConfig, identity: Identity, api: ApiServer, tel: Telemetry, mesh: Mesh | undefined, dash: Dashboard | undefined): Promise<void> {
  const file = path.join(config.node.dataDir, NODE_FILE)
  const body = JSON.stringify({
    nodeId: identity.nodeId,
    pid: process.pid,
    roles: config.node.roles,
    public: api.publicAddress(),
    control: api.controlAddress(),
    metrics: tel.metricsUrl(),
    dashboard: dash?.url() ?? '',
    mesh: mesh?.addresses() ?? []
  }, null, 2) + '\n'
  await mkdir(config.node.dataDir, { recursive: true })
  await writeFile(`${file}.tmp`, body)
  await rename(`${file}.tmp`, file)
}

function toWireHardware (hw: Awaited<ReturnType<typeof detectHardware>>): { cpuModel: string, cpuCores: number, memoryBytes: number, gpus: Array<{ name: string, memoryBytes: number }>, arch: string, platform: string } {
  return {
    cpuModel: hw.cpuModel,
    cpuCores: hw.cpuCores,
    memoryBytes: hw.memoryBytes,
    gpus: hw.gpus.map((g) => ({ name: g.name, memoryBytes: g.memoryBytes })),
    arch: hw.arch,
    platform: hw.platform
  }
}
