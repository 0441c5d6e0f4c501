import anyTest, { type TestFn } from 'ava'
import { executor, DEADLINE_REASON, STOP_REASON, type ChainEnd } from '../../src/executor/index.ts'
import { Slots, SlotWaitAbortedError } from '../../src/slots.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { FakeRuntime, afterEachCtx, beforeEachCtx, container, dec, enc, gated, record, type Ctx } from '../helpers/fake-runtime.ts'

// The executor on its own: what a worker's jobs service, and next a validator's re-execution, call
// without admitting a job.

const test = anyTest as TestFn<Ctx>
test.beforeEach(beforeEachCtx)
test.afterEach.always(afterEachCtx)

function job (id: string, input = id) {
  const now = Date.now()
  return record({ id, state: 'pending', createdAtMs: now, deadlineAtMs: now + 30_000, history: [{ state: 'pending', atMs: now, detail: 'accepted' }], input: enc(input) })
}

const noUpdate = async (): Promise<void> => {}

test('slots: at most `limit` holders, waiters served first come first served, an aborted waiter leaves the line', async (t) => {
  const slots = new Slots(2)
  const a = await slots.acquire()
  const b = await slots.acquire()
  const order: string[] = []
  const controller = new AbortController()
  const c = slots.acquire().then((release) => { order.push('c'); return release })
  const gone = slots.acquire(controller.signal)
  const d = slots.acquire().then((release) => { order.push('d'); return release })
  t.like(slots, { active: 2, waiting: 3 })
  controller.abort('no longer needed')
  const err = await t.throwsAsync(gone)
  t.true(err instanceof SlotWaitAbortedError)
  t.is((err as SlotWaitAbortedError).reason, 'no longer needed')
  a()
  a() // a second release of the same slot is a no-op
  const releaseC = await c
  t.like(slots, { active: 2, waiting: 1 })
  b()
  const releaseD = await d
  t.deepEqual(order, ['c', 'd'])
  releaseC()
  releaseD()
  t.like(slots, { active: 0, waiting: 0 })
  t.throws(() => new Slots(0), { instanceOf: RangeError })
})

test('run before start() or after stop() throws NOT_STARTED; serves() names only configured chains', async (t) => {
  const exec = executor({ concurrency: 1, containers: [container('echo')] })({ runtime: new FakeRuntime(), logger: silentLogger() })
  const early = await t.throwsAsync(exec.run(job('j1'), { signal: new AbortController().signal, update: noUpdate }))
  t.is((early as { code?: string }).code, 'NOT_STARTED')
  await exec.start()
  t.true(exec.serves(['echo']))
  t.false(exec.serves(['echo', 'other']))
  t.false(exec.serves([]))
  const end = await exec.run(job('j2', 'hi'), { signal: new AbortController().signal, update: noUpdate })
  t.is(end.kind, 'finished')
  if (end.kind === 'finished') t.is(dec(end.end.output), 'HI')
  await exec.stop()
  await exec.stop()
  const late = await t.throwsAsync(exec.run(job('j3'), { signal: new AbortController().signal, update: noUpdate }))
  t.is((late as { code?: string }).code, 'NOT_STARTED')
})

test('a run waiting for a slot ends `expired` on its deadline and `stopped` on stop, without running', async (t) => {
  const gate = gated()
  const runtime = new FakeRuntime(gate.behaviour)
  const exec = executor({ concurrency: 1, containers: [container('echo')] })({ runtime, logger: silentLogger() })
  await exec.start()
  t.context.started.push(exec)
  const busy = exec.run(job('busy'), { signal: new AbortController().signal, update: noUpdate })
  const deadline = new AbortController()
  const stop = new AbortController()
  const expiring = exec.run(job('late'), { signal: deadline.signal, update: noUpdate })
  const stopping = exec.run(job('parked'), { signal: stop.signal, update: noUpdate })
  t.like(exec.stats(), { active: 1, waiting: 2, concurrency: 1 })
  deadline.abort(DEADLINE_REASON)
  stop.abort(STOP_REASON)
  const [e, s]: ChainEnd[] = [await expiring, await stopping]
  t.is(e.kind, 'expired')
  t.is(s.kind, 'stopped')
  t.is(e.job.state, 'pending')
  gate.release()
  t.is((await busy).kind, 'finished')
  t.deepEqual(runtime.calls, ['busy'])
  t.like(exec.stats(), { active: 0, waiting: 0 })
})

test('a chain naming a container no longer configured finishes failed, without taking a slot', async (t) => {
  const runtime = new FakeRuntime()
  const exec = executor({ concurrency: 1, containers: [container('echo')] })({ runtime, logger: silentLogger() })
  await exec.start()
  const end = await exec.run(record({ ...job('gone'), containers: ['removed'] }), { signal: new AbortController().signal, update: noUpdate })
  t.is(end.kind, 'finished')
  if (end.kind === 'finished') t.like(end.end, { state: 'failed', errorCode: 'UNKNOWN_CONTAINER' })
  t.deepEqual(runtime.calls, [])
})
