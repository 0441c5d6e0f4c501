import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import protobuf from 'protobufjs'
import { decodeEnvelope, encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import type { SignedEnvelope } from '../../src/envelope/types.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import {
  RECEIPT_PAYLOAD_TYPE, computeJobHash, decodeReceipt, encodeReceipt, receiptHash, sha256, signReceipt, verifyReceipt, type Receipt
} from '../../src/receipt/index.ts'

const worker = identityFromSeed(new Uint8Array(32).fill(5))
const other = identityFromSeed(new Uint8Array(32).fill(6))
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
    schedulerId: other.nodeId,
    error: '',
    ...over
  }
}

test('encode/decode round-trips every field, including uint64 times and negative exit codes', (t) => {
  const r = receipt({ exitCode: -9, status: 'failed', error: 'killed', finishedAtMs: 2 ** 52, steps: [] })
  t.deepEqual(decodeReceipt(encodeReceipt(r)), r)
  t.deepEqual(decodeReceipt(encodeReceipt(receipt())), receipt())
})

test('receipt bytes are the receipt.proto wire format', (t) => {
  const bytes = encodeReceipt(receipt())
  // Field 1 (job_id, length-delimited) comes first: tag 0x0a, length 5, "job-1".
  t.deepEqual([...bytes.subarray(0, 7)], [0x0a, 5, ...new TextEncoder().encode('job-1')])
  // An independent protobufjs schema with the same field numbers reads it.
  const root = protobuf.parse(`syntax = "proto3";
    message R { string job_id = 1; bytes output_hash = 4; sint32 exit_code = 7; uint64 finished_at_ms = 10; string worker_id = 11; }`, { keepCase: true }).root
  const m = root.lookupType('R').toObject(root.lookupType('R').decode(bytes), { longs: Number })
  t.is(m.job_id, 'job-1')
  t.is(m.worker_id, worker.nodeId)
  t.is(m.finished_at_ms, 1_763_000_000_042)
  t.deepEqual(new Uint8Array(m.output_hash), sha256(output))
})

test('decodeReceipt refuses garbage and out-of-range values with MalformedReceiptError', (t) => {
  const W = protobuf.Writer
  const huge = W.create().uint32((8 << 3) | 0).uint64('18446744073709551615').finish()
  // A well-formed receipt except for its status.
  const badStatus = Buffer.concat([encodeReceipt(receipt()), W.create().uint32((6 << 3) | 2).string('maybe').finish()])
  const inputs = [huge, badStatus, Uint8Array.of(0xff, 0xff), randomBytes(64), new Uint8Array(0)]
  for (let i = 0; i < 500; i++) inputs.push(randomBytes(1 + (i % 200)))
  for (const bytes of inputs) {
    const err = t.throws(() => decodeReceipt(bytes))
    t.is(err?.name, 'MalformedReceiptError')
    t.is((err as { code?: string }).code, 'MALFORMED_RECEIPT')
  }
})

test('decodeReceipt is strict: wire errors are MalformedReceiptError naming the field', (t) => {
  const W = protobuf.Writer
  // worker_id (field 11, a string) sent as a varint 0: a lenient decoder would read an empty string.
  const wrongWire = Buffer.concat([encodeReceipt(receipt()), W.create().uint32((11 << 3) | 0).uint32(0).finish()])
  const err = t.throws(() => decodeReceipt(wrongWire))
  t.is(err?.name, 'MalformedReceiptError')
  t.is((err as { field?: string }).field, 'worker_id')
  // A step whose exit_code (sint32) arrives as fixed32.
  const step = W.create().uint32((4 << 3) | 5).fixed32(1).finish()
  const badStep = Buffer.concat([encodeReceipt(receipt({ steps: [] })), W.create().uint32((5 << 3) | 2).bytes(step).finish()])
  t.is((t.throws(() => decodeReceipt(badStep)) as { field?: string }).field, 'steps.exit_code')
  // A time beyond 2^53 cannot be held exactly.
  const late = Buffer.concat([encodeReceipt(receipt()), W.create().uint32((10 << 3) | 0).uint64('9007199254740993').finish()])
  t.is((t.throws(() => decodeReceipt(late)) as { field?: string }).field, 'finished_at_ms')
})

test('receiptHash is sha256 of the exact signed Receipt bytes, whoever re-encodes the envelope', (t) => {
  const env = signReceipt(worker, receipt())
  const h = receiptHash(env)
  t.deepEqual(h, new Uint8Array(createHash('sha256').update(encodeReceipt(receipt())).digest()))
  t.is(h.length, 32)
  t.deepEqual(receiptHash(decodeEnvelope(encodeEnvelope(env))), h)
  t.notDeepEqual(receiptHash(signReceipt(worker, receipt({ latencyMs: 43 }))), h)
})

