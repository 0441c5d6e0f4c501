import test from 'ava'
import { randomBytes } from 'node:crypto'
import {
  decodeEnvelope, encodeEnvelope, envelopeFromJson, envelopeToJson, signEnvelope, signingInput, verifyEnvelope
} from '../../src/envelope/index.ts'
import type { SignedEnvelope } from '../../src/envelope/types.ts'
import { signEnvelopeNacl, verifyEnvelopeNacl } from '../../src/envelope/reference.ts'
import { identityFromSeed } from '../../src/identity/index.ts'

const alice = identityFromSeed(new Uint8Array(32).fill(1))
const bob = identityFromSeed(new Uint8Array(32).fill(2))
const TYPE = 'inframind/test/v1'
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

function errorOf (fn: () => unknown): { name?: string, code?: string, field?: string } | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return err as { name?: string, code?: string, field?: string }
  }
}

test('signing input is domain ‖ uvarint(len type) ‖ type ‖ uvarint(len payload) ‖ payload', (t) => {
  const payload = new Uint8Array(200).fill(7)
  const expected = Buffer.concat([
    Buffer.from('inframind-envelope-v1'), Buffer.from([3]), Buffer.from('a/b'), Buffer.from([0xc8, 0x01]), Buffer.from(payload)
  ])
  t.deepEqual(Buffer.from(signingInput('a/b', payload)), expected)
  t.deepEqual(Buffer.from(signingInput('', new Uint8Array(0))), Buffer.concat([Buffer.from('inframind-envelope-v1'), Buffer.from([0, 0])]))
})

test('node:crypto and tweetnacl make byte-identical signatures and verify each other', (t) => {
  for (let i = 0; i < 8; i++) {
    const id = identityFromSeed(randomBytes(32))
    const payload = randomBytes(i * 37)
    const fast = signEnvelope(id, TYPE, payload)
    const ref = signEnvelopeNacl(id, TYPE, payload)
    t.deepEqual(Buffer.from(fast.signature), Buffer.from(ref.signature))
    t.deepEqual(Buffer.from(fast.publicKey), Buffer.from(ref.publicKey))
    t.notThrows(() => verifyEnvelope(ref, { payloadType: TYPE }))
    t.notThrows(() => verifyEnvelopeNacl(fast, { payloadType: TYPE }))
  }
})

test('both verifiers refuse a tampered type, payload, signature or key', (t) => {
  const env = signEnvelope(alice, TYPE, enc('hello'))
  const cases: Array<[string, SignedEnvelope]> = [
    ['type', { ...env, payloadType: TYPE + 'x' }],
    ['payload', { ...env, payload: enc('hellp') }],
    ['signature', { ...env, signature: env.signature.map((b, i) => i === 10 ? b ^ 1 : b) }],
    ['key', { ...env, publicKey: bob.publicKey }]
  ]
  for (const [what, bad] of cases) {
    t.is(errorOf(() => verifyEnvelope(bad))?.name, 'InvalidSignatureError', what)
    t.is(errorOf(() => verifyEnvelope(bad))?.code, 'INVALID_SIGNATURE', what)
    t.is(errorOf(() => verifyEnvelopeNacl(bad))?.name, 'InvalidSignatureError', what)
  }
  t.is(errorOf(() => verifyEnvelope(env)), undefined)
})

test('an expected payload type is enforced', (t) => {
  const env = signEnvelope(alice, TYPE, enc('x'))
  const err = errorOf(() => verifyEnvelope(env, { payloadType: 'inframind/receipt/v1' }))
  t.is(err?.name, 'PayloadTypeMismatchError')
  t.is(err?.code, 'PAYLOAD_TYPE_MISMATCH')
  t.is(errorOf(() => verifyEnvelopeNacl(env, { payloadType: 'other' }))?.name, 'PayloadTypeMismatchError')
})

test('wrong key or signature lengths are MalformedEnvelopeError naming the field', (t) => {
  const env = signEnvelope(alice, TYPE, enc('x'))
  const cases: Array<[string, unknown]> = [
    ['public_key', { ...env, publicKey: env.publicKey.subarray(1) }],
    ['signature', { ...env, signature: new Uint8Array(65) }],
    ['signature', { ...env, signature: 'abc' }],
    ['payload', { ...env, payload: 'text' }],
    ['payload_type', { ...env, payloadType: 5 }],
    ['payload_type', { ...env, payloadType: '' }],
    ['', null]
  ]
  for (const [field, bad] of cases) {
    const err = errorOf(() => verifyEnvelope(bad as SignedEnvelope))
    t.is(err?.name, 'MalformedEnvelopeError', field)
    t.is(err?.code, 'MALFORMED_ENVELOPE')
    t.is(err?.field, field)
    t.is(errorOf(() => verifyEnvelopeNacl(bad as SignedEnvelope))?.name, 'MalformedEnvelopeError', field)
  }
})

test('the verifier survives more distinct keys than its cache holds', (t) => {
  const envs = Array.from({ length: 1100 }, (_, i) => {
    const seed = new Uint8Array(32)
    new DataView(seed.buffer).setUint32(0, i + 10)
    return signEnvelope(identityFromSeed(seed), TYPE, enc(`m${i}`))
  })
  for (const env of envs) verifyEnvelope(env)
  // The first keys were evicted; verifying again must rebuild them, not reuse a wrong one.
  verifyEnvelope(envs[0])
  t.is(errorOf(() => verifyEnvelope({ ...envs[0], publicKey: envs[1].publicKey }))?.name, 'InvalidSignatureError')
})

