import anyTest, { type TestFn } from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { ClassicLevel } from 'classic-level'
import { createHash } from 'node:crypto'
import { levelStore, SUBLEVELS } from '../../src/store/index.ts'
import { silentLogger, type Logger } from '../../src/telemetry/logger.ts'
import type { JobRecord, JobStore } from '../../src/store/types.ts'
import type { JobState } from '../../src/types.ts'

interface Ctx {
  dir: string
  stores: JobStore[]
}

const test = anyTest as TestFn<Ctx>

test.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-store-'))
  t.context.stores = []
})

test.afterEach.always(async (t) => {
  for (const store of t.context.stores.reverse()) await store.stop()
  await rm(t.context.dir, { recursive: true, force: true })
})

async function open (t: { context: Ctx }, maxResults = 100, logger: Logger = silentLogger()): Promise<JobStore> {
  const store = levelStore({ path: path.join(t.context.dir, 'db'), maxResults })({ logger })
  t.context.stores.push(store)
  await store.start()
  return store
}

function record (id: string, state: JobState, createdAtMs = 1_000, extra: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    containerId: 'echo',
    containers: ['echo'],
    steps: [],
    input: Uint8Array.from([0, 1, 2, 255, 128, 10]),
    origin: { ip: '', peerId: '', delegate: '' },
    requiresProof: false,
    state,
    createdAtMs,
    deadlineAtMs: createdAtMs + 60_000,
    history: [{ state: 'pending', atMs: createdAtMs, detail: 'accepted' }],
    schedulerId: '',
    allowProbation: false,
    ...extra
  }
}

function finished (id: string, createdAtMs = 1_000, state: 'success' | 'failed' = 'success'): JobRecord {
  return record(id, state, createdAtMs, {
    startedAtMs: createdAtMs + 1,
    finishedAtMs: createdAtMs + 5,
    latencyMs: 4,
    output: Uint8Array.from([9, 8, 0, 7]),
    exitCode: 0,
    imageDigest: 'sha256:' + 'ab'.repeat(32),
    history: [
      { state: 'pending', atMs: createdAtMs, detail: 'accepted' },
      { state: 'running', atMs: createdAtMs + 1, detail: 'started' },
      { state, atMs: createdAtMs + 5, detail: state }
    ],
    receipt: {
      payloadType: 'inframind/receipt/v1',
      payload: Uint8Array.from([1, 2, 3, 0, 250]),
      publicKey: new Uint8Array(32).fill(7),
      signature: new Uint8Array(64).fill(3)
    }
  })
}

test('round-trips records exactly, bytes included', async (t) => {
  const store = await open(t)
  const pending = record('a', 'pending')
  await store.putActive(pending)
  const got = await store.get('a')
  t.deepEqual(got, pending)
  t.true(got?.input instanceof Uint8Array)

  const done = finished('a')
  done.error = 'nope'
  done.errorCode = 'NON_ZERO_EXIT'
  done.schedulerId = 'sched-1'
  await store.complete(done)
  t.deepEqual(await store.get('a'), done)
  t.is(await store.get('missing'), undefined)
})

test('chained jobs round-trip: containers, steps with intermediate outputs, origin and proof flag', async (t) => {
  const store = await open(t)
  const job = finished('chain', 1_000, 'failed')
  job.containers = ['a', 'b', 'c']
  job.containerId = 'a'
  job.origin = { ip: '::ffff:10.1.2.3', peerId: '12D3KooWpeer', delegate: 'del' }
  job.requiresProof = true
  job.steps = [
    {
      containerId: 'a', imageDigest: 'sha256:' + '11'.repeat(32), output: Uint8Array.from([0, 255, 10]), outputHash: new Uint8Array(32).fill(1),
      outputBytes: 3, exitCode: 0, latencyMs: 2, startedAtMs: 1_001, finishedAtMs: 1_003, status: 'success', error: '', errorCode: ''
    },
    {
      containerId: 'b', imageDigest: '', outputHash: new Uint8Array(32).fill(2), outputBytes: 0, exitCode: -1, latencyMs: 1,
      startedAtMs: 1_003, finishedAtMs: 1_004, status: 'failed', error: 'step 2/3 (container "b"): boom', errorCode: 'CONTAINER_EXIT'
    }
  ]
  await store.complete(job)
  const got = await store.get('chain')
  t.deepEqual(got, job)
  t.true(got?.steps[0]?.output instanceof Uint8Array)
  t.false('output' in (got?.steps[1] ?? {}))
})

