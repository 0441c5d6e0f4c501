import type { NodeConfig } from '../config/types.ts'
import type { Identity } from '../identity/types.ts'
import type { JobsService } from '../gateway/types.ts'
import type { Runtime } from '../runtime/types.ts'
import type { Telemetry } from '../telemetry/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Hardware } from '../protocol/index.ts'
import type { ImageCache } from '../images/types.ts'
import type { Mesh } from '../mesh/index.ts'
import type { WorkerAgent } from '../worker/index.ts'
import type { Scheduler } from '../scheduler/index.ts'
import type { RosterBook, RosterSync } from '../roster/index.ts'
import type { Subscriptions } from '../subscriptions/index.ts'
import type { Archive } from '../archive/index.ts'

export interface ApiComponents {
  config: NodeConfig
  identity: Identity
  /** The jobs service: every job RPC is a thin adapter over it. */
  jobs: JobsService
  /** Whether this node runs a container itself (else it admits jobs for it and workers on the mesh run them). */
  runsLocally: (containerId: string) => boolean
  runtime: Runtime
  telemetry: Telemetry
  logger: Logger
  hardware: Hardware
  version: string
  startedAtMs: number
  images?: ImageCache
  /** Present when the node is on the mesh. */
  mesh?: Mesh
  /** Present when the node takes assignments (worker role on the mesh). */
  worker?: WorkerAgent
  /** Present when the node assigns jobs on the mesh (scheduler or gateway role): it takes their results. */
  scheduler?: Pick<Scheduler, 'acceptResult' | 'reputation'> & Partial<Pick<Scheduler, 'acceptOutput'>>
  /**
   * Present when the node holds an operator-signed roster (mesh admission): UpdateRoster applies
   * through `book` and passes the roster on to the mesh through `sync` (absent: applied here only);
   * GetRoster reads `book`. The admission mode and operators reported come from config.mesh.admission.
   */
  roster?: { book: Pick<RosterBook, 'apply' | 'current' | 'rolesOf'>, sync?: Pick<RosterSync, 'publish'> }
  /** Present on mesh nodes with the scheduler role (else the subscription RPCs answer NO_SUBSCRIPTIONS). */
  subscriptions?: Subscriptions
  /** Present on mesh nodes with the archive role (else the record RPCs answer NOT_AN_ARCHIVE). */
  archive?: Archive
}
