import { verifyReceipt } from '../receipt/index.ts'
import {
  decodeAck, decodeAssignment, decodeAttestation, decodeDisputeRecord, decodeHeartbeat, decodeJobResult, decodeRosterNotice,
  encodeAck, encodeAssignment, encodeAttestation, encodeDisputeRecord, encodeHeartbeat, encodeJobResult, encodeRosterNotice, PAYLOAD_TYPES
} from '../protocol/index.ts'
import { checkDisputeEvidence } from '../verification/dispute.ts'
import { nodeIdOf, type GossipProblem, type GossipRules } from './gossip.ts'

const SHA256_BYTES = 32
const ATTESTATION_VERDICTS: ReadonlySet<string> = new Set(['agree', 'disagree', 'unverifiable'])
const ATTESTATION_METHODS: ReadonlySet<string> = new Set(['signature', 'reexecution'])

const invalid = (reason: string): GossipProblem => ({ code: 'INVALID_CONTENT', reason })

/**
 * One rule per topic. The mapped type makes the table complete: a topic added to TOPICS without a
 * rule here, or a rule whose codec is for another payload, does not compile.
 */
export const GOSSIP_RULES: GossipRules = {
  heartbeats: {
    encode: encodeHeartbeat,
    decode: decodeHeartbeat,
    author: (m) => m.nodeId,
    at: (m) => m.atMs,
    // Paths through the mesh reorder messages, so an older heartbeat arriving after a newer one is
    // honest traffic; it only must not roll the peer table back.
    check: (m, _signer, ctx) => {
      const last = ctx.lastHeartbeatAt(m.nodeId)
      return last !== undefined && m.atMs <= last
        ? { code: 'DUPLICATE', reason: `heartbeat stamped ${m.atMs}, not newer than the last accepted (${last})` }
        : undefined
    }
  },
  assignments: {
    encode: encodeAssignment,
    decode: decodeAssignment,
    author: (m) => m.schedulerId,
    at: (m) => m.issuedAtMs,
    check: (m) => {
      if (m.jobId === '') return invalid('assignment without a job id')
      if (m.containers.length === 0) return invalid('assignment without containers')
      return undefined
    }
  },
  acks: {
    encode: encodeAck,
    decode: decodeAck,
    author: (m) => m.workerId,
    at: (m) => m.atMs
  },
  receipts: {
    encode: encodeJobResult,
    decode: decodeJobResult,
    // The notice and the receipt inside it must both come from the worker.
    author: (m) => m.receipt === null ? '' : nodeIdOf(m.receipt.publicKey),
    at: (m) => m.atMs,
    check: (m, signer) => {
      if (m.receipt === null) return invalid('job result without a receipt')
      // The output is sealed to the scheduler: only it can check the output hash (and does).
      const verdict = verifyReceipt(m.receipt)
      if (!verdict.valid) return invalid(`receipt invalid: ${verdict.reason}`)
      if (verdict.receipt.workerId !== signer) return invalid('receipt signed by another node than the notice')
      return undefined
    }
  },
  attestations: {
    encode: encodeAttestation,
    decode: decodeAttestation,
    author: (m) => m.validatorId,
    at: (m) => m.atMs,
    check: (m) => {
      if (m.receiptHash.byteLength !== SHA256_BYTES) return invalid(`receipt_hash of ${m.receiptHash.byteLength} bytes, not ${SHA256_BYTES}`)
      if (!ATTESTATION_VERDICTS.has(m.verdict)) return invalid(`unknown verdict ${JSON.stringify(m.verdict.slice(0, 32))}`)
      if (!ATTESTATION_METHODS.has(m.method)) return invalid(`unknown method ${JSON.stringify(m.method.slice(0, 32))}`)
      if (m.outputHash.byteLength !== 0 && m.outputHash.byteLength !== SHA256_BYTES) {
        return invalid(`output_hash of ${m.outputHash.byteLength} bytes, neither empty nor ${SHA256_BYTES}`)
      }
      return undefined
    }
  },
  roster: {
    encode: encodeRosterNotice,
    decode: decodeRosterNotice,
    author: (m) => m.nodeId,
    at: (m) => m.atMs,
    // Whether the operator signed it, and whether it is newer, is the roster's to judge when applied.
    check: (m) => m.roster === null || m.roster.payloadType !== PAYLOAD_TYPES.roster
      ? invalid(`roster notice without a ${PAYLOAD_TYPES.roster} envelope`)
      : undefined
  },
  disputes: {
    encode: encodeDisputeRecord,
    decode: decodeDisputeRecord,
    author: (m) => m.schedulerId,
    at: (m) => m.atMs,
    // The evidence must hold by itself: the worker's signed receipt and validators' signed
    // disagreements with it. Whether those validators are in the roster is the receiver's to judge.
    check: (m) => {
      const problem = checkDisputeEvidence(m)
      return problem === undefined ? undefined : invalid(problem)
    }
  }
}
