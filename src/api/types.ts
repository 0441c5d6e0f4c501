import type { NodeConfig } from '../config/types.ts'
import type { Identity } from '../identity/types.ts'
import type { Orchestrator } from '../orchestrator/types.ts'
import type { Runtime } from '../runtime/types.ts'
import type { Telemetry } from '../telemetry/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { WireHardware } from './wire.ts'

export interface ApiComponents {
  config: NodeConfig
  identity: Identity
  orchestrator: Orchestrator
  runtime: Runtime
  telemetry: Telemetry
  logger: Logger
  hardware: WireHardware
  version: string
  startedAtMs: number
}