test('version 1 records (before chains) stay readable as one-container jobs', async (t) => {
  const dbPath = path.join(t.context.dir, 'db')
  const store = await open(t)
  await store.stop()
  const raw = new ClassicLevel<string, string>(dbPath)
  await raw.open()
  const b64 = (bytes: number[]): string => Buffer.from(bytes).toString('base64')
  const common = { v: 1, containerId: 'echo', input: b64([104, 105]), deadlineAtMs: 90_000, schedulerId: '', history: [{ state: 'pending', atMs: 1, detail: 'accepted' }] }
  await raw.sublevel(SUBLEVELS.active).put('old-pending', JSON.stringify({ ...common, id: 'old-pending', state: 'pending', createdAtMs: 1 }))
  await raw.sublevel(SUBLEVELS.created).put(`${'1'.padStart(16, '0')}!old-pending`, 'pending')
  await raw.sublevel(SUBLEVELS.completed).put('old-done', JSON.stringify({
    ...common, id: 'old-done', state: 'success', createdAtMs: 2, startedAtMs: 3, finishedAtMs: 7, latencyMs: 4,
    output: b64([72, 73]), exitCode: 0, imageDigest: 'sha256:' + 'ab'.repeat(32)
  }))
  await raw.close()

  const reopened = await open(t)
  const pending = await reopened.get('old-pending')
  t.like(pending, { containerId: 'echo', containers: ['echo'], steps: [], origin: { ip: '', peerId: '', delegate: '' }, requiresProof: false })
  const done = await reopened.get('old-done')
  t.deepEqual(done?.containers, ['echo'])
  t.is(done?.steps.length, 1)
  t.like(done?.steps[0], { containerId: 'echo', imageDigest: 'sha256:' + 'ab'.repeat(32), outputBytes: 2, exitCode: 0, latencyMs: 4, status: 'success' })
  t.deepEqual(done?.steps[0]?.outputHash, new Uint8Array(createHash('sha256').update(Buffer.from([72, 73])).digest()))
})

test('records with damaged chain fields are skipped', async (t) => {
  const dbPath = path.join(t.context.dir, 'db')
  const store = await open(t)
  const good = record('good', 'pending', 1)
  await store.putActive(good)
  await store.stop()
  const raw = new ClassicLevel<string, string>(dbPath)
  await raw.open()
  const active = raw.sublevel(SUBLEVELS.active)
  const text = await active.get('good') as string
  const damaged: Array<[string, (o: Record<string, unknown>) => void]> = [
    ['no-containers', (o) => { o.containers = [] }],
    ['steps-object', (o) => { o.steps = { 0: 1 } }],
    ['bad-step', (o) => { o.steps = [{ containerId: 'echo', status: 'maybe' }] }],
    ['bad-origin', (o) => { o.origin = 'here' }],
    ['bad-proof', (o) => { o.requiresProof = 'yes' }],
    ['future-version', (o) => { o.v = 3 }]
  ]
  for (const [id, damage] of damaged) {
    const o = JSON.parse(text) as Record<string, unknown>
    o.id = id
    damage(o)
    await active.put(id, JSON.stringify(o))
  }
  await raw.close()
  const reopened = await open(t)
  t.deepEqual((await reopened.listActive()).map((j) => j.id), ['good'])
})

test('completed results, counters and LRU order survive a restart', async (t) => {
  const first = await open(t, 2)
  await first.complete(finished('a', 1))
  await first.complete(finished('b', 2, 'failed'))
  await first.get('a') // a is now more recent than b
  await first.putActive(record('p', 'pending', 3))
  await first.stop()

  const second = await open(t, 2)
  t.deepEqual(await second.get('a'), finished('a', 1))
  t.is(await second.completedCount(), 2)
  t.deepEqual(await second.counters(), { served: 2, succeeded: 1, failed: 1 })
  t.deepEqual((await second.listActive()).map((j) => j.id), ['p'])
  await second.complete(finished('c', 4))
  // b was least recently used before the restart, so it goes first after it.
  t.is(await second.get('b'), undefined)
  t.truthy(await second.get('a'))
  t.truthy(await second.get('c'))
})

