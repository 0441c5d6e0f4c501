import anyTest, { type TestFn } from 'ava'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { decodeEnvelope, encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { encodeAttestation, encodeDisputeRecord, encodeStoredRecord, decodeSyncRequest, decodeSyncResponse, encodeSyncRequest, encodeSyncResponse, PAYLOAD_TYPES, type Certificate } from '../../src/protocol/index.ts'
import { computeJobHash, encodeReceipt, receiptHash, sha256, signReceipt, type Receipt } from '../../src/receipt/index.ts'
import {
  InvalidPageTokenError, InvalidRecordError, MAX_RECORD_BYTES, refusalOf, VERIFY_BATCH_MIN, RecordLogNotStartedError, recordKey, recordLog, rendezvous, sha256Hex,
  type Corruption, type RecordIndex, type RecordLog, type RecordLogInit, type VerifyOutcome
} from '../../src/records/index.ts'
import * as grpc from '@grpc/grpc-js'
import { InvalidRecordRequestError, RecordNotFoundError, verifyArchiveRecord, verifyPool, withEmbedded, type Archive } from '../../src/archive/index.ts'
import { archiveHandlers } from '../../src/api/archive-service.ts'
import { ERROR_CODE_KEY } from '../../src/api/errors.ts'
import { levelStore } from '../../src/store/index.ts'
import type { JobStore } from '../../src/store/types.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.ts'
import { chooseValidators, signAttestation, signCertificate, signDispute } from '../../src/verification/index.ts'

interface Ctx {
  dir: string
  stores: JobStore[]
  logs: RecordLog[]
}

const test = anyTest as TestFn<Ctx>

test.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-records-'))
  t.context.stores = []
  t.context.logs = []
})

test.afterEach.always(async (t) => {
  for (const log of t.context.logs.reverse()) await log.stop()
  for (const store of t.context.stores.reverse()) await store.stop()
  await rm(t.context.dir, { recursive: true, force: true })
})

const text = (s: string): Uint8Array => new TextEncoder().encode(s)

/**
 * A toy kind for the log's own tests: "note" records are "<job>|<node>,<node>|<body>"; a body of
 * "bad" fails verification (so a record can be stored and later judged invalid by a changed rule).
 */
function verifyNote (kind: string, data: Uint8Array): RecordIndex {
  if (kind !== 'note') throw new InvalidRecordError(kind, 'UNKNOWN_KIND', 'only notes')
  const [jobId, nodes, body] = new TextDecoder().decode(data).split('|')
  if (body === undefined || body === 'bad') throw new InvalidRecordError(kind, 'BAD_NOTE', 'not a note')
  return { jobId, nodeIds: nodes === '' ? [] : nodes.split(',') }
}

const note = (job: string, nodes: string[], body: string): { kind: string, data: Uint8Array } => ({ kind: 'note', data: text(`${job}|${nodes.join(',')}|${body}`) })

async function openStore (t: { context: Ctx }): Promise<JobStore> {
  const store = levelStore({ path: path.join(t.context.dir, 'db'), maxResults: 10 })({ logger: silentLogger() })
  t.context.stores.push(store)
  await store.start()
  return store
}

async function openLog (t: { context: Ctx }, store: JobStore, init: Partial<RecordLogInit> = {}, metrics?: Metrics): Promise<RecordLog> {
  const log = recordLog({ name: 'notes', verify: verifyNote, ...init })({ store, logger: silentLogger(), metrics })
  t.context.logs.push(log)
  await log.start()
  return log
}

const tick = async (): Promise<void> => await new Promise((resolve) => setTimeout(resolve, 3))

test('put verifies, stores by sha256 of the data, and dedupes within and across calls', async (t) => {
  const log = await openLog(t, await openStore(t))
  const a = note('job-1', ['n1'], 'a')
  const first = await log.put([a, a, note('job-1', [], 'bad'), { kind: 'other', data: text('x') }])
  t.is(first.stored, 1)
  t.is(first.duplicate, 1)
  t.deepEqual(first.hashes, [sha256Hex(a.data)])
  t.deepEqual(first.refused.map((r) => r.code).sort(), ['INVALID_RECORD:BAD_NOTE', 'INVALID_RECORD:UNKNOWN_KIND'])
  t.is(first.refused[0].hash.length, 64)
  const again = await log.put([a])
  t.is(again.stored, 0)
  t.is(again.duplicate, 1)
  t.is(log.count(), 1)
  t.true(log.bytes() > a.data.byteLength)
  const got = await log.get(sha256Hex(a.data))
  t.truthy(got)
  t.deepEqual(got?.data, a.data)
  t.is(got?.jobId, 'job-1')
  t.deepEqual(got?.nodeIds, ['n1'])
  t.true(await log.has(sha256Hex(a.data)))
  t.false(await log.has(sha256Hex(text('nothing'))))
  t.is(await log.get('not-a-hash'), undefined)
})

