import { encodeEnvelope } from '../../src/envelope/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { computeJobHash, sha256, signReceipt, type Receipt } from '../../src/receipt/index.ts'

/**
 * A successful one-step receipt for `jobId` as `worker` signs it for `scheduler` (input and output
 * derived from the job id), encoded as an archive stores it: real ed25519 envelopes for archive
 * tests and the archive bench.
 */
export function signedReceipt (worker: Identity, scheduler: Identity, jobId: string, opts: { container?: string, startedAtMs?: number } = {}): Uint8Array {
  const inputHash = sha256(Buffer.from(jobId))
  const startedAtMs = opts.startedAtMs ?? 1_763_000_000_000
  const r: Receipt = {
    jobId,
    jobHash: computeJobHash(jobId, [opts.container ?? 'echo'], inputHash),
    inputHash,
    outputHash: sha256(Buffer.from(`out ${jobId}`)),
    steps: [],
    status: 'success',
    exitCode: 0,
    latencyMs: 1,
    startedAtMs,
    finishedAtMs: startedAtMs + 1,
    workerId: worker.nodeId,
    schedulerId: scheduler.nodeId,
    error: ''
  }
  return encodeEnvelope(signReceipt(worker, r))
}
