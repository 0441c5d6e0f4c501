import anyTest, { type TestFn } from 'ava'
import { computeJobHash, sha256, verifyReceipt } from '../../src/receipt/index.ts'
import { levelStore } from '../../src/store/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import type { RunRequest, RunResult } from '../../src/runtime/types.ts'
import {
  DIGEST, FakeRuntime, afterEachCtx, beforeEachCtx, config, dec, echo, enc, gated, record, result, settled, setup, sleep, storeWith, until,
  type Ctx
} from '../helpers/fake-runtime.ts'

const test = anyTest as TestFn<Ctx>

test.beforeEach(beforeEachCtx)
test.afterEach.always(afterEachCtx)

test('happy path: output, signed receipt that verifies, events pending → running → success', async (t) => {
  const { orch, events } = await setup(t)
  const { job: accepted, duplicate } = await orch.submit({ containerId: 'echo', input: enc('hello'), schedulerId: 'sched-7' })
  t.false(duplicate)
  t.is(accepted.state, 'pending')
  t.regex(accepted.id, /^[0-9a-f-]{36}$/)
  const job = await settled(orch, accepted.id)
  t.is(job.state, 'success')
  t.is(dec(job.output), 'HELLO')
  t.is(job.exitCode, 0)
  t.is(job.imageDigest, DIGEST)
  t.deepEqual(job.history.map((h) => h.state), ['pending', 'running', 'success'])

  t.truthy(job.receipt)
  const verdict = verifyReceipt(job.receipt!, { output: job.output, input: enc('hello') })
  t.true(verdict.valid, JSON.stringify(verdict))
  if (!verdict.valid) return
  const r = verdict.receipt
  t.deepEqual(r.outputHash, sha256(enc('HELLO')))
  t.deepEqual(r.jobHash, computeJobHash(job.id, ['echo'], sha256(enc('hello'))))
  t.is(r.status, 'success')
  t.is(r.workerId, t.context.identity.nodeId)
  t.is(r.schedulerId, 'sched-7')
  t.deepEqual(r.steps.map((s) => [s.containerId, s.imageDigest, s.exitCode]), [['echo', DIGEST, 0]])
  t.is(job.latencyMs, r.latencyMs)
  t.is(r.finishedAtMs - r.startedAtMs, r.latencyMs)

  await until(() => events.length >= 3)
  t.deepEqual(events.map((e) => e.state), ['pending', 'running', 'success'])
  t.is(events[2]?.latencyMs, job.latencyMs)
  t.like(orch.stats(), { served: 1, succeeded: 1, failed: 0, active: 0, queued: 0 })
})

test('failure path: runtime error code, exit code and digest on the record and a failed receipt', async (t) => {
  const runtime = new FakeRuntime(() => {
    throw Object.assign(new Error('container exited with code 3'), { name: 'NonZeroExitError', code: 'NON_ZERO_EXIT', exitCode: 3, imageDigest: DIGEST, stderrTail: 'oops' })
  })
  const { orch, events } = await setup(t, { runtime })
  const { job: accepted } = await orch.submit({ containerId: 'echo', input: enc('x') })
  const job = await settled(orch, accepted.id)
  t.like(job, { state: 'failed', errorCode: 'NON_ZERO_EXIT', exitCode: 3, imageDigest: DIGEST })
  t.is(typeof job.error, 'string')
  t.is(job.output, undefined)
  const verdict = verifyReceipt(job.receipt!, { output: new Uint8Array(0) })
  t.true(verdict.valid)
  if (verdict.valid) {
    t.like(verdict.receipt, { status: 'failed', exitCode: 3, error: job.error })
    t.deepEqual(verdict.receipt.outputHash, sha256(new Uint8Array(0)))
  }
  await until(() => events.length >= 3)
  t.like(events[2], { state: 'failed', errorCode: 'NON_ZERO_EXIT' })
  t.like(orch.stats(), { served: 1, succeeded: 0, failed: 1 })
})