test('a record larger than MAX_RECORD_BYTES is refused', async (t) => {
  const log = await openLog(t, await openStore(t))
  const big = note('j', [], 'x'.repeat(MAX_RECORD_BYTES))
  const r = await log.put([big])
  t.is(r.stored, 0)
  t.is(r.refused[0].code, 'RECORD_TOO_LARGE')
})

test('the index comes from verify, never from what a caller says', async (t) => {
  // The log's verify is the only source of index fields: a put carries none, a peer's StoredRecord fields are dropped by the sync.
  const log = await openLog(t, await openStore(t))
  await log.put([note('job-1', ['alice'], 'x')])
  t.is((await log.query({ jobId: 'job-1' })).records.length, 1)
  t.is((await log.query({ nodeId: 'alice' })).records.length, 1)
  t.is((await log.query({ nodeId: 'mallory' })).records.length, 0)
})

test('list walks (stored_at, hash) order and pages with after_hash', async (t) => {
  const log = await openLog(t, await openStore(t))
  const all = Array.from({ length: 25 }, (_, i) => note('j', [], `r${i}`))
  await log.put(all.slice(0, 10))
  await tick()
  await log.put(all.slice(10))
  const seen: string[] = []
  let sinceMs = 0
  let afterHash = ''
  let pages = 0
  for (;;) {
    const page = await log.list({ sinceMs, afterHash, limit: 7 })
    pages++
    seen.push(...page.entries.map((e) => e.hash))
    t.true(page.entries.every((e) => e.kind === 'note'))
    const last = page.entries.at(-1)
    if (!page.more || last === undefined) break
    sinceMs = last.storedAtMs
    afterHash = last.hash
  }
  t.is(pages, 4)
  t.is(new Set(seen).size, 25)
  t.deepEqual([...seen].sort(), all.map((r) => sha256Hex(r.data)).sort())
  // The first ten were stored before the rest, and list shows them first.
  t.deepEqual(seen.slice(0, 10).sort(), all.slice(0, 10).map((r) => sha256Hex(r.data)).sort())
  const entries = (await log.list({ limit: 100 })).entries
  for (let i = 1; i < entries.length; i++) {
    const [a, b] = [entries[i - 1], entries[i]]
    t.true(a.storedAtMs < b.storedAtMs || (a.storedAtMs === b.storedAtMs && a.hash < b.hash))
  }
  const later = await log.list({ sinceMs: entries[10].storedAtMs })
  t.is(later.entries.length, 15)
  t.false(later.more)
})

test('query filters by job, node, kind and time, and pages with tokens', async (t) => {
  const log = await openLog(t, await openStore(t))
  await log.put(Array.from({ length: 12 }, (_, i) => note('job-a', ['n1', i % 2 === 0 ? 'even' : 'odd'], `a${i}`)))
  await tick()
  const between = Date.now()
  await tick()
  await log.put(Array.from({ length: 5 }, (_, i) => note('job-b', ['n1'], `b${i}`)))

  const collect = async (opts: Parameters<RecordLog['query']>[0]): Promise<string[]> => {
    const out: string[] = []
    let pageToken = ''
    do {
      const page = await log.query({ ...opts, pageToken })
      t.true(page.records.length <= (opts?.pageSize ?? 100))
      out.push(...page.records.map((r) => new TextDecoder().decode(r.data)))
      pageToken = page.nextPageToken
    } while (pageToken !== '')
    return out
  }
  t.is((await collect({ jobId: 'job-a', pageSize: 5 })).length, 12)
  t.is((await collect({ nodeId: 'even', pageSize: 4 })).length, 6)
  t.is((await collect({ nodeId: 'n1', jobId: 'job-b' })).length, 5)
  t.is((await collect({ kind: 'note', pageSize: 3 })).length, 17)
  t.is((await collect({ kind: 'other' })).length, 0)
  t.deepEqual((await collect({ sinceMs: between })).map((s) => s.split('|')[0]), Array(5).fill('job-b'))
  t.deepEqual((await collect({ untilMs: between, nodeId: 'n1' })).map((s) => s.split('|')[0]), Array(12).fill('job-a'))
  const first = await log.query({ jobId: 'job-a', pageSize: 12 })
  t.is(first.records.length, 12)
  t.is(first.nextPageToken, '')
  await t.throwsAsync(log.query({ jobId: 'job-a', pageToken: 'bm9wZQ' }), { instanceOf: InvalidPageTokenError })
  // A token of one query is not valid for another.
  const token = (await log.query({ jobId: 'job-a', pageSize: 2 })).nextPageToken
  await t.throwsAsync(log.query({ jobId: 'job-b', pageToken: token }), { code: 'INVALID_PAGE_TOKEN' })
})

