/**
 * Certificates: the scheduler's signed bundle of a worker's receipt and q agreeing attestations from
 * distinct chosen validators. verifyCertificate checks one fully offline (docs/ARCHITECTURE.md,
 * "Verified results", lists every rule in this order).
 */
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { signEnvelope, verifyEnvelope } from '../envelope/index.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import { decodeCertificate, encodeCertificate, PAYLOAD_TYPES, type Attestation, type Certificate } from '../protocol/index.ts'
import { receiptHash, sha256, verifyReceipt, type Receipt } from '../receipt/index.ts'
import { checkAttestation, clip, sameBytes } from './attestation.ts'
import { ATTESTATION_METHOD } from './policy.ts'
import { inRankOrder } from './rank.ts'

/** The most validators a certificate may name (chosen, replacements included). */
export const MAX_CHOSEN = 64

export function signCertificate (identity: Identity, certificate: Certificate): SignedEnvelope {
  if (certificate.schedulerId !== identity.nodeId) throw new Error(`certificate scheduler_id must be the signing node's id ${identity.nodeId}`)
  return signEnvelope(identity, PAYLOAD_TYPES.certificate, encodeCertificate(certificate))
}

export type CertificateInvalidCode =
  | 'MALFORMED_CERTIFICATE' | 'INVALID_SIGNATURE' | 'SCHEDULER_MISMATCH' | 'BAD_POLICY' | 'RECEIPT_INVALID'
  | 'RECEIPT_NOT_SUCCESS' | 'JOB_MISMATCH' | 'BAD_CHOSEN' | 'ATTESTATION_INVALID' | 'NOT_AGREE'
  | 'METHOD_MISMATCH' | 'VALIDATOR_OUTPUT_MISMATCH' | 'DUPLICATE_VALIDATOR' | 'QUORUM_NOT_MET' | 'OUTPUT_MISMATCH'
  | 'BAD_RESOLUTION'

/** "" = the worker's output is certified; "validators_output" = q validators' own agreed output replaced a disputed one. */
export const RESOLUTIONS = ['', 'validators_output'] as const

export type CertificateVerification =
  | { valid: true, certificate: Certificate, receipt: Receipt, attestations: Attestation[] }
  | { valid: false, code: CertificateInvalidCode, reason: string }

