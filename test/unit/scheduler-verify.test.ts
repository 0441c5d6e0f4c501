import test from 'ava'
import { createHash } from 'node:crypto'
import { signEnvelope } from '../../src/envelope/index.ts'
import type { SignedEnvelope } from '../../src/envelope/types.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import type { Admission } from '../../src/admission/index.ts'
import type { MeshMessage, PeerView } from '../../src/mesh/index.ts'
import { decodeAttestation, encodeAttestation, PAYLOAD_TYPES, type Attestation, type Heartbeat, type JobResultNotice } from '../../src/protocol/index.ts'
import { computeJobHash, decodeReceipt, receiptHash, sha256, signReceipt, type Receipt } from '../../src/receipt/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { verifier, type VerifierContext } from '../../src/scheduler/verify.ts'
import { rankValidators, signAttestation, validationJobId, verifyCertificate } from '../../src/verification/index.ts'
import type { RemoteJob, RemoteResult } from '../../src/gateway/types.ts'

// The scheduler's verification logic alone: validators are stand-ins that answer (or not) as a test
// says, so the choice, replacement and counting rules are checked without a mesh.

const id = (n: number): Identity => identityFromSeed(new Uint8Array(32).fill(n))
const scheduler = id(50)
const worker = id(51)
const validators = [id(52), id(53), id(54), id(55)]
const input = new TextEncoder().encode('in')
const output = new TextEncoder().encode('out')
const job: RemoteJob = {
  jobId: 'job-v', containers: ['echo'], input, deadlineAtMs: Date.now() + 60_000, requiresProof: false,
  origin: { ip: '', peerId: '', delegate: '' }, allowProbation: false
}

function result (): RemoteResult {
  const r: Receipt = {
    jobId: 'job-v', jobHash: computeJobHash('job-v', ['echo'], sha256(input)), inputHash: sha256(input), outputHash: sha256(output),
    steps: [], status: 'success', exitCode: 0, latencyMs: 1, startedAtMs: 1, finishedAtMs: 2, workerId: worker.nodeId, schedulerId: scheduler.nodeId, error: ''
  }
  const env = signReceipt(worker, r)
  return { output, receipt: env, decoded: decodeReceipt(env.payload) as Receipt, workerId: worker.nodeId, probation: false }
}

type Answer = 'agree' | 'disagree' | 'silent' | 'lost' | 'refuse' | 'forged-signer' | 'replayed' | 'self' | 'concur'

/** What validators answering 'concur' all got when they re-ran the job. */
const other = new TextEncoder().encode('the true output')

