/**
 * The scheduler's half of verified results: after a worker's result arrives, the validators ranked
 * first for the job (sha256(job_hash ‖ id), never the worker) re-run it; their signed attestations
 * become a certificate when q agree, a dispute when too many disagree for q ever to agree, and an
 * incomplete verification (with the reason) when validators are missing, fail or run out of time.
 * A lost or failing validator is replaced by the next in rank.
 */
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Admission } from '../admission/index.ts'
import type { MeshMessage, PeerView } from '../mesh/index.ts'
import type { AssignmentAck, Heartbeat, JobResultNotice } from '../protocol/index.ts'
import type { Receipt } from '../receipt/types.ts'
import { receiptHash } from '../receipt/index.ts'
import type { RemoteJob, RemoteProgress, RemoteResult, VerifyOutcome } from '../gateway/types.ts'
import { checkAttestation, rankValidators, sameBytes, signCertificate, validationJobId, verifyCertificate } from '../verification/index.ts'

/** Verification ends this long before the job's deadline, so the client still gets its result (as incomplete). */
export const VERIFY_MARGIN_MS = 1_000

export interface VerifierContext {
  identity: Identity
  logger: Logger
  admission: Admission
  livePeers: () => PeerView[]
  inlineBytes: number
  /** Lets the given validators fetch the job's input by hash (when it is not inline); returns the release. */
  holdInput: (job: RemoteJob, validatorIds: string[]) => () => void
  /** Adds a replacement validator to those allowed to fetch the input. */
  allowFetch: (job: RemoteJob, validatorId: string) => void
  /** Sends a re-execution assignment for `job` (its id is the validation id) and returns the signed ack. */
  assign: (job: RemoteJob, validator: Heartbeat, signal: AbortSignal, checkedReceipt: SignedEnvelope) => Promise<AssignmentAck>
  /** Registers for the validator's result notice before the assignment goes out. */
  awaitResult: (validationId: string, validatorId: string) => { result: Promise<{ msg: MeshMessage<JobResultNotice>, receipt: Receipt }>, cancel: () => void }
  watch: (nodeId: string) => { lost: Promise<{ lost: string }>, stop: () => void }
  /** Counts an attestation that did not count (forged, replayed, by the worker, by someone not chosen), by its code. */
  refused?: (code: string) => void
}

type Policy = { method: 'signature' | 'reexecute', validators: number, quorum: number }

