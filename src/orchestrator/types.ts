import type { JobRecord } from '../store/types.ts'
import type { JobState, Startable } from '../types.ts'

export interface SubmitRequest {
  containerId: string
  input: Uint8Array
  /** Budget for the whole job in ms from now; 0/undefined = config.jobs.defaultDeadlineMs. */
  deadlineMs?: number
  /** Optional client-chosen id; a repeat returns the existing job (duplicate = true). */
  jobId?: string
  schedulerId?: string
}

export interface SubmitResult {
  job: JobRecord
  duplicate: boolean
}

export interface JobEvent {
  jobId: string
  containerId: string
  state: JobState
  atMs: number
  detail: string
  /** Set on terminal events (success/failed). */
  latencyMs?: number
  errorCode?: string
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
}

export interface Orchestrator extends Startable {
  /** Validates and queues a job. Throws UnknownContainerError, InputTooLargeError,
   * InvalidInputError (schema), QueueFullError, NotStartedError. */
  submit(req: SubmitRequest): Promise<SubmitResult>
  get(id: string): Promise<JobRecord | undefined>
  list(opts?: { state?: JobState, limit?: number }): Promise<JobRecord[]>
  /** Calls listener for every job state change; returns an unsubscribe function. */
  onEvent(listener: (event: JobEvent) => void): () => void
  stats(): JobStats
}
