/**
 * Dispute records: a scheduler's signed account of validators disagreeing with a worker, carrying
 * the worker's receipt and the validators' attestations as their authors signed them, so another
 * scheduler can check the evidence instead of taking the reporter's word.
 */
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { signEnvelope } from '../envelope/index.ts'
import { encodeDisputeRecord, PAYLOAD_TYPES, type DisputeRecord } from '../protocol/index.ts'
import { receiptHash, verifyReceipt } from '../receipt/index.ts'
import { checkAttestation, sameBytes } from './attestation.ts'
import { ATTESTATION_METHOD } from './policy.ts'

export const DISPUTE_RESOLUTIONS = ['rerun', 'validators_output'] as const

export function signDispute (identity: Identity, record: DisputeRecord): SignedEnvelope {
  if (record.schedulerId !== identity.nodeId) throw new Error(`dispute scheduler_id must be the signing node's id ${identity.nodeId}`)
  return signEnvelope(identity, PAYLOAD_TYPES.dispute, encodeDisputeRecord(record))
}

/**
 * What the record proves on its own: the receipt verifies and was assigned by the record's scheduler,
 * and enough distinct validators (at least v - q + 1 of the policy, so q could never agree) signed an
 * attestation by the policy's method that disagrees with it. Returns why not, or undefined. The validators' roles are for
 * the receiver to check against its roster (disagreeingValidators lists them).
 */
export function checkDisputeEvidence (m: DisputeRecord): string | undefined {
  if (!(DISPUTE_RESOLUTIONS as readonly string[]).includes(m.resolution)) return `unknown resolution ${JSON.stringify(m.resolution.slice(0, 32))}`
  if (m.receipt === null) return 'dispute without the disputed receipt'
  const r = verifyReceipt(m.receipt)
  if (!r.valid) return `the disputed receipt does not verify: ${r.reason}`
  if (r.receipt.jobId !== m.jobId) return 'the receipt is for another job'
  if (r.receipt.schedulerId !== m.schedulerId) return 'the receipt was assigned by another scheduler'
  const policy = m.policy
  if (policy === null || policy.quorum < 1 || policy.quorum > policy.validators) return 'dispute without a valid policy'
  const needed = Math.max(1, policy.validators - policy.quorum + 1)
  const found = disagreeingValidators(m)
  if (found.length < needed) return `${found.length} valid disagreeing attestation(s); a dispute under ${policy.quorum} of ${policy.validators} needs ${needed}`
  return undefined
}

/**
 * Distinct validators whose valid attestation of the receipt, by the policy's method, disagrees with
 * it: for re-execution, with another output hash than the receipt's.
 */
export function disagreeingValidators (m: DisputeRecord): string[] {
  if (m.receipt === null || m.policy === null) return []
  if (m.policy.method !== 'signature' && m.policy.method !== 'reexecute') return []
  const method = ATTESTATION_METHOD[m.policy.method]
  const r = verifyReceipt(m.receipt)
  if (!r.valid) return []
  const hash = receiptHash(m.receipt)
  const out = new Set<string>()
  for (const env of m.attestations) {
    const c = checkAttestation(env, { receiptHash: hash, jobId: r.receipt.jobId, workerId: r.receipt.workerId })
    if (!c.ok) continue
    const a = c.attestation
    if (a.verdict !== 'disagree' || a.method !== method) continue
    if (method === 'signature' || !sameBytes(a.outputHash, r.receipt.outputHash)) out.add(a.validatorId)
  }
  return [...out]
}
