import test from 'ava'
import { createHash } from 'node:crypto'
import { signEnvelope } from '../../src/envelope/index.ts'
import type { SignedEnvelope } from '../../src/envelope/types.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { encodeAttestation, PAYLOAD_TYPES, type Attestation, type Certificate } from '../../src/protocol/index.ts'
import { computeJobHash, receiptHash, sha256, signReceipt, type Receipt } from '../../src/receipt/index.ts'
import {
  chooseValidators, inRankOrder, rankValidators, resolvePolicy, signAttestation, signCertificate, verifyCertificate,
  checkAttestation, InvalidPolicyError, type CertificateInvalidCode
} from '../../src/verification/index.ts'

const seed = (n: number): Identity => identityFromSeed(new Uint8Array(32).fill(n))
const worker = seed(11)
const scheduler = seed(12)
const validators = [seed(21), seed(22), seed(23), seed(24)]
const output = new TextEncoder().encode('{"label":"positive"}\n')
const input = new TextEncoder().encode('what a lovely day')

function receipt (over: Partial<Receipt> = {}): Receipt {
  const inputHash = sha256(input)
  return {
    jobId: 'job-1',
    jobHash: computeJobHash('job-1', ['sentiment'], inputHash),
    inputHash,
    outputHash: sha256(output),
    steps: [{ containerId: 'sentiment', imageDigest: 'sha256:' + 'ab'.repeat(32), outputHash: sha256(output), exitCode: 0 }],
    status: 'success',
    exitCode: 0,
    latencyMs: 42,
    startedAtMs: 1_763_000_000_000,
    finishedAtMs: 1_763_000_000_042,
    workerId: worker.nodeId,
    schedulerId: scheduler.nodeId,
    error: '',
    ...over
  }
}

function attest (v: Identity, r: SignedEnvelope, over: Partial<Attestation> = {}): SignedEnvelope {
  return signAttestation(v, {
    receiptHash: receiptHash(r),
    jobId: 'job-1',
    workerId: worker.nodeId,
    validatorId: v.nodeId,
    verdict: 'agree',
    method: 'reexecution',
    outputHash: sha256(output),
    reason: '',
    atMs: 1_763_000_000_100,
    ...over
  })
}

interface Parts { cert: Certificate, receiptEnv: SignedEnvelope, chosen: Identity[] }

/** A valid v=2 q=2 re-execution certificate, with its parts to tamper with. */
function parts (): Parts {
  const receiptEnv = signReceipt(worker, receipt())
  const ids = chooseValidators(receipt().jobHash, validators.map((v) => v.nodeId), worker.nodeId, 2)
  const chosen = ids.map((id) => validators.find((v) => v.nodeId === id) as Identity)
  return {
    receiptEnv,
    chosen,
    cert: {
      jobId: 'job-1',
      policy: { method: 'reexecute', validators: 2, quorum: 2 },
      receipt: receiptEnv,
      attestations: chosen.map((v) => attest(v, receiptEnv)),
      chosen: ids,
      schedulerId: scheduler.nodeId,
      issuedAtMs: 1_763_000_000_200,
      resolution: '',
      outputHash: receipt().outputHash
    }
  }
}

function flip (bytes: Uint8Array, i: number): Uint8Array {
  const copy = new Uint8Array(bytes)
  copy[i] = (copy[i] as number) ^ 0x01
  return copy
}

test('a v=2 q=2 certificate verifies offline, with and without the output', (t) => {
  const { cert } = parts()
  const env = signCertificate(scheduler, cert)
  const plain = verifyCertificate(env)
  t.true(plain.valid, plain.valid ? '' : plain.reason)
  const withOutput = verifyCertificate(env, { output })
  t.true(withOutput.valid)
  if (withOutput.valid) t.deepEqual(withOutput.attestations.map((a) => a.validatorId).sort(), [...cert.chosen].sort())
})

test('flipping any byte of the output makes it fail as OUTPUT_MISMATCH', (t) => {
  const env = signCertificate(scheduler, parts().cert)
  for (let i = 0; i < output.length; i++) {
    const r = verifyCertificate(env, { output: flip(output, i) })
    t.false(r.valid)
    if (!r.valid) t.is(r.code, 'OUTPUT_MISMATCH')
  }
})