test('retention evicts the oldest first past max bytes, and whatever is older than max age', async (t) => {
  const store = await openStore(t)
  const records = Array.from({ length: 20 }, (_, i) => note('j', [], `${i}`.padStart(200, '.')))
  const sizeOfOne = encodeStoredRecord({ kind: 'note', data: records[0].data, storedAtMs: Date.now(), jobId: 'j', nodeIds: [] }).byteLength
  const evicted: number[] = []
  const log = await openLog(t, store, { name: 'bounded', retention: { maxBytes: sizeOfOne * 10 + 5 } })
  log.on('evicted', (e) => evicted.push(e.count))
  for (const r of records) {
    await log.put([r])
    await tick()
  }
  t.is(log.count(), 10)
  t.true(log.bytes() <= sizeOfOne * 10 + 5)
  // The newest ten are kept.
  for (const r of records.slice(0, 10)) t.false(await log.has(sha256Hex(r.data)))
  for (const r of records.slice(10)) t.true(await log.has(sha256Hex(r.data)))
  t.is(evicted.reduce((a, b) => a + b, 0), 10)
  t.is((await log.query({ jobId: 'j', pageSize: 1000 })).records.length, 10)

  const aging = await openLog(t, store, { name: 'aging', retention: { maxAgeMs: 1 } })
  await aging.put([note('j', [], 'old')])
  await tick()
  t.is(await aging.evict(), 1)
  t.is(aging.count(), 0)
  t.is((await aging.list()).entries.length, 0)
})

test('a record corrupted on disk is reported, dropped and never returned', async (t) => {
  const store = await openStore(t)
  const metrics = createMetrics()
  const log = await openLog(t, store, {}, metrics)
  const reports: Corruption[] = []
  log.on('corrupt', (c) => reports.push(c))
  const a = note('job-1', ['n1'], 'a')
  const b = note('job-1', ['n1'], 'b')
  const c = note('job-1', ['n1'], 'c')
  await log.put([a, b, c])
  const [ha, hb, hc] = [a, b, c].map((r) => sha256Hex(r.data))
  const raw = store.section('notes')
  // Garbage bytes under a's key; b's record with c's data (a valid protobuf that hashes to c, not b);
  // c's record with a body its kind's rule now refuses.
  await raw.put(recordKey(ha), Uint8Array.from([0xff, 0xff, 0xff]))
  const bStored = await raw.get(recordKey(hb))
  t.truthy(bStored)
  await raw.put(recordKey(hb), encodeStoredRecord({ kind: 'note', data: c.data, storedAtMs: 1, jobId: 'job-1', nodeIds: ['n1'] }))
  const cBad = text('job-1|n1|bad')
  await raw.put(recordKey(hc), encodeStoredRecord({ kind: 'note', data: cBad, storedAtMs: 1, jobId: 'job-1', nodeIds: ['n1'] }))

  t.is(await log.get(ha), undefined)
  t.deepEqual(await log.read(hb), { status: 'corrupt', reason: 'sha256 of the data is not the hash it is stored under' })
  const q = await log.query({ jobId: 'job-1' })
  t.deepEqual(q.records, [])
  t.deepEqual(q.corrupt, [hc])
  t.deepEqual(reports.map((r) => r.hash).sort(), [ha, hb, hc].sort())
  t.true(reports.every((r) => r.log === 'notes' && r.reason !== ''))
  t.false(await log.has(ha))
  t.false(await log.has(hb))
  t.false(await log.has(hc))
  t.is(log.count(), 0)
  t.regex(await metrics.registry.metrics(), /inframind_records_corrupt_total\{log="notes"\} 3/)
  // A good copy can be stored again afterwards.
  t.is((await log.put([a])).stored, 1)
  t.deepEqual((await log.get(ha))?.data, a.data)
})

