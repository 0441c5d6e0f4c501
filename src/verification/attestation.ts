/** Attestations: a validator's signed verdict on one receipt, and the checks every consumer applies. */
import { clip } from '../envelope/errors.ts'
import { sameBytes } from '../receipt/index.ts'
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { signEnvelope, verifyEnvelope } from '../envelope/index.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import { decodeAttestation, encodeAttestation, PAYLOAD_TYPES, type Attestation } from '../protocol/index.ts'

export const VERDICTS = ['agree', 'disagree', 'unverifiable'] as const
export type Verdict = typeof VERDICTS[number]

export function signAttestation (identity: Identity, attestation: Attestation): SignedEnvelope {
  if (attestation.validatorId !== identity.nodeId) throw new Error(`attestation validator_id must be the signing node's id ${identity.nodeId}`)
  return signEnvelope(identity, PAYLOAD_TYPES.attestation, encodeAttestation(attestation))
}

/** Why an attestation does not count for a receipt. */
export type AttestationInvalidCode =
  | 'MALFORMED_ATTESTATION' | 'INVALID_SIGNATURE' | 'SIGNER_MISMATCH' | 'WRONG_RECEIPT' | 'WRONG_JOB'
  | 'WRONG_WORKER' | 'VALIDATOR_IS_WORKER' | 'NOT_CHOSEN'

export type AttestationCheck =
  | { ok: true, attestation: Attestation }
  | { ok: false, code: AttestationInvalidCode, reason: string }

/** What an attestation must be about to count. */
export interface AttestationExpectation {
  /** sha256 of the receipt envelope's payload. */
  receiptHash: Uint8Array
  jobId: string
  workerId: string
  /** The validators asked for this job; an attestation from anyone else does not count. */
  chosen?: ReadonlySet<string>
}

/**
 * Signature, signer = validator_id, and that it names this receipt, job and worker: a valid attestation
 * of another receipt (a replay) is refused as WRONG_RECEIPT. Never throws.
 */
export function checkAttestation (env: SignedEnvelope, expect: AttestationExpectation): AttestationCheck {
  let a: Attestation
  let signer: string
  try {
    verifyEnvelope(env, { payloadType: PAYLOAD_TYPES.attestation })
  } catch (err) {
    const code = (err as { code?: string }).code === 'INVALID_SIGNATURE' ? 'INVALID_SIGNATURE' : 'MALFORMED_ATTESTATION'
    return { ok: false, code, reason: (err as Error).message }
  }
  try {
    a = decodeAttestation(env.payload)
    signer = nodeIdFromPublicKey(env.publicKey)
  } catch (err) {
    return { ok: false, code: 'MALFORMED_ATTESTATION', reason: (err as Error).message }
  }
  if (!(VERDICTS as readonly string[]).includes(a.verdict)) return { ok: false, code: 'MALFORMED_ATTESTATION', reason: `unknown verdict ${JSON.stringify(a.verdict.slice(0, 32))}` }
  if (a.method !== 'signature' && a.method !== 'reexecution') return { ok: false, code: 'MALFORMED_ATTESTATION', reason: `unknown method ${JSON.stringify(a.method.slice(0, 32))}` }
  if (a.validatorId !== signer) return { ok: false, code: 'SIGNER_MISMATCH', reason: `attestation names validator ${clip(a.validatorId)} but was signed by ${signer}` }
  if (!sameBytes(a.receiptHash, expect.receiptHash)) return { ok: false, code: 'WRONG_RECEIPT', reason: `attestation by ${signer} is about another receipt (receipt_hash differs)` }
  if (a.jobId !== expect.jobId) return { ok: false, code: 'WRONG_JOB', reason: `attestation by ${signer} names job ${clip(a.jobId)}, not ${clip(expect.jobId)}` }
  if (a.workerId !== expect.workerId) return { ok: false, code: 'WRONG_WORKER', reason: `attestation by ${signer} names worker ${clip(a.workerId)}, not ${expect.workerId}` }
  if (signer === expect.workerId) return { ok: false, code: 'VALIDATOR_IS_WORKER', reason: `attestation is by the worker itself (${signer})` }
  if (expect.chosen !== undefined && !expect.chosen.has(signer)) return { ok: false, code: 'NOT_CHOSEN', reason: `attestation is by ${signer}, which was not chosen to validate this job` }
  return { ok: true, attestation: a }
}

export { sameBytes } from '../receipt/index.ts'
export { clip } from '../envelope/errors.ts'
