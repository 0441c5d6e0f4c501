import type { GuardianReason } from '../guardian/errors.ts'
import type { JobOrigin } from '../runtime/types.ts'
import type { JobRecord } from '../store/types.ts'
import type { JobState, Startable } from '../types.ts'

export interface SubmitRequest {
  /** One container; the same as `containers: [containerId]`. */
  containerId?: string
  /** A chain: input → containers[0] → … → the last one's output is the result. Wins over containerId
   * (giving both is allowed only when containerId equals containers[0]). */
  containers?: string[]
  input: Uint8Array
  /** Budget for the whole job (every step) in ms from now; 0/undefined = config.jobs.defaultDeadlineMs. */
  deadlineMs?: number
  /** Optional client-chosen id; a repeat returns the existing job (duplicate = true). */
  jobId?: string
  schedulerId?: string
  /** Who sent the job, for the Guardian and service containers; default: nothing known. */
  origin?: JobOrigin
  /** The result must carry a proof: the last container must declare generates_proofs. */
  requiresProof?: boolean
}

export interface SubmitResult {
  job: JobRecord
  duplicate: boolean
}

export interface JobEvent {
  jobId: string
  /** The first container of the job (labels stay one per job, whatever its chain). */
  containerId: string
  state: JobState
  atMs: number
  /** e.g. "accepted", "step 2/3: b", "succeeded". */
  detail: string
  /** Set on terminal events (success/failed). */
  latencyMs?: number
  errorCode?: string
  /** The finished record (output, receipt), on terminal events only. Never sent to telemetry. */
  job?: JobRecord
}

/** A submission the Guardian refused: the rule and the container it is about, never the origin. */
export interface GuardianRejection {
  reason: GuardianReason
  /** '' when the job named no container. */
  containerId: string
  /** Error code the client got (PERMISSION_DENIED, FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT). */
  code: string
}

export interface JobStats {
  /** Finished jobs since this node's store began (success + failed). */
  served: number
  succeeded: number
  failed: number
  active: number
  queued: number
  /** Mean latency of the last 50 finished jobs (0 when none). */
  avgLatencyMs: number
  /** Submissions the Guardian refused since this process started. */
  guardianRejections: number
}

/** What the node offers jobs; submissions needing more are refused up front. */
export interface HardwareProfile {
  cpuCores: number
  memoryBytes: number
  /** Detected GPUs; empty = a job with resources.gpu is refused. */
  gpus: readonly unknown[]
}

export interface Orchestrator extends Startable {
  /** Validates, guards and queues a job. Throws InvalidJobIdError, InvalidChainError,
   * GuardianRejectedError, InsufficientResourcesError, GpuUnavailableError, InputTooLargeError,
   * InvalidInputError (schema), InvalidDeadlineError, QueueFullError, NotStartedError. */
  submit(req: SubmitRequest): Promise<SubmitResult>
  get(id: string): Promise<JobRecord | undefined>
  list(opts?: { state?: JobState, limit?: number }): Promise<JobRecord[]>
  /** Calls listener for every job state change (including each step); returns an unsubscribe function. */
  onEvent(listener: (event: JobEvent) => void): () => void
  /** Calls listener for every submission the Guardian refuses; returns an unsubscribe function. */
  onRejected(listener: (rejection: GuardianRejection) => void): () => void
  stats(): JobStats
}
