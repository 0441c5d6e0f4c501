import type { VerificationPolicy } from '../protocol/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { GuardianReason } from '../guardian/errors.ts'
import type { Receipt } from '../receipt/types.ts'
import type { JobOrigin } from '../runtime/types.ts'
import type { JobRecord, Placement } from '../store/types.ts'
import type { JobState, Startable } from '../types.ts'

export interface SubmitRequest {
  /** One container; the same as `containers: [containerId]`. */
  containerId?: string
  /** A chain: input → containers[0] → … → the last one's output is the result. Wins over containerId
   * (giving both is allowed only when containerId equals containers[0]). */
  containers?: string[]
  input: Uint8Array
  /** Budget for the whole job (every step) in ms from now; 0/undefined = jobs.default_deadline_ms. */
  deadlineMs?: number
  /** Optional client-chosen id; a repeat returns the existing job (duplicate = true). */
  jobId?: string
  /**
   * Set when the job is a scheduler's assignment (the worker side of the mesh): the Guardian then
   * checks this scheduler's right to assign (allowed_peers), not the client, whom the gateway checked.
   */
  schedulerId?: string
  /** Who sent the job (the client as the admitting gateway saw it); recorded and handed to service containers. */
  origin?: JobOrigin
  /** The result must carry a proof: the last container must declare generates_proofs. */
  requiresProof?: boolean
  /** Open mesh: the client accepts a worker on probation (not in the roster) and an unverified result. */
  allowProbation?: boolean
  /** How the result is to be checked; absent = the gateway's default (gateway.verification). */
  verification?: VerificationPolicy | null
  /**
   * The mesh's first choice of worker (JobRecord.placement). Default for a mesh job with a
   * client-chosen id: { key: jobId, slot: 0 }, so the same key through another gateway reaches the
   * worker that already has the job, which hands it over instead of running it again.
   */
  placement?: Placement
  /** Workers never to give it to (a subscription's interval answered by them already). */
  excludeWorkers?: string[]
  /**
   * origin.delegate is the verified signer of the job's subscription (set by the subscriptions
   * component only, never from a client's request): allowed_delegates may admit it.
   */
  delegateVerified?: boolean
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
  /** Where the job ran: this node's executor, or a worker on the mesh. */
  lane: Lane
  /** The finished record (output, receipt), on terminal events only. Never sent to telemetry. */
  job?: JobRecord
}

export type Lane = 'local' | 'mesh'

/** A submission the Guardian refused: the rule and the container it is about, never the origin. */
export interface GuardianRejection {
  reason: GuardianReason
  /** '' when the job named no container. */
  containerId: string
  /** Error code the client got (PERMISSION_DENIED, FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT). */
  code: string
}

/** A submission refused for any reason (Guardian, limits, schema, full queue): its error code only. */
export interface Refusal { code: string, reason: string }

export interface JobsEvents {
  /** Every state change of every job (including each step). */
  job: JobEvent
  /** Every submission the Guardian refused. */
  rejected: GuardianRejection
  /** Every submission refused, whatever the reason (label = Guardian rule or error code). */
  refused: Refusal
}

