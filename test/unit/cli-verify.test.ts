import test from 'ava'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeEnvelope, envelopeToJson, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { RECEIPT_PAYLOAD_TYPE, computeJobHash, encodeReceipt, receiptHash, sha256, signReceipt, type Receipt } from '../../src/receipt/index.ts'
import { chooseValidators, signAttestation, signCertificate } from '../../src/verification/index.ts'
import { runVerify } from '../../src/cli/verify.ts'

const worker = identityFromSeed(new Uint8Array(32).fill(11))
const output = new TextEncoder().encode('hello world\n')
const inputHash = sha256(new TextEncoder().encode('hello world\n'))
const receipt: Receipt = {
  jobId: 'job-42',
  jobHash: computeJobHash('job-42', ['echo'], inputHash),
  inputHash,
  outputHash: sha256(output),
  steps: [{ containerId: 'echo', imageDigest: 'sha256:' + '5'.repeat(64), outputHash: sha256(output), exitCode: 0 }],
  status: 'success',
  exitCode: 0,
  latencyMs: 12,
  startedAtMs: 1_763_000_000_000,
  finishedAtMs: 1_763_000_000_012,
  workerId: worker.nodeId,
  schedulerId: '',
  error: ''
}
const env = signReceipt(worker, receipt)

let dir = ''
test.before(() => { dir = mkdtempSync(join(tmpdir(), 'inframind-verify-')) })
test.after.always(() => { rmSync(dir, { recursive: true, force: true }) })

function file (name: string, content: string | Uint8Array): string {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

async function verify (argv: string[], stdin?: Uint8Array): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await runVerify(argv, {
    out: (s) => { out += s },
    err: (s) => { err += s },
    env: {},
    stdin: async () => stdin ?? new Uint8Array(0)
  })
  return { code, out, err }
}

function tampered (): Record<string, string> {
  const json = envelopeToJson(env)
  const payload = Buffer.from(json.payload, 'base64')
  payload[payload.length - 3] ^= 1
  return { ...json, payload: payload.toString('base64') }
}

test('a valid JSON receipt: exit 0 and a summary', async (t) => {
  const r = await verify([file('valid.json', JSON.stringify(envelopeToJson(env)))])
  t.is(r.code, 0, r.err)
  t.regex(r.out, /^valid\n/)
  t.true(r.out.includes('job-42'))
  t.true(r.out.includes(worker.nodeId))
  t.true(r.out.includes(Buffer.from(sha256(output)).toString('hex')))
})

test('a tampered receipt: exit 1 and "invalid:"', async (t) => {
  const r = await verify([file('tampered.json', JSON.stringify(tampered()))])
  t.is(r.code, 1)
  t.regex(r.out, /^invalid: /)
})

test('--json reports validity and the failure code', async (t) => {
  const ok = await verify([file('v.json', JSON.stringify(envelopeToJson(env))), '--json'])
  t.is(ok.code, 0)
  const okJson = JSON.parse(ok.out)
  t.true(okJson.valid)
  t.is(okJson.job_id, 'job-42')
  t.is(okJson.worker_id, worker.nodeId)
  t.is(okJson.output_hash, Buffer.from(sha256(output)).toString('hex'))
  const bad = await verify([file('t.json', JSON.stringify(tampered())), '--json'])
  t.is(bad.code, 1)
  t.deepEqual({ valid: JSON.parse(bad.out).valid, code: JSON.parse(bad.out).code }, { valid: false, code: 'INVALID_SIGNATURE' })
})

test('a whole `infra job --json` object and a binary protobuf envelope are accepted', async (t) => {
  const job = { job_id: 'job-42', state: 'success', output: 'hello world\n', receipt: envelopeToJson(env) }
  t.is((await verify([file('job.json', JSON.stringify(job, null, 2))])).code, 0)
  t.is((await verify([file('receipt.bin', encodeEnvelope(env))])).code, 0)
  const pending = { job_id: 'job-43', state: 'running', receipt: null }
  const r = await verify([file('pending.json', JSON.stringify(pending))])
  t.is(r.code, 1)
  t.regex(r.out, /^invalid: /)
})

test('--output checks the output hash', async (t) => {
  const receiptFile = file('r.json', JSON.stringify(envelopeToJson(env)))
  const good = await verify([receiptFile, '--output', file('out.txt', output)])
  t.is(good.code, 0)
  t.true(good.out.includes('matches --output'))
  const bad = await verify([receiptFile, '--output', file('other.txt', 'hello world!\n'), '--json'])
  t.is(bad.code, 1)
  t.is(JSON.parse(bad.out).code, 'OUTPUT_MISMATCH')
})

test('- reads stdin', async (t) => {
  t.is((await verify(['-'], new TextEncoder().encode(JSON.stringify(envelopeToJson(env))))).code, 0)
  t.is((await verify(['-'], encodeEnvelope(env))).code, 0)
  t.is((await verify(['-'], new Uint8Array(0))).code, 1)
})

