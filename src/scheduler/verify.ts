/**
 * The scheduler's half of verified results: after a worker's result arrives, the validators ranked
 * first for the job (sha256(job_hash ‖ id), never the worker) check it, by re-running it ("reexecute")
 * or by checking the receipt ("signature"). Their signed attestations become a certificate when q
 * agree; a dispute when too many disagree for q ever to agree, resolved by the validators' own output
 * when q of them re-ran the job to the same other output; and an incomplete verification (with the
 * reason) when validators are missing, fail or run out of time. A lost or failing validator is
 * replaced by the next in rank.
 */
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Admission } from '../admission/index.ts'
import type { MeshMessage, PeerView } from '../mesh/index.ts'
import type { AssignmentAck, Attestation, Heartbeat, JobResultNotice } from '../protocol/index.ts'
import type { Receipt } from '../receipt/types.ts'
import { computeJobHash, receiptHash, sha256 } from '../receipt/index.ts'
import type { RemoteJob, RemoteProgress, RemoteResult, ResolvedByValidators, VerifyOutcome } from '../gateway/types.ts'
import { ATTESTATION_METHOD, checkAttestation, rankValidators, sameBytes, signCertificate, validationJobId, verifyCertificate } from '../verification/index.ts'

/** Verification ends this long before the job's deadline, so the client still gets its result (as incomplete). */
export const VERIFY_MARGIN_MS = 1_000

export interface VerifierContext {
  identity: Identity
  logger: Logger
  admission: Admission
  livePeers: () => PeerView[]
  /** sha256 of the job's input (computed once per job by the scheduler). */
  inputHash: (job: RemoteJob) => Uint8Array
  /** Lets the given validators fetch the job's input by hash (when it is not inline); returns the release. */
  holdInput: (job: RemoteJob, validatorIds: string[]) => () => void
  /** Adds a replacement validator to those allowed to fetch the input. */
  allowFetch: (job: RemoteJob, validatorId: string) => void
  /**
   * Sends a validation assignment for `job` (its id is the validation id): "reexecute" runs it again,
   * "attest" checks the receipt and answers with the attestation in the signed ack.
   */
  assign: (job: RemoteJob, validator: Heartbeat, signal: AbortSignal, checkedReceipt: SignedEnvelope | null, purpose: 'reexecute' | 'attest') => Promise<AssignmentAck>
  /** Registers for the validator's result notice before the assignment goes out. */
  awaitResult: (validationId: string, validatorId: string) => { result: Promise<{ msg: MeshMessage<JobResultNotice>, receipt: Receipt }>, cancel: () => void }
  /** The output of a validator's re-execution: opened from its notice, or fetched from it by hash. */
  outputOf: (validationId: string, validatorId: string, notice: JobResultNotice, receipt: Receipt, signal: AbortSignal) => Promise<Uint8Array>
  watch: (nodeId: string) => { lost: Promise<{ lost: string }>, stop: () => void }
  /** Counts an attestation that did not count (forged, replayed, by the worker, by someone not chosen), by its code. */
  refused?: (code: string) => void
}

type Policy = { method: 'signature' | 'reexecute', validators: number, quorum: number }

/** One validator's counted answer: its attestation, and for a re-execution its own result notice. */
interface Answer { env: SignedEnvelope, attestation: Attestation, notice?: { msg: MeshMessage<JobResultNotice>, receipt: Receipt } }

