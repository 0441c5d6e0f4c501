import { createHash } from 'node:crypto'
import { signEnvelope, verifyEnvelope } from '../envelope/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import type { Identity } from '../identity/types.ts'
import type { JobsService } from '../gateway/types.ts'
import type { JobRecord } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Startable } from '../types.ts'
import { computeJobHash, sha256 } from '../receipt/index.ts'
import {
  decodeAssignment, decodeAssignmentSecret, decodeAttestation, encodeAck, encodeJobResult, PAYLOAD_TYPES,
  type Assignment, type AssignmentAck, type AssignmentSecret
} from '../protocol/index.ts'
import { grpcTarget, type Mesh } from '../mesh/index.ts'
import type { Admission } from '../admission/index.ts'
import { openSealed, sealTo, SEAL_CONTEXTS } from '../seal/index.ts'
import { checkValidationRequest, validator, type CheckedReceipt } from '../validator/index.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { outputForwarder, type OutputReporter } from './output.ts'

/** Outputs kept in memory for peers to fetch by hash after a job ends (bounded; older ones come from the store). */
const MAX_SERVED_OUTPUTS = 256
/** Jobs assigned over gRPC, remembered with where to report them until they end (bounded: a job that never ends must not pin memory). */
const MAX_DIRECT_JOBS = 10_000
/** A scheduler answers a result report at once; longer means trouble, and gossip takes over. */
const REPORT_TIMEOUT_MS = 5_000

export interface AckResult { ack: AssignmentAck, envelope: SignedEnvelope }

export interface WorkerAgent extends Startable {
  /**
   * Checks, acknowledges and (when accepted) queues one signed assignment, from gossip or gRPC
   * AssignJob (`via`): its result goes back the way it came.
   */
  handleAssignment(envelope: SignedEnvelope, via?: 'grpc' | 'gossip'): Promise<AckResult>
  /** Output bytes of a recent job by sha256, only for that job's scheduler (/inframind/fetch/1.0.0). */
  content(hash: Uint8Array, requester: string): Promise<Uint8Array | undefined>
}

export interface WorkerInit {
  /** Outputs up to this size ride in the result notice; larger ones are fetched by hash (mesh.inline_bytes). */
  inlineBytes: number
  /** This node's roles: jobs need "worker", re-executions and receipt checks need "validator" (default: worker only). */
  roles?: readonly string[]
  /** Container id → pinned image digest, for the receipts this node checks as a validator. */
  pins?: ReadonlyMap<string, string>
  /** The node's jobs queue size (jobs.queue_size): re-executions may hold at most half of it. */
  queueSize?: number
}


/** Sends a signed result notice to a scheduler's public ReportResult. */
export interface ResultReporter extends Partial<OutputReporter> {
  report(address: string, notice: SignedEnvelope, signal: AbortSignal): Promise<{ accepted: boolean, reason: string }>
}

export interface WorkerComponents {
  mesh: Mesh
  /** Whose assignments count: roster schedulers and gateways, and mesh.trusted_schedulers. */
  admission: Admission
  jobs: JobsService
  identity: Identity
  logger: Logger
  /** Results of jobs assigned over gRPC go back the same way; without it (or when it fails) they go by gossip. */
  grpc?: ResultReporter
  /** Where re-executions are counted (apart from the node's own jobs). */
  metrics?: Metrics
}

/**
 * The worker side of the mesh: takes assignments addressed to this node from the schedulers the
 * roster (or this node's config) trusts, acknowledges every one (accepted, or refused with the reason,
 * signed either way), opens the sealed client data, admits accepted ones through its jobs service
 * (durable, idempotent by job id, its Guardian judging the scheduler's right to assign), and sends
 * the result back with the output sealed to the scheduler.
 */