/** Checks every signature, signer, hash, distinctness and the quorum; `output` (if given) against the certified output hash. Never throws. */
export function verifyCertificate (env: SignedEnvelope, opts: { output?: Uint8Array } = {}): CertificateVerification {
  const fail = (code: CertificateInvalidCode, reason: string): CertificateVerification => ({ valid: false, code, reason })
  let cert: Certificate
  let signer: string
  try {
    verifyEnvelope(env, { payloadType: PAYLOAD_TYPES.certificate })
  } catch (err) {
    return fail((err as { code?: string }).code === 'INVALID_SIGNATURE' ? 'INVALID_SIGNATURE' : 'MALFORMED_CERTIFICATE', `certificate envelope: ${(err as Error).message}`)
  }
  try {
    cert = decodeCertificate(env.payload)
    signer = nodeIdFromPublicKey(env.publicKey)
  } catch (err) {
    return fail('MALFORMED_CERTIFICATE', (err as Error).message)
  }
  if (cert.schedulerId !== signer) return fail('SCHEDULER_MISMATCH', `certificate names scheduler ${clip(cert.schedulerId)} but was signed by ${signer}`)

  const policy = cert.policy
  if (policy === null || (policy.method !== 'signature' && policy.method !== 'reexecute')) {
    return fail('BAD_POLICY', `certificate policy method must be "signature" or "reexecute", got ${JSON.stringify(policy?.method.slice(0, 32) ?? null)}`)
  }
  if (policy.quorum < 1 || policy.quorum > policy.validators) return fail('BAD_POLICY', `certificate policy needs 1 <= quorum <= validators, got quorum ${policy.quorum} of ${policy.validators}`)
  if (!(RESOLUTIONS as readonly string[]).includes(cert.resolution)) return fail('BAD_RESOLUTION', `certificate resolution must be "" or "validators_output", got ${JSON.stringify(cert.resolution.slice(0, 32))}`)
  const byValidators = cert.resolution === 'validators_output'
  if (byValidators && policy.method !== 'reexecute') return fail('BAD_RESOLUTION', 'only re-executing validators can certify an output of their own (resolution "validators_output" needs method "reexecute")')

  if (cert.receipt === null) return fail('RECEIPT_INVALID', 'certificate has no receipt')
  const checked = verifyReceipt(cert.receipt)
  if (!checked.valid) return fail('RECEIPT_INVALID', `receipt: ${checked.reason}`)
  const receipt = checked.receipt
  if (!byValidators && receipt.status !== 'success') return fail('RECEIPT_NOT_SUCCESS', `the receipt is for a failed job (${clip(receipt.error)}): only a successful result is certified`)
  if (receipt.jobId !== cert.jobId) return fail('JOB_MISMATCH', `certificate is for job ${clip(cert.jobId)} but its receipt is for ${clip(receipt.jobId)}`)
  if (receipt.schedulerId !== signer) return fail('SCHEDULER_MISMATCH', `receipt was assigned by ${clip(receipt.schedulerId) || 'no scheduler'}, certificate signed by ${signer}`)
  // The certified output: the worker's, or (resolved by validators) another one the worker did not sign.
  if (cert.outputHash.length !== 32) return fail('BAD_RESOLUTION', `certificate output_hash must be 32 bytes, got ${cert.outputHash.length}`)
  if (!byValidators && !sameBytes(cert.outputHash, receipt.outputHash)) return fail('BAD_RESOLUTION', 'certificate output_hash differs from the receipt\'s, but the resolution says the worker\'s output is certified')
  if (byValidators && receipt.status === 'success' && sameBytes(cert.outputHash, receipt.outputHash)) return fail('BAD_RESOLUTION', 'resolution "validators_output" certifies the worker\'s own output hash: nothing was disputed')

  if (cert.chosen.length < policy.quorum || cert.chosen.length > MAX_CHOSEN) return fail('BAD_CHOSEN', `certificate names ${cert.chosen.length} chosen validators; needs ${policy.quorum} to ${MAX_CHOSEN}`)
  const chosen = new Set(cert.chosen)
  if (chosen.size !== cert.chosen.length) return fail('BAD_CHOSEN', 'a validator is listed twice in chosen')
  if (chosen.has(receipt.workerId)) return fail('BAD_CHOSEN', `the worker ${receipt.workerId} is among the chosen validators`)
  if (!inRankOrder(receipt.jobHash, cert.chosen)) return fail('BAD_CHOSEN', 'chosen validators are not in rank order (sha256(job_hash ‖ validator_id) ascending)')

  const hash = receiptHash(cert.receipt)
  const method = ATTESTATION_METHOD[policy.method]
  // Agreeing with the worker, or (resolved by validators) disagreeing with it on the same other output.
  const verdict = byValidators ? 'disagree' : 'agree'
  const seen = new Set<string>()
  const attestations: Attestation[] = []
  for (const [i, a] of cert.attestations.entries()) {
    const c = checkAttestation(a, { receiptHash: hash, jobId: receipt.jobId, workerId: receipt.workerId, chosen })
    if (!c.ok) return fail('ATTESTATION_INVALID', `attestation ${i + 1}: ${c.code}: ${c.reason}`)
    const at = c.attestation
    if (seen.has(at.validatorId)) return fail('DUPLICATE_VALIDATOR', `validator ${at.validatorId} attests twice`)
    seen.add(at.validatorId)
    if (at.verdict !== verdict) return fail('NOT_AGREE', `attestation ${i + 1} by ${at.validatorId} says ${at.verdict}${at.reason !== '' ? ` (${clip(at.reason)})` : ''}; the certificate needs ${verdict}`)
    if (at.method !== method) return fail('METHOD_MISMATCH', `attestation ${i + 1} by ${at.validatorId} used ${at.method}; the policy asks for ${method}`)
    if (method === 'reexecution' && !sameBytes(at.outputHash, cert.outputHash)) {
      return fail('VALIDATOR_OUTPUT_MISMATCH', `attestation ${i + 1} by ${at.validatorId} re-executed to another output hash than the certified one`)
    }
    attestations.push(at)
  }
  if (attestations.length < policy.quorum) return fail('QUORUM_NOT_MET', `${attestations.length} ${verdict === 'agree' ? 'agreeing' : 'concurring'} attestation(s), the policy needs ${policy.quorum}`)
  if (opts.output !== undefined && !sameBytes(sha256(opts.output), cert.outputHash)) {
    return fail('OUTPUT_MISMATCH', `the output's sha256 ${Buffer.from(sha256(opts.output)).toString('hex')} is not the certified ${Buffer.from(cert.outputHash).toString('hex')}`)
  }
  return { valid: true, certificate: cert, receipt, attestations }
}

/** sha256 of a certificate envelope's payload: how archives and logs name one certificate. */
export function certificateHash (env: SignedEnvelope): Uint8Array {
  return sha256(env.payload)
}
