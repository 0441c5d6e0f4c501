import { sha256 } from '../receipt/index.ts'
import { schemaViolation } from '../runtime/schema.ts'
import { FAILURE_CODES, NO_EXIT_CODE } from './constants.ts'
import { DEADLINE_REASON, STOP_REASON, failureOf, settle, type Failure } from './outcome.ts'
import { toRunning, withStep, type Ending } from './transitions.ts'
import type { ContainerConfig } from '../config/types.ts'
import type { Runtime } from '../runtime/types.ts'
import type { JobRecord, StepRecord } from '../store/types.ts'

const EMPTY = new Uint8Array(0)

export interface ChainDeps {
  runtime: Runtime
  /** Aborted with DEADLINE_REASON (the job's deadline, covering every step) or STOP_REASON (node stopping). */
  signal: AbortSignal
  abortGraceMs: number
  /** Persists and announces the record as each step begins; resolves once it is stored. */
  update: (job: JobRecord) => Promise<void>
  /** The last step's output as it is produced (earlier steps' outputs are inputs, never shown). */
  onOutput?: (chunk: Uint8Array) => void
}

/** How a chain run ended: finished (success or a failure naming its step), interrupted by stop(), or expired unrun. */
export type ChainEnd =
  /** `internal` holds what the runtime threw when it carried no error code (worth a log line). */
  | { kind: 'finished', job: JobRecord, end: Ending, internal?: { error: unknown } }
  /** The node stopped it (before or during a step); it resumes after its last finished step. */
  | { kind: 'stopped', job: JobRecord }
  /** Its deadline passed while it waited for a slot: nothing ran. */
  | { kind: 'expired', job: JobRecord }

/**
 * Runs the job's containers in order from the first one without a stored successful step: the input
 * goes to containers[0], each output is the next step's input (checked against that container's input
 * schema), the last output is the result. Each finished step is kept on the record (its output while a
 * later step needs it), so a job stopped mid-chain resumes after its last finished step.
 */
export async function runChain (queued: JobRecord, containers: ContainerConfig[], deps: ChainDeps): Promise<ChainEnd> {
  const n = containers.length
  const first = resumeIndex(queued, n)
  let job: JobRecord = { ...queued, steps: queued.steps.slice(0, first) }
  const budgetMs = job.deadlineAtMs - job.createdAtMs
  for (let i = first; i < n; i++) {
    const container = containers[i] as ContainerConfig
    job = toRunning(job, Date.now(), `step ${i + 1}/${n}: ${container.id}`)
    // The `running` write goes out while the step runs (store writes are serialised, so it lands
    // before anything written after it); a warm container's job should not wait for the disk first.
    const recorded = deps.update(job)
    // stop() came before this step started: it has not run, so park the job.
    if (deps.signal.reason === STOP_REASON) {
      await recorded
      return { kind: 'stopped', job }
    }
    const input = i === 0 ? job.input : job.steps[i - 1]?.output ?? EMPTY
    const stepStart = Date.now()
    let failure: Failure | undefined
    let internal: { error: unknown } | undefined
    const mismatch = i === 0 ? undefined : schemaViolation(container.inputSchema, input)
    if (mismatch !== undefined) {
      failure = {
        error: `the output of "${containers[i - 1]?.id ?? ''}" does not fit the input schema of "${container.id}": ${mismatch}`,
        errorCode: FAILURE_CODES.stepInputInvalid
      }
    } else if (deps.signal.reason === DEADLINE_REASON) {
      // The deadline passed between steps: starting another container could only be killed again.
      failure = { error: `deadline of ${budgetMs} ms exceeded before this step could start`, errorCode: FAILURE_CODES.deadlineExceeded }
    } else {
      const outcome = await settle(
        () => deps.runtime.run({ jobId: job.id, container, input, origin: job.origin, requiresProof: job.requiresProof, signal: deps.signal, ...(i === n - 1 && deps.onOutput !== undefined ? { onOutput: deps.onOutput } : {}) }),
        deps.signal,
        deps.abortGraceMs
      )
      const finishedAtMs = Date.now()
      await recorded
      if (outcome.ok) {
        const r = outcome.result
        const step: StepRecord = {
          containerId: container.id,
          imageDigest: r.imageDigest,
          outputHash: sha256(r.output),
          outputBytes: r.output.byteLength,
          exitCode: r.exitCode,
          latencyMs: finishedAtMs - stepStart,
          startedAtMs: stepStart,
          finishedAtMs,
          status: 'success',
          error: '',
          errorCode: ''
        }
        const last = i === n - 1
        // The last output is the job's output; storing it on the step too would double the record.
        if (!last) step.output = r.output
        job = withStep(job, step)
        if (last) {
          return { kind: 'finished', job, end: { state: 'success', detail: 'succeeded', output: r.output, exitCode: r.exitCode, imageDigest: r.imageDigest } }
        }
        continue
      }
      if (deps.signal.reason === STOP_REASON) return { kind: 'stopped', job }
      failure = failureOf(outcome.error, deps.signal.reason === DEADLINE_REASON, outcome.hung, budgetMs)
      if (failure.errorCode === FAILURE_CODES.internal) internal = { error: outcome.error }
    }
    await recorded
    const error = n > 1 ? `step ${i + 1}/${n} (container "${container.id}"): ${failure.error}` : failure.error
    const finishedAtMs = Date.now()
    job = withStep(job, {
      containerId: container.id,
      imageDigest: failure.imageDigest ?? '',
      outputHash: sha256(EMPTY),
      outputBytes: 0,
      exitCode: failure.exitCode ?? NO_EXIT_CODE,
      latencyMs: finishedAtMs - stepStart,
      startedAtMs: stepStart,
      finishedAtMs,
      status: 'failed',
      error,
      errorCode: failure.errorCode
    })
    return { kind: 'finished', job, internal, end: { ...failure, error, state: 'failed', detail: n > 1 ? `failed at step ${i + 1}/${n}: ${failure.errorCode}` : `failed: ${failure.errorCode}` } }
  }
  // Unreachable: resumeIndex is always below n, so the loop returns.
  throw new Error('chain ran no step')
}

/**
 * The configs of a job's chain, or the ending of a job accepted under an older config (resumed after a
 * restart) that names a container no longer configured.
 */
export function chainConfigs (job: JobRecord, configs: ReadonlyMap<string, ContainerConfig>): ContainerConfig[] | Ending {
  const out: ContainerConfig[] = []
  for (const [i, id] of job.containers.entries()) {
    const container = configs.get(id)
    if (container === undefined) {
      const at = job.containers.length > 1 ? `step ${i + 1}/${job.containers.length}: ` : ''
      return {
        state: 'failed',
        detail: 'failed: container no longer configured',
        error: `${at}container "${id}" is no longer configured on this node`,
        errorCode: FAILURE_CODES.unknownContainer
      }
    }
    out.push(container)
  }
  return out
}

/** The first step to run: after the longest prefix of stored successful steps that still has the output the next step needs. */
function resumeIndex (job: JobRecord, n: number): number {
  let k = 0
  while (k < n - 1) {
    const step = job.steps[k]
    if (step === undefined || step.status !== 'success' || step.output === undefined || step.containerId !== job.containers[k]) break
    k += 1
  }
  return k
}
