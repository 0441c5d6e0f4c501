import test from 'ava'
import * as real from '../../src/protocol/loader.ts'
import * as light from '../../src/cli/proto-light.ts'
import { encode } from '../../src/protocol/codec.ts'
import { findViolation } from '../../src/protocol/strict.ts'

// The CLI bundle's protocol loader (src/cli/proto-light.ts) against the node's (src/protocol/loader.ts):
// the same exports and constants, the same services and method paths, the same bytes on the wire and
// the same objects decoded. A change to the .proto files or the loader options that the light loader
// does not follow fails here, not in an operator's terminal.

const loader = light.lightLoader(real.protoRoot().toJSON())

test('the same exports and constants', (t) => {
  t.deepEqual(Object.keys(light).filter((k) => k !== 'lightLoader').sort(), Object.keys(real).sort())
  t.is(light.PROTO_ROOT, real.PROTO_ROOT)
  t.is(light.PROTO_DIR, real.PROTO_DIR)
  t.is(light.HEALTH_PROTO, real.HEALTH_PROTO)
  t.deepEqual(light.LOADER_OPTIONS, real.LOADER_OPTIONS)
  t.deepEqual(light.protoFiles(), real.protoFiles())
})

test('outside the bundle the module-level functions refuse clearly', (t) => {
  t.throws(() => light.protoRoot(), { name: 'ProtocolLoadError', message: /only inside the CLI bundle/ })
})

const services = (def: Record<string, unknown>): string[] => Object.keys(def).filter((k) => typeof (def[k] as { format?: unknown }).format !== 'string').sort()

test('the same services, methods, paths and streaming flags', (t) => {
  const want = real.packageDefinition()
  const got = loader.packageDefinition()
  t.deepEqual(services(got), services(want))
  t.true(services(got).includes('inframind.v1.Control'))
  for (const name of services(want)) {
    const w = want[name] as unknown as Record<string, Record<string, unknown>>
    const g = got[name] as unknown as Record<string, Record<string, unknown>>
    t.deepEqual(Object.keys(g).sort(), Object.keys(w).sort(), name)
    for (const method of Object.keys(w)) {
      for (const field of ['path', 'requestStream', 'responseStream', 'originalName']) t.is(g[method][field], w[method][field], `${name}.${method} ${field}`)
    }
  }
})

test('every message type: the same bytes encoded and the same object decoded', (t) => {
  const want = real.packageDefinition()
  const got = loader.packageDefinition()
  const samples: Record<string, object> = {
    'inframind.v1.SubmitJobRequest': { containerId: 'echo', containers: ['a', 'b'], input: Buffer.from('hi'), deadlineMs: 5000, jobId: 'j', requiresProof: true, verification: { method: 'reexecute', validators: 2, quorum: 1 } },
    'inframind.v1.NodeStatus': { nodeId: 'n', version: '1', jobsServed: 3, avgLatencyMs: 1.5, roles: ['worker'], containers: [{ id: 'echo', state: 'ready', imagePresent: true, restarts: 2 }] },
    'inframind.v1.Job': { jobId: 'j', state: 'JOB_STATE_SUCCESS', output: Buffer.from([0, 1, 2]), history: [{ state: 'JOB_STATE_RUNNING', atMs: 1_800_000_000_000, detail: 'step 1/2: a' }] },
    'inframind.v1.ListPeersResponse': { nodeId: 'n', peers: [{ nodeId: 'p', latencyMs: -1, score: 0.5 }], rejected: { 'topic:CODE': 3 } }
  }
  let checked = 0
  for (const name of services(want)) {
    const w = want[name] as Record<string, any>
    const g = got[name] as Record<string, any>
    for (const method of Object.keys(w)) {
      for (const side of ['request', 'response'] as const) {
        const type = loader.serviceType(name).methods[method][side === 'request' ? 'resolvedRequestType' : 'resolvedResponseType']
        const sample = samples[type?.fullName.slice(1) ?? ''] ?? {}
        const bytes = w[method][`${side}Serialize`](sample) as Buffer
        t.deepEqual(Buffer.from(g[method][`${side}Serialize`](sample)), Buffer.from(bytes), `${name}.${method} ${side} encode`)
        t.deepEqual(g[method][`${side}Deserialize`](bytes), w[method][`${side}Deserialize`](bytes), `${name}.${method} ${side} decode`)
        checked++
      }
    }
  }
  t.true(checked > 40, `${checked} codecs compared`)
})

test('message and service lookups answer as the real loader does', (t) => {
  t.is(loader.messageType('inframind.v1.Job').fullName, real.messageType('inframind.v1.Job').fullName)
  t.throws(() => loader.messageType('inframind.v1.Nope'), { name: 'UnknownMessageTypeError' })
  t.throws(() => loader.serviceType('inframind.v1.Job'), { name: 'UnknownMessageTypeError' })
})

test('the strict check sees the same types: a well-formed message passes, a malformed one fails at the same field', (t) => {
  // A fresh loader: nothing resolved yet, as in a CLI run that has sent nothing.
  const fresh = light.lightLoader(real.protoRoot().toJSON())
  const good = encode('inframind.v1.Job', { jobId: 'j', state: 'JOB_STATE_SUCCESS', history: [{ state: 'JOB_STATE_RUNNING', atMs: 5, detail: 'x' }], steps: [{ containerId: 'a' }] } as never)
  t.is(findViolation(fresh.messageType('inframind.v1.Job'), good), undefined)
  // A receipt (field 7, a nested SignedEnvelope) whose payload (bytes) arrives as a varint.
  const bad = Uint8Array.from([...good, 0x3a, 0x04, 0x10, 0x02, 0x00, 0x00])
  const want = findViolation(real.messageType('inframind.v1.Job'), bad)
  t.deepEqual(findViolation(fresh.messageType('inframind.v1.Job'), bad), want)
  t.is(want?.field, 'receipt.payload')
})