test('flipping any byte of the receipt fails even when a scheduler re-signs the certificate', (t) => {
  const { cert, receiptEnv } = parts()
  const fields: Array<keyof SignedEnvelope> = ['payload', 'signature', 'publicKey']
  let tried = 0
  for (const field of fields) {
    const bytes = receiptEnv[field] as Uint8Array
    for (let i = 0; i < bytes.length; i++) {
      const tampered = { ...receiptEnv, [field]: flip(bytes, i) }
      const r = verifyCertificate(signCertificate(scheduler, { ...cert, receipt: tampered }))
      tried++
      t.false(r.valid, `${field}[${i}]`)
      // A flipped payload byte also changes the receipt hash the attestations name; either way it fails.
      if (!r.valid) t.true(['RECEIPT_INVALID', 'ATTESTATION_INVALID', 'BAD_CHOSEN', 'JOB_MISMATCH', 'SCHEDULER_MISMATCH'].includes(r.code), `${field}[${i}]: ${r.code}`)
    }
  }
  t.true(tried > 200)
})

test('flipping any byte of any attestation fails as ATTESTATION_INVALID', (t) => {
  const { cert } = parts()
  for (const [k, a] of cert.attestations.entries()) {
    for (const field of ['payload', 'signature', 'publicKey'] as const) {
      for (let i = 0; i < a[field].length; i++) {
        const attestations = [...cert.attestations]
        attestations[k] = { ...a, [field]: flip(a[field], i) }
        const r = verifyCertificate(signCertificate(scheduler, { ...cert, attestations }))
        t.false(r.valid, `attestation ${k} ${field}[${i}]`)
        if (!r.valid) t.is(r.code, 'ATTESTATION_INVALID', `attestation ${k} ${field}[${i}]: ${r.reason}`)
      }
    }
  }
})

test('flipping any byte of the certificate itself fails its signature check', (t) => {
  const env = signCertificate(scheduler, parts().cert)
  for (let i = 0; i < env.payload.length; i += 7) {
    const r = verifyCertificate({ ...env, payload: flip(env.payload, i) })
    t.false(r.valid, `payload[${i}]`)
  }
  const r = verifyCertificate({ ...env, signature: flip(env.signature, 3) })
  t.false(r.valid)
  if (!r.valid) t.is(r.code, 'INVALID_SIGNATURE')
})

test('each forged or missing piece fails with its own reason', (t) => {
  const { cert, receiptEnv, chosen } = parts()
  const code = (c: Certificate, signer: Identity = scheduler): string => {
    const r = verifyCertificate(signCertificate(signer, c))
    return r.valid ? 'valid' : r.code
  }
  const outsider = validators.find((v) => !cert.chosen.includes(v.nodeId)) as Identity
  // Another scheduler cannot certify a receipt this scheduler assigned.
  t.is(code({ ...cert, schedulerId: outsider.nodeId }, outsider), 'SCHEDULER_MISMATCH')
  // An attestation by a validator that was not chosen.
  t.is(code({ ...cert, attestations: [cert.attestations[0] as SignedEnvelope, attest(outsider, receiptEnv)] }), 'ATTESTATION_INVALID')
  // Its claim to be someone else: validator_id != signer.
  const impostor = signEnvelope(outsider, PAYLOAD_TYPES.attestation, encodeAttestation({ ...attestBody(receiptEnv), validatorId: (chosen[1] as Identity).nodeId }))
  t.is(code({ ...cert, attestations: [cert.attestations[0] as SignedEnvelope, impostor] }), 'ATTESTATION_INVALID')
  const impostorCheck = checkAttestation(impostor, { receiptHash: receiptHash(receiptEnv), jobId: 'job-1', workerId: worker.nodeId })
  t.is(impostorCheck.ok ? 'ok' : impostorCheck.code, 'SIGNER_MISMATCH')
  // The worker vouching for itself (listed among the chosen).
  const selfVouch = signAttestation(worker, { ...attestBody(receiptEnv), validatorId: worker.nodeId })
  t.is(code({ ...cert, chosen: [...cert.chosen, worker.nodeId], attestations: [cert.attestations[0] as SignedEnvelope, selfVouch] }), 'BAD_CHOSEN')
  // An attestation replayed from another job's receipt.
  const otherReceipt = signReceipt(worker, receipt({ jobId: 'job-2', jobHash: computeJobHash('job-2', ['sentiment'], sha256(input)) }))
  t.is(code({ ...cert, attestations: [cert.attestations[0] as SignedEnvelope, attest(chosen[1] as Identity, otherReceipt)] }), 'ATTESTATION_INVALID')
  // The same validator twice.
  t.is(code({ ...cert, attestations: [cert.attestations[0] as SignedEnvelope, cert.attestations[0] as SignedEnvelope] }), 'DUPLICATE_VALIDATOR')
  // Too few.
  t.is(code({ ...cert, attestations: [cert.attestations[0] as SignedEnvelope] }), 'QUORUM_NOT_MET')
  // A disagreeing attestation is never part of a certificate.
  t.is(code({ ...cert, attestations: [cert.attestations[0] as SignedEnvelope, attest(chosen[1] as Identity, receiptEnv, { verdict: 'disagree', outputHash: sha256(new Uint8Array([1])), reason: 'output differs' })] }), 'NOT_AGREE')
  // "agree" with another output hash.
  t.is(code({ ...cert, attestations: [cert.attestations[0] as SignedEnvelope, attest(chosen[1] as Identity, receiptEnv, { outputHash: sha256(new Uint8Array([1])) })] }), 'VALIDATOR_OUTPUT_MISMATCH')
  // Signature-only attestations do not satisfy a re-execution policy.
  t.is(code({ ...cert, attestations: [cert.attestations[0] as SignedEnvelope, attest(chosen[1] as Identity, receiptEnv, { method: 'signature', outputHash: new Uint8Array() })] }), 'METHOD_MISMATCH')
  // Chosen out of rank order, or a quorum larger than v.
  t.is(code({ ...cert, chosen: [...cert.chosen].reverse() }), 'BAD_CHOSEN')
  t.is(code({ ...cert, policy: { method: 'reexecute', validators: 2, quorum: 3 } }), 'BAD_POLICY')
  t.is(code({ ...cert, policy: { method: 'none', validators: 0, quorum: 0 } }), 'BAD_POLICY')
  // A failed job's receipt is never certified.
  const failed = signReceipt(worker, receipt({ status: 'failed', exitCode: 1, error: 'exit 1' }))
  t.is(code({ ...cert, receipt: failed, attestations: chosen.map((v) => attest(v, failed)) }), 'RECEIPT_NOT_SUCCESS')
  t.is(code({ ...cert, jobId: 'job-2' }), 'JOB_MISMATCH')
})

