import test from 'ava'
import protobuf from 'protobufjs'
import {
  decodeStrict, encode, messageType, packageDefinition, protoRoot, MalformedMessageError, PAYLOAD_MESSAGES, PROTO_PACKAGE,
  encodeHeartbeat, decodeHeartbeat, encodeAssignment, decodeAssignment, encodeAck, decodeAck, encodeJobResult, decodeJobResult,
  encodeAttestation, decodeAttestation, encodeAssignmentSecret, decodeAssignmentSecret, encodeFetchRequest, decodeFetchRequest, encodeFetchResponse, decodeFetchResponse,
  type Assignment, type Attestation, type FetchStatus, type Heartbeat, type MessageName, type MessageTypes
} from '../../src/protocol/index.ts'

/** A value of `type` with every field set to something other than its default, so a dropped field shows. */
function sample (type: protobuf.Type, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const field of type.fieldsArray) {
    const one = (): unknown => {
      const r = field.resolvedType
      if (r instanceof protobuf.Enum) return Object.keys(r.values).at(-1)
      if (r instanceof protobuf.Type) return sample(r, depth + 1)
      switch (field.type) {
        case 'string': return `${field.name}-ü`
        case 'bytes': return Uint8Array.of(field.id, 0, 255)
        case 'bool': return true
        case 'double': case 'float': return 1.5
        case 'int32': case 'sint32': case 'sfixed32': return -field.id
        case 'uint64': case 'fixed64': return 2 ** 52 + field.id
        case 'int64': case 'sint64': case 'sfixed64': return -(2 ** 40) - field.id
        default: return field.id
      }
    }
    if (field.map) out[field.name] = { a: one(), b: one() }
    else if (field.repeated) out[field.name] = [one(), one()]
    else if (field.resolvedType instanceof protobuf.Type && depth > 2) out[field.name] = null
    else out[field.name] = one()
  }
  return out
}

const pkg = protoRoot().lookup(PROTO_PACKAGE) as protobuf.Namespace
const allMessages = pkg.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type)

test('every message round-trips through encode and decodeStrict, every field intact', (t) => {
  t.true(allMessages.length > 30)
  for (const type of allMessages) {
    const name = type.fullName.slice(1) as MessageName
    const value = sample(type) as unknown as MessageTypes[typeof name]
    t.deepEqual(decodeStrict(name, encode(name, value)), value, name)
  }
})

test('unset fields decode to their defaults: "", 0, false, [], {}, null, empty bytes, the zero enum', (t) => {
  const job = decodeStrict('inframind.v1.Job', new Uint8Array())
  t.is(job.jobId, '')
  t.is(job.exitCode, 0)
  t.is(job.state, 'JOB_STATE_UNSPECIFIED')
  t.deepEqual(job.output, new Uint8Array())
  t.is(job.receipt, null)
  t.deepEqual(job.history, [])
  t.deepEqual(decodeStrict('inframind.v1.ListPeersResponse', new Uint8Array()).rejected, {})
})

test('decoded bytes are plain Uint8Arrays that do not share memory with the input', (t) => {
  const bytes = encode('inframind.v1.SignedEnvelope', { payloadType: 't', payload: Uint8Array.of(1, 2, 3), publicKey: new Uint8Array(), signature: new Uint8Array() })
  const input = new Uint8Array(bytes)
  const env = decodeStrict('inframind.v1.SignedEnvelope', input)
  t.is(Object.getPrototypeOf(env.payload), Uint8Array.prototype)
  t.is(Object.getPrototypeOf(env.publicKey), Uint8Array.prototype)
  input.fill(0)
  t.deepEqual(env.payload, Uint8Array.of(1, 2, 3))
  // A Buffer input (what gRPC and fs hand out) decodes the same.
  t.deepEqual(decodeStrict('inframind.v1.SignedEnvelope', Buffer.from(bytes)).payload, Uint8Array.of(1, 2, 3))
})

test('malformed bytes are MalformedMessageError naming the message type and the field', (t) => {
  const err = t.throws(() => decodeHeartbeat(Uint8Array.of(0x10, 0xff)), { instanceOf: MalformedMessageError })
  t.is(err?.name, 'MalformedMessageError')
  t.is(err?.code, 'MALFORMED_MESSAGE')
  t.is(err?.messageType, 'inframind.v1.Heartbeat')
  t.is(err?.field, 'at_ms')
  t.regex(err?.message ?? '', /^not a valid inframind\.v1\.Heartbeat: at_ms: truncated varint/)
  t.throws(() => decodeStrict('inframind.v1.Heartbeat', 'nope' as unknown as Uint8Array), { instanceOf: MalformedMessageError })
})