test('counts, records and sync cursors survive a restart', async (t) => {
  const store = await openStore(t)
  const log = await openLog(t, store)
  await log.put([note('j', [], '1'), note('j', [], '2')])
  await log.saveCursor('peer-a', { sinceMs: 42, afterHash: 'ab'.repeat(32) })
  const bytes = log.bytes()
  await log.stop()
  const again = await openLog(t, store)
  t.is(again.count(), 2)
  t.is(again.bytes(), bytes)
  t.deepEqual(await again.cursor('peer-a'), { sinceMs: 42, afterHash: 'ab'.repeat(32) })
  t.is(await again.cursor('peer-b'), undefined)
  await again.saveCursor('peer-a', undefined)
  t.is(await again.cursor('peer-a'), undefined)
  // Records stored after a restart still sort after the earlier ones.
  await again.put([note('j', [], '3')])
  const entries = (await again.list()).entries
  t.is(entries.length, 3)
  t.is(entries[2].hash, sha256Hex(note('j', [], '3').data))
})

test('lifecycle: use before start throws, start and stop twice are no-ops', async (t) => {
  const store = await openStore(t)
  const log = recordLog({ name: 'life', verify: verifyNote })({ store, logger: silentLogger() })
  t.context.logs.push(log)
  await t.throwsAsync(log.put([note('j', [], 'x')]), { instanceOf: RecordLogNotStartedError })
  await t.throwsAsync(log.get('00'.repeat(32)), { code: 'RECORD_LOG_NOT_STARTED' })
  await log.start()
  await log.start()
  t.is((await log.put([note('j', [], 'x')])).stored, 1)
  await log.stop()
  await log.stop()
  await t.throwsAsync(log.list(), { code: 'RECORD_LOG_NOT_STARTED' })
})

test('stored events carry the new records, with their index', async (t) => {
  const log = await openLog(t, await openStore(t))
  const seen: string[] = []
  log.on('stored', (e) => seen.push(...e.records.map((r) => `${r.jobId}:${r.nodeIds.join(',')}`)))
  await log.put([note('j1', ['a'], '1'), note('j2', ['b', 'c'], '2')])
  await log.put([note('j1', ['a'], '1')])
  t.deepEqual(seen.sort(), ['j1:a', 'j2:b,c'])
})

// ---- rendezvous ----

const ids = Array.from({ length: 7 }, (_, i) => identityFromSeed(new Uint8Array(32).fill(i + 1)).nodeId)

test('rendezvous ranks by sha256(key ‖ utf8(candidate)), highest first', (t) => {
  const key = sha256(text('a record'))
  const expected = [...ids]
    .map((id) => ({ id, score: createHash('sha256').update(key).update(id, 'utf8').digest('hex') }))
    .sort((a, b) => (a.score < b.score ? 1 : -1))
    .map((x) => x.id)
  t.deepEqual(rendezvous(key, ids, ids.length), expected)
  t.deepEqual(rendezvous(key, ids, 2), expected.slice(0, 2))
  // A string key is its UTF-8.
  t.deepEqual(rendezvous('k', ids, 3), rendezvous(text('k'), ids, 3))
})

test('rendezvous is deterministic, order-free, bounded by k, and moves only the keys of a removed candidate', (t) => {
  const shuffled = [...ids].reverse()
  let moved = 0
  const load = new Map<string, number>()
  for (let i = 0; i < 700; i++) {
    const key = sha256(text(`record ${i}`))
    const top = rendezvous(key, ids, 2)
    t.deepEqual(rendezvous(key, shuffled, 2), top)
    t.deepEqual(rendezvous(key, [...ids, ...ids], 2), top)
    for (const id of top) load.set(id, (load.get(id) ?? 0) + 1)
    const without = rendezvous(key, ids.filter((id) => id !== ids[0]), 2)
    if (top.includes(ids[0])) {
      moved++
      // The survivor keeps its place; the next in rank takes the removed one's.
      t.true(without.includes(top.find((id) => id !== ids[0]) as string))
      t.is(without[1], rendezvous(key, ids, 3).filter((id) => id !== ids[0])[1])
    } else {
      t.deepEqual(without, top)
    }
  }
  t.true(moved > 0)
  // Each of 7 candidates holds about 2/7 of 700 keys (200); far from it would mean a broken hash.
  for (const id of ids) t.true((load.get(id) ?? 0) > 120 && (load.get(id) ?? 0) < 280, `${id} holds ${load.get(id)}`)
  t.deepEqual(rendezvous(text('x'), ids, 0), [])
  t.is(rendezvous(text('x'), ids.slice(0, 1), 5).length, 1)
  t.deepEqual(rendezvous(text('x'), [], 2), [])
})