test('computeJobHash is sha256 of the documented length-prefixed encoding', (t) => {
  const inputHash = sha256(input)
  const manual = createHash('sha256')
    .update('inframind-job-v1')
    .update(Uint8Array.of(5)).update('job-1')
    .update(Uint8Array.of(2))
    .update(Uint8Array.of(4)).update('echo')
    .update(Uint8Array.of(9)).update('sentiment')
    .update(Uint8Array.of(32)).update(inputHash)
    .digest()
  t.deepEqual(Buffer.from(computeJobHash('job-1', ['echo', 'sentiment'], inputHash)), manual)
  // Boundaries between ids matter.
  t.notDeepEqual(computeJobHash('j', ['ab', 'c'], inputHash), computeJobHash('j', ['a', 'bc'], inputHash))
  t.notDeepEqual(computeJobHash('j', ['a'], inputHash), computeJobHash('ja', [], inputHash))
  t.is(computeJobHash('j', [], inputHash).length, 32)
})

test('a signed receipt verifies and returns the decoded receipt', (t) => {
  const env = signReceipt(worker, receipt())
  t.is(env.payloadType, RECEIPT_PAYLOAD_TYPE)
  const res = verifyReceipt(env)
  t.true(res.valid)
  if (res.valid) t.deepEqual(res.receipt, receipt())
})

test('flipping any single byte of the payload or signature invalidates the receipt', (t) => {
  const env = signReceipt(worker, receipt())
  for (const field of ['payload', 'signature'] as const) {
    for (let i = 0; i < env[field].length; i++) {
      for (const mask of [0x01, 0x80]) {
        const bytes = new Uint8Array(env[field])
        bytes[i] ^= mask
        const res = verifyReceipt({ ...env, [field]: bytes })
        t.false(res.valid, `${field}[${i}] ^ ${mask}`)
      }
    }
  }
  t.true(verifyReceipt(env).valid, 'the original still verifies')
})

test('swapping the public key invalidates the receipt', (t) => {
  const env = signReceipt(worker, receipt())
  for (const key of [other.publicKey, new Uint8Array(32), randomBytes(32)]) {
    const res = verifyReceipt({ ...env, publicKey: key })
    t.false(res.valid)
    if (!res.valid) t.true(['INVALID_SIGNATURE', 'MALFORMED_ENVELOPE'].includes(res.code))
  }
})

test('a receipt signed by someone other than its worker is WORKER_MISMATCH', (t) => {
  const forged = signEnvelope(other, RECEIPT_PAYLOAD_TYPE, encodeReceipt(receipt()))
  const res = verifyReceipt(forged)
  t.false(res.valid)
  if (!res.valid) t.is(res.code, 'WORKER_MISMATCH')
  t.is(t.throws(() => signReceipt(other, receipt()))?.name, 'MalformedReceiptError')
})

test('another payload type and an undecodable payload are reported by code', (t) => {
  const wrongType = signEnvelope(worker, 'inframind/attestation/v1', encodeReceipt(receipt()))
  const r1 = verifyReceipt(wrongType)
  t.false(r1.valid)
  if (!r1.valid) t.is(r1.code, 'PAYLOAD_TYPE_MISMATCH')
  const junk = signEnvelope(worker, RECEIPT_PAYLOAD_TYPE, Uint8Array.of(0xff, 0x01))
  const r2 = verifyReceipt(junk)
  t.false(r2.valid)
  if (!r2.valid) t.is(r2.code, 'MALFORMED_RECEIPT')
})

test('output and input hashes are checked when given', (t) => {
  const env = signReceipt(worker, receipt())
  t.true(verifyReceipt(env, { output }).valid)
  t.true(verifyReceipt(env, { output, input }).valid)
  const r1 = verifyReceipt(env, { output: new TextEncoder().encode('{"label":"negative"}\n') })
  t.false(r1.valid)
  if (!r1.valid) t.is(r1.code, 'OUTPUT_MISMATCH')
  const r2 = verifyReceipt(env, { output: new Uint8Array(0) })
  t.false(r2.valid)
  const r3 = verifyReceipt(env, { input: new Uint8Array(1) })
  t.false(r3.valid)
  if (!r3.valid) t.is(r3.code, 'INPUT_MISMATCH')
})

test('verifyReceipt never throws on garbage', (t) => {
  const env = signReceipt(worker, receipt())
  const garbage: unknown[] = [
    null, undefined, 0, 'x', [], {}, { ...env, payload: null }, { ...env, signature: new Uint8Array(3) },
    { ...env, payloadType: undefined }, { payloadType: RECEIPT_PAYLOAD_TYPE, payload: randomBytes(50), publicKey: randomBytes(32), signature: randomBytes(64) }
  ]
  for (const g of garbage) {
    t.notThrows(() => verifyReceipt(g as SignedEnvelope))
    t.false(verifyReceipt(g as SignedEnvelope).valid)
  }
})
