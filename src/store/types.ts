import type { SignedEnvelope } from '../envelope/types.ts'
import type { JobOrigin } from '../runtime/types.ts'
import type { JobState, StateChange, Startable } from '../types.ts'

/** One container run of a job (a single-container job has one). */
export interface StepRecord {
  containerId: string
  /** Image id that ran ('' when the step failed before an image was resolved). */
  imageDigest: string
  /**
   * What the step printed, kept while it is the input of a later step. The last step's output is
   * the job's `output` and is not stored twice; failed steps have none.
   */
  output?: Uint8Array
  /** sha256 of the output (of empty bytes for a failed step). */
  outputHash: Uint8Array
  outputBytes: number
  /** -1 when no process exit status is known. */
  exitCode: number
  latencyMs: number
  startedAtMs: number
  finishedAtMs: number
  status: 'success' | 'failed'
  error: string
  /** Machine-readable failure code of a failed step ('' on success). */
  errorCode: string
}

export interface JobRecord {
  id: string
  /** The first container of the chain (what single-container clients and summaries show). */
  containerId: string
  /** The chain in order: the input goes to containers[0], each output feeds the next. */
  containers: string[]
  /** Runs so far, in order; a job stopped mid-chain keeps its finished steps and resumes after them. */
  steps: StepRecord[]
  input: Uint8Array
  /** Who sent the job; kept so a resumed job reaches its containers with the same origin. Never in telemetry. */
  origin: JobOrigin
  requiresProof: boolean
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
  /** Exit code of the last step that ran. */
  exitCode?: number
  latencyMs?: number
  /** Image of the last step that ran (steps[] has every one). */
  imageDigest?: string
  receipt?: SignedEnvelope
  /** Who assigned the job ('' for direct submissions). */
  schedulerId: string
  /** Open mesh: the client let a worker on probation run it. */
  allowProbation: boolean
  /** The mesh worker that ran it (absent when this node ran it). */
  workerId?: string
  /** That worker was on probation (not in the roster): nobody vouches for the result. */
  workerOnProbation?: boolean
  /** How the result is checked (absent = not at all: policy method "none"). */
  verification?: JobVerification
  /**
   * Where the mesh puts the job first: the slot-th worker in rendezvous order of `key` (a client's
   * idempotency key, or a subscription interval), so every gateway asks the same worker first.
   */
  placement?: Placement
  /** Workers the mesh must not give it to (those that answered the same subscription interval). */
  excludeWorkers?: string[]
}

/** A deterministic first choice of worker (see JobRecord.placement). */
export interface Placement {
  key: string
  slot: number
}

export type VerificationState = 'pending' | 'certified' | 'incomplete' | 'disputed'

/** A job's verification policy (defaults resolved) and how far it got. */
export interface JobVerification {
  method: 'signature' | 'reexecute'
  validators: number
  quorum: number
  state: VerificationState
  /** Why it is incomplete or disputed ('' otherwise). */
  reason: string
  /** The scheduler-signed certificate once certified. */
  certificate?: SignedEnvelope
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

/** One write of a batch on a section. */
export type SectionOp = { type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }

/** A range of keys, as LevelDB orders them (byte order of the utf8 key). */
export interface SectionRange {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  limit?: number
  reverse?: boolean
}

/**
 * A component's own key space in the node's LevelDB (a sublevel under a name it is given), so two
 * components share one database without clashing. Usable between the store's start() and stop().
 */
export interface StoreSection {
  get(key: string): Promise<Uint8Array | undefined>
  /** Values of `keys` in their order (undefined where absent): one read of the engine for all. */
  getMany(keys: string[]): Promise<Array<Uint8Array | undefined>>
  put(key: string, value: Uint8Array): Promise<void>
  del(key: string): Promise<void>
  /** All ops land together or none does. */
  batch(ops: SectionOp[]): Promise<void>
  /** Entries in key order (or reverse), within the range. */
  entries(range?: SectionRange): AsyncIterable<[string, Uint8Array]>
  keys(range?: SectionRange): AsyncIterable<string>
}

export interface JobStore extends Startable {
  /**
   * The key space named `name` (letters, digits, '-'; not one of the store's own): subscriptions,
   * archive records. Callable before start(); its methods throw NotStartedError outside start..stop.
   */
  section(name: string): StoreSection
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
  /** A scheduler's records of other nodes (reputation), by node id, as stored. */
  loadReputation(): Promise<Map<string, string>>
  saveReputation(nodeId: string, record: string): Promise<void>
  /** Keeps a signed dispute record (`key` orders them: time, then hash); the oldest go past the limit. */
  saveDispute(key: string, record: string): Promise<void>
  /** Dispute records, oldest first. */
  listDisputes(): Promise<Array<[string, string]>>
}
