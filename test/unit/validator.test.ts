import test from 'ava'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import type { Admission } from '../../src/admission/index.ts'
import type { Assignment } from '../../src/protocol/index.ts'
import type { JobRecord } from '../../src/store/types.ts'
import { computeJobHash, sha256, signReceipt, type Receipt } from '../../src/receipt/index.ts'
import { validationJobId } from '../../src/verification/index.ts'
import { checkValidationRequest, reexecutionVerdict, signatureVerdict, validator, type CheckedReceipt } from '../../src/validator/index.ts'
import type { Mesh } from '../../src/mesh/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'

// The validator's judgement alone (src/validator/): real receipts and signatures, a stand-in roster.

const seed = (n: number): Identity => identityFromSeed(new Uint8Array(32).fill(n))
const worker = seed(31)
const scheduler = seed(32)
const self = seed(33)
const input = new TextEncoder().encode('in')
const output = new TextEncoder().encode('out')
const digest = 'sha256:' + 'cd'.repeat(32)
const pins = new Map([['echo', digest]])
const roster = { rolesOf: (id: string) => id === worker.nodeId ? ['worker'] : [] } as unknown as Admission

function receipt (over: Partial<Receipt> = {}): Receipt {
  return {
    jobId: 'job-9', jobHash: computeJobHash('job-9', ['echo'], sha256(input)), inputHash: sha256(input), outputHash: sha256(output),
    steps: [{ containerId: 'echo', imageDigest: digest, outputHash: sha256(output), exitCode: 0 }],
    status: 'success', exitCode: 0, latencyMs: 1, startedAtMs: 1, finishedAtMs: 2, workerId: worker.nodeId, schedulerId: scheduler.nodeId, error: '', ...over
  }
}

function assignment (r: Receipt, over: Partial<Assignment> = {}, signer: Identity = worker): Assignment {
  const env = signReceipt(signer, r)
  return {
    jobId: validationJobId(r.jobHash), containers: ['echo'], sealed: new Uint8Array(), inputHash: sha256(input), inputSize: input.byteLength, inputProvider: '',
    workerId: self.nodeId, schedulerId: scheduler.nodeId, issuedAtMs: 1, deadlineAtMs: Date.now() + 60_000, requiresProof: false, replyAddress: '',
    purpose: 'attest', checkedReceipt: env, ...over
  }
}

test('a receipt check agrees with a receipt for the job that ran the pinned images', (t) => {
  const r = receipt()
  t.deepEqual(signatureVerdict(assignment(r), r, { admission: roster, pins }), { verdict: 'agree', reason: '' })
})

