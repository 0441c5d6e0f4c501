import { computeJobHash, sha256 } from '../receipt/index.ts'
import { NO_EXIT_CODE } from './constants.ts'
import type { Receipt } from '../receipt/types.ts'
import type { JobRecord } from '../store/types.ts'

const EMPTY = new Uint8Array(0)

/**
 * The receipt of a finished job. A failed job hashes empty output; a job that never ran reports
 * its acceptance time as startedAtMs so that latencyMs = finishedAtMs - startedAtMs holds for every receipt.
 */
export function receiptFor (job: JobRecord, workerId: string): Receipt {
  const inputHash = sha256(job.input)
  const outputHash = sha256(job.state === 'success' ? job.output ?? EMPTY : EMPTY)
  const exitCode = job.exitCode ?? NO_EXIT_CODE
  const startedAtMs = job.startedAtMs ?? job.createdAtMs
  const finishedAtMs = job.finishedAtMs ?? startedAtMs
  return {
    jobId: job.id,
    jobHash: computeJobHash(job.id, [job.containerId], inputHash),
    inputHash,
    outputHash,
    steps: [{ containerId: job.containerId, imageDigest: job.imageDigest ?? '', outputHash, exitCode }],
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