test('evicts the least recently used completed job; get() refreshes', async (t) => {
  const store = await open(t, 3)
  for (const id of ['a', 'b', 'c']) await store.complete(finished(id))
  await store.get('a')
  await store.complete(finished('d'))
  t.is(await store.get('b'), undefined)
  t.is(await store.completedCount(), 3)
  await store.complete(finished('e'))
  t.is(await store.get('c'), undefined)
  for (const id of ['a', 'd', 'e']) t.truthy(await store.get(id), id)
  // Evicted jobs leave list() too, and served keeps counting them.
  t.deepEqual((await store.list()).map((j) => j.id).sort(), ['a', 'd', 'e'])
  t.is((await store.counters()).served, 5)
})

test('LRU stays exact over thousands of operations at maxResults = 1000', async (t) => {
  const max = 1000
  const store = await open(t, max)
  // Reference model: ids in recency order, least recent first.
  const model: string[] = []
  const touch = (id: string): void => {
    const i = model.indexOf(id)
    if (i !== -1) model.splice(i, 1)
    model.push(id)
  }
  let n = 0
  for (let round = 0; round < 2500; round++) {
    const id = `job-${n++}`
    await store.complete(finished(id, round))
    touch(id)
    if (model.length > max) model.shift()
    if (round % 3 === 0 && model.length > 10) {
      // Read an old-ish job so that it escapes the next evictions.
      const pick = model[(round * 7) % Math.min(model.length, 200)] as string
      t.truthy(await store.get(pick))
      touch(pick)
    }
  }
  t.is(await store.completedCount(), max)
  const held = (await store.list({ limit: 5000 })).map((j) => j.id).sort()
  t.deepEqual(held, [...model].sort())
})

test('active jobs are kept apart from completed ones', async (t) => {
  const store = await open(t)
  await store.putActive(record('p2', 'pending', 20))
  await store.putActive(record('r1', 'running', 10, { startedAtMs: 11 }))
  await store.complete(finished('s1', 5))
  await store.complete(finished('f1', 30, 'failed'))
  t.deepEqual((await store.listActive()).map((j) => j.id), ['r1', 'p2'])
  t.is(await store.completedCount(), 2)

  await store.putActive(record('p2', 'running', 20, { startedAtMs: 21 }))
  const done = finished('p2', 20)
  await store.complete(done)
  t.deepEqual((await store.listActive()).map((j) => j.id), ['r1'])
  t.is(await store.completedCount(), 3)

  t.deepEqual((await store.list()).map((j) => j.id), ['f1', 'p2', 'r1', 's1'], 'newest first by createdAt')
  t.deepEqual((await store.list({ limit: 2 })).map((j) => j.id), ['f1', 'p2'])
  t.deepEqual((await store.list({ state: 'success' })).map((j) => j.id), ['p2', 's1'])
  t.deepEqual((await store.list({ state: 'running' })).map((j) => j.id), ['r1'])
  t.deepEqual((await store.list({ state: 'pending' })), [])
})

test('completing the same job twice replaces it without counting it twice', async (t) => {
  const store = await open(t)
  await store.complete(finished('a'))
  await store.complete(finished('a', 1_000, 'failed'))
  t.is(await store.completedCount(), 1)
  t.deepEqual(await store.counters(), { served: 1, succeeded: 1, failed: 0 })
  t.is((await store.get('a'))?.state, 'failed')
})