test('submit rejects bad requests with a coded error and stores nothing', async (t) => {
  const { orch } = await setup(t)
  const unknown = await t.throwsAsync(orch.submit({ containerId: 'nope', input: enc('x') }), { name: 'GuardianRejectedError' })
  t.like(unknown, { code: 'NOT_FOUND', reason: 'UNKNOWN_CONTAINER', containerId: 'nope' })
  await t.throwsAsync(orch.submit({ containerId: 'echo', input: new Uint8Array(65) }), { name: 'InputTooLargeError', code: 'INPUT_TOO_LARGE' })
  const bad = await t.throwsAsync(orch.submit({ containerId: 'json', input: enc('{not json') }), { name: 'InvalidInputError' })
  t.is((bad as { code?: string }).code, 'INVALID_INPUT')
  t.is(typeof (bad as unknown as { reason: string }).reason, 'string')
  for (const jobId of ['has space', 'x'.repeat(129), 'semi;colon', 'ünï']) {
    const err = await t.throwsAsync(orch.submit({ containerId: 'echo', input: enc('x'), jobId }), { name: 'InvalidJobIdError' })
    t.is((err as { code?: string }).code, 'INVALID_JOB_ID')
  }
  for (const deadlineMs of [-1, 24 * 3600 * 1000 + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
    const err = await t.throwsAsync(orch.submit({ containerId: 'echo', input: enc('x'), deadlineMs }), { name: 'InvalidDeadlineError' })
    t.is((err as { code?: string }).code, 'INVALID_DEADLINE')
  }
  t.deepEqual(await orch.list(), [])
  // The valid id alphabet and an empty id (proto3 "unset") are accepted.
  const ok = await orch.submit({ containerId: 'echo', input: enc('x'), jobId: 'Ab0._:-z' })
  t.is(ok.job.id, 'Ab0._:-z')
  const generated = await orch.submit({ containerId: 'echo', input: enc('x'), jobId: '' })
  t.not(generated.job.id, '')
})

test('a full queue answers QUEUE_FULL and every accepted job still finishes', async (t) => {
  const gate = gated()
  const { orch, runtime } = await setup(t, { runtime: new FakeRuntime(gate.behaviour), jobs: { concurrency: 1, queueSize: 2 } })
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push((await orch.submit({ containerId: 'echo', input: enc(`j${i}`) })).job.id)
  t.like(orch.stats(), { active: 1, queued: 2 })
  const err = await t.throwsAsync(orch.submit({ containerId: 'echo', input: enc('overflow') }), { name: 'QueueFullError' })
  t.is((err as { code?: string }).code, 'QUEUE_FULL')
  t.like(err, { pending: 2, limit: 2 })
  gate.release()
  for (const id of ids) t.is((await settled(orch, id)).state, 'success')
  t.is(runtime.calls.length, 3)
  t.is((await orch.list()).length, 3)
})

test('never runs more than jobs.concurrency at once, in FIFO order', async (t) => {
  const runtime = new FakeRuntime(async (req) => {
    await sleep(5 + Math.floor(Math.random() * 15), req.signal)
    return result(req.input)
  })
  const { orch } = await setup(t, { runtime, jobs: { concurrency: 2 } })
  const ids: string[] = []
  for (let i = 0; i < 12; i++) ids.push((await orch.submit({ containerId: 'echo', input: enc(`${i}`) })).job.id)
  for (const id of ids) t.is((await settled(orch, id)).state, 'success')
  t.is(runtime.maxRunning, 2)
  t.deepEqual(runtime.calls, ids)
})

test('a duplicate job id never runs twice, even when the submits race', async (t) => {
  const gate = gated()
  const { orch, runtime } = await setup(t, { runtime: new FakeRuntime(gate.behaviour) })
  const racing = await Promise.all(Array.from({ length: 5 }, async () => await orch.submit({ containerId: 'echo', input: enc('once'), jobId: 'dup-1' })))
  t.is(racing.filter((r) => !r.duplicate).length, 1)
  t.true(racing.every((r) => r.job.id === 'dup-1'))
  const again = await orch.submit({ containerId: 'echo', input: enc('once'), jobId: 'dup-1' })
  t.true(again.duplicate)
  gate.release()
  await settled(orch, 'dup-1')
  const afterDone = await orch.submit({ containerId: 'echo', input: enc('once'), jobId: 'dup-1' })
  t.true(afterDone.duplicate)
  t.is(afterDone.job.state, 'success')
  t.deepEqual(runtime.calls, ['dup-1'])
  t.is(orch.stats().served, 1)
})

test('a job whose deadline passes while queued fails DEADLINE_EXCEEDED without running', async (t) => {
  const gate = gated()
  const { orch, runtime } = await setup(t, { runtime: new FakeRuntime(gate.behaviour), jobs: { concurrency: 1 } })
  const blocker = await orch.submit({ containerId: 'echo', input: enc('long') })
  const late = await orch.submit({ containerId: 'echo', input: enc('late'), deadlineMs: 50 })
  // It fails at its deadline while the slot is still busy, not when the slot frees up.
  const job = await settled(orch, late.job.id)
  t.like(job, { state: 'failed', errorCode: 'DEADLINE_EXCEEDED' })
  t.is(job.startedAtMs, undefined)
  t.deepEqual(job.history.map((h) => h.state), ['pending', 'failed'])
  t.true(verifyReceipt(job.receipt!).valid)
  t.deepEqual(runtime.calls, [blocker.job.id])
  gate.release()
  t.is((await settled(orch, blocker.job.id)).state, 'success')
  t.deepEqual(runtime.calls, [blocker.job.id])
})

test('a job whose deadline passes while running is aborted with DEADLINE_EXCEEDED', async (t) => {
  const { orch, runtime } = await setup(t, { runtime: new FakeRuntime(echo(10_000)) })
  const { job: accepted } = await orch.submit({ containerId: 'echo', input: enc('slow'), deadlineMs: 80 })
  const job = await settled(orch, accepted.id)
  t.like(job, { state: 'failed', errorCode: 'DEADLINE_EXCEEDED' })
  t.truthy(job.startedAtMs)
  t.true(verifyReceipt(job.receipt!).valid)
  t.is(runtime.running, 0)
})

test('a runtime that ignores the abort cannot hold a slot past the grace period', async (t) => {
  let hung = true
  const runtime = new FakeRuntime(async (req) => {
    if (hung) {
      hung = false
      return await new Promise<RunResult>(() => {})
    }
    return result(req.input)
  })
  const { orch } = await setup(t, { runtime, jobs: { concurrency: 1 }, abortGraceMs: 50 })
  const stuck = await orch.submit({ containerId: 'echo', input: enc('stuck'), deadlineMs: 50 })
  const next = await orch.submit({ containerId: 'echo', input: enc('next') })
  t.like(await settled(orch, stuck.job.id), { state: 'failed', errorCode: 'DEADLINE_EXCEEDED' })
  t.is((await settled(orch, next.job.id)).state, 'success')
})

test('restart: pending jobs resume, jobs found running fail with NODE_RESTARTED and a receipt', async (t) => {
  const first = await setup(t, { start: false })
  const now = Date.now()
  const base = { containerId: 'echo', deadlineAtMs: now + 30_000, schedulerId: '' }
  await first.store.putActive(record({ ...base, id: 'was-pending', input: enc('p'), state: 'pending', createdAtMs: now - 20, history: [{ state: 'pending', atMs: now - 20, detail: 'accepted' }] }))
  await first.store.putActive(record({
    ...base,
    id: 'was-running',
    input: enc('r'),
    state: 'running',
    createdAtMs: now - 10,
    startedAtMs: now - 5,
    history: [{ state: 'pending', atMs: now - 10, detail: 'accepted' }, { state: 'running', atMs: now - 5, detail: 'started' }]
  }))
  await first.orch.start()
  t.context.started.push(first.orch)
  const lost = await settled(first.orch, 'was-running')
  t.like(lost, { state: 'failed', errorCode: 'NODE_RESTARTED' })
  t.regex(lost.error ?? '', /\S/)
  const verdict = verifyReceipt(lost.receipt!)
  t.true(verdict.valid)
  if (verdict.valid) t.is(verdict.receipt.startedAtMs, now - 5)
  const resumed = await settled(first.orch, 'was-pending')
  t.is(dec(resumed.output), 'P')
  t.deepEqual(first.runtime.calls, ['was-pending'])
  t.deepEqual(await first.store.listActive(), [])
})

test('stop() requeues running jobs; a new instance on the same store completes them', async (t) => {
  const gate = gated()
  const cfg = config(t.context.dir)
  const store = levelStore({ path: cfg.store.path, maxResults: 100 })({ logger: silentLogger() })
  await store.start()
  t.context.started.push(store)
  const first = await setup(t, { store, runtime: new FakeRuntime(gate.behaviour), jobs: { concurrency: 1 } })
  const running = await first.orch.submit({ containerId: 'echo', input: enc('one') })
  const queued = await first.orch.submit({ containerId: 'echo', input: enc('two') })
  await until(() => first.runtime.running === 1)
  await first.orch.stop()
  await first.orch.stop()
  t.is(first.runtime.running, 0, 'the run was aborted')
  await t.throwsAsync(first.orch.submit({ containerId: 'echo', input: enc('x') }), { name: 'NotStartedError' })
  const parked = await store.get(running.job.id)
  t.is(parked?.state, 'pending')
  t.is(parked?.history.at(-1)?.state, 'pending')
  await store.stop()

  const reopened = levelStore({ path: cfg.store.path, maxResults: 100 })({ logger: silentLogger() })
  await reopened.start()
  t.context.started.push(reopened)
  const second = await setup(t, { store: reopened })
  t.is(dec((await settled(second.orch, running.job.id)).output), 'ONE')
  t.is(dec((await settled(second.orch, queued.job.id)).output), 'TWO')
  t.deepEqual(second.runtime.calls, [running.job.id, queued.job.id])
})

const liveTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

// Serial, so no other test's timers are alive while it counts them.
// The `running` write overlaps the step (a warm container should not wait for the disk), so a stop that
// lands during that write finds the step either finished (the job completes) or aborted (parked as
// pending for the next start). Either way the job is neither lost nor failed, and no timer is left.
test.serial('stop() while a run is being recorded completes or parks the job, never loses it, and leaves no timer behind', async (t) => {
  const baseline = liveTimers()
  const cfg = config(t.context.dir)
  const store = levelStore({ path: cfg.store.path, maxResults: 100 })({ logger: silentLogger() })
  await store.start()
  t.context.started.push(store)
  let entered!: () => void
  const recording = new Promise<void>((resolve) => { entered = resolve })
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const slow = storeWith(store, {
    putActive: async (job) => {
      if (job.state === 'running') { entered(); await held }
      await store.putActive(job)
    }
  })
  const { orch, runtime } = await setup(t, { store: slow })
  const { job } = await orch.submit({ containerId: 'echo', input: enc('x') })
  await recording
  const stopping = orch.stop()
  release()
  await stopping
  t.true(runtime.calls.length <= 1)
  const after = await store.get(job.id)
  t.true(after?.state === 'pending' || after?.state === 'success', `state ${after?.state}`)
  if (after?.state === 'pending') t.is(after.startedAtMs, undefined)
  // The fake runtime's echo upper-cases its input.
  if (after?.state === 'success') t.is(dec(after.output ?? new Uint8Array()), 'X')
  t.is(liveTimers(), baseline)
})

test('served survives a restart', async (t) => {
  const first = await setup(t)
  for (const s of ['a', 'b']) await settled(first.orch, (await first.orch.submit({ containerId: 'echo', input: enc(s) })).job.id)
  await first.orch.stop()
  const second = await setup(t, { store: first.store })
  t.like(second.orch.stats(), { served: 2, succeeded: 2, failed: 0 })
})

test('a runtime throwing non-Errors (sync or async) fails the job with INTERNAL and the node keeps going', async (t) => {
  const thrown: unknown[] = ['a string', undefined, null, 42, { weird: true }, Object.assign(Object.create(null) as object, { code: 7 })]
  let i = 0
  const runtime = new FakeRuntime()
  runtime.run = (req: RunRequest): Promise<RunResult> => {
    const k = i++
    if (k < thrown.length) {
      if (k % 2 === 0) throw thrown[k] // synchronously, before any promise exists
      return Promise.reject(thrown[k])
    }
    return Promise.resolve(result(req.input))
  }
  const { orch } = await setup(t, { runtime, jobs: { concurrency: 1 } })
  const ids: string[] = []
  for (let n = 0; n <= thrown.length; n++) ids.push((await orch.submit({ containerId: 'echo', input: enc(`${n}`) })).job.id)
  for (const id of ids.slice(0, -1)) {
    const job = await settled(orch, id)
    t.like(job, { state: 'failed', errorCode: 'INTERNAL' })
    t.is(typeof job.error, 'string')
    t.true(verifyReceipt(job.receipt!).valid)
  }
  t.is((await settled(orch, ids.at(-1)!)).state, 'success')
})

test('a throwing event listener does not stop other listeners or the job', async (t) => {
  const { orch, events } = await setup(t)
  const seen: string[] = []
  orch.on('job', () => { throw new Error('listener bug') })
  const off = orch.on('job', (e) => { seen.push(e.state) })
  const { job } = await orch.submit({ containerId: 'echo', input: enc('x') })
  await settled(orch, job.id)
  await until(() => seen.length === 3)
  t.deepEqual(seen, ['pending', 'running', 'success'])
  t.is(events.length, 3)
  off()
  await settled(orch, (await orch.submit({ containerId: 'echo', input: enc('y') })).job.id)
  t.is(seen.length, 3)
})

test('lifecycle: use before start throws NotStartedError; start and stop are idempotent', async (t) => {
  const { orch } = await setup(t, { start: false })
  const err = await t.throwsAsync(orch.submit({ containerId: 'echo', input: enc('x') }), { name: 'NotStartedError' })
  t.is((err as { code?: string }).code, 'NOT_STARTED')
  await t.throwsAsync(orch.get('x'), { name: 'NotStartedError' })
  await orch.stop()
  await orch.start()
  await orch.start()
  t.context.started.push(orch)
  t.is((await settled(orch, (await orch.submit({ containerId: 'echo', input: enc('x') })).job.id)).state, 'success')
  await orch.stop()
  await orch.stop()
})

test.serial('a job whose acceptance cannot be stored is refused, and nothing more of it is written or announced', async (t) => {
  const cfg = config(t.context.dir)
  const store = levelStore({ path: cfg.store.path, maxResults: 100 })({ logger: silentLogger() })
  await store.start()
  t.context.started.push(store)
  const writes: string[] = []
  const failing = storeWith(store, {
    complete: async (job) => { writes.push(`complete:${job.state}`); await store.complete(job) },
    putActive: async (job) => {
      writes.push(`put:${job.state}`)
      if (job.state === 'pending') throw Object.assign(new Error('disk full'), { code: 'STORE_WRITE_FAILED' })
      await store.putActive(job)
    }
  })
  const { orch } = await setup(t, { store: failing })
  const events: string[] = []
  orch.on('job', (e) => { if (e.state === 'success' || e.state === 'failed') events.push(e.state) })
  const err = await t.throwsAsync(orch.submit({ containerId: 'echo', input: enc('x') }))
  t.is((err as { code?: string }).code, 'STORE_WRITE_FAILED')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.deepEqual(events, [], 'no result is announced for a job the caller was told failed')
  t.false(writes.some((w) => w.startsWith('complete')), writes.join(', '))
  t.is((await store.list()).length, 0)
  t.is(orch.stats().active + orch.stats().queued, 0)
})

test('handover: a finished job moves to another scheduler with a receipt naming it, same run; another job under the id is refused', async (t) => {
  const { orch, runtime } = await setup(t)
  const { job: accepted } = await orch.submit({ jobId: 'keyed-1', containerId: 'echo', input: enc('once'), schedulerId: 'sched-a' })
  const first = await settled(orch, accepted.id)
  const runs = runtime.calls.length
  const hash = computeJobHash('keyed-1', ['echo'], sha256(enc('once')))
  t.is(await orch.handover('keyed-1', 'sched-b', computeJobHash('keyed-1', ['echo'], sha256(enc('other input')))), undefined, 'another input is another job')
  t.is(await orch.handover('no-such-job', 'sched-b', hash), undefined)
  const moved = await orch.handover('keyed-1', 'sched-b', hash)
  t.is(moved?.schedulerId, 'sched-b')
  const verdict = verifyReceipt(moved!.receipt!, { output: moved!.output, input: enc('once') })
  t.true(verdict.valid)
  if (!verdict.valid) return
  t.is(verdict.receipt.schedulerId, 'sched-b')
  const before = verifyReceipt(first.receipt!, { output: first.output })
  if (!before.valid) return t.fail('the first receipt does not verify')
  t.deepEqual({ ...verdict.receipt, schedulerId: '' }, { ...before.receipt, schedulerId: '' }, 'the same run: every other field as first signed')
  t.is(runtime.calls.length, runs, 'nothing ran again')
  t.is((await orch.get('keyed-1'))?.schedulerId, 'sched-b', 'stored')
})

test('handover: a job still running reports to the new scheduler when it ends', async (t) => {
  const gate = gated()
  const { orch } = await setup(t, { runtime: new FakeRuntime(gate.behaviour) })
  await orch.submit({ jobId: 'keyed-2', containerId: 'echo', input: enc('slow'), schedulerId: 'sched-a' })
  await until(async () => (await orch.get('keyed-2'))?.state === 'running')
  const moved = await orch.handover('keyed-2', 'sched-b', computeJobHash('keyed-2', ['echo'], sha256(enc('slow'))))
  t.is(moved?.state, 'running')
  gate.release()
  const done = await settled(orch, 'keyed-2')
  const verdict = verifyReceipt(done.receipt!, { output: done.output })
  t.true(verdict.valid && verdict.receipt.schedulerId === 'sched-b')
})