export interface JobStats {
  /** Finished jobs since this node's store began (success + failed). */
  served: number
  succeeded: number
  failed: number
  /** Jobs running now: on this node's executor plus mesh jobs awaiting their worker. */
  active: number
  /** Jobs accepted and waiting: for an executor slot or for a mesh in-flight place. */
  queued: number
  /** Mesh jobs awaiting their worker now (part of `active`). */
  meshInFlight: number
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

/** A job handed to the mesh: what a scheduler needs to assign it, nothing more. */
export interface RemoteJob {
  jobId: string
  containers: string[]
  input: Uint8Array
  deadlineAtMs: number
  requiresProof: boolean
  /** The client as this gateway saw it; travels in the signed assignment to the worker only. */
  origin: JobOrigin
  /** Open mesh: a worker on probation (not in the roster) may run it; its result is then unverified. */
  allowProbation: boolean
  /** The worker that accepted the job before this node restarted: asked first (it may hold the result). */
  previousWorker?: string
  /** Workers never to give it to (one that lost a dispute over it). */
  excludeWorkers?: string[]
  /** The first choice of worker: the slot-th capable worker in rendezvous order of key. */
  placement?: Placement
}

export interface RemoteResult {
  output: Uint8Array
  /** The worker's signed receipt, verified on arrival. */
  receipt: SignedEnvelope
  decoded: Receipt
  workerId: string
  /** The worker was on probation (open mesh, not in the roster): nobody vouches for this result. */
  probation: boolean
}

/** Bytes of a mesh job's output at `offset`, as its worker streamed them (point to point, authenticated). */
export interface RemoteOutput {
  offset: number
  data: Uint8Array
  workerId: string
}

export interface RemoteProgress {
  state: 'assigned' | 'accepted' | 'running'
  detail: string
  /** The worker the job is with now (set with 'accepted'). */
  workerId?: string
}

/** Runs jobs on other nodes (a scheduler on the mesh); the gateway uses it for jobs it does not run itself. */
export interface RemoteExecutor {
  /** Containers some live worker serves now (a worker on probation counts only for a job that allows it). */
  servedContainers(opts?: { allowProbation?: boolean }): Set<string>
  /**
   * Assigns the job to a capable worker (failing over on refusal or silence) and waits for its verified
   * result. `onOutput` gets the output as the worker streams it, each chunk checked to come from the
   * worker the job is with at the time (unverified until the result: see docs/ARCHITECTURE.md).
   */
  runRemote(job: RemoteJob, opts: { signal: AbortSignal, onProgress?: (p: RemoteProgress) => void, onOutput?: (chunk: RemoteOutput) => void }): Promise<RemoteResult>
  /**
   * Has a worker's result checked under `policy` by validators chosen by rank, and says how it ended:
   * a certificate, incomplete (the result stands unverified, with the reason) or disputed. Never throws
   * for the validators' failings; resolves before the job's deadline.
   */
  verify(job: RemoteJob, result: RemoteResult, policy: { method: 'signature' | 'reexecute', validators: number, quorum: number },
    opts: { signal: AbortSignal, onProgress?: (p: RemoteProgress) => void, excludeValidators?: ReadonlySet<string> }): Promise<VerifyOutcome>
  /**
   * A worker's signed receipt contradicted the job (an image other than the pinned one, an output
   * other than the one it signed, another job): it counts as a lost dispute, so the worker is excluded.
   */
  misbehaved?(workerId: string, reason: string): void
  /**
   * A worker has accepted a job to be verified under `policy`: validators may start their re-execution
   * now, in parallel with the worker (verify() asks the same ones with the receipt later).
   */
  early?(job: RemoteJob, workerId: string, policy: { method: 'signature' | 'reexecute', validators: number, quorum: number }, excludeValidators?: ReadonlySet<string>): void
}

/** What validators concluded against a worker: the evidence for a dispute record, and fresh validators for a re-run. */
export interface DisputeEvidence { reason: string, attestations: SignedEnvelope[], validators: string[] }

/** A disputed result replaced by the output q re-executing validators agreed on (the certificate says so). */
export interface ResolvedByValidators {
  output: Uint8Array
  /** The receipt of the validator the output came from (its re-execution, under the validation job id). */
  receipt: SignedEnvelope
  validatorId: string
  dispute: DisputeEvidence
}

export type VerifyOutcome =
  | { state: 'certified', certificate: SignedEnvelope, resolved?: ResolvedByValidators }
  | { state: 'incomplete', reason: string }
  | ({ state: 'disputed' } & DisputeEvidence)

/**
 * The jobs service: admits a job (id, idempotency, Guardian with the client's real origin, schema,
 * limits, a durable record), runs it on this node's executor or hands it to the mesh, and answers
 * status, watch and wait. Transport-neutral: gRPC (and later REST and the CLI) are thin adapters.
 */
export interface JobsService extends Startable {
  /** Validates, guards and queues a job; resolves once the job is stored. Throws InvalidJobIdError,
   * InvalidChainError, GuardianRejectedError, InsufficientResourcesError, GpuUnavailableError,
   * InputTooLargeError, InvalidInputError (schema), InvalidDeadlineError, QueueFullError,
   * GatewayFullError, NoLiveWorkerError, NoExecutorError, NotStartedError. */
  submit(req: SubmitRequest): Promise<SubmitResult>
  get(id: string): Promise<JobRecord | undefined>
  /**
   * A job this node runs (or ran) for a scheduler is now another scheduler's: that scheduler sent
   * the same job (same id, containers and input: `jobHash`) after a gateway failed over. The job is
   * not run again; its receipt (now, or when it ends) names the new scheduler. Undefined when there
   * is no such job here or its job hash differs (another job under the same id).
   */
  handover(id: string, schedulerId: string, jobHash: Uint8Array): Promise<JobRecord | undefined>
  list(opts?: { state?: JobState, limit?: number }): Promise<JobRecord[]>
  /** Resolves with the finished job (JobNotFoundError for an unknown id; rejects when `signal` aborts). */
  wait(id: string, signal?: AbortSignal): Promise<JobRecord>
  /**
   * Calls onChange for each state change of the job, its past ones first (each once), and resolves
   * with the finished job. Rejects with JobNotFoundError, or when `signal` aborts.
   */
  watch(id: string, onChange: (change: JobChange) => void, signal?: AbortSignal): Promise<JobRecord>
  /**
   * The job's output (its final step's) as it is produced: every chunk so far, then live ones, ending
   * when the job is terminal (a finished job yields its whole output and ends; a failed one what it
   * produced before failing, possibly nothing). Concatenated, the chunks are the job's output exactly.
   * Throws JobNotFoundError for an unknown id; a `signal` abort ends it with WaitAbortedError.
   * The reader sets the pace: nothing is queued per reader (see docs/ARCHITECTURE.md, "Streaming output").
   */
  outputStream(jobId: string, opts?: { signal?: AbortSignal }): AsyncIterable<OutputChunk>
  /** Subscribes to job events, Guardian rejections or refusals; returns the unsubscribe function. */
  on<K extends keyof JobsEvents>(name: K, listener: (value: JobsEvents[K]) => void): () => void
  stats(): JobStats
}

export interface JobChange { state: JobState, atMs: number, detail: string }

/** A piece of a job's output, in order: the concatenated `data` of indexes 0,1,2… is the output. */
export interface OutputChunk {
  jobId: string
  /** 0, 1, 2… with no gaps, per stream. */
  index: number
  data: Uint8Array
  /** When this node had the bytes (epoch ms). */
  atMs: number
}
