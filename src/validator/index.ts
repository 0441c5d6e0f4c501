/**
 * The validator role: a chosen validator's answers to a scheduler about one worker's receipt. For
 * method "reexecute" the job runs again here (through the node's own jobs queue, under the
 * validation job id) and the attestation compares output hashes; for method "signature" the receipt
 * is checked without running anything (signature, the worker's roster role, the job description,
 * every step's image against this node's own pins) and the attestation rides in the signed ack.
 * Attestations carry hashes and ids only, and go out on inframind/attestations/1 as well.
 */
import { createHash } from 'node:crypto'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Identity } from '../identity/types.ts'
import type { Admission } from '../admission/index.ts'
import type { JobRecord } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { decodeAttestation, type Assignment, type Attestation } from '../protocol/index.ts'
import { computeJobHash, receiptHash, verifyReceipt, type Receipt } from '../receipt/index.ts'
import { sameBytes, signAttestation, VALIDATION_JOB_ID, validationJobId } from '../verification/index.ts'
import type { Mesh } from '../mesh/index.ts'

/** A receipt a scheduler asked this node to check, verified and ready to attest. */
export interface CheckedReceipt { checked: SignedEnvelope, receipt: Receipt }

type Verdict = Pick<Attestation, 'verdict' | 'reason'>

/** Re-executions remembered at most (early ones whose receipt never came are forgotten oldest first). */
const MAX_TRACKED = 10_000

/**
 * A re-execution ("reexecute") or receipt check ("attest") is taken only for a receipt that verifies,
 * that the same scheduler assigned, that another node signed, for the job the assignment describes,
 * under the job id derived from it. An early re-execution (purpose "reexecute" before the worker's
 * receipt exists) carries no receipt: it only needs a validation job id; its result waits for the
 * receipt. Returns why not, the receipt, or null for an early re-execution.
 */
export function checkValidationRequest (a: Assignment, self: string): string | CheckedReceipt | null {
  if (a.checkedReceipt === null) {
    if (a.purpose === 'reexecute' && VALIDATION_JOB_ID.test(a.jobId)) return null
    return a.purpose === 'reexecute'
      ? `an early re-execution (no receipt yet) runs under a validation job id "v:" + 32 hex digits, not ${JSON.stringify(a.jobId.slice(0, 64))}`
      : `a "${a.purpose}" assignment must carry the receipt it checks`
  }
  const r = verifyReceipt(a.checkedReceipt)
  if (!r.valid) return `the receipt to check does not verify: ${r.reason}`
  if (r.receipt.schedulerId !== a.schedulerId) return `the receipt to check was assigned by ${r.receipt.schedulerId}, not by ${a.schedulerId}`
  if (r.receipt.workerId === self) return 'this node signed the receipt: a worker never validates its own result'
  if (validationJobId(r.receipt.jobHash) !== a.jobId) return `a validation runs as ${validationJobId(r.receipt.jobHash)}, not ${a.jobId.slice(0, 64)}`
  if (!sameBytes(r.receipt.jobHash, computeJobHash(r.receipt.jobId, a.containers, a.inputHash))) {
    return 'the receipt to check is for another job than the assignment describes (its job_hash is not over the assignment\'s containers and input hash)'
  }
  return { checked: a.checkedReceipt, receipt: r.receipt }
}

/**
 * Method "signature": what a validator can check of a receipt without running the job. Its signature
 * was checked on the way in; here: the signer is a worker in this node's roster, the receipt is for
 * the job the assignment describes (job hash over its id, containers and input hash), it succeeded,
 * its steps are that chain with the last step's output as the output, and every step ran the image
 * this node pins for that container. A container this node does not serve is "unverifiable".
 */
export function signatureVerdict (a: Assignment, receipt: Receipt, ctx: { admission: Admission, pins: ReadonlyMap<string, string> }): Verdict {
  const disagree = (reason: string): Verdict => ({ verdict: 'disagree', reason })
  if (!ctx.admission.rolesOf(receipt.workerId).includes('worker')) return disagree(`the receipt's signer ${receipt.workerId} is not a worker in this validator's roster`)
  if (receipt.status !== 'success') return disagree(`the receipt reports a failed job (${receipt.error.slice(0, 64)})`)
  if (!sameBytes(receipt.inputHash, a.inputHash)) return disagree('the receipt\'s input_hash is not the job\'s input hash')
  if (!sameBytes(receipt.jobHash, computeJobHash(receipt.jobId, a.containers, a.inputHash))) return disagree('the receipt\'s job_hash is not sha256 of the job\'s id, containers and input hash')
  if (receipt.steps.length !== a.containers.length || receipt.steps.some((s, i) => s.containerId !== a.containers[i])) {
    return disagree(`the receipt's steps (${receipt.steps.map((s) => s.containerId).join(', ').slice(0, 128)}) are not the job's chain (${a.containers.join(', ')})`)
  }
  const last = receipt.steps.at(-1)
  if (last !== undefined && !sameBytes(last.outputHash, receipt.outputHash)) return disagree('the receipt\'s output_hash is not its last step\'s output')
  for (const step of receipt.steps) {
    const pinned = ctx.pins.get(step.containerId)
    if (pinned === undefined) return { verdict: 'unverifiable', reason: `this validator does not serve container "${step.containerId}"` }
    if (step.imageDigest !== pinned) return disagree(`container "${step.containerId}" ran image ${step.imageDigest.slice(0, 80)}, not the pinned ${pinned}`)
  }
  return { verdict: 'agree', reason: '' }
}