export function verifier (ctx: VerifierContext) {
  const log = ctx.logger

  /** Live validators the roster names that serve every container of the job. */
  const candidates = (containers: readonly string[]): Map<string, Heartbeat> => new Map(ctx.livePeers()
    .filter((p) => {
      const h = p.heartbeat as Heartbeat
      return h.roles.includes('validator') && ctx.admission.rolesOf(p.nodeId).includes('validator') && containers.every((id) => h.containers.includes(id))
    })
    .map((p) => [p.nodeId, p.heartbeat as Heartbeat]))

  return async function verify (job: RemoteJob, r: RemoteResult, policy: Policy, opts: { signal: AbortSignal, onProgress?: (p: RemoteProgress) => void, excludeValidators?: ReadonlySet<string> }): Promise<VerifyOutcome> {
    if (policy.method !== 'reexecute') return { state: 'incomplete', reason: `verification method ${policy.method} is not offered by this scheduler yet; only reexecute` }
    const budgetMs = job.deadlineAtMs - Date.now() - VERIFY_MARGIN_MS
    if (budgetMs <= 0) return { state: 'incomplete', reason: 'the job\'s deadline left no time to verify it' }
    const signal = AbortSignal.any([opts.signal, AbortSignal.timeout(budgetMs)])
    const live = candidates(job.containers)
    // A re-run after a dispute gets fresh validators: none of those who judged the disputed result.
    const ranked = rankValidators(r.decoded.jobHash, [...live.keys()].filter((id) => opts.excludeValidators?.has(id) !== true), r.workerId)
    if (ranked.length < policy.quorum) {
      return { state: 'incomplete', reason: `${ranked.length} live validator(s) serve ${job.containers.join(', ')}; the policy needs ${policy.quorum} to agree` }
    }
    const validationId = validationJobId(r.receipt)
    const validation: RemoteJob = { ...job, jobId: validationId, deadlineAtMs: Date.now() + budgetMs, previousWorker: undefined }
    const hash = receiptHash(r.receipt)
    const chosen: string[] = []
    const agreeing: SignedEnvelope[] = []
    const collected: SignedEnvelope[] = []
    const failures: string[] = []
    let disagree = 0
    let next = 0
    const release = ctx.holdInput(job, [])

    const ask = async (validatorId: string): Promise<void> => {
      const heartbeat = live.get(validatorId) as Heartbeat
      ctx.allowFetch(job, validatorId)
      const waiting = ctx.awaitResult(validationId, validatorId)
      try {
        const ack = await ctx.assign(validation, heartbeat, signal, r.receipt)
        if (!ack.accepted) {
          failures.push(`${validatorId}: refused (${ack.code} ${ack.reason})`)
          return
        }
        opts.onProgress?.({ state: 'running', detail: `re-executing on validator ${validatorId}` })
        const watch = ctx.watch(validatorId)
        const aborted = new Promise<{ aborted: true }>((resolve) => {
          if (signal.aborted) resolve({ aborted: true })
          signal.addEventListener('abort', () => resolve({ aborted: true }), { once: true })
        })
        try {
          const outcome = await Promise.race([waiting.result, watch.lost, aborted])
          if ('aborted' in outcome) { failures.push(`${validatorId}: no attestation before the deadline`); return }
          if ('lost' in outcome) { failures.push(`${validatorId}: lost while re-executing (${outcome.lost})`); return }
          const env = outcome.msg.value.attestation
          if (env === null) { failures.push(`${validatorId}: its result carried no attestation`); return }
          const check = checkAttestation(env, { receiptHash: hash, jobId: job.jobId, workerId: r.workerId, chosen: new Set([validatorId]) })
          if (!check.ok) {
            ctx.refused?.(check.code)
            failures.push(`${validatorId}: ${check.code}: ${check.reason}`)
            return
          }
          const a = check.attestation
          collected.push(env)
          if (a.method !== 'reexecution') failures.push(`${validatorId}: attested by ${a.method}, not re-execution`)
          else if (a.verdict === 'agree' && sameBytes(a.outputHash, r.decoded.outputHash)) agreeing.push(env)
          else if (a.verdict === 'disagree') disagree += 1
          else failures.push(`${validatorId}: ${a.verdict}${a.reason !== '' ? ` (${a.reason})` : ''}`)
        } finally {
          watch.stop()
        }
      } catch (err) {
        failures.push(`${validatorId}: ${(err as Error).message}`)
      } finally {
        waiting.cancel()
      }
    }

    const done = (): boolean => agreeing.length >= policy.quorum || disagree > policy.validators - policy.quorum || signal.aborted
    const inFlight = new Set<Promise<void>>()
    try {
      while (!done()) {
        // Keep v validators working; a failed or lost one is replaced by the next in rank.
        while (inFlight.size + agreeing.length + disagree < policy.validators && next < ranked.length) {
          const id = ranked[next++] as string
          chosen.push(id)
          const run: Promise<void> = ask(id).finally(() => { inFlight.delete(run) })
          inFlight.add(run)
        }
        if (inFlight.size === 0) break
        await Promise.race(inFlight)
      }
    } finally {
      release()
    }

    if (agreeing.length >= policy.quorum) {
      const certificate = signCertificate(ctx.identity, {
        jobId: job.jobId,
        policy,
        receipt: r.receipt,
        attestations: agreeing,
        chosen,
        schedulerId: ctx.identity.nodeId,
        issuedAtMs: Date.now()
      })
      // What the client will check offline is checked here first: never hand out a certificate that does not hold.
      const own = verifyCertificate(certificate, { output: r.output })
      if (own.valid) return { state: 'certified', certificate }
      log.error({ job: job.jobId, code: own.code, reason: own.reason }, 'built a certificate that does not verify; reporting the job as incomplete')
      return { state: 'incomplete', reason: `the certificate did not verify (${own.code})` }
    }
    if (disagree > policy.validators - policy.quorum) {
      log.warn({ job: job.jobId, worker: r.workerId, disagree, agree: agreeing.length }, 'validators disagree with the worker')
      return { state: 'disputed', reason: `${disagree} of ${chosen.length} validators re-ran the job and got another output than worker ${r.workerId}`, attestations: collected, validators: chosen }
    }
    const why = signal.aborted && !opts.signal.aborted ? 'the verification budget (the job\'s deadline) ran out' : `${ranked.length} validator(s) tried`
    return { state: 'incomplete', reason: `${agreeing.length} of ${policy.quorum} needed validators agreed; ${why}${failures.length > 0 ? `: ${failures.slice(0, 5).join('; ')}` : ''}` }
  }
}