/** Each validator answers as `answers` says; returns the context and what was asked of whom. */
function context (answers: Record<string, Answer>, refused: string[] = []): { ctx: VerifierContext, asked: string[] } {
  const asked: string[] = []
  const r = result()
  const peers: PeerView[] = validators.map((v) => ({
    nodeId: v.nodeId, roles: ['validator'], containers: ['echo'], addresses: [], latencyMs: 1, lastSeenMs: Date.now(), connected: true, alive: true,
    heartbeat: { nodeId: v.nodeId, roles: ['validator'], containers: ['echo'] } as unknown as Heartbeat
  }))
  const waiting = new Map<string, (m: { msg: MeshMessage<JobResultNotice>, receipt: Receipt }) => void>()
  const lost = new Map<string, (v: { lost: string }) => void>()
  const attest = (v: Identity, over: Partial<Attestation> = {}): SignedEnvelope => signAttestation(v, {
    receiptHash: receiptHash(r.receipt), jobId: 'job-v', workerId: worker.nodeId, validatorId: v.nodeId, verdict: 'agree', method: 'reexecution',
    outputHash: sha256(output), reason: '', atMs: Date.now(), ...over
  })
  const answer = (validatorId: string, env: SignedEnvelope, own?: Receipt): void => {
    const receiptEnv = own !== undefined ? signReceipt(validators.find((v) => v.nodeId === validatorId) as Identity, own) : r.receipt
    const msg = { topic: 'inframind/receipts/1', from: validatorId, envelope: env, value: { attestation: env, receipt: receiptEnv } } as unknown as MeshMessage<JobResultNotice>
    setTimeout(() => waiting.get(validatorId)?.({ msg, receipt: own ?? r.decoded }), 5)
  }
  const ctx: VerifierContext = {
    identity: scheduler,
    logger: silentLogger(),
    admission: { rolesOf: () => ['validator'] } as unknown as Admission,
    livePeers: () => peers,
    inputHash: (j) => sha256(j.input),
    holdInput: () => () => {},
    allowFetch: () => {},
    assign: async (validation, validator, _signal, _checked, purpose) => {
      asked.push(validator.nodeId)
      const v = validators.find((x) => x.nodeId === validator.nodeId) as Identity
      const how = answers[v.nodeId] ?? 'agree'
      if (how === 'refuse') return { accepted: false, code: 'QUEUE_FULL', reason: 'busy' } as never
      // A receipt check answers in the ack.
      if (purpose === 'attest') {
        const verdict = how === 'agree' ? 'agree' : 'disagree'
        return { accepted: true, attestation: attest(v, { method: 'signature', outputHash: new Uint8Array(), verdict, reason: verdict === 'agree' ? '' : 'image differs' }) } as never
      }
      if (how === 'concur') {
        answer(v.nodeId, attest(v, { verdict: 'disagree', outputHash: sha256(other), reason: 'different output' }),
          { ...r.decoded, jobId: validation.jobId, outputHash: sha256(other), workerId: v.nodeId })
      }
      if (how === 'agree') answer(v.nodeId, attest(v))
      if (how === 'disagree') answer(v.nodeId, attest(v, { verdict: 'disagree', outputHash: sha256(new Uint8Array([9])), reason: 'different output' }))
      if (how === 'lost') setTimeout(() => lost.get(v.nodeId)?.({ lost: 'its heartbeats stopped' }), 5)
      // Signed by this validator but claiming to be another one.
      if (how === 'forged-signer') answer(v.nodeId, signEnvelope(v, PAYLOAD_TYPES.attestation, encodeAttestation({ ...decodeAttestation(attest(v).payload), validatorId: validators[3]!.nodeId })))
      if (how === 'replayed') answer(v.nodeId, attest(v, { receiptHash: createHash('sha256').update('another receipt').digest() }))
      if (how === 'self') answer(v.nodeId, attest(worker, { validatorId: worker.nodeId }))
      return { accepted: true, attestation: null } as never
    },
    awaitResult: (_id, validatorId) => ({
      result: new Promise((resolve) => { waiting.set(validatorId, resolve) }),
      cancel: () => { waiting.delete(validatorId) }
    }),
    outputOf: async () => other,
    watch: (nodeId) => ({ lost: new Promise((resolve) => { lost.set(nodeId, resolve) }), stop: () => { lost.delete(nodeId) } }),
    refused: (code) => { refused.push(code) }
  }
  return { ctx, asked }
}

const ranked = rankValidators(result().decoded.jobHash, validators.map((v) => v.nodeId), worker.nodeId)
const policy = { method: 'reexecute' as const, validators: 2, quorum: 2 }

test('the first two in rank are asked and their agreement is a certificate that verifies', async (t) => {
  const { ctx, asked } = context({})
  const out = await verifier(ctx).verify(job, result(), policy, { signal: new AbortController().signal })
  t.is(out.state, 'certified')
  t.deepEqual(asked, ranked.slice(0, 2))
  if (out.state === 'certified') t.true(verifyCertificate(out.certificate, { output }).valid)
})

test('a lost validator is replaced by the next in rank, and the certificate lists the replacement too', async (t) => {
  const { ctx, asked } = context({ [ranked[0]!]: 'lost' })
  const out = await verifier(ctx).verify(job, result(), policy, { signal: new AbortController().signal })
  t.is(out.state, 'certified')
  t.deepEqual(asked, ranked.slice(0, 3))
  if (out.state === 'certified') {
    const v = verifyCertificate(out.certificate, { output })
    t.true(v.valid)
    if (v.valid) t.deepEqual(v.certificate.chosen, ranked.slice(0, 3))
  }
})

test('forged, replayed and self-made attestations never count, are counted by code, and their senders are replaced', async (t) => {
  const refused: string[] = []
  const { ctx, asked } = context({ [ranked[0]!]: 'forged-signer', [ranked[1]!]: 'replayed', [ranked[2]!]: 'self' }, refused)
  const out = await verifier(ctx).verify(job, result(), policy, { signal: new AbortController().signal })
  t.is(out.state, 'incomplete')
  // Only the fourth, honest validator's agreement counts.
  if (out.state === 'incomplete') t.regex(out.reason, /1 of 2 needed validators agreed; 4 validator\(s\) tried/)
  t.deepEqual(asked, ranked)
  t.deepEqual(refused.sort(), ['SIGNER_MISMATCH', 'VALIDATOR_IS_WORKER', 'WRONG_RECEIPT'])
})