function attestBody (r: SignedEnvelope): Attestation {
  return {
    receiptHash: receiptHash(r), jobId: 'job-1', workerId: worker.nodeId, validatorId: '', verdict: 'agree', method: 'reexecution', outputHash: sha256(output), reason: '', atMs: 1
  }
}

test('checkAttestation refuses the validator being the worker even when no chosen set is given', (t) => {
  const r = signReceipt(worker, receipt())
  const c = checkAttestation(signAttestation(worker, { ...attestBody(r), validatorId: worker.nodeId }), { receiptHash: receiptHash(r), jobId: 'job-1', workerId: worker.nodeId })
  t.false(c.ok)
  if (!c.ok) t.is(c.code, 'VALIDATOR_IS_WORKER')
})

test('validators are ranked by sha256(job_hash ‖ utf8(id)), ascending, never the worker', (t) => {
  const jobHash = receipt().jobHash
  const ids = [...validators.map((v) => v.nodeId), worker.nodeId]
  // The rule recomputed from its description, not from the code under test.
  const expected = ids.filter((id) => id !== worker.nodeId)
    .map((id) => ({ id, h: createHash('sha256').update(Buffer.concat([Buffer.from(jobHash), Buffer.from(id, 'utf8')])).digest('hex') }))
    .sort((a, b) => a.h < b.h ? -1 : 1).map((x) => x.id)
  t.deepEqual(rankValidators(jobHash, ids, worker.nodeId), expected)
  t.deepEqual(chooseValidators(jobHash, [...ids].reverse(), worker.nodeId, 2), expected.slice(0, 2), 'the order the candidates arrive in does not matter')
  t.deepEqual(chooseValidators(jobHash, ids, worker.nodeId, 10), expected, 'fewer live than asked: all of them')
  t.true(inRankOrder(jobHash, expected))
  t.false(inRankOrder(jobHash, [...expected].reverse()))
  // Another job ranks them differently (with 4 validators, some job among a few differs).
  const orders = new Set(['job-2', 'job-3', 'job-4', 'job-5'].map((j) => rankValidators(computeJobHash(j, ['x'], sha256(input)), ids, worker.nodeId).join(',')))
  t.true(orders.size > 1)
})

