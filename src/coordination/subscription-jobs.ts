/**
 * How a scheduler runs one response of a subscription's interval: a mesh job through its own jobs
 * service, so it gets the same admission (Guardian with the owner as the proven delegate, limits,
 * the durable record), the same worker choice and failover, and the same verification as any job.
 */
import type { JobsService } from '../gateway/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { sha256 } from '../receipt/index.ts'
import type { VerificationPolicy } from '../protocol/index.ts'
import { SubscriptionJobFailedError } from './errors.ts'

export interface SubscriptionJob {
  /** Deterministic: the same (subscription, interval, index) is the same job on any scheduler. */
  jobId: string
  containers: string[]
  input: Uint8Array
  deadlineAtMs: number
  /** The owner's node id: the verified signer of the subscription, the job's delegate. */
  owner: string
  /** Placement key: one per (subscription, interval); `slot` = index - 1, so each index has its own first worker. */
  placementKey: string
  slot: number
  /** Nodes that answered this interval already. */
  excludeWorkers: string[]
  verification?: VerificationPolicy | null
}

export interface SubscriptionJobResult {
  workerId: string
  receipt: SignedEnvelope
  output: Uint8Array
  outputHash: Uint8Array
  certificate?: SignedEnvelope
}

export async function runSubscriptionJob (jobs: JobsService, selfId: string, job: SubscriptionJob, signal: AbortSignal): Promise<SubscriptionJobResult> {
  const { job: accepted } = await jobs.submit({
    jobId: job.jobId,
    containers: job.containers,
    input: job.input,
    deadlineMs: Math.max(1, job.deadlineAtMs - Date.now()),
    origin: { ip: '', peerId: '', delegate: job.owner },
    delegateVerified: true,
    placement: { key: job.placementKey, slot: job.slot },
    excludeWorkers: job.excludeWorkers,
    ...(job.verification !== undefined ? { verification: job.verification } : {})
  })
  const done = accepted.state === 'success' || accepted.state === 'failed' ? accepted : await jobs.wait(job.jobId, signal)
  if (done.state !== 'success' || done.receipt === undefined) {
    throw new SubscriptionJobFailedError(job.jobId, done.errorCode ?? 'FAILED', done.error ?? 'the job failed')
  }
  if (done.verification !== undefined && done.verification.state !== 'certified') {
    throw new SubscriptionJobFailedError(job.jobId, 'NOT_CERTIFIED', `verification ${done.verification.state}: ${done.verification.reason}`)
  }
  const output = done.output ?? new Uint8Array()
  return {
    workerId: done.workerId ?? selfId,
    receipt: done.receipt,
    output,
    outputHash: sha256(output),
    ...(done.verification?.certificate !== undefined ? { certificate: done.verification.certificate } : {})
  }
}