const heartbeat: Heartbeat = {
  nodeId: '12D3KooWnode', atMs: 1_763_000_000_000, roles: ['worker'], containers: ['echo', 'json'], cpuCores: 8,
  memoryBytes: 16 * 2 ** 30, gpus: 0, grpcAddress: '0.0.0.0:9000', freeSlots: 2,
  stats: { activeJobs: 1, queuedJobs: 0, succeeded: 10, failed: 1, avgLatencyMs: 12.5, cacheHitRatio: 1, load: 0.5 }, intervalMs: 2000,
  rosterVersion: 7
}
const assignment: Assignment = {
  jobId: 'job-1', containers: ['a', 'b'], sealed: Uint8Array.of(1, 2, 3), inputHash: new Uint8Array(32).fill(9), inputSize: 1,
  inputProvider: '', workerId: 'w', schedulerId: 's', issuedAtMs: 1, deadlineAtMs: 2, requiresProof: false,
  replyAddress: '127.0.0.1:9000', purpose: '', checkedReceipt: null
}
const attestation: Attestation = {
  receiptHash: new Uint8Array(32).fill(1), jobId: 'job-1', workerId: 'w', validatorId: 'v', verdict: 'agree',
  method: 'signature', outputHash: new Uint8Array(), reason: '', atMs: 5
}

test('the named codecs of the signed payloads round-trip', (t) => {
  t.deepEqual(decodeHeartbeat(encodeHeartbeat(heartbeat)), heartbeat)
  t.deepEqual(decodeHeartbeat(encodeHeartbeat({ ...heartbeat, stats: null })).stats, null)
  t.deepEqual(decodeAssignment(encodeAssignment(assignment)), assignment)
  const secret = { input: Uint8Array.of(1), inputInline: true, origin: { ip: '10.0.0.1', peerId: '', delegate: '', gatewayId: 'g' } }
  t.deepEqual(decodeAssignmentSecret(encodeAssignmentSecret(secret)), secret)
  t.deepEqual(decodeAssignmentSecret(encodeAssignmentSecret({ ...secret, origin: null })).origin, null)
  const ack = { jobId: 'job-1', workerId: 'w', schedulerId: 's', accepted: false, code: 'QUEUE_FULL', reason: 'full', atMs: 3, duplicate: true, attestation: null }
  t.deepEqual(decodeAck(encodeAck(ack)), ack)
  const notice = {
    receipt: { payloadType: 'inframind/receipt/v1', payload: Uint8Array.of(1), publicKey: new Uint8Array(32), signature: new Uint8Array(64) },
    sealedOutput: Uint8Array.of(7), outputInline: true, outputSize: 1, atMs: 4, attestation: null
  }
  t.deepEqual(decodeJobResult(encodeJobResult(notice)), notice)
  t.deepEqual(decodeAttestation(encodeAttestation(attestation)), attestation)
  t.deepEqual(decodeFetchRequest(encodeFetchRequest({ hash: new Uint8Array(32) })), { hash: new Uint8Array(32) })
  const response = { status: 'TOO_LARGE' as const, data: new Uint8Array(), error: '70000000 bytes' }
  t.deepEqual(decodeFetchResponse(encodeFetchResponse(response)), response)
})

test('a fetch response with a status outside OK, NOT_FOUND, TOO_LARGE, ERROR is malformed', (t) => {
  const bytes = encode('inframind.v1.FetchResponse', { status: 'MAYBE', data: new Uint8Array(), error: '' })
  const err = t.throws(() => decodeFetchResponse(bytes), { instanceOf: MalformedMessageError })
  t.is(err?.field, 'status')
  // The decoded status is the closed union, so a switch over it is checked by the compiler.
  const status: FetchStatus = decodeFetchResponse(encodeFetchResponse({ status: 'OK', data: new Uint8Array(), error: '' })).status
  t.is(status, 'OK')
})

test('each payload type names a message of the loaded .proto files', (t) => {
  for (const name of Object.values(PAYLOAD_MESSAGES)) t.truthy(messageType(name))
})

test('gRPC (proto-loader) and the codecs read each other\'s bytes identically', (t) => {
  const def = packageDefinition()['inframind.v1.Heartbeat'] as unknown as { serialize: (v: unknown) => Buffer, deserialize: (b: Buffer) => unknown }
  const bytes = encodeHeartbeat(heartbeat)
  t.deepEqual(new Uint8Array(def.serialize(heartbeat)), bytes)
  t.like(def.deserialize(Buffer.from(bytes)) as Record<string, unknown>, { ...heartbeat, stats: { ...heartbeat.stats } })
})