test('more than v - q disagreements are a dispute carrying the disagreeing attestations; a refusal moves on', async (t) => {
  const { ctx, asked } = context({ [ranked[0]!]: 'refuse', [ranked[1]!]: 'disagree' })
  const out = await verifier(ctx).verify(job, result(), policy, { signal: new AbortController().signal })
  t.is(out.state, 'disputed')
  if (out.state === 'disputed') {
    // The evidence: every attestation collected, the disagreeing one among them.
    t.true(out.attestations.some((env) => decodeAttestation(env.payload).verdict === 'disagree' && decodeAttestation(env.payload).validatorId === ranked[1]))
    t.true(out.validators.includes(ranked[1]!))
  }
  t.true(asked.includes(ranked[0]!) && asked.includes(ranked[1]!))
})

test('validators excluded for a re-run are never asked', async (t) => {
  const { ctx, asked } = context({})
  const out = await verifier(ctx).verify(job, result(), policy, { signal: new AbortController().signal, excludeValidators: new Set(ranked.slice(0, 2)) })
  t.is(out.state, 'certified')
  t.deepEqual(asked, ranked.slice(2, 4))
})

test('q validators that re-ran a disputed job to the same other output: their output is certified (resolution validators_output)', async (t) => {
  const { ctx } = context({ [ranked[0]!]: 'concur', [ranked[1]!]: 'concur' })
  const out = await verifier(ctx).verify(job, result(), policy, { signal: new AbortController().signal })
  t.is(out.state, 'certified')
  if (out.state !== 'certified') return
  t.deepEqual(out.resolved?.output, other)
  t.is(out.resolved?.dispute.attestations.length, 2)
  const v = verifyCertificate(out.certificate, { output: other })
  t.true(v.valid, v.valid ? '' : v.reason)
  if (v.valid) t.is(v.certificate.resolution, 'validators_output')
  // The worker's output does not pass for the certified one.
  const worker = verifyCertificate(out.certificate, { output })
  t.false(worker.valid)
  if (!worker.valid) t.is(worker.code, 'OUTPUT_MISMATCH')
})

test('validators disagreeing with the worker on different outputs of their own: a dispute, nothing certified', async (t) => {
  const { ctx } = context({ [ranked[0]!]: 'concur', [ranked[1]!]: 'disagree' })
  const out = await verifier(ctx).verify(job, result(), policy, { signal: new AbortController().signal })
  t.is(out.state, 'disputed')
})

test('method signature: the chosen validators check the receipt and answer in their acks; q agreeing is a certificate', async (t) => {
  const { ctx, asked } = context({})
  const out = await verifier(ctx).verify(job, result(), { method: 'signature', validators: 2, quorum: 2 }, { signal: new AbortController().signal })
  t.is(out.state, 'certified')
  t.deepEqual(asked, ranked.slice(0, 2))
  if (out.state === 'certified') {
    const v = verifyCertificate(out.certificate, { output })
    t.true(v.valid, v.valid ? '' : v.reason)
    if (v.valid) t.deepEqual(v.attestations.map((a) => a.method), ['signature', 'signature'])
  }
  const bad = context({ [ranked[0]!]: 'disagree' })
  const disputed = await verifier(bad.ctx).verify(job, result(), { method: 'signature', validators: 2, quorum: 2 }, { signal: new AbortController().signal })
  t.is(disputed.state, 'disputed')
})

test('early: once a worker has the job, the v validators ranked first start re-running it, with no receipt, under the validation id', async (t) => {
  const { ctx } = context({})
  const sent: Array<{ validator: string, jobId: string, receipt: unknown, purpose: string }> = []
  ctx.assign = async (validation, validator, _signal, checkedReceipt, purpose) => {
    sent.push({ validator: validator.nodeId, jobId: validation.jobId, receipt: checkedReceipt, purpose })
    return { accepted: true, attestation: null } as never
  }
  const v = verifier(ctx)
  v.early(job, worker.nodeId, policy)
  t.deepEqual(sent.map((s) => s.validator), ranked.slice(0, 2))
  const expected = validationJobId(computeJobHash('job-v', ['echo'], sha256(input)))
  for (const s of sent) t.like(s, { jobId: expected, receipt: null, purpose: 'reexecute' })
  // The same id the verification asks with once the receipt is in.
  t.is(expected, validationJobId(result().decoded.jobHash))
  // Validators already used for this job are left out; a receipt check has nothing to start early.
  sent.length = 0
  v.early(job, worker.nodeId, policy, new Set([ranked[0]!]))
  t.deepEqual(sent.map((s) => s.validator), ranked.slice(1, 3))
  sent.length = 0
  v.early(job, worker.nodeId, { method: 'signature', validators: 2, quorum: 2 })
  t.is(sent.length, 0)
})