// ---- sync protocol codecs ----

test('sync messages: exactly one request kind, a closed set of statuses', (t) => {
  const list = { list: { sinceMs: 5, afterHash: new Uint8Array(32).fill(1), limit: 10 } }
  t.deepEqual(decodeSyncRequest(encodeSyncRequest(list)).list, list.list)
  t.throws(() => decodeSyncRequest(new Uint8Array(0)), { code: 'MALFORMED_MESSAGE' })
  const res = { status: 'OK' as const, error: '', entries: [], more: true, records: [], stored: 3, refused: ['x'] }
  t.deepEqual(decodeSyncResponse(encodeSyncResponse(res)), res)
  t.throws(() => decodeSyncResponse(encodeSyncResponse({ ...res, status: 'MAYBE' as 'OK' })), { code: 'MALFORMED_MESSAGE' })
})

// ---- the archive's kinds ----

const seedId = (n: number): Identity => identityFromSeed(new Uint8Array(32).fill(n))
const worker = seedId(41)
const scheduler = seedId(42)
const validators = [seedId(51), seedId(52), seedId(53)]
const output = text('result\n')

function receipt (over: Partial<Receipt> = {}): Receipt {
  const inputHash = sha256(text('input'))
  return {
    jobId: 'job-1',
    jobHash: computeJobHash('job-1', ['echo'], inputHash),
    inputHash,
    outputHash: sha256(output),
    steps: [],
    status: 'success',
    exitCode: 0,
    latencyMs: 1,
    startedAtMs: 1_763_000_000_000,
    finishedAtMs: 1_763_000_000_001,
    workerId: worker.nodeId,
    schedulerId: scheduler.nodeId,
    error: '',
    ...over
  }
}

function certificate (): { env: Uint8Array, receiptEnv: Uint8Array } {
  const r = receipt()
  const receiptEnv = signReceipt(worker, r)
  const chosenIds = chooseValidators(r.jobHash, validators.map((v) => v.nodeId), worker.nodeId, 2)
  const chosen = chosenIds.map((id) => validators.find((v) => v.nodeId === id) as Identity)
  const cert: Certificate = {
    jobId: 'job-1',
    policy: { method: 'reexecute', validators: 2, quorum: 2 },
    receipt: receiptEnv,
    attestations: chosen.map((v) => signAttestation(v, {
      receiptHash: receiptHash(receiptEnv), jobId: 'job-1', workerId: worker.nodeId, validatorId: v.nodeId, verdict: 'agree', method: 'reexecution', outputHash: sha256(output), reason: '', atMs: 1
    })),
    chosen: chosenIds,
    schedulerId: scheduler.nodeId,
    issuedAtMs: 2,
    resolution: '',
    outputHash: r.outputHash
  }
  return { env: encodeEnvelope(signCertificate(scheduler, cert)), receiptEnv: encodeEnvelope(receiptEnv) }
}

const refusedReason = (kind: string, data: Uint8Array): string => {
  try {
    verifyArchiveRecord(kind, data)
    return 'accepted'
  } catch (err) {
    return (err as InvalidRecordError).reason
  }
}

test('archive kinds: a receipt signed by its worker, indexed by job, worker and scheduler', (t) => {
  const env = encodeEnvelope(signReceipt(worker, receipt()))
  t.deepEqual(verifyArchiveRecord('receipt', env), { jobId: 'job-1', nodeIds: [worker.nodeId, scheduler.nodeId] })
  // Signed by someone else than the worker it names.
  const forged = encodeEnvelope(signEnvelope(scheduler, PAYLOAD_TYPES.receipt, encodeReceipt(receipt())))
  t.is(refusedReason('receipt', forged), 'WORKER_MISMATCH')
  const flipped = Uint8Array.from(env)
  flipped[flipped.length - 1] ^= 1
  t.is(refusedReason('receipt', flipped), 'INVALID_SIGNATURE')
  t.is(refusedReason('receipt', text('not an envelope')), 'MALFORMED_ENVELOPE')
  t.is(refusedReason('receipt', encodeEnvelope(signAttestation(validators[0], {
    receiptHash: new Uint8Array(32), jobId: 'job-1', workerId: worker.nodeId, validatorId: validators[0].nodeId, verdict: 'agree', method: 'signature', outputHash: new Uint8Array(), reason: '', atMs: 1
  }))), 'PAYLOAD_TYPE_MISMATCH')
})

