import test from 'ava'
import { randomBytes } from 'node:crypto'
import { signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { encodeOutputChunk, PAYLOAD_TYPES } from '../../src/protocol/index.ts'
import { sealTo, SEAL_CONTEXTS } from '../../src/seal/index.ts'
import { outputDesk } from '../../src/scheduler/output.ts'
import type { RemoteOutput } from '../../src/gateway/types.ts'

// The scheduler's check of a worker's live output chunk, rule by rule (the mesh path end to end is in
// test/integration/streaming.test.ts).

const scheduler = identityFromSeed(randomBytes(32))
const worker = identityFromSeed(randomBytes(32))
const other = identityFromSeed(randomBytes(32))
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

function chunk (fields: { signer?: typeof worker, workerId?: string, schedulerId?: string, jobId?: string, offset?: number, atMs?: number, sealedData?: Uint8Array, data?: string, payloadType?: string } = {}) {
  const jobId = fields.jobId ?? 'job-1'
  return signEnvelope(fields.signer ?? worker, fields.payloadType ?? PAYLOAD_TYPES.outputChunk, encodeOutputChunk({
    jobId,
    workerId: fields.workerId ?? worker.nodeId,
    schedulerId: fields.schedulerId ?? scheduler.nodeId,
    offset: fields.offset ?? 0,
    sealedData: fields.sealedData ?? sealTo(scheduler.nodeId, bytes(fields.data ?? 'hello'), SEAL_CONTEXTS.outputChunk(jobId)),
    atMs: fields.atMs ?? Date.now()
  }))
}

function desk () {
  const d = outputDesk({ identity: scheduler, maxClockSkewMs: 30_000 })
  const got: RemoteOutput[] = []
  let current = worker.nodeId
  const close = d.open('job-1', () => current, (c) => got.push(c))
  return { d, got, close, setWorker: (id: string) => { current = id } }
}

test('the assigned worker\'s chunk is opened and delivered with its offset', (t) => {
  const { d, got } = desk()
  t.deepEqual(d.accept(chunk({ offset: 5, data: 'abc' })), { accepted: true, reason: '' })
  t.is(got.length, 1)
  t.is(got[0]?.offset, 5)
  t.is(got[0]?.workerId, worker.nodeId)
  t.is(new TextDecoder().decode(got[0]?.data), 'abc')
})

test('each rule refuses with its reason and delivers nothing', (t) => {
  const { d, got, close, setWorker } = desk()
  const refused = (env: ReturnType<typeof chunk>, reason: RegExp): void => {
    const v = d.accept(env)
    t.false(v.accepted)
    t.regex(v.reason, reason)
  }
  refused(chunk({ payloadType: PAYLOAD_TYPES.jobResult }), /payload type/)
  refused({ ...chunk(), payload: new Uint8Array([0xff, 0xff, 0xff]) }, /malformed output chunk/)
  refused(chunk({ schedulerId: other.nodeId }), /not by this scheduler/)
  refused(chunk({ jobId: 'job-2' }), /no job job-2/)
  refused(chunk({ signer: other, workerId: other.nodeId }), /is not with/)
  refused(chunk({ signer: other }), /signed by/)
  refused({ ...chunk(), signature: new Uint8Array(64) }, /bad signature/)
  refused(chunk({ atMs: Date.now() - 120_000 }), /clock/)
  refused(chunk({ sealedData: sealTo(other.nodeId, bytes('x'), SEAL_CONTEXTS.outputChunk('job-1')) }), /do not open/)
  refused(chunk({ sealedData: sealTo(scheduler.nodeId, bytes('x'), SEAL_CONTEXTS.outputChunk('job-other')) }), /do not open/)
  // The job moved to another worker (or to none): the first one is not heard any more.
  setWorker('')
  refused(chunk(), /is not with/)
  setWorker(worker.nodeId)
  close()
  refused(chunk(), /no job job-1/)
  t.is(got.length, 0)
})
