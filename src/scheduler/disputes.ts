/**
 * Disputes at a scheduler: its own (the worker loses reputation, and a signed dispute record with
 * the evidence goes to every scheduler and is stored) and other schedulers' (counted against the
 * worker only when the evidence holds and its validators are validators in this node's roster).
 */
import { createHash } from 'node:crypto'
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { envelopeToJson } from '../envelope/index.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Admission } from '../admission/index.ts'
import type { Mesh, MeshMessage } from '../mesh/index.ts'
import type { DisputeRecord, VerificationPolicy } from '../protocol/index.ts'
import { disagreeingValidators, signDispute } from '../verification/index.ts'
import type { DisputeEvidence } from '../gateway/types.ts'
import type { Reputation } from './reputation.ts'

/** Dispute records remembered as counted (the oldest forgotten first; forgetting one only risks counting a replay of it again). */
const MAX_DISPUTES_SEEN = 10_000

export interface DisputeStore { saveDispute(key: string, record: string): Promise<void> }

export interface DisputeDeps {
  identity: Identity
  admission: Admission
  mesh: Mesh
  logger: Logger
  reputation: Reputation
  store?: DisputeStore
  metrics?: Metrics
}

export function disputeBook (d: DisputeDeps) {
  const lostTotal = d.metrics?.counter({ name: 'inframind_disputes_total', help: 'Results this scheduler\'s validators disputed, by resolution: validators_output (q validators agreed on another output, certified instead) or rerun (the job ran again elsewhere)', labelNames: ['resolution'] })
  const heardTotal = d.metrics?.counter({ name: 'inframind_disputes_heard_total', help: 'Dispute records from other schedulers, by what was done: counted (the evidence held and its validators are in our roster) or ignored', labelNames: ['outcome'] })
  /** Dispute records already counted (by sha256 of the record), so one seen twice counts once. */
  const seen = new Set<string>()

  const keep = (env: SignedEnvelope): void => {
    const hash = createHash('sha256').update(env.payload).digest('hex')
    if (seen.size >= MAX_DISPUTES_SEEN) seen.delete(seen.values().next().value as string)
    seen.add(hash)
    d.store?.saveDispute(`${String(Date.now()).padStart(16, '0')}!${hash}`, JSON.stringify(envelopeToJson(env)))
      .catch((err: unknown) => d.logger.warn({ err }, 'could not store a dispute record'))
  }

  return {
    /**
     * A worker lost a dispute here: excluded (reputation), and the evidence (the receipt and the
     * attestations as signed) goes to every scheduler and archive. `resolvedOutputHash`: the output
     * q validators agreed on instead (resolution "validators_output"), or empty (the job runs again).
     */
    lost (jobId: string, workerReceipt: SignedEnvelope, workerId: string, policy: VerificationPolicy, evidence: DisputeEvidence, resolvedOutputHash: Uint8Array): void {
      // Its result was counted a success when it arrived, before the validators judged it.
      const rec = d.reputation.record(workerId, 'dispute', { retractSuccess: true })
      d.logger.warn({ job: jobId, worker: workerId, disputesLost: rec.disputesLost, excludedUntil: new Date(rec.excludedUntilMs).toISOString() }, 'worker lost a dispute: excluded from assignments')
      const record: DisputeRecord = {
        jobId,
        policy,
        receipt: workerReceipt,
        attestations: evidence.attestations,
        resolution: resolvedOutputHash.length > 0 ? 'validators_output' : 'rerun',
        resolvedOutputHash,
        schedulerId: d.identity.nodeId,
        atMs: Date.now()
      }
      lostTotal?.inc({ resolution: record.resolution })
      keep(signDispute(d.identity, record))
      d.mesh.publish('disputes', record).catch((err: unknown) => d.logger.warn({ err, job: jobId }, 'could not publish the dispute record'))
    },

    /**
     * Another scheduler's dispute record: its evidence was checked on arrival (the gossip rule); here
     * the disagreeing validators must be validators in our roster too, and then it counts against the
     * worker as our own would.
     */
    heard (msg: MeshMessage<DisputeRecord>): void {
      const m = msg.value
      if (msg.from === d.identity.nodeId || m.receipt === null || m.policy === null) return
      const hash = createHash('sha256').update(msg.envelope.payload).digest('hex')
      if (seen.has(hash)) return
      const validators = disagreeingValidators(m).filter((v) => d.admission.rolesOf(v).includes('validator'))
      const needed = Math.max(1, m.policy.validators - m.policy.quorum + 1)
      if (validators.length < needed) {
        d.logger.info({ job: m.jobId, from: msg.from, validators: validators.length, needed }, 'dispute record ignored: too few of its validators are in our roster')
        heardTotal?.inc({ outcome: 'ignored' })
        return
      }
      keep(msg.envelope)
      heardTotal?.inc({ outcome: 'counted' })
      const workerId = nodeIdFromPublicKey(m.receipt.publicKey)
      const rec = d.reputation.record(workerId, 'dispute')
      d.logger.warn({ job: m.jobId, worker: workerId, from: msg.from, disputesLost: rec.disputesLost }, 'worker lost a dispute at another scheduler (verified evidence)')
    }
  }
}