test('garbage files are invalid (1), not crashes', async (t) => {
  for (const [name, content] of [
    ['empty', ''], ['text', 'hello'], ['badjson', '{"payload_type": '], ['obj', '{"a": 1}'],
    ['badb64', JSON.stringify({ ...envelopeToJson(env), signature: '!!!' })], ['bin', Buffer.from([0x0a, 0xff, 0xff])],
    ['jobstr', '{"job": "x"}']
  ] as const) {
    const r = await verify([file(name, content)])
    t.is(r.code, 1, name)
    t.regex(r.out, /^invalid: /, name)
  }
})

test('files are decoded strictly: bytes a lenient decoder would half-read are refused by the field at fault', async (t) => {
  // worker_id (field 11, a string) sent as a varint: protobufjs alone would read it as an empty string.
  const payload = Buffer.concat([encodeReceipt(receipt), Uint8Array.of((11 << 3) | 0, 0)])
  const signed = signEnvelope(worker, RECEIPT_PAYLOAD_TYPE, payload)
  const r = await verify([file('odd-payload.json', JSON.stringify(envelopeToJson(signed))), '--json'])
  t.is(r.code, 1)
  t.is(JSON.parse(r.out).code, 'MALFORMED_RECEIPT')
  t.regex(JSON.parse(r.out).reason, /worker_id/)
  // The envelope's payload (field 2, bytes) repeated as a varint: the same in the binary form.
  const bin = await verify([file('odd-envelope.bin', Buffer.concat([encodeEnvelope(env), Uint8Array.of((2 << 3) | 0, 0)])), '--json'])
  t.is(bin.code, 1)
  t.is(JSON.parse(bin.out).code, 'MALFORMED_ENVELOPE')
  t.regex(JSON.parse(bin.out).reason, /payload/)
})

test('usage errors exit 2', async (t) => {
  t.is((await verify([])).code, 2)
  t.is((await verify(['a', 'b'])).code, 2)
  t.is((await verify(['--nope', 'x'])).code, 2)
  const missing = await verify([join(dir, 'does-not-exist.json')])
  t.is(missing.code, 2)
  t.true(missing.err.includes('does-not-exist.json'))
  t.is((await verify([file('ok.json', JSON.stringify(envelopeToJson(env))), '--output', join(dir, 'nope')])).code, 2)
})

test('a certificate file: exit 0 with the policy and who agreed; a flipped output byte or attestation: exit 1 with the reason', async (t) => {
  const scheduler = identityFromSeed(new Uint8Array(32).fill(12))
  const validators = [identityFromSeed(new Uint8Array(32).fill(13)), identityFromSeed(new Uint8Array(32).fill(14))]
  const assigned = signReceipt(worker, { ...receipt, schedulerId: scheduler.nodeId })
  const chosen = chooseValidators(receipt.jobHash, validators.map((v) => v.nodeId), worker.nodeId, 2)
  const attestations = chosen.map((id) => signAttestation(validators.find((v) => v.nodeId === id)!, {
    receiptHash: receiptHash(assigned), jobId: receipt.jobId, workerId: worker.nodeId, validatorId: id, verdict: 'agree', method: 'reexecution', outputHash: sha256(output), reason: '', atMs: 1
  }))
  const cert = { jobId: receipt.jobId, policy: { method: 'reexecute', validators: 2, quorum: 2 }, receipt: assigned, attestations, chosen, schedulerId: scheduler.nodeId, issuedAtMs: 2, resolution: '', outputHash: sha256(output) }
  const certFile = file('cert.json', JSON.stringify(envelopeToJson(signCertificate(scheduler, cert))))
  const outFile = file('cert-out.bin', output)
  const ok = await verify([certFile, '--output', outFile])
  t.is(ok.code, 0, ok.out + ok.err)
  t.regex(ok.out, /valid certificate/)
  t.regex(ok.out, /reexecute, 2 of 2 validators/)
  t.regex(ok.out, /matches --output/)
  const json = JSON.parse((await verify([certFile, '--json'])).out) as { valid: boolean, kind: string, attested_by: string[] }
  t.true(json.valid)
  t.is(json.kind, 'certificate')
  t.deepEqual([...json.attested_by].sort(), [...chosen].sort())

  const bad = new Uint8Array(output)
  bad[0] = (bad[0] as number) ^ 1
  const wrongOut = await verify([certFile, '--output', file('cert-bad-out.bin', bad)])
  t.is(wrongOut.code, 1)
  t.regex(wrongOut.out, /invalid certificate: OUTPUT_MISMATCH/)

  const forged = { ...attestations[1]!, signature: new Uint8Array(attestations[1]!.signature) }
  forged.signature[5] = (forged.signature[5] as number) ^ 1
  const forgedFile = file('cert-forged.json', JSON.stringify(envelopeToJson(signCertificate(scheduler, { ...cert, attestations: [attestations[0]!, forged] }))))
  const r = await verify([forgedFile])
  t.is(r.code, 1)
  t.regex(r.out, /invalid certificate: ATTESTATION_INVALID: attestation 2: INVALID_SIGNATURE/)
})