test('archive kinds: attestations by their validator, certificates passing verifyCertificate, disputes by their scheduler', (t) => {
  const base = { receiptHash: new Uint8Array(32).fill(7), jobId: 'job-1', workerId: worker.nodeId, validatorId: validators[0].nodeId, verdict: 'agree', method: 'signature', outputHash: new Uint8Array(), reason: '', atMs: 1 }
  t.deepEqual(verifyArchiveRecord('attestation', encodeEnvelope(signAttestation(validators[0], base))), { jobId: 'job-1', nodeIds: [validators[0].nodeId, worker.nodeId] })
  // Signed by another validator than the one it names.
  t.is(refusedReason('attestation', encodeEnvelope(signEnvelope(validators[1], PAYLOAD_TYPES.attestation, encodeAttestation(base)))), 'SIGNER_MISMATCH')
  // By the worker itself.
  t.is(refusedReason('attestation', encodeEnvelope(signAttestation(worker, { ...base, validatorId: worker.nodeId }))), 'VALIDATOR_IS_WORKER')
  t.is(refusedReason('attestation', encodeEnvelope(signAttestation(validators[0], { ...base, receiptHash: new Uint8Array(3) }))), 'MALFORMED_ATTESTATION')

  const { env, receiptEnv } = certificate()
  const index = verifyArchiveRecord('certificate', env)
  t.is(index.jobId, 'job-1')
  t.is(index.nodeIds[0], scheduler.nodeId)
  t.true(index.nodeIds.includes(worker.nodeId))
  // A certificate signed by another node than its scheduler.
  const payload = decodeEnvelope(env).payload
  t.is(refusedReason('certificate', encodeEnvelope(signEnvelope(worker, PAYLOAD_TYPES.certificate, payload))), 'SCHEDULER_MISMATCH')
  const embedded = withEmbedded('certificate', env)
  t.deepEqual(embedded.map((r) => r.kind), ['certificate', 'receipt', 'attestation', 'attestation'])
  t.deepEqual(embedded[1].data, receiptEnv)

  // A dispute record: two disagreeing re-executions of a v=2 q=2 job.
  const r = receipt()
  const rEnv = signReceipt(worker, r)
  const disagree = validators.slice(0, 2).map((v) => signAttestation(v, {
    receiptHash: receiptHash(rEnv), jobId: 'job-1', workerId: worker.nodeId, validatorId: v.nodeId, verdict: 'disagree', method: 'reexecution', outputHash: sha256(text('other')), reason: 'differs', atMs: 1
  }))
  const dispute = { jobId: 'job-1', policy: { method: 'reexecute', validators: 2, quorum: 2 }, receipt: rEnv, attestations: disagree, resolution: 'rerun', resolvedOutputHash: new Uint8Array(), schedulerId: scheduler.nodeId, atMs: 3 }
  const dIndex = verifyArchiveRecord('dispute', encodeEnvelope(signDispute(scheduler, dispute)))
  t.is(dIndex.jobId, 'job-1')
  t.true(dIndex.nodeIds.includes(validators[0].nodeId))
  t.is(refusedReason('dispute', encodeEnvelope(signDispute(scheduler, { ...dispute, attestations: disagree.slice(0, 0) }))), 'EVIDENCE_INVALID')
  t.is(refusedReason('dispute', encodeEnvelope(signEnvelope(worker, PAYLOAD_TYPES.dispute, encodeDisputeRecord(dispute)))), 'SIGNER_MISMATCH')

  t.deepEqual(verifyArchiveRecord('output', text('any bytes')), { jobId: '', nodeIds: [] })
  t.is(refusedReason('subscription-event', text('x')), 'UNKNOWN_KIND')
})

