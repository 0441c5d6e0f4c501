import test from 'ava'
import protobuf from 'protobufjs'
import { findViolation, messageType, wireViolation, MAX_DEPTH, UnknownMessageTypeError } from '../../src/protocol/index.ts'

const submit = messageType('inframind.v1.SubmitJobRequest')
const W = (): protobuf.Writer => protobuf.Writer.create()
const tag = (field: number, wire: number): number => (field << 3) | wire

test('message types come from the one loaded Root; unknown names throw UnknownMessageTypeError', (t) => {
  t.is(messageType('inframind.v1.SubmitJobRequest'), submit)
  t.truthy(messageType('inframind.v1.GetInfoRequest'))
  t.truthy(messageType('inframind.v1.Attestation'))
  t.truthy(messageType('grpc.health.v1.HealthCheckRequest'))
  const err = t.throws(() => messageType('inframind.v1.NoSuchThing'))
  t.true(err instanceof UnknownMessageTypeError)
  t.is((err as UnknownMessageTypeError).code, 'UNKNOWN_MESSAGE_TYPE')
})

test('well-formed messages pass, including unknown fields', (t) => {
  const encoded = submit.encode(submit.fromObject({ containerId: 'echo', input: Buffer.from('hi'), deadlineMs: 1000, jobId: 'x' })).finish()
  t.is(wireViolation(submit, encoded), undefined)
  t.is(wireViolation(submit, new Uint8Array()), undefined)
  // field 99, varint: unknown fields are allowed (forward compatibility).
  t.is(wireViolation(submit, Uint8Array.from([0x98, 0x06, 0x01])), undefined)
  // unknown length-delimited and fixed fields are skipped whole.
  t.is(wireViolation(submit, W().uint32(tag(50, 2)).bytes(Uint8Array.of(1, 2, 3)).uint32(tag(51, 1)).fixed64(7).uint32(tag(52, 5)).fixed32(7).finish()), undefined)
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
  ['truncated fixed64', [0x99, 0x06, 0x01, 0x02]],
  ['varint longer than 10 bytes', [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ['varint beyond 64 bits', [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  ['unknown field with a truncated length', [0x9a, 0x06, 0x05, 0x01]],
  ['string that is not UTF-8', [0x0a, 0x02, 0xc3, 0x28]]
]

for (const [name, bytes] of bad) {
  test(`refused: ${name}`, (t) => {
    const reason = wireViolation(submit, Uint8Array.from(bytes))
    t.is(typeof reason, 'string')
    t.true((reason ?? '').length > 5)
  })
}

test('the violation names the field as the .proto spells it, nested fields by path', (t) => {
  t.is(findViolation(submit, Uint8Array.from([0x0a, 0x02, 0xc3, 0x28]))?.field, 'container_id')
  const heartbeat = messageType('inframind.v1.Heartbeat')
  // stats (field 10) holding load (field 7, double) sent as a varint.
  const inner = W().uint32(tag(7, 0)).uint32(1).finish()
  const v = findViolation(heartbeat, W().uint32(tag(10, 2)).bytes(inner).finish())
  t.is(v?.field, 'stats.load')
  t.regex(v?.reason ?? '', /wire type 0 instead of 1/)
})

test('64-bit integers beyond 2^53 are refused: the decoded number could not hold them exactly', (t) => {
  const u64 = W().uint32(tag(3, 0)).uint64('9007199254740992').finish() // deadline_ms = 2^53
  t.is(findViolation(submit, u64)?.field, 'deadline_ms')
  t.is(wireViolation(submit, W().uint32(tag(3, 0)).uint64(Number.MAX_SAFE_INTEGER).finish()), undefined)
})

test('enum numbers without a name are refused', (t) => {
  const list = messageType('inframind.v1.ListJobsRequest')
  t.is(wireViolation(list, W().uint32(tag(1, 0)).int32(4).finish()), undefined)
  t.regex(wireViolation(list, W().uint32(tag(1, 0)).int32(9).finish()) ?? '', /^state: 9 is not a value of enum JobState/)
  t.regex(wireViolation(list, W().uint32(tag(1, 0)).int32(-1).finish()) ?? '', /-1 is not a value/)
})

test('packed repeated numbers are checked value by value', (t) => {
  const root = new protobuf.Root().add(new protobuf.Type('P').add(new protobuf.Field('xs', 1, 'uint32', 'repeated')))
  root.resolveAll()
  const p = root.lookupType('P')
  t.is(wireViolation(p, p.encode({ xs: [1, 300, 70000] }).finish()), undefined)
  t.is(wireViolation(p, Uint8Array.from([0x08, 0x01, 0x08, 0x02])), undefined, 'unpacked form too')
  // A packed run whose last varint is cut off.
  t.regex(wireViolation(p, Uint8Array.from([0x0a, 0x02, 0x01, 0xff])) ?? '', /truncated varint/)
})

test('map entries are checked: keys and values of the declared types', (t) => {
  const peers = messageType('inframind.v1.ListPeersResponse')
  const entry = (key: (w: protobuf.Writer) => protobuf.Writer, value: (w: protobuf.Writer) => protobuf.Writer): Uint8Array =>
    W().uint32(tag(4, 2)).bytes(value(key(W())).finish()).finish()
  t.is(wireViolation(peers, entry((w) => w.uint32(tag(1, 2)).string('acks:STALE'), (w) => w.uint32(tag(2, 0)).uint64(3))), undefined)
  t.is(findViolation(peers, entry((w) => w.uint32(tag(1, 0)).uint32(1), (w) => w.uint32(tag(2, 0)).uint64(3)))?.field, 'rejected.key')
  t.is(findViolation(peers, entry((w) => w.uint32(tag(1, 2)).string('k'), (w) => w.uint32(tag(2, 2)).string('x')))?.field, 'rejected.value')
  t.regex(wireViolation(peers, W().uint32(tag(4, 0)).uint32(1).finish()) ?? '', /map entry sent with wire type 0/)
})

test('nesting deeper than MAX_DEPTH is refused without recursing further', (t) => {
  const root = new protobuf.Root().add(new protobuf.Type('N').add(new protobuf.Field('n', 1, 'N')))
  root.resolveAll()
  const n = root.lookupType('N')
  let bytes: Uint8Array = new Uint8Array()
  for (let i = 0; i < MAX_DEPTH + 2; i++) bytes = W().uint32(tag(1, 2)).bytes(bytes).finish()
  t.regex(wireViolation(n, bytes) ?? '', /nested more than/)
})

test('random bytes never make the checker throw', (t) => {
  const types = ['inframind.v1.Heartbeat', 'inframind.v1.Job', 'inframind.v1.ListPeersResponse', 'inframind.v1.Receipt'].map(messageType)
  let seed = 42
  // A fixed-seed generator, so a failure reproduces.
  const next = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed >>> 16 & 0xff }
  for (let i = 0; i < 2000; i++) {
    const bytes = Uint8Array.from({ length: 1 + (i % 64) }, next)
    for (const type of types) t.notThrows(() => wireViolation(type, bytes))
  }
})
