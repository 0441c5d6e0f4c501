/**
 * One signed assignment to one worker or validator, and its signed ack: by the node's gRPC AssignJob
 * (mesh.assign_via grpc), by gossip, or by gossip after gRPC failed. The client's input and origin
 * are sealed to the assignee; a validator checking a receipt ("attest") gets neither.
 */
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { signEnvelope, verifyEnvelope } from '../envelope/index.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import { decodeAck, encodeAssignment, encodeAssignmentSecret, PAYLOAD_TYPES, type Assignment, type AssignmentAck, type Heartbeat } from '../protocol/index.ts'
import { sealTo, SEAL_CONTEXTS } from '../seal/index.ts'
import { grpcTarget, type Mesh } from '../mesh/index.ts'
import type { RemoteJob } from '../gateway/types.ts'
import { AckMismatchError, AckTimeoutError } from './errors.ts'

/** One assignment sent: by the worker's gRPC AssignJob, by gossip, or by gossip after gRPC failed. */
export interface AssignmentSent { jobId: string, workerId: string, via: 'grpc' | 'gossip' | 'gossip_fallback' }

/** Sends signed assignments to workers' gRPC AssignJob and returns their signed acks. */
export interface GrpcAssign {
  assign(address: string, assignment: SignedEnvelope, signal: AbortSignal, opts?: { connectTimeoutMs?: number }): Promise<SignedEnvelope>
  close(): void
}

/** Large inputs by hash, with the nodes allowed to fetch them (those the job was assigned to) and the jobs holding them. */
export type HeldInputs = Map<string, { bytes: Uint8Array, workers: Set<string>, jobs: number }>

/** What an assignment is for: the job itself, a validator's re-execution, or a validator's receipt check. */
export interface AssignPurpose { purpose: '' | 'reexecute' | 'attest', checkedReceipt: SignedEnvelope | null }

export interface AssignerDeps {
  assignVia: 'grpc' | 'gossip'
  inlineBytes: number
  ackTimeoutMs: number
  identity: Identity
  mesh: Mesh
  logger: Logger
  grpc?: GrpcAssign
  replyAddress?: () => string
  inputs: HeldInputs
  /** Gossiped acks are delivered here by `${job id}/${worker id}`. */
  acks: Map<string, (ack: AssignmentAck) => void>
  sent: (a: AssignmentSent) => void
}

/** An ack returned by a worker's AssignJob counts only if that worker signed it, for this job. */
function verifiedAck (envelope: SignedEnvelope, jobId: string, workerId: string): AssignmentAck {
  verifyEnvelope(envelope, { payloadType: PAYLOAD_TYPES.ack })
  const ack = decodeAck(envelope.payload)
  const signer = nodeIdFromPublicKey(envelope.publicKey)
  if (signer !== workerId || ack.workerId !== workerId || ack.jobId !== jobId) throw new AckMismatchError(signer, ack.jobId, jobId, workerId)
  return ack
}

/** Returns assignOnce: `connectedFrom` are the addresses of this node's mesh connections to the worker. */
export function assigner (d: AssignerDeps) {
  return async function assignOnce (job: RemoteJob, inputHash: Buffer, worker: Heartbeat, connectedFrom: string[], signal: AbortSignal,
    check: AssignPurpose = { purpose: '', checkedReceipt: null }): Promise<AssignmentAck> {
    // A receipt check reads no client data: it gets the input's hash, never the input.
    const withInput = check.purpose !== 'attest'
    const inline = job.input.byteLength <= d.inlineBytes || !withInput
    if (!inline) d.inputs.get(inputHash.toString('hex'))?.workers.add(worker.nodeId)
    // The client's data is sealed to this worker: whoever carries the assignment (a gRPC hop, the
    // gossip fallback) sees hashes and sizes, never the input or the origin.
    // A validator re-runs the job; who the client is stays with the worker that needed it for its Guardian.
    const origin = check.purpose === '' ? job.origin : { ip: '', peerId: '', delegate: '' }
    const secret = encodeAssignmentSecret({
      input: inline && withInput ? job.input : new Uint8Array(),
      inputInline: inline,
      origin: { ip: origin.ip, peerId: origin.peerId, delegate: origin.delegate, gatewayId: d.identity.nodeId }
    })
    const assignment: Assignment = {
      jobId: job.jobId,
      containers: job.containers,
      sealed: sealTo(worker.nodeId, secret, SEAL_CONTEXTS.assignment(job.jobId)),
      inputHash,
      inputSize: job.input.byteLength,
      inputProvider: inline ? '' : d.identity.nodeId,
      workerId: worker.nodeId,
      schedulerId: d.identity.nodeId,
      issuedAtMs: Date.now(),
      deadlineAtMs: job.deadlineAtMs,
      requiresProof: job.requiresProof,
      replyAddress: d.replyAddress?.() ?? '',
      purpose: check.purpose,
      checkedReceipt: check.checkedReceipt
    }
    const payload = encodeAssignment(assignment)
    const target = d.assignVia === 'grpc' ? grpcTarget(worker.grpcAddress, connectedFrom) : ''
    let path: AssignmentSent['via'] = 'gossip'
    if (target !== '' && d.grpc !== undefined) {
      const ackSignal = AbortSignal.any([signal, AbortSignal.timeout(d.ackTimeoutMs)])
      try {
        // Half the ack budget to connect: an unreachable port still leaves time to fall back to gossip.
        const env = await d.grpc.assign(target, signEnvelope(d.identity, PAYLOAD_TYPES.assignment, payload), ackSignal, { connectTimeoutMs: Math.max(1_000, d.ackTimeoutMs / 2) })
        const ack = verifiedAck(env, job.jobId, worker.nodeId)
        d.sent({ jobId: job.jobId, workerId: worker.nodeId, via: 'grpc' })
        return ack
      } catch (err) {
        path = 'gossip_fallback'
        if (ackSignal.aborted) throw err
        // Unreachable port, a guard in front of it, a bad ack: the same assignment goes by gossip
        // (assignments are idempotent, so one that did arrive is acknowledged as a duplicate).
        d.logger.info({ job: job.jobId, worker: worker.nodeId, err: (err as Error).message }, 'gRPC assignment failed; sending it by gossip')
      }
    }
    // The gossip path gets its own ack budget: a failed gRPC attempt must not use it up.
    const ackSignal = AbortSignal.any([signal, AbortSignal.timeout(d.ackTimeoutMs)])
    const key = `${job.jobId}/${worker.nodeId}`
    let mine: ((ack: AssignmentAck) => void) | undefined
    const acked = new Promise<AssignmentAck>((resolve, reject) => {
      mine = resolve
      d.acks.set(key, resolve)
      ackSignal.addEventListener('abort', () => reject(new AckTimeoutError(worker.nodeId, d.ackTimeoutMs)), { once: true })
    })
    try {
      // Every node sees the assignments topic: the client's input and origin are in the sealed part.
      await d.mesh.publish('assignments', assignment)
      d.sent({ jobId: job.jobId, workerId: worker.nodeId, via: path })
      return await acked
    } finally {
      // A later assignment of the same job to the same node (a validator asked again) has its own wait.
      if (d.acks.get(key) === mine) d.acks.delete(key)
    }
  }
}