test('a batch verifier checks large puts with the same rules; small ones are verified inline', async (t) => {
  const batches: number[] = []
  const verifyBatch = async (records: Array<{ kind: string, data: Uint8Array }>): Promise<VerifyOutcome[]> => {
    batches.push(records.length)
    return records.map((r) => {
      try {
        return { index: verifyNote(r.kind, r.data) }
      } catch (err) {
        return { error: refusalOf(err) }
      }
    })
  }
  const log = await openLog(t, await openStore(t), { verifyBatch })
  const many = Array.from({ length: VERIFY_BATCH_MIN }, (_, i) => note('job-b', ['n'], `${i}`))
  const result = await log.put([...many, note('job-b', [], 'bad'), note('job-b', [], 'x'.repeat(MAX_RECORD_BYTES))])
  t.deepEqual(batches, [VERIFY_BATCH_MIN + 1])
  t.is(result.stored, VERIFY_BATCH_MIN)
  t.deepEqual(result.refused.map((r) => r.code).sort(), ['INVALID_RECORD:BAD_NOTE', 'RECORD_TOO_LARGE'])
  t.is((await log.query({ jobId: 'job-b', pageSize: 1000 })).records.length, VERIFY_BATCH_MIN)
  await log.put([note('job-c', [], 'one')])
  t.deepEqual(batches, [VERIFY_BATCH_MIN + 1])
})

test('the verify pool gives the same verdicts on its threads as inline, and inline once stopped', async (t) => {
  const pool = verifyPool({ threads: 2 })({ logger: silentLogger() })
  t.teardown(async () => await pool.stop())
  const good = Array.from({ length: 40 }, (_, i) => ({ kind: 'receipt', data: encodeEnvelope(signReceipt(worker, receipt({ jobId: `p-${i}` }))) }))
  const forged = { kind: 'receipt', data: encodeEnvelope(signEnvelope(scheduler, PAYLOAD_TYPES.receipt, encodeReceipt(receipt()))) }
  const records = [...good, forged, { kind: 'nope', data: text('x') }]
  const expected = records.map((r) => {
    try {
      return { index: verifyArchiveRecord(r.kind, r.data) }
    } catch (err) {
      return { error: refusalOf(err) }
    }
  })
  await pool.start()
  const onThreads = await pool.verify(records)
  t.deepEqual(onThreads, expected)
  t.deepEqual(onThreads.at(-2), { error: { code: 'INVALID_RECORD:WORKER_MISMATCH', reason: (expected.at(-2) as { error: { reason: string } }).error.reason } })
  await pool.stop()
  t.deepEqual(await pool.verify(records), expected)
})

// ---- the gRPC adapter ----

test('archive RPCs: NOT_AN_ARCHIVE without the role, NOT_FOUND and INVALID_ARGUMENT from the archive\'s errors', async (t) => {
  const call = async (handlers: ReturnType<typeof archiveHandlers>, method: 'GetReceipt' | 'GetCertificate' | 'ListRecords', request: unknown): Promise<{ err: grpc.ServiceError | null, value: unknown }> =>
    await new Promise((resolve) => {
      (handlers[method] as grpc.handleUnaryCall<unknown, unknown>)({ request } as grpc.ServerUnaryCall<unknown, unknown>, (err, value) => resolve({ err: err as grpc.ServiceError | null, value }))
    })
  const none = archiveHandlers(undefined)
  for (const method of ['GetReceipt', 'GetCertificate', 'ListRecords'] as const) {
    const { err } = await call(none, method, { jobId: 'j', hash: '' })
    t.is(err?.code, grpc.status.FAILED_PRECONDITION)
    t.deepEqual(err?.metadata?.get(ERROR_CODE_KEY), ['NOT_AN_ARCHIVE'])
  }
  const fake = {
    getReceipt: async () => { throw new RecordNotFoundError('receipt for job j') },
    getCertificate: async () => { throw new InvalidRecordRequestError('name either a job_id or a hash') },
    listRecords: async () => ({ records: [], nextPageToken: '' })
  } as unknown as Archive
  const handlers = archiveHandlers(fake)
  t.is((await call(handlers, 'GetReceipt', { jobId: 'j', hash: '' })).err?.code, grpc.status.NOT_FOUND)
  t.is((await call(handlers, 'GetCertificate', { jobId: '', hash: '' })).err?.code, grpc.status.INVALID_ARGUMENT)
  t.deepEqual((await call(handlers, 'ListRecords', {})).value, { records: [], nextPageToken: '' })
})
