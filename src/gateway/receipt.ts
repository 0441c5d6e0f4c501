import { computeJobHash, sha256 } from '../receipt/index.ts'
import { NO_EXIT_CODE } from '../executor/index.ts'
import type { Receipt, ReceiptStep } from '../receipt/types.ts'
import type { JobRecord } from '../store/types.ts'

const EMPTY = new Uint8Array(0)
const EMPTY_HASH = sha256(EMPTY)

/**
 * The receipt of a finished job. A failed job hashes empty output; a job that never ran reports
 * its acceptance time as startedAtMs so that latencyMs = finishedAtMs - startedAtMs holds for every receipt.
 * steps[] names every container of the chain in order: those that ran with their image and output
 * hash, those that never ran (the chain stopped earlier) with an empty digest and exit code -1.
 */
export function receiptFor (job: JobRecord, workerId: string): Receipt {
  const inputHash = sha256(job.input)
  const outputHash = job.state === 'success' ? sha256(job.output ?? EMPTY) : EMPTY_HASH
  const exitCode = job.exitCode ?? NO_EXIT_CODE
  const startedAtMs = job.startedAtMs ?? job.createdAtMs
  const finishedAtMs = job.finishedAtMs ?? startedAtMs
  const steps: ReceiptStep[] = job.containers.map((containerId, i) => {
    const step = job.steps[i]
    if (step === undefined) return { containerId, imageDigest: '', outputHash: EMPTY_HASH, exitCode: NO_EXIT_CODE }
    return { containerId: step.containerId, imageDigest: step.imageDigest, outputHash: step.outputHash, exitCode: step.exitCode }
  })
  return {
    jobId: job.id,
    jobHash: computeJobHash(job.id, job.containers, inputHash),
    inputHash,
    outputHash,
    steps,
    status: job.state === 'success' ? 'success' : 'failed',
    exitCode,
    latencyMs: job.latencyMs ?? finishedAtMs - startedAtMs,
    startedAtMs,
    finishedAtMs,
    workerId,
    schedulerId: job.schedulerId,
    error: job.error ?? ''
  }
}