test('a corrupt record is skipped with a warning, not fatal', async (t) => {
  const dbPath = path.join(t.context.dir, 'db')
  const store = await open(t)
  await store.putActive(record('good', 'pending', 1))
  await store.complete(finished('done', 2))
  await store.stop()

  const raw = new ClassicLevel<string, string>(dbPath)
  await raw.open()
  await raw.sublevel(SUBLEVELS.active).put('bad-json', '{not json')
  await raw.sublevel(SUBLEVELS.active).put('bad-shape', JSON.stringify({ v: 1, id: 'bad-shape', state: 'pending' }))
  await raw.sublevel(SUBLEVELS.created).put(`${'3'.padStart(16, '0')}!bad-json`, 'pending')
  // A completed record whose bytes were damaged on disk.
  const completed = raw.sublevel(SUBLEVELS.completed)
  const text = await completed.get('done') as string
  await completed.put('done', text.replace(/"output":"[^"]*"/, '"output":"@@@"'))
  await raw.close()

  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'warn' }, new Writable({
    write (chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() }
  }))
  const reopened = await open(t, 100, logger)
  t.deepEqual((await reopened.listActive()).map((j) => j.id), ['good'])
  t.is(await reopened.get('bad-json'), undefined)
  t.is(await reopened.get('done'), undefined)
  t.deepEqual((await reopened.list()).map((j) => j.id), ['good'])
  const warned = lines.filter((l) => l.msg === 'skipping corrupt job record').map((l) => l.jobId)
  t.true(warned.includes('bad-json'))
  t.true(warned.includes('bad-shape'))
  t.true(warned.includes('done'))
  // The store still works normally around the damage.
  await reopened.complete(finished('good', 1))
  t.is((await reopened.get('good'))?.state, 'success')
})

test('lifecycle: use before start throws NotStartedError; start and stop are idempotent', async (t) => {
  const store = levelStore({ path: path.join(t.context.dir, 'db'), maxResults: 10 })({ logger: silentLogger() })
  t.context.stores.push(store)
  await t.throwsAsync(store.get('x'), { name: 'NotStartedError' })
  await t.throwsAsync(store.putActive(record('x', 'pending')), { name: 'NotStartedError' })
  await store.start()
  await store.start()
  await store.putActive(record('x', 'pending'))
  await store.stop()
  await store.stop()
  const err = await t.throwsAsync(store.listActive())
  t.is((err as { code?: string }).code, 'NOT_STARTED')
})

test('a second store on the same path fails with StoreOpenError', async (t) => {
  await open(t)
  const other = levelStore({ path: path.join(t.context.dir, 'db'), maxResults: 10 })({ logger: silentLogger() })
  const err = await t.throwsAsync(other.start(), { name: 'StoreOpenError' })
  t.is((err as { code?: string }).code, 'STORE_OPEN_FAILED')
})

test('sections: binary values in their own key space, ranges in key order, batches, survive a restart', async (t) => {
  let store = await open(t)
  const subs = store.section('subs')
  const other = store.section('other')
  await subs.put('b', Uint8Array.from([0, 255, 1]))
  await subs.batch([{ type: 'put', key: 'a', value: Uint8Array.from([1]) }, { type: 'put', key: 'c', value: new Uint8Array() }, { type: 'del', key: 'zz' }])
  await other.put('a', Uint8Array.from([42]))
  t.deepEqual(await subs.get('a'), Uint8Array.from([1]))
  t.is(await subs.get('missing'), undefined)
  t.deepEqual([...(await other.get('a')) ?? []], [42])
  const keys: string[] = []
  for await (const k of subs.keys({ gte: 'b' })) keys.push(k)
  t.deepEqual(keys, ['b', 'c'])
  const rev: string[] = []
  for await (const [k] of subs.entries({ reverse: true, limit: 2 })) rev.push(k)
  t.deepEqual(rev, ['c', 'b'])
  // The job store's own records are not visible in a section and a section's keys are not jobs.
  await store.putActive(record('job-1', 'pending'))
  t.is(await subs.get('job-1'), undefined)
  t.deepEqual((await store.listActive()).map((j) => j.id), ['job-1'])
  await subs.del('a')
  await store.stop()
  store = await open(t)
  const again = store.section('subs')
  t.is(await again.get('a'), undefined)
  t.deepEqual([...(await again.get('b')) ?? []], [0, 255, 1])
  t.throws(() => store.section('active'), { instanceOf: TypeError })
  t.throws(() => store.section('Bad Name'), { instanceOf: TypeError })
})

test('a section used before start throws NotStartedError', async (t) => {
  const store = levelStore({ path: path.join(t.context.dir, 'db2'), maxResults: 10 })({ logger: silentLogger() })
  const s = store.section('early')
  await t.throwsAsync(async () => { await s.get('x') }, { name: 'NotStartedError' })
})
