import type { SignedEnvelope } from '../envelope/types.ts'
import type { JobState, StateChange, Startable } from '../types.ts'

export interface JobRecord {
  id: string
  containerId: string
  input: Uint8Array
  state: JobState
  createdAtMs: number
  /** Absolute deadline (epoch ms) for the whole job. */
  deadlineAtMs: number
  startedAtMs?: number
  finishedAtMs?: number
  history: StateChange[]
  output?: Uint8Array
  error?: string
  /** Machine-readable failure code, e.g. TIMEOUT, OUTPUT_TOO_LARGE, NODE_RESTARTED. */
  errorCode?: string
  exitCode?: number
  latencyMs?: number
  imageDigest?: string
  receipt?: SignedEnvelope
  /** Who assigned the job ('' for direct submissions). */
  schedulerId: string
}

export interface ListOptions {
  state?: JobState
  /** Newest first; default 100. */
  limit?: number
}

/** Finished jobs since the store was created; eviction does not lower them. */
export interface JobCounters {
  served: number
  succeeded: number
  failed: number
}

export interface JobStore extends Startable {
  /** Writes a pending or running job (kept apart from completed ones). */
  putActive(job: JobRecord): Promise<void>
  /** Moves a finished job (success or failed) from active to completed, then evicts LRU past maxResults. */
  complete(job: JobRecord): Promise<void>
  /** Finds a job in either set; reading a completed job marks it recently used. */
  get(id: string): Promise<JobRecord | undefined>
  /** Jobs that were pending or running, oldest first (used at start to resume). */
  listActive(): Promise<JobRecord[]>
  list(opts?: ListOptions): Promise<JobRecord[]>
  /** Number of completed jobs held. */
  completedCount(): Promise<number>
  /** Counters kept by complete() in the same write, so they survive restarts and eviction. */
  counters(): Promise<JobCounters>
}