test('protobuf encoding is the SignedEnvelope wire format, and round-trips', (t) => {
  const env = signEnvelope(alice, 'a/b', enc('hi'))
  const bytes = encodeEnvelope(env)
  const expected = Buffer.concat([
    Buffer.from([0x0a, 3]), Buffer.from('a/b'), Buffer.from([0x12, 2]), Buffer.from('hi'),
    Buffer.from([0x1a, 32]), Buffer.from(env.publicKey), Buffer.from([0x22, 64]), Buffer.from(env.signature)
  ])
  t.deepEqual(Buffer.from(bytes), expected)
  const back = decodeEnvelope(bytes)
  t.deepEqual(back, { payloadType: 'a/b', payload: enc('hi'), publicKey: alice.publicKey, signature: env.signature })
  verifyEnvelope(back)
  // Fields in another order and unknown fields are still read (proto3 rules).
  const reordered = Buffer.concat([expected.subarray(9), Buffer.from([0x28, 0x01]), expected.subarray(0, 9)])
  t.deepEqual(decodeEnvelope(reordered), back)
})

test('decoding is strict: a known field with the wrong wire type is refused by name, not half-read', (t) => {
  const bytes = encodeEnvelope(signEnvelope(alice, TYPE, enc('hi')))
  // payload (field 2) again as a varint 0: a lenient decoder would read it as an empty payload.
  const err = errorOf(() => decodeEnvelope(Buffer.concat([bytes, Uint8Array.of((2 << 3) | 0, 0)])))
  t.is(err?.name, 'MalformedEnvelopeError')
  t.is(err?.code, 'MALFORMED_ENVELOPE')
  t.is(err?.field, 'payload')
  // payload_type that is not UTF-8.
  t.is(errorOf(() => decodeEnvelope(Uint8Array.of(0x0a, 0x02, 0xc3, 0x28)))?.field, 'payload_type')
})

test('decoded envelopes do not share memory with the input', (t) => {
  const input = new Uint8Array(encodeEnvelope(signEnvelope(alice, TYPE, enc('hi'))))
  const env = decodeEnvelope(input)
  input.fill(0)
  t.deepEqual(env.payload, enc('hi'))
  verifyEnvelope(env)
})

test('decoding garbage only ever throws MalformedEnvelopeError', (t) => {
  const valid = encodeEnvelope(signEnvelope(alice, TYPE, randomBytes(100)))
  const inputs: Uint8Array[] = [new Uint8Array(0), Uint8Array.of(0xff), Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f)]
  for (let n = 0; n < valid.length; n++) inputs.push(valid.subarray(0, n))
  for (let i = 0; i < 2000; i++) inputs.push(randomBytes(1 + (i % 300)))
  for (let i = 0; i < valid.length; i++) {
    const copy = new Uint8Array(valid)
    copy[i] ^= 0x80
    inputs.push(copy)
  }
  let decoded = 0
  for (const bytes of inputs) {
    const err = errorOf(() => { verifyEnvelope(decodeEnvelope(bytes)) })
    if (err === undefined) decoded++
    else t.true(['MalformedEnvelopeError', 'InvalidSignatureError'].includes(err.name ?? ''), `${err.name}: ${String(err)}`)
  }
  t.is(decoded, 0, 'no corrupted envelope verifies')
  t.is(errorOf(() => decodeEnvelope('nope' as unknown as Uint8Array))?.name, 'MalformedEnvelopeError')
})

test('JSON form round-trips and uses base64', (t) => {
  const env = signEnvelope(alice, TYPE, enc('payload'))
  const json = envelopeToJson(env)
  t.deepEqual(Object.keys(json).sort(), ['payload', 'payload_type', 'public_key', 'signature'])
  t.is(json.payload, Buffer.from('payload').toString('base64'))
  const back = envelopeFromJson(JSON.parse(JSON.stringify(json)))
  t.deepEqual(back, env)
  // camelCase keys (proto3 JSON mapping) are accepted too.
  t.deepEqual(envelopeFromJson({ payloadType: json.payload_type, payload: json.payload, publicKey: json.public_key, signature: json.signature }), env)
})

test('bad JSON envelopes name the wrong field', (t) => {
  const json = envelopeToJson(signEnvelope(alice, TYPE, enc('p')))
  const cases: Array<[string, unknown]> = [
    ['', null], ['', []], ['', 'str'], ['', 42],
    ['payload_type', { ...json, payload_type: undefined }],
    ['payload_type', { ...json, payload_type: 1 }],
    ['payload', { ...json, payload: undefined }],
    ['payload', { ...json, payload: 'not base64!' }],
    ['public_key', { ...json, public_key: Buffer.alloc(31).toString('base64') }],
    ['public_key', { ...json, public_key: '%%%' }],
    ['signature', { ...json, signature: json.signature.slice(4) }],
    ['signature', { ...json, signature: { bytes: 1 } }]
  ]
  for (const [field, bad] of cases) {
    const err = errorOf(() => envelopeFromJson(bad))
    t.is(err?.name, 'MalformedEnvelopeError', JSON.stringify(bad))
    t.is(err?.field, field, JSON.stringify(bad))
  }
})
