import test from 'ava'
import { messageType, wireViolation } from '../../src/wire/check.ts'

const submit = messageType('inframind.v1.SubmitJobRequest')!
const getInfo = messageType('inframind.v1.GetInfoRequest')!

test('the request types are found', (t) => {
  t.truthy(submit)
  t.truthy(getInfo)
  t.truthy(messageType('inframind.v1.ListJobsRequest'))
  t.is(messageType('inframind.v1.NoSuchThing'), undefined)
})

test('well-formed messages pass, including unknown fields', (t) => {
  const encoded = submit.encode(submit.fromObject({ containerId: 'echo', input: Buffer.from('hi'), deadlineMs: 1000, jobId: 'x' })).finish()
  t.is(wireViolation(submit, encoded), undefined)
  t.is(wireViolation(submit, new Uint8Array()), undefined)
  // field 99, varint: unknown fields are allowed (forward compatibility).
  t.is(wireViolation(submit, Uint8Array.from([0x98, 0x06, 0x01])), undefined)
})

const bad: Array<[string, number[]]> = [
  ['string field sent as varint (wrong type)', [0x08, 0x01]],
  ['uint64 field sent as length-delimited', [0x1a, 0x01, 0x00]],
  ['length beyond the end', [0x0a, 0x05, 0x61]],
  ['huge length', [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]],
  ['group wire type', [0x0b]],
  ['invalid wire type 7', [0x0f, 0x01]],
  ['field number 0', [0x00, 0x01]],
  ['truncated varint', [0x18, 0xff]],
  ['truncated fixed64', [0x99, 0x06, 0x01, 0x02]]
]

for (const [name, bytes] of bad) {
  test(`refused: ${name}`, (t) => {
    const reason = wireViolation(submit, Uint8Array.from(bytes))
    t.is(typeof reason, 'string')
    t.true((reason ?? '').length > 5)
  })
}