export function verifier (ctx: VerifierContext) {
  const log = ctx.logger

  /** Live validators the roster names that serve every container of the job. */
  const candidates = (containers: readonly string[]): Map<string, Heartbeat> => new Map(ctx.livePeers()
    .filter((p) => {
      const h = p.heartbeat as Heartbeat
      return h.roles.includes('validator') && ctx.admission.rolesOf(p.nodeId).includes('validator') && containers.every((id) => h.containers.includes(id))
    })
    .map((p) => [p.nodeId, p.heartbeat as Heartbeat]))

  /**
   * Method "reexecute": as soon as a worker has accepted the job, the v validators ranked first for it
   * (by its job hash, which does not wait for the receipt; never that worker) start running it too,
   * under the validation job id, and keep their result. verify() then asks the same validators with
   * the worker's receipt and gets their verdicts without waiting for a second run. A validator that
   * misses this (lost, busy) just runs the job when verify() asks.
   */
  function early (job: RemoteJob, workerId: string, policy: Policy, excludeValidators?: ReadonlySet<string>): void {
    if (policy.method !== 'reexecute') return
    const budgetMs = job.deadlineAtMs - Date.now() - VERIFY_MARGIN_MS
    if (budgetMs <= 0) return
    const jobHash = computeJobHash(job.jobId, job.containers, ctx.inputHash(job))
    const live = candidates(job.containers)
    const first = rankValidators(jobHash, [...live.keys()].filter((id) => excludeValidators?.has(id) !== true), workerId).slice(0, policy.validators)
    const validation: RemoteJob = { ...job, jobId: validationJobId(jobHash), deadlineAtMs: Date.now() + budgetMs, previousWorker: undefined }
    for (const id of first) {
      ctx.allowFetch(job, id)
      ctx.assign(validation, live.get(id) as Heartbeat, AbortSignal.timeout(budgetMs), null, 'reexecute')
        .then((ack) => { if (!ack.accepted) log.debug({ job: job.jobId, validator: id, code: ack.code }, 'early re-execution refused') })
        .catch((err: unknown) => log.debug({ job: job.jobId, validator: id, err: (err as Error).message }, 'early re-execution not sent'))
    }
  }

  async function verify (job: RemoteJob, r: RemoteResult, policy: Policy, opts: { signal: AbortSignal, onProgress?: (p: RemoteProgress) => void, excludeValidators?: ReadonlySet<string> }): Promise<VerifyOutcome> {
    const budgetMs = job.deadlineAtMs - Date.now() - VERIFY_MARGIN_MS
    if (budgetMs <= 0) return { state: 'incomplete', reason: 'the job\'s deadline left no time to verify it' }
    const signal = AbortSignal.any([opts.signal, AbortSignal.timeout(budgetMs)])
    const live = candidates(job.containers)
    // A re-run after a dispute gets fresh validators: none of those who judged the disputed result.
    const ranked = rankValidators(r.decoded.jobHash, [...live.keys()].filter((id) => opts.excludeValidators?.has(id) !== true), r.workerId)
    if (ranked.length < policy.quorum) {
      return { state: 'incomplete', reason: `${ranked.length} live validator(s) serve ${job.containers.join(', ')}; the policy needs ${policy.quorum} to agree` }
    }
    const validationId = validationJobId(r.decoded.jobHash)
    const validation: RemoteJob = { ...job, jobId: validationId, deadlineAtMs: Date.now() + budgetMs, previousWorker: undefined }
    const hash = receiptHash(r.receipt)
    const method = ATTESTATION_METHOD[policy.method]
    const chosen: string[] = []
    const agreeing: Answer[] = []
    const disagreeing: Answer[] = []
    const failures: string[] = []
    let next = 0
    const release = policy.method === 'reexecute' ? ctx.holdInput(job, []) : () => {}

    /** A signed attestation that counts for this receipt (else why not, recorded as a failure). */
    const counted = (validatorId: string, env: SignedEnvelope | null, notice?: Answer['notice']): void => {
      if (env === null) { failures.push(`${validatorId}: its answer carried no attestation`); return }
      const check = checkAttestation(env, { receiptHash: hash, jobId: job.jobId, workerId: r.workerId, chosen: new Set([validatorId]) })
      if (!check.ok) {
        ctx.refused?.(check.code)
        failures.push(`${validatorId}: ${check.code}: ${check.reason}`)
        return
      }
      const a = check.attestation
      if (a.method !== method) failures.push(`${validatorId}: attested by ${a.method}, not ${method}`)
      else if (a.verdict === 'agree' && (method === 'signature' || sameBytes(a.outputHash, r.decoded.outputHash))) agreeing.push({ env, attestation: a, notice })
      else if (a.verdict === 'disagree') disagreeing.push({ env, attestation: a, notice })
      else failures.push(`${validatorId}: ${a.verdict}${a.reason !== '' ? ` (${a.reason})` : ''}`)
    }

    /** Method "signature": the answer is in the signed ack. */
    const askSignature = async (validatorId: string): Promise<void> => {
      const ack = await ctx.assign(validation, live.get(validatorId) as Heartbeat, signal, r.receipt, 'attest')
      if (!ack.accepted) { failures.push(`${validatorId}: refused (${ack.code} ${ack.reason})`); return }
      counted(validatorId, ack.attestation)
    }

    /** Method "reexecute": the validator runs the job and answers with a result notice carrying its attestation. */
    const askReexecution = async (validatorId: string): Promise<void> => {
      ctx.allowFetch(job, validatorId)
      const waiting = ctx.awaitResult(validationId, validatorId)
      try {
        const ack = await ctx.assign(validation, live.get(validatorId) as Heartbeat, signal, r.receipt, 'reexecute')
        if (!ack.accepted) { failures.push(`${validatorId}: refused (${ack.code} ${ack.reason})`); return }
        // It ran the job early and agrees: the verdict came in its ack.
        if (ack.attestation !== null) { counted(validatorId, ack.attestation); return }
        opts.onProgress?.({ state: 'running', detail: `re-executing on validator ${validatorId}` })
        const watch = ctx.watch(validatorId)
        const aborted = new Promise<{ aborted: true }>((resolve) => {
          if (signal.aborted) resolve({ aborted: true })
          signal.addEventListener('abort', () => resolve({ aborted: true }), { once: true })
        })
        try {
          const outcome = await Promise.race([waiting.result, watch.lost, aborted])
          if ('aborted' in outcome) failures.push(`${validatorId}: no attestation before the deadline`)
          else if ('lost' in outcome) failures.push(`${validatorId}: lost while re-executing (${outcome.lost})`)
          else counted(validatorId, outcome.msg.value.attestation, outcome)
        } finally {
          watch.stop()
        }
      } finally {
        waiting.cancel()
      }
    }

    const ask = async (validatorId: string): Promise<void> => {
      try {
        await (policy.method === 'signature' ? askSignature(validatorId) : askReexecution(validatorId))
      } catch (err) {
        failures.push(`${validatorId}: ${(err as Error).message}`)
      }
    }

    const disputed = (): boolean => disagreeing.length > policy.validators - policy.quorum
    /** Validators that re-ran the job to the same other output, in the largest such group. */
    const concurring = (): Answer[] => {
      const groups = new Map<string, Answer[]>()
      for (const d of disagreeing) {
        if (d.attestation.outputHash.length === 0) continue
        const key = Buffer.from(d.attestation.outputHash).toString('hex')
        groups.set(key, [...(groups.get(key) ?? []), d])
      }
      return [...groups.values()].sort((a, b) => b.length - a.length)[0] ?? []
    }
    const inFlight = new Set<Promise<void>>()
    // Done when q agree; when disputed, once the v at work have answered (q of them may agree on another output).
    const done = (): boolean => agreeing.length >= policy.quorum || signal.aborted ||
      (disputed() && (inFlight.size === 0 || concurring().length >= policy.quorum))
    try {
      while (!done()) {
        // Keep v validators working; a failed or lost one is replaced by the next in rank.
        while (inFlight.size + agreeing.length + disagreeing.length < policy.validators && next < ranked.length) {
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
      return certify(job, policy, r, agreeing, chosen, { resolution: '', outputHash: r.decoded.outputHash, output: r.output })
    }
    if (disputed()) {
      const attestations = [...agreeing, ...disagreeing].map((a) => a.env)
      const reason = `${disagreeing.length} of ${chosen.length} validators ${policy.method === 'signature' ? 'found the receipt wrong' : 'got another output'} than worker ${r.workerId}`
      log.warn({ job: job.jobId, worker: r.workerId, disagree: disagreeing.length, agree: agreeing.length }, 'validators disagree with the worker')
      const group = concurring()
      if (policy.method === 'reexecute' && group.length >= policy.quorum) {
        const resolved = await resolveByValidators(job, policy, r, group.slice(0, policy.quorum), chosen, signal)
        if (resolved.state === 'certified') return { ...resolved, resolved: { ...resolved.resolved, dispute: { reason, attestations, validators: chosen } } }
        log.warn({ job: job.jobId, reason: resolved.reason }, 'validators agreed on another output but it could not be certified; the job runs again')
      }
      return { state: 'disputed', reason, attestations, validators: chosen }
    }
    const why = signal.aborted && !opts.signal.aborted ? 'the verification budget (the job\'s deadline) ran out' : `${ranked.length} validator(s) tried`
    return { state: 'incomplete', reason: `${agreeing.length} of ${policy.quorum} needed validators agreed; ${why}${failures.length > 0 ? `: ${failures.slice(0, 5).join('; ')}` : ''}` }
  }

  /**
   * q validators re-ran a disputed job to the same other output: that output, fetched from one of them
   * and checked against their hash, is the certified result, with that validator's receipt.
   */
  async function resolveByValidators (job: RemoteJob, policy: Policy, r: RemoteResult, group: Answer[], chosen: string[], signal: AbortSignal):
    Promise<{ state: 'certified', certificate: SignedEnvelope, resolved: Omit<ResolvedByValidators, 'dispute'> } | { state: 'incomplete', reason: string }> {
    const outputHash = group[0]!.attestation.outputHash
    const problems: string[] = []
    for (const answer of group) {
      const from = answer.attestation.validatorId
      const notice = answer.notice
      if (notice === undefined || notice.receipt.status !== 'success' || !sameBytes(notice.receipt.outputHash, outputHash)) {
        problems.push(`${from}: its own receipt is not for the output it attested`)
        continue
      }
      try {
        const output = await ctx.outputOf(notice.receipt.jobId, from, notice.msg.value, notice.receipt, signal)
        if (!sameBytes(sha256(output), outputHash)) { problems.push(`${from}: the output it sent is not the one it attested`); continue }
        const outcome = certify(job, policy, r, group, chosen, { resolution: 'validators_output', outputHash, output })
        if (outcome.state !== 'certified') return outcome
        return { ...outcome, resolved: { output, receipt: notice.msg.value.receipt as SignedEnvelope, validatorId: from } }
      } catch (err) {
        problems.push(`${from}: ${(err as Error).message}`)
      }
    }
    return { state: 'incomplete', reason: `the validators' output could not be had: ${problems.join('; ')}` }
  }

  /** Signs the certificate, and checks it as the client will, offline: never hand out one that does not hold. */
  function certify (job: RemoteJob, policy: Policy, r: RemoteResult, answers: Answer[], chosen: string[],
    what: { resolution: '' | 'validators_output', outputHash: Uint8Array, output: Uint8Array }): { state: 'certified', certificate: SignedEnvelope } | { state: 'incomplete', reason: string } {
    const certificate = signCertificate(ctx.identity, {
      jobId: job.jobId,
      policy,
      receipt: r.receipt,
      attestations: answers.map((a) => a.env),
      chosen,
      schedulerId: ctx.identity.nodeId,
      issuedAtMs: Date.now(),
      resolution: what.resolution,
      outputHash: what.outputHash
    })
    const own = verifyCertificate(certificate, { output: what.output })
    if (own.valid) return { state: 'certified', certificate }
    log.error({ job: job.jobId, code: own.code, reason: own.reason }, 'built a certificate that does not verify; reporting the job as incomplete')
    return { state: 'incomplete', reason: `the certificate did not verify (${own.code})` }
  }

  return { verify, early }
}