test('a receipt check disagrees, saying why, with each way a receipt can be wrong', (t) => {
  const cases: Array<[Partial<Receipt>, Partial<Assignment>, RegExp]> = [
    [{ steps: [{ containerId: 'echo', imageDigest: 'sha256:' + 'ee'.repeat(32), outputHash: sha256(output), exitCode: 0 }] }, {}, /ran image sha256:eeee.*not the pinned sha256:cdcd/],
    [{ status: 'failed', error: 'boom' }, {}, /reports a failed job \(boom\)/],
    [{ inputHash: sha256(new Uint8Array([1])) }, {}, /input_hash is not the job's input hash/],
    [{ jobHash: computeJobHash('job-9', ['echo', 'echo'], sha256(input)) }, {}, /job_hash is not sha256 of the job's id, containers and input hash/],
    [{}, { containers: ['echo', 'echo'] }, /job_hash is not/],
    [{ outputHash: sha256(new Uint8Array([2])) }, {}, /output_hash is not its last step's output/]
  ]
  for (const [r, a, reason] of cases) {
    const rec = receipt(r)
    const v = signatureVerdict(assignment(rec, a), rec, { admission: roster, pins })
    t.is(v.verdict, 'disagree', reason.source)
    t.regex(v.reason, reason)
  }
  const outsider = seed(40)
  const stranger = receipt({ workerId: outsider.nodeId })
  t.regex(signatureVerdict(assignment(stranger, {}, outsider), stranger, { admission: roster, pins }).reason, /is not a worker in this validator's roster/)
})

test('a container the validator does not serve is unverifiable, not a disagreement', (t) => {
  const r = receipt()
  t.deepEqual(signatureVerdict(assignment(r), r, { admission: roster, pins: new Map() }), { verdict: 'unverifiable', reason: 'this validator does not serve container "echo"' })
})

test('a re-execution agrees on the same output, disagrees on another, and a failed run is unverifiable', (t) => {
  const job = (state: 'success' | 'failed', out: Uint8Array): JobRecord => ({ id: 'v:1', state, output: out, error: 'exit 1', errorCode: 'CONTAINER_FAILED' } as unknown as JobRecord)
  t.is(reexecutionVerdict(job('success', output), receipt()).verdict, 'agree')
  const other = reexecutionVerdict(job('success', new Uint8Array([5])), receipt())
  t.is(other.verdict, 'disagree')
  t.is(Buffer.from(other.outputHash).toString('hex'), Buffer.from(sha256(new Uint8Array([5]))).toString('hex'))
  t.regex(reexecutionVerdict(job('failed', new Uint8Array()), receipt()).reason, /the re-execution failed: CONTAINER_FAILED exit 1/)
  t.is(reexecutionVerdict(job('success', output), receipt({ status: 'failed' })).verdict, 'disagree')
})

test('a validation request is refused without a receipt, for another scheduler, for its own receipt or under another job id', (t) => {
  const r = receipt()
  const ok = checkValidationRequest(assignment(r), self.nodeId)
  t.not(typeof ok, 'string')
  t.regex(checkValidationRequest(assignment(r, { checkedReceipt: null }), self.nodeId) as string, /must carry the receipt/)
  t.regex(checkValidationRequest(assignment(r, { schedulerId: seed(41).nodeId }), self.nodeId) as string, /assigned by .*, not by/)
  t.regex(checkValidationRequest(assignment(r), worker.nodeId) as string, /never validates its own result/)
  t.regex(checkValidationRequest(assignment(r, { jobId: 'v:other' }), self.nodeId) as string, /runs as v:/)
})

test('re-executions hold at most their share of the queue; a finished one frees its place', (t) => {
  const published: string[] = []
  const mesh = { publish: async (topic: string) => { published.push(topic) } } as unknown as Mesh
  const v = validator({ pins, maxReexecutions: 2 })({ identity: self, admission: roster, mesh, logger: silentLogger() })
  const r = receipt()
  const checked = checkValidationRequest(assignment(r), self.nodeId) as CheckedReceipt
  t.is(v.busy('v:new'), undefined)
  v.track('v:a', checked)
  v.track('v:b', checked)
  t.regex(v.busy('v:new') ?? '', /2 re-executions are queued or running here/)
  const env = v.reexecuted({ id: 'v:a', state: 'success', output } as unknown as JobRecord)
  t.truthy(env)
  t.is(v.busy('v:new'), undefined)
  t.deepEqual(published, ['attestations'])
  // An ordinary job of the node is no re-execution: no attestation.
  t.is(v.reexecuted({ id: 'job-1', state: 'success', output } as unknown as JobRecord), null)
})

test('an early re-execution needs only a validation job id; its result is held until the receipt comes', (t) => {
  const r = receipt()
  const early = assignment(r, { purpose: 'reexecute', checkedReceipt: null })
  t.is(checkValidationRequest(early, self.nodeId), null)
  t.regex(checkValidationRequest({ ...early, jobId: 'job-9' }, self.nodeId) as string, /runs under a validation job id/)
  t.regex(checkValidationRequest({ ...early, purpose: 'attest' }, self.nodeId) as string, /must carry the receipt/)
  // A receipt for another chain than the assignment's is refused.
  t.regex(checkValidationRequest(assignment(r, { purpose: 'reexecute', containers: ['echo', 'echo'] }), self.nodeId) as string, /for another job than the assignment describes/)

  const mesh = { publish: async () => {} } as unknown as Mesh
  const v = validator({ pins, maxReexecutions: 1 })({ identity: self, admission: roster, mesh, logger: silentLogger() })
  v.track(early.jobId, null)
  t.truthy(v.busy('v:other'))
  const done = { id: early.jobId, state: 'success', output } as unknown as JobRecord
  t.is(v.reexecuted(done), 'hold', 'no receipt yet: nothing to attest')
  t.is(v.busy('v:other'), undefined, 'a held result takes no place in the queue')
  // The scheduler asks again with the receipt: the held result is attested at once.
  v.track(early.jobId, checkValidationRequest(assignment(r, { purpose: 'reexecute' }), self.nodeId) as CheckedReceipt)
  const env = v.reexecuted(done)
  t.true(env !== null && env !== 'hold')
})