export function workerAgent (init: WorkerInit) {
  return (c: WorkerComponents): WorkerAgent => {
    const logger = c.logger.child({ component: 'worker' })
    /** Recent outputs by hash, with the scheduler allowed to fetch each. */
    const served = new Map<string, { bytes: Uint8Array, schedulerId: string }>()
    const directJobs = new Map<string, string>()
    const roles = init.roles ?? ['worker']
    const validating = roles.includes('validator') ? validator({ pins: init.pins ?? new Map(), maxReexecutions: Math.max(1, Math.floor((init.queueSize ?? 64) / 2)) })(c) : undefined
    let unsubscribe: Array<() => void> = []
    // A running job's output goes live to the scheduler that assigned it over gRPC (src/worker/output.ts).
    const reportOutput = c.grpc?.reportOutput?.bind(c.grpc)
    const live = reportOutput !== undefined ? outputForwarder({ jobs: c.jobs, identity: c.identity, mesh: c.mesh, reporter: { reportOutput }, logger }) : undefined

    const ack = (a: Pick<Assignment, 'jobId' | 'schedulerId'>, fields: Partial<AssignmentAck>): AckResult => {
      const value: AssignmentAck = {
        jobId: a.jobId, workerId: c.identity.nodeId, schedulerId: a.schedulerId,
        accepted: false, code: '', reason: '', atMs: Date.now(), duplicate: false, attestation: null, ...fields
      }
      return { ack: value, envelope: signEnvelope(c.identity, PAYLOAD_TYPES.ack, encodeAck(value)) }
    }

    const handleAssignment = async (envelope: SignedEnvelope, via: 'grpc' | 'gossip' = 'grpc'): Promise<AckResult> => {
      let a: Assignment
      try {
        verifyEnvelope(envelope, { payloadType: PAYLOAD_TYPES.assignment })
        a = decodeAssignment(envelope.payload)
      } catch (err) {
        return ack({ jobId: '', schedulerId: '' }, { code: 'INVALID_ASSIGNMENT', reason: (err as Error).message })
      }
      const signer = nodeIdFromPublicKey(envelope.publicKey)
      if (signer !== a.schedulerId) return ack(a, { code: 'INVALID_ASSIGNMENT', reason: `signed by ${signer}, not by the scheduler it names` })
      if (a.workerId !== c.identity.nodeId) return ack(a, { code: 'WRONG_WORKER', reason: `assigned to ${a.workerId}, not to this node` })
      // undefined: an ordinary job; null: an early re-execution (the receipt comes later).
      let checked: CheckedReceipt | null | undefined
      if (a.purpose === 'reexecute' || a.purpose === 'attest') {
        if (validating === undefined) return ack(a, { code: 'NOT_A_VALIDATOR', reason: 'this node does not have the validator role' })
        const refusal = checkValidationRequest(a, c.identity.nodeId)
        if (typeof refusal === 'string') return ack(a, { code: 'INVALID_ASSIGNMENT', reason: refusal })
        checked = refusal
      } else if (a.purpose !== '') {
        return ack(a, { code: 'INVALID_ASSIGNMENT', reason: `unknown purpose ${JSON.stringify(a.purpose.slice(0, 32))}` })
      } else if (!roles.includes('worker')) {
        return ack(a, { code: 'NOT_A_WORKER', reason: 'this node does not have the worker role' })
      }
      // A role claimed in a heartbeat is never enough: the roster (or this node's own config) decides.
      if (!c.admission.mayAssign(a.schedulerId)) {
        return ack(a, { code: 'UNTRUSTED_SCHEDULER', reason: `${a.schedulerId} may not assign jobs here: it is not a scheduler or gateway in the roster, nor in mesh.trusted_schedulers` })
      }
      const remaining = a.deadlineAtMs - Date.now()
      if (remaining <= 0) return ack(a, { code: 'EXPIRED', reason: `deadline passed ${-remaining} ms ago` })
      const busy = a.purpose === 'reexecute' ? validating?.busy(a.jobId) : undefined
      if (busy !== undefined) return ack(a, { code: 'VALIDATOR_BUSY', reason: busy })
      // A receipt check runs nothing and reads no client data: the verdict is the answer.
      if (a.purpose === 'attest' && validating !== undefined && checked !== undefined && checked !== null) {
        return ack(a, { accepted: true, attestation: validating.checkSignature(a, checked) })
      }
      let secret: AssignmentSecret
      try {
        secret = decodeAssignmentSecret(openSealed(c.identity, a.sealed, SEAL_CONTEXTS.assignment(a.jobId)))
      } catch (err) {
        return ack(a, { code: 'UNREADABLE_ASSIGNMENT', reason: `the sealed part does not open with this worker's key: ${(err as Error).message}` })
      }
      let input = secret.input
      if (!secret.inputInline) {
        try {
          input = await c.mesh.fetch(a.inputProvider !== '' ? a.inputProvider : a.schedulerId, a.inputHash, AbortSignal.timeout(Math.min(remaining, 30_000)))
        } catch (err) {
          return ack(a, { code: 'INPUT_UNAVAILABLE', reason: (err as Error).message })
        }
      }
      // Known before the job can end, so its result always carries the verdict (or waits for the receipt).
      const tracked = checked !== undefined && validating !== undefined
      if (tracked) validating.track(a.jobId, checked as CheckedReceipt | null)
      try {
        const submitted = await c.jobs.submit({
          jobId: a.jobId,
          containers: a.containers,
          input,
          deadlineMs: Math.max(1, a.deadlineAtMs - Date.now()),
          schedulerId: a.schedulerId,
          requiresProof: a.requiresProof,
          // The client as the gateway saw it, for this node's containers; the Guardian judges the scheduler.
          origin: { ip: secret.origin?.ip ?? '', peerId: secret.origin?.peerId ?? '', delegate: secret.origin?.delegate ?? '' }
        })
        const duplicate = submitted.duplicate
        let job = submitted.job
        let finished = job.state === 'success' || job.state === 'failed'
        // Another scheduler sends a job this node has: a client retried its key through another gateway,
        // or a scheduler took over a subscription. The same job (by job hash) moves to it; never a rerun.
        if (duplicate && job.schedulerId !== a.schedulerId && job.schedulerId !== '' && checked === undefined) {
          const moved = await c.jobs.handover(a.jobId, a.schedulerId, computeJobHash(a.jobId, a.containers, sha256(input)))
          if (moved === undefined) return ack(a, { code: 'JOB_ID_CONFLICT', reason: `job id ${a.jobId} is already used here by another job (different containers or input)` })
          job = moved
          finished = job.state === 'success' || job.state === 'failed'
        }
        // The reply address of the newest assignment wins: a restarted scheduler listens on a new one.
        if (via === 'grpc' && a.replyAddress !== '' && !finished) {
          directJobs.set(a.jobId, a.replyAddress)
          while (directJobs.size > MAX_DIRECT_JOBS) directJobs.delete(directJobs.values().next().value as string)
          // A job proper (not a validator's re-run): its output streams to the scheduler while it runs.
          if (checked === undefined) live?.follow(a.jobId, a.schedulerId, a.replyAddress)
        }
        // The same scheduler assigning a job this node has finished lost the result (it restarted, or
        // the report went astray): it gets the result again, and the job does not run again.
        if (duplicate && finished && job.schedulerId === a.schedulerId) {
          // A re-execution that ran early, now asked with the worker's receipt: an agreeing verdict is
          // the whole answer and rides in the ack; a disagreeing one goes with this node's own result
          // (the scheduler may certify that output instead).
          const verdict = checked !== null && checked !== undefined ? validating?.reexecuted(job) ?? null : undefined
          if (verdict !== undefined && verdict !== null && verdict !== 'hold' && decodeAttestation(verdict.payload).verdict === 'agree') {
            return ack(a, { accepted: true, duplicate, attestation: verdict })
          }
          if (via === 'grpc' && a.replyAddress !== '') directJobs.set(a.jobId, a.replyAddress)
          setImmediate(() => { announce(job, verdict).catch((err: unknown) => logger.warn({ err, job: job.id }, 'could not send the result again')) })
        }
        logger.debug({ job: a.jobId, scheduler: a.schedulerId, duplicate }, 'assignment accepted')
        return ack(a, { accepted: true, duplicate })
      } catch (err) {
        if (tracked) validating?.forget(a.jobId)
        const code = (err as { code?: unknown }).code
        return ack(a, { code: typeof code === 'string' ? code : 'INTERNAL', reason: (err as Error).message })
      }
    }

    /**
     * Sends a finished job's result to its scheduler: point to point when the job came over gRPC (no
     * other node sees the output), else, or when that fails, as a notice on the receipts topic.
     * `verdict`: a re-execution's attestation already taken from the validator (undefined: take it here).
     */
    const announce = async (job: JobRecord, verdict?: SignedEnvelope | null | 'hold'): Promise<void> => {
      if (job.receipt === undefined || job.schedulerId === '') return
      // An early re-execution keeps its result until the scheduler asks again with the worker's receipt.
      const attestation = verdict !== undefined ? verdict : validating?.reexecuted(job) ?? null
      if (attestation === 'hold') return
      const output = job.output ?? new Uint8Array()
      const hash = createHash('sha256').update(output).digest()
      served.set(hash.toString('hex'), { bytes: output, schedulerId: job.schedulerId })
      while (served.size > MAX_SERVED_OUTPUTS) served.delete(served.keys().next().value as string)
      const inline = output.byteLength <= init.inlineBytes
      // Sealed to the scheduler: the gossip fallback shows everyone the receipt (hashes), nobody the output.
      const notice = {
        receipt: job.receipt,
        sealedOutput: inline ? sealTo(job.schedulerId, output, SEAL_CONTEXTS.output(job.id)) : new Uint8Array(),
        outputInline: inline,
        outputSize: output.byteLength,
        atMs: Date.now(),
        attestation
      }
      const reply = directJobs.get(job.id) ?? ''
      directJobs.delete(job.id)
      // The address the scheduler signed into the assignment; 0.0.0.0 means the host our connection to it comes from.
      const from = c.mesh.peers().find((p) => p.nodeId === job.schedulerId)?.addresses ?? []
      const address = reply !== '' && c.grpc !== undefined ? grpcTarget(reply, from) : ''
      if (address !== '' && c.grpc !== undefined) {
        try {
          const verdict = await c.grpc.report(address, signEnvelope(c.identity, PAYLOAD_TYPES.jobResult, encodeJobResult(notice)), AbortSignal.timeout(REPORT_TIMEOUT_MS))
          if (verdict.accepted) return
          // Refused (the scheduler gave up on the job, or restarted): gossip lets anyone still waiting see it.
          logger.info({ job: job.id, scheduler: job.schedulerId, reason: verdict.reason }, 'scheduler refused the result; gossiping it')
        } catch (err) {
          logger.info({ job: job.id, scheduler: job.schedulerId, err: (err as Error).message }, 'could not report the result over gRPC; gossiping it')
        }
      }
      await c.mesh.publish('receipts', notice)
    }

    return {
      handleAssignment,
      content: async (hash, requester) => {
        const held = served.get(Buffer.from(hash).toString('hex'))
        return held !== undefined && held.schedulerId === requester ? held.bytes : undefined
      },
      async start () {
        if (unsubscribe.length > 0) return
        unsubscribe = [
          c.mesh.subscribe('assignments', (msg) => {
            if (msg.value.workerId !== c.identity.nodeId) return
            handleAssignment(msg.envelope, 'gossip').then(async (r) => {
              await c.mesh.publish('acks', r.ack)
            }).catch((err: unknown) => logger.error({ err }, 'assignment handling failed'))
          }),
          c.jobs.on('job', (event) => {
            if (event.job !== undefined) live?.ended(event.jobId)
            // Only jobs this node ran for a scheduler: a gateway+worker's own clients hear from it directly.
            if (event.job === undefined || event.job.schedulerId === '') return
            announce(event.job).catch((err: unknown) => logger.warn({ err, job: event.jobId }, 'could not announce job result'))
          })
        ]
      },
      async stop () {
        for (const u of unsubscribe) u()
        unsubscribe = []
        live?.stop()
      }
    }
  }
}
