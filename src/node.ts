import type { NodeConfig } from './config/types.ts'
import type { Identity } from './identity/types.ts'
import type { Orchestrator } from './orchestrator/types.ts'
import type { Runtime } from './runtime/types.ts'
import type { JobStore } from './store/types.ts'
import type { Startable } from './types.ts'
import type { Logger } from './telemetry/logger.ts'
import { loadOrCreateIdentity } from './identity/index.ts'
import { levelStore } from './store/index.ts'
import { dockerRuntime, detectHardware } from './runtime/index.ts'
import { imageCache, type ImageCache } from './images/index.ts'
import { orchestrator } from './orchestrator/index.ts'
import { telemetry, createLogger, type Telemetry } from './telemetry/index.ts'
import { mesh as meshComponent, type Mesh, type HeartbeatFields } from './mesh/index.ts'
import { workerAgent, type WorkerAgent } from './worker/index.ts'
import { scheduler as schedulerComponent, type Scheduler } from './scheduler/index.ts'
import { apiServer, type ApiServer } from './api/index.ts'
import { assignClients } from './api/client.ts'
import type { WireHardware } from './api/wire.ts'
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
  readonly orchestrator: Orchestrator
  readonly telemetry: Telemetry
  readonly api: ApiServer
  /** Present when mesh.enabled. */
  readonly mesh?: Mesh
  /** Present on mesh nodes with the worker role. */
  readonly worker?: WorkerAgent
  /** Present on mesh nodes with the scheduler role. */
  readonly scheduler?: Scheduler
}

export interface CreateNodeOptions {
  config: NodeConfig
  logger?: Logger
}

/**
 * Composes the components a node's roles need. This is the only place that knows how
 * components connect; they start in order and stop in reverse.
 */
export async function createNode (opts: CreateNodeOptions): Promise<InframindNode> {
  const { config } = opts
  const roles = config.node.roles
  const { identity, created } = await loadOrCreateIdentity(config.identity.keyFile)
  const logger = opts.logger ?? createLogger({ level: config.telemetry.logLevel, nodeId: identity.nodeId })
  if (created) logger.info({ nodeId: identity.nodeId, keyFile: identity.keyFile }, 'created a new node identity')
  else logger.info({ nodeId: identity.nodeId, keyFile: identity.keyFile }, 'loaded node identity')

  const hardwareInfo = await detectHardware()
  const socket = config.runtime.socket === '' ? undefined : config.runtime.socket
  const store = levelStore({ path: config.store.path, maxResults: config.store.maxResults })({ logger: logger.child({ component: 'store' }) })
  const images = imageCache({
    socket,
    engineTimeoutMs: config.runtime.engineTimeoutMs,
    pullTimeoutMs: config.runtime.pullTimeoutMs,
    budgetBytes: config.runtime.imageBudgetBytes,
    dataDir: config.node.dataDir,
    configured: config.containers
  })({ logger })
  const runtime = dockerRuntime({
    socket,
    engineTimeoutMs: config.runtime.engineTimeoutMs,
    startTimeoutMs: config.runtime.startTimeoutMs,
    containers: config.containers,
    images,
    detectHardware: async () => hardwareInfo
  })({ logger })

  // Mesh components reference each other through closures; each is started in order below.
  let worker: WorkerAgent | undefined
  let sched: Scheduler | undefined
  let api: ApiServer | undefined
  let orch: Orchestrator | undefined
  const mesh = config.mesh.enabled
    ? meshComponent({ config: config.mesh, roles, containers: roles.includes('worker') ? config.containers.map((c) => c.id) : [] })({
      identity,
      logger,
      heartbeat: () => heartbeatFields(config, hardwareInfo, orch, images, api),
      content: async (hash) => (await worker?.content(hash)) ?? (await sched?.content(hash))
    })
    : undefined
  if (mesh !== undefined && roles.includes('scheduler')) {
    sched = schedulerComponent({ config })({ mesh, identity, logger, grpc: assignClients() })
  }
  orch = orchestrator({ config, hardware: hardwareInfo })({
    store, runtime, identity, logger: logger.child({ component: 'orchestrator' }), remote: sched
  })
  if (mesh !== undefined && roles.includes('worker')) {
    worker = workerAgent({ config })({ mesh, orchestrator: orch, identity, logger })
  }
  const tel = telemetry({ metrics: config.telemetry.metrics })({ orchestrator: orch, logger, images, mesh, scheduler: sched })
  api = apiServer()({
    config, identity, orchestrator: orch, runtime, telemetry: tel, logger, hardware: toWireHardware(hardwareInfo),
    version: VERSION, startedAtMs: Date.now(), images, mesh, worker
  })

  const ordered: Startable[] = [store, images, runtime, orch, tel]
  if (mesh !== undefined) ordered.push(mesh)
  if (worker !== undefined) ordered.push(worker)
  if (sched !== undefined) ordered.push(sched)
  ordered.push(api)
  let started: Startable[] = []

  const stop = async (): Promise<void> => {
    const toStop = started.reverse()
    started = []
    for (const component of toStop) {
      try {
        await component.stop()
      } catch (err) {
        logger.error({ err }, 'component failed to stop cleanly')
      }
    }
  }

  return {
    config, identity, logger, store, images, runtime, orchestrator: orch, telemetry: tel, api, mesh, worker, scheduler: sched,
    async start () {
      if (started.length > 0) return
      try {
        for (const component of ordered) {
          await component.start()
          started.push(component)
        }
      } catch (err) {
        await stop()
        throw err
      }
      // Configured images are fetched at boot, in the background: a slow download never delays the node.
      if (config.runtime.prefetch) {
        images.prefetch(config.containers).then((results) => {
          for (const r of results.filter((x) => !x.ok)) logger.warn({ container: r.containerId, image: r.image, error: r.error }, 'image prefetch failed')
        }, (err: unknown) => logger.warn({ err }, 'image prefetch failed'))
      }
      // Publish a heartbeat now that the gRPC address is known, rather than at the next tick.
      await mesh?.heartbeatNow().catch(() => {})
      await writeNodeFile(config, identity, api, tel, mesh).catch((err: unknown) => logger.warn({ err }, 'could not write node.json'))
      logger.info({ roles, containers: config.containers.map((c) => c.id), version: VERSION, mesh: mesh?.addresses() ?? [] }, 'node started')
    },
    async stop () {
      if (started.length === 0) return
      await stop()
      logger.info('node stopped')
    }
  }
}

