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
import { orchestrator } from './orchestrator/index.ts'
import { telemetry, createLogger, type Telemetry } from './telemetry/index.ts'
import { apiServer, type ApiServer } from './api/index.ts'
import type { WireHardware } from './api/wire.ts'
import { VERSION } from './version.ts'

export interface InframindNode extends Startable {
  readonly config: NodeConfig
  readonly identity: Identity
  readonly logger: Logger
  readonly store: JobStore
  readonly runtime: Runtime
  readonly orchestrator: Orchestrator
  readonly telemetry: Telemetry
  readonly api: ApiServer
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
  const { identity, created } = await loadOrCreateIdentity(config.identity.keyFile)
  const logger = opts.logger ?? createLogger({ level: config.telemetry.logLevel, nodeId: identity.nodeId })
  if (created) logger.info({ nodeId: identity.nodeId, keyFile: identity.keyFile }, 'created a new node identity')
  else logger.info({ nodeId: identity.nodeId, keyFile: identity.keyFile }, 'loaded node identity')

  const store = levelStore({ path: config.store.path, maxResults: config.store.maxResults })({ logger: logger.child({ component: 'store' }) })
  const runtime = dockerRuntime({ socket: config.runtime.socket === '' ? undefined : config.runtime.socket, engineTimeoutMs: config.runtime.engineTimeoutMs })({ logger })
  const orch = orchestrator({ config })({ store, runtime, identity, logger: logger.child({ component: 'orchestrator' }) })
  const tel = telemetry({ metrics: config.telemetry.metrics })({ orchestrator: orch, logger })
  const hardware = toWireHardware(await detectHardware())
  const api = apiServer()({
    config, identity, orchestrator: orch, runtime, telemetry: tel, logger, hardware, version: VERSION, startedAtMs: Date.now()
  })

  const ordered: Startable[] = [store, runtime, orch, tel, api]
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
    config, identity, logger, store, runtime, orchestrator: orch, telemetry: tel, api,
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
      logger.info({ roles: config.node.roles, containers: config.containers.map((c) => c.id), version: VERSION }, 'node started')
    },
    async stop () {
      if (started.length === 0) return
      await stop()
      logger.info('node stopped')
    }
  }
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
