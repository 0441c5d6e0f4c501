import type { ContainerConfig, IoSchema, Role } from '../config/types.ts'
import type { JobsService } from '../gateway/types.ts'
import type { Runtime } from '../runtime/types.ts'
import type { HardwareInfo } from '../runtime/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Startable } from '../types.ts'

export interface RestInit {
  host: string
  /** 0 = a free port (tests). */
  port: number
  /** rest.max_body_bytes */
  maxBodyBytes: number
  /** rest.max_batch */
  maxBatch: number
}

export interface RestComponents {
  /** Every job goes through it: the same Guardian, limits and queues as gRPC SubmitJob. */
  jobs: JobsService
  logger: Logger
  /** config.containers: what /info and /resources describe, and each output's schema. */
  containers: readonly ContainerConfig[]
  /** Live state of the containers this node runs itself. */
  runtime: Pick<Runtime, 'containerStatuses'>
  /** Whether this node runs a container itself (else workers on the mesh do). */
  runsLocally: (containerId: string) => boolean
  hardware: HardwareInfo
  nodeId: string
  roles: readonly Role[]
  version: string
}

export interface RestServer extends Startable {
  /** "host:port" the listener is bound to ('' when stopped). */
  address(): string
}

/** What the route modules share. */
export interface RestContext extends RestComponents {
  maxBatch: number
  /** Output schema of a configured container ('bytes' for one no longer configured). */
  schemaOf(containerId: string): IoSchema
  /** Open /api/jobs/stream responses: stop() ends them before the listener closes. */
  streams: Set<AbortController>
}