/** Method "reexecute": this node's run of the job against the worker's receipt. */
export function reexecutionVerdict (job: JobRecord, receipt: Receipt): Verdict & { outputHash: Uint8Array } {
  if (job.state !== 'success') {
    return { verdict: 'unverifiable', reason: `the re-execution failed: ${job.errorCode ?? ''} ${job.error ?? ''}`.trim(), outputHash: new Uint8Array() }
  }
  const outputHash = createHash('sha256').update(job.output ?? new Uint8Array()).digest()
  if (receipt.status !== 'success') return { verdict: 'disagree', reason: 'the re-execution succeeded where the worker reported a failure', outputHash }
  return sameBytes(outputHash, receipt.outputHash)
    ? { verdict: 'agree', reason: '', outputHash }
    : { verdict: 'disagree', reason: 'the re-execution gave a different output', outputHash }
}

export interface ValidatorComponents {
  identity: Identity
  admission: Admission
  mesh: Mesh
  logger: Logger
  metrics?: Metrics
}

export interface Validator {
  /**
   * Remembers a re-execution taken for `jobId` (the validation id) until its job ends, with the
   * receipt it checks; null for an early one, whose receipt comes later (a receipt is never forgotten
   * for a null).
   */
  track(jobId: string, checked: CheckedReceipt | null): void
  /** Why a new re-execution `jobId` is refused now (re-executions may hold at most half the queue), or undefined. */
  busy(jobId: string): string | undefined
  /** Forgets a re-execution that was never admitted. */
  forget(jobId: string): void
  /**
   * A finished re-execution's signed verdict on the receipt it checked; 'hold' for an early one whose
   * receipt has not come yet (its result is not sent: the scheduler asks again with the receipt);
   * null for an ordinary job.
   */
  reexecuted(job: JobRecord): SignedEnvelope | null | 'hold'
  /** Method "signature": the signed verdict on a receipt, at once. */
  checkSignature(a: Assignment, checked: CheckedReceipt): SignedEnvelope
}

/**
 * `pins`: container id → the image digest this node's config pins (a validator runs the same images
 * as workers). `maxReexecutions`: re-executions queued or running at once (half the jobs queue, so
 * they never fill the node's own intake).
 */
export function validator (init: { pins: ReadonlyMap<string, string>, maxReexecutions: number }) {
  return (c: ValidatorComponents): Validator => {
    const logger = c.logger.child({ component: 'validator' })
    /** Re-executions in flight, by their job id: the receipt each one checks (null: not come yet). */
    const validations = new Map<string, CheckedReceipt | null>()
    /** Those queued or running (an early one that ended holds no place while it waits for its receipt). */
    const running = new Set<string>()
    const reexecutedTotal = c.metrics?.counter({ name: 'inframind_reexecutions_total', help: 'Re-executions this validator ran for schedulers, by verdict (agree, disagree, unverifiable); they share the jobs queue but are not client jobs', labelNames: ['verdict'] })
    const checkedTotal = c.metrics?.counter({ name: 'inframind_receipt_checks_total', help: 'Receipts this validator checked without re-running them (verification method "signature"), by verdict', labelNames: ['verdict'] })

    const attest = (receipt: Receipt, checked: SignedEnvelope, method: 'signature' | 'reexecution', v: Verdict, outputHash: Uint8Array): SignedEnvelope => {
      const env = signAttestation(c.identity, {
        receiptHash: receiptHash(checked),
        jobId: receipt.jobId,
        workerId: receipt.workerId,
        validatorId: c.identity.nodeId,
        method,
        outputHash,
        atMs: Date.now(),
        verdict: v.verdict,
        reason: v.reason
      })
      // Hashes and ids only: anyone on the mesh may see who vouched for what.
      c.mesh.publish('attestations', decodeAttestation(env.payload)).catch((err: unknown) => logger.debug({ err, job: receipt.jobId }, 'could not publish the attestation'))
      return env
    }

    return {
      track: (jobId, checked) => {
        if (checked !== null || !validations.has(jobId)) validations.set(jobId, checked)
        running.add(jobId)
        while (validations.size > MAX_TRACKED) validations.delete(validations.keys().next().value as string)
      },
      forget: (jobId) => {
        validations.delete(jobId)
        running.delete(jobId)
      },
      busy: (jobId) => !validations.has(jobId) && running.size >= init.maxReexecutions
        ? `${running.size} re-executions are queued or running here, the most this validator takes at once (half its jobs queue)`
        : undefined,
      reexecuted: (job) => {
        const v = validations.get(job.id)
        if (v === undefined) return null
        running.delete(job.id)
        if (v === null) return 'hold'
        validations.delete(job.id)
        const verdict = reexecutionVerdict(job, v.receipt)
        reexecutedTotal?.inc({ verdict: verdict.verdict })
        return attest(v.receipt, v.checked, 'reexecution', verdict, verdict.outputHash)
      },
      checkSignature: (a, checked) => {
        const verdict = signatureVerdict(a, checked.receipt, { admission: c.admission, pins: init.pins })
        checkedTotal?.inc({ verdict: verdict.verdict })
        return attest(checked.receipt, checked.checked, 'signature', verdict, new Uint8Array())
      }
    }
  }
}