/**
 * `<data_dir>/node.json`: where this running node listens (ports chosen by the OS when configured as
 * 0), for tools that start nodes (devnet) and for operators. No secrets: ids and addresses only.
 */
async function writeNodeFile (config: NodeConfig, identity: Identity, api: ApiServer, tel: Telemetry, mesh: Mesh | undefined): Promise<void> {
  const file = path.join(config.node.dataDir, NODE_FILE)
  const body = JSON.stringify({
    nodeId: identity.nodeId,
    pid: process.pid,
    roles: config.node.roles,
    public: api.publicAddress(),
    control: api.controlAddress(),
    metrics: tel.metricsUrl(),
    mesh: mesh?.addresses() ?? []
  }, null, 2) + '\n'
  await mkdir(config.node.dataDir, { recursive: true })
  await writeFile(`${file}.tmp`, body)
  await rename(`${file}.tmp`, file)
}

function heartbeatFields (config: NodeConfig, hw: Awaited<ReturnType<typeof detectHardware>>, orch: Orchestrator | undefined,
  images: ImageCache, api: ApiServer | undefined): HeartbeatFields {
  const stats = orch?.stats()
  const active = stats?.active ?? 0
  const queued = stats?.queued ?? 0
  const concurrency = config.jobs.concurrency
  return {
    cpuCores: hw.cpuCores,
    memoryBytes: hw.memoryBytes,
    gpus: hw.gpus.length,
    grpcAddress: reachableAddress(config, api?.publicAddress() ?? ''),
    freeSlots: Math.max(0, concurrency - active - queued),
    stats: stats === undefined
      ? null
      : {
          activeJobs: active,
          queuedJobs: queued,
          succeeded: stats.succeeded,
          failed: stats.failed,
          avgLatencyMs: stats.avgLatencyMs,
          cacheHitRatio: images.stats().hitRatio,
          load: (active + queued) / concurrency
        }
  }
}

/**
 * The gRPC address peers can dial: a wildcard listener is announced on the mesh's own host, or as
 * "0.0.0.0:port" (= "the host you reach me from") when the mesh listens on a wildcard too.
 */
function reachableAddress (config: NodeConfig, bound: string): string {
  // Behind NAT the gRPC port is not reachable from the mesh: schedulers assign by gossip instead.
  if (bound === '' || config.mesh.behindNat) return ''
  const port = bound.slice(bound.lastIndexOf(':') + 1)
  const host = config.api.public.host
  if (!['0.0.0.0', '::', ''].includes(host)) return bound
  const meshHost = [...config.mesh.announce, ...config.mesh.listen]
    .map((a) => /^\/ip4\/([\d.]+)\//.exec(a)?.[1])
    .find((h) => h !== undefined && h !== '0.0.0.0')
  return `${meshHost ?? '0.0.0.0'}:${port}`
}

function toWireHardware (hw: Awaited<ReturnType<typeof detectHardware>>): WireHardware {
  return {
    cpuModel: hw.cpuModel,
    cpuCores: hw.cpuCores,
    memoryBytes: hw.memoryBytes,
    gpus: hw.gpus.map((g) => ({ name: g.name, memoryBytes: g.memoryBytes })),
    arch: hw.arch,
    platform: hw.platform
  }
}