test('policies: defaults fill in, limits say what to change', (t) => {
  const limits = { defaultMethod: 'none' as const, defaultValidators: 2, maxValidators: 5 }
  t.deepEqual(resolvePolicy(null, limits), { method: 'none', validators: 0, quorum: 0 })
  t.deepEqual(resolvePolicy({ method: 'reexecute', validators: 0, quorum: 0 }, limits), { method: 'reexecute', validators: 2, quorum: 2 })
  t.deepEqual(resolvePolicy({ method: 'reexecute', validators: 3, quorum: 2 }, limits), { method: 'reexecute', validators: 3, quorum: 2 })
  t.deepEqual(resolvePolicy({ method: '', validators: 0, quorum: 0 }, { ...limits, defaultMethod: 'signature' }), { method: 'signature', validators: 2, quorum: 2 })
  t.throws(() => resolvePolicy({ method: 'reexecute', validators: 6, quorum: 1 }, limits), { instanceOf: InvalidPolicyError, message: /at most 5 \(verification.max_validators\)/ })
  t.throws(() => resolvePolicy({ method: 'reexecute', validators: 2, quorum: 3 }, limits), { instanceOf: InvalidPolicyError, message: /quorum 3 is more than its 2 validators/ })
  t.throws(() => resolvePolicy({ method: 'vote', validators: 2, quorum: 1 }, limits), { instanceOf: InvalidPolicyError, message: /one of none, signature, reexecute/ })
})

test('resolution validators_output: q validators re-ran the disputed job to the same other output, and that output is certified', (t) => {
  const p = parts()
  const truth = new TextEncoder().encode('{"label":"negative"}\n')
  const cert: Certificate = {
    ...p.cert,
    resolution: 'validators_output',
    outputHash: sha256(truth),
    attestations: p.chosen.map((v) => attest(v, p.receiptEnv, { verdict: 'disagree', outputHash: sha256(truth), reason: 'the re-execution gave a different output' }))
  }
  const ok = verifyCertificate(signCertificate(scheduler, cert), { output: truth })
  t.true(ok.valid, ok.valid ? '' : ok.reason)
  // The worker's own output is not what it certifies.
  const worker = verifyCertificate(signCertificate(scheduler, cert), { output })
  t.false(worker.valid)
  if (!worker.valid) t.is(worker.code, 'OUTPUT_MISMATCH')

  const fails = (c: Certificate, code: CertificateInvalidCode, reason: RegExp): void => {
    const r = verifyCertificate(signCertificate(scheduler, c))
    t.false(r.valid)
    if (!r.valid) {
      t.is(r.code, code)
      t.regex(r.reason, reason)
    }
  }
  // One of the validators re-ran to a third output: they did not agree with each other.
  fails({ ...cert, attestations: [cert.attestations[0]!, attest(p.chosen[1]!, p.receiptEnv, { verdict: 'disagree', outputHash: sha256(new Uint8Array([7])) })] }, 'VALIDATOR_OUTPUT_MISMATCH', /another output hash than the certified one/)
  // "agree" attestations do not certify another output.
  fails({ ...cert, attestations: p.cert.attestations }, 'NOT_AGREE', /says agree; the certificate needs disagree/)
  // Certifying the worker's own hash under this resolution is a contradiction.
  fails({ ...cert, outputHash: sha256(output) }, 'BAD_RESOLUTION', /nothing was disputed/)
  // Only re-executing validators have an output of their own.
  fails({ ...cert, policy: { method: 'signature', validators: 2, quorum: 2 } }, 'BAD_RESOLUTION', /needs method "reexecute"/)
  fails({ ...cert, resolution: 'majority' }, 'BAD_RESOLUTION', /must be "" or "validators_output"/)
  // The ordinary resolution must name the receipt's own output hash.
  fails({ ...p.cert, outputHash: sha256(truth) }, 'BAD_RESOLUTION', /differs from the receipt's/)
})

test('method signature: attestations without an output hash of their own certify the receipt', (t) => {
  const p = parts()
  const cert: Certificate = {
    ...p.cert,
    policy: { method: 'signature', validators: 2, quorum: 2 },
    attestations: p.chosen.map((v) => attest(v, p.receiptEnv, { method: 'signature', outputHash: new Uint8Array() }))
  }
  const ok = verifyCertificate(signCertificate(scheduler, cert), { output })
  t.true(ok.valid, ok.valid ? '' : ok.reason)
  // Re-execution attestations do not stand in for receipt checks (or the other way round).
  const mixed = verifyCertificate(signCertificate(scheduler, { ...cert, attestations: [cert.attestations[0]!, p.cert.attestations[1]!] }))
  t.false(mixed.valid)
  if (!mixed.valid) t.is(mixed.code, 'METHOD_MISMATCH')
})
