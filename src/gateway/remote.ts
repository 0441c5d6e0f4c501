import { computeJobHash, decodeReceipt, sha256 } from '../receipt/index.ts'
import { DEADLINE_REASON, FAILURE_CODES, STOP_REASON, toRunning, type Ending } from '../executor/index.ts'
import type { ContainerConfig } from '../config/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Receipt } from '../receipt/types.ts'
import type { JobRecord, StepRecord } from '../store/types.ts'
import { RemoteResultMismatchError } from './errors.ts'
import type { RemoteExecutor, RemoteJob, RemoteOutput, RemoteProgress, RemoteResult } from './types.ts'

/** The job's steps as the worker's receipt reports them (outputs of intermediate steps stay on the worker). */
export function stepsFromReceipt (r: Receipt): StepRecord[] {
  return r.steps.map((s) => ({
    containerId: s.containerId,
    imageDigest: s.imageDigest,
    outputHash: s.outputHash,
    outputBytes: 0,
    exitCode: s.exitCode,
    latencyMs: 0,
    startedAtMs: r.startedAtMs,
    finishedAtMs: r.finishedAtMs,
    status: s.imageDigest === '' ? 'failed' : 'success',
    error: '',
    errorCode: ''
  }))
}

/** How a remote job ends, from the worker's verified receipt. */
export function endingFromReceipt (r: Receipt, output: Uint8Array, workerId: string): Ending {
  if (r.status === 'success') {
    return { state: 'success', detail: `succeeded on ${workerId}`, output, exitCode: r.exitCode }
  }
  return { state: 'failed', detail: `failed on ${workerId}`, exitCode: r.exitCode, error: r.error, errorCode: 'REMOTE_FAILED' }
}

/**
 * Checks a worker's answer against the job this gateway admitted: the receipt is for this job (same
 * id, containers and input, by job hash), the output is the one it signed, and every step that ran
 * used the image pinned in this gateway's config. Throws RemoteResultMismatchError.
 */
export function checkRemoteResult (job: JobRecord, r: RemoteResult, pins: ReadonlyMap<string, ContainerConfig>): void {
  const expected = computeJobHash(job.id, job.containers, sha256(job.input))
  if (!Buffer.from(expected).equals(Buffer.from(r.decoded.jobHash))) {
    throw new RemoteResultMismatchError('REMOTE_RECEIPT_MISMATCH', r.workerId, 'its receipt is for another job (job hash differs from this job\'s id, containers and input)')
  }
  if (!Buffer.from(sha256(r.output)).equals(Buffer.from(r.decoded.outputHash))) {
    throw new RemoteResultMismatchError('REMOTE_OUTPUT_MISMATCH', r.workerId, 'the output it sent does not match its receipt\'s output_hash')
  }
  for (const step of r.decoded.steps) {
    const pinned = pins.get(step.containerId)?.digest
    if (step.imageDigest !== '' && pinned !== undefined && step.imageDigest !== pinned) {
      throw new RemoteResultMismatchError('REMOTE_IMAGE_MISMATCH', r.workerId,
        `container "${step.containerId}" ran image ${step.imageDigest}, not the pinned ${pinned}`)
    }
  }
}

export interface RemoteRunHooks {
  /** Persists and announces a new state of the job. */
  update: (job: JobRecord) => Promise<void>
  /** Announces progress without a store write (it is in the final record; a restart fails the job anyway). */
  note: (job: JobRecord) => void
  finish: (job: JobRecord, end: Ending, workerReceipt?: SignedEnvelope) => Promise<void>
  requeue: (job: JobRecord) => Promise<void>
  /** The output as the worker streams it (live chunks for the job's readers). */
  output?: (chunk: RemoteOutput) => void
}

/** A disputed job runs this many times at most (the first run included) before it fails DISPUTED. */
const MAX_DISPUTE_RERUNS = 2
/** A job whose worker's receipt contradicts it (image, output or job hash) runs on this many workers at most. */
const MAX_MISMATCH_RUNS = 3

