/**
 * Property-based fuzzing of the protocol decoders (fast run; `npm run fuzz` is the long one): gRPC
 * request bodies of every Node and Control method, envelopes, receipts, fetch and roster wire
 * messages. Arbitrary bytes decode or throw a typed error; valid messages round-trip.
 */
import test from 'ava'
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { decodeStrict, encode, messageType, type MessageName } from '../../src/protocol/index.ts'
import { decoderTargets, hostileBytes, isTypedError, messageArbitrary, ourMessageTypes, requestTypes, untypedThrow } from '../../bench/fuzz.ts'

const RUNS = 150

test('the method list covers both services', (t) => {
  const methods = requestTypes()
  t.true(methods.some((m) => m.service === 'inframind.v1.Node' && m.method === 'SubmitJob' && m.requestType === 'inframind.v1.SubmitJobRequest'))
  t.true(methods.some((m) => m.service === 'inframind.v1.Control' && m.method === 'UpdateRoster'))
  t.true(methods.some((m) => m.serverStream))
})

test('isTypedError tells our errors from the runtime\'s', (t) => {
  t.false(isTypedError(new TypeError('x')))
  t.false(isTypedError(new RangeError('x')))
  t.false(isTypedError(Object.assign(new Error('x'), { code: 'ERR_OUT_OF_RANGE' })))
  t.false(isTypedError('a string'))
  try {
    decodeStrict('inframind.v1.Heartbeat', new Uint8Array([0x0a, 0x05]))
    t.fail('a truncated length decoded')
  } catch (err) {
    t.true(isTypedError(err))
  }
})

for (const target of decoderTargets().filter((d) => !['parseConfig', 'parseSignedRosterText', 'parseReceiptFile'].includes(d.name))) {
  const name = target.name.startsWith('decodeStrict(') ? target.name.slice(13, -1) as MessageName : 'inframind.v1.SignedEnvelope'
  test(`${target.name}: arbitrary bytes decode or throw a typed error`, (t) => {
    fc.assert(fc.property(hostileBytes(name), (bytes) => {
      const err = untypedThrow(target, bytes)
      if (err !== undefined) throw err
    }), { numRuns: RUNS })
    t.pass()
  })
}

// Every message of proto/inframind/v1, the key ones (Heartbeat, Assignment, JobResultNotice,
// SubmitJobRequest) among them: a value the types allow survives encode → strict decode unchanged.
const types = ourMessageTypes()

test('the round-trip list has the key messages', (t) => {
  for (const name of ['inframind.v1.Heartbeat', 'inframind.v1.Assignment', 'inframind.v1.JobResultNotice', 'inframind.v1.SubmitJobRequest']) {
    t.true(types.includes(name as MessageName), name)
  }
})

for (const name of types) {
  test(`${name}: encode → decodeStrict round-trips`, (t) => {
    fc.assert(fc.property(messageArbitrary(messageType(name)), (value) => {
      const back = decodeStrict(name, encode(name, value as never))
      if (!isDeepStrictEqual(back, value)) throw new Error(`decoded differently: ${JSON.stringify(back)}`)
    }), { numRuns: 40 })
    t.pass()
  })
}