/** Hands a job to the mesh and finishes it with the worker's own signed receipt. */
export async function runRemoteJob (queued: JobRecord, signal: AbortSignal, remote: RemoteExecutor,
  pins: ReadonlyMap<string, ContainerConfig>, hooks: RemoteRunHooks): Promise<void> {
  let job = toRunning(queued, Date.now(), 'scheduling on the mesh')
  const update = async (next: JobRecord): Promise<void> => {
    job = next
    await hooks.update(job)
  }
  await update(job)
  try {
    const policy = job.verification
    const usedValidators = new Set<string>()
    const onProgress = (p: RemoteProgress): void => {
      job = toRunning(job, Date.now(), p.detail)
      // Validators start re-running it while the worker does.
      if (p.state === 'accepted' && p.workerId !== undefined && policy !== undefined) {
        remote.early?.(remoteJobOf(job), p.workerId, { method: policy.method, validators: policy.validators, quorum: policy.quorum }, usedValidators)
      }
      if (p.workerId !== undefined) {
        // Stored, so a restarted gateway knows whom to ask for this job's result.
        job = { ...job, workerId: p.workerId }
        hooks.update(job).catch(() => {})
      } else {
        hooks.note(job)
      }
    }
    /** Workers whose signed answer contradicted this job (wrong image, output or job): never asked again for it. */
    const mismatched: string[] = []
    // A worker's answer that its own receipt shows to be wrong counts against it, and the job runs elsewhere.
    const runChecked = async (exclude: readonly string[]): Promise<RemoteResult> => {
      for (;;) {
        const excluded = [...exclude, ...mismatched]
        const r = await remote.runRemote(excluded.length === 0 ? remoteJobOf(job) : { ...remoteJobOf(job), previousWorker: undefined, excludeWorkers: [...(job.excludeWorkers ?? []), ...excluded] },
          { signal, onProgress, ...(hooks.output !== undefined ? { onOutput: hooks.output } : {}) })
        try {
          checkRemoteResult(job, r, pins)
          return r
        } catch (err) {
          if (!(err instanceof RemoteResultMismatchError) || mismatched.length + 1 >= MAX_MISMATCH_RUNS) throw err
          mismatched.push(r.workerId)
          remote.misbehaved?.(r.workerId, `${err.code}: ${err.message}`)
          await update(toRunning(job, Date.now(), `${err.code}: ${err.message}; running it again on another worker`))
        }
      }
    }
    let r = await runChecked([])
    let ran: JobRecord = { ...job, steps: stepsFromReceipt(r.decoded), workerId: r.workerId, workerOnProbation: r.probation }
    const disputedWorkers: string[] = []
    // A disputed result is never the job's: it runs again on another worker, checked by fresh validators.
    for (let round = 0; policy !== undefined; round++) {
      if (r.decoded.status !== 'success') {
        ran = { ...ran, verification: { ...policy, state: 'incomplete', reason: 'the job failed on its worker: only a successful result is certified' } }
        break
      }
      // Announced, not stored: the worker the job is with is stored already, and a restarted gateway verifies again.
      job = toRunning(ran, Date.now(), `verifying: ${policy.method}, ${policy.quorum} of ${policy.validators} validators`)
      hooks.note(job)
      const outcome = await remote.verify(remoteJobOf(job), r, { method: policy.method, validators: policy.validators, quorum: policy.quorum }, {
        signal,
        excludeValidators: usedValidators,
        onProgress: (p) => { job = toRunning(job, Date.now(), p.detail); hooks.note(job) }
      })
      if (outcome.state === 'certified' && outcome.resolved !== undefined) {
        // q validators re-ran it to the same other output: theirs is the result, the worker's never is.
        const v = outcome.resolved
        disputedWorkers.push(r.workerId)
        const reason = `certified: the validators' output, after ${disputedWorkers.length} disputed result(s) from ${disputedWorkers.join(', ')} (${v.dispute.reason})`
        ran = { ...ran, workerId: v.validatorId, steps: stepsFromReceipt(decodeReceipt(v.receipt.payload)), verification: { ...policy, state: 'certified', reason, certificate: outcome.certificate } }
        const end: Ending = { state: 'success', detail: `succeeded: output of validator ${v.validatorId} (worker ${r.workerId} disputed)`, output: v.output, exitCode: 0 }
        return await hooks.finish({ ...ran, history: job.history }, end, v.receipt)
      }
      if (outcome.state !== 'disputed') {
        ran = {
          ...ran,
          verification: outcome.state === 'certified'
            ? { ...policy, state: 'certified', reason: disputedWorkers.length > 0 ? `certified after ${disputedWorkers.length} disputed result(s) from ${disputedWorkers.join(', ')}` : '', certificate: outcome.certificate }
            : { ...policy, state: 'incomplete', reason: outcome.reason }
        }
        break
      }
      disputedWorkers.push(r.workerId)
      for (const v of outcome.validators) usedValidators.add(v)
      if (round + 1 >= MAX_DISPUTE_RERUNS) {
        ran = { ...ran, verification: { ...policy, state: 'disputed', reason: outcome.reason } }
        return await hooks.finish({ ...ran, history: job.history }, { state: 'failed', detail: 'failed: DISPUTED', error: outcome.reason, errorCode: 'DISPUTED' }, r.receipt)
      }
      await update(toRunning(ran, Date.now(), `disputed: ${outcome.reason}; running it again on another worker`))
      try {
        r = await runChecked(disputedWorkers)
      } catch (err) {
        if (signal.aborted) throw err
        const reason = `${outcome.reason}; no other worker could run it again (${(err as Error).message})`
        ran = { ...ran, verification: { ...policy, state: 'disputed', reason } }
        return await hooks.finish({ ...ran, history: job.history }, { state: 'failed', detail: 'failed: DISPUTED', error: reason, errorCode: 'DISPUTED' }, r.receipt)
      }
      ran = { ...job, steps: stepsFromReceipt(r.decoded), workerId: r.workerId, workerOnProbation: r.probation }
    }
    // The job's history has every step (the verification's progress included); ran has the result.
    await hooks.finish({ ...ran, history: job.history.length >= ran.history.length ? job.history : ran.history }, endingFromReceipt(r.decoded, r.output, r.workerId), r.receipt)
  } catch (err) {
    if (signal.reason === STOP_REASON) return await hooks.requeue(job)
    const code = signal.reason === DEADLINE_REASON ? FAILURE_CODES.deadlineExceeded : errorCode(err)
    await hooks.finish(job, { state: 'failed', detail: `failed: ${code}`, error: (err as Error).message, errorCode: code })
  }
}

function remoteJobOf (job: JobRecord): RemoteJob {
  return {
    jobId: job.id, containers: job.containers, input: job.input, deadlineAtMs: job.deadlineAtMs, requiresProof: job.requiresProof,
    origin: job.origin, allowProbation: job.allowProbation, ...(job.workerId !== undefined ? { previousWorker: job.workerId } : {}),
    ...(job.placement !== undefined ? { placement: job.placement } : {}),
    ...(job.excludeWorkers !== undefined ? { excludeWorkers: job.excludeWorkers } : {})
  }
}

function errorCode (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code !== '' ? code : FAILURE_CODES.internal
}
