import test from 'ava'
import { DeadlineSlots, DeadlineUnreachableError, SlotWaitAbortedError } from '../../src/slots.ts'

/** A clock the test moves by hand. */
function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1_000_000
  return { now: () => t, advance: (ms) => { t += ms } }
}

test('a free slot is taken at once, whatever the deadline', async (t) => {
  const c = clock()
  const slots = new DeadlineSlots(1, { nowMs: c.now })
  const release = await slots.acquire({ deadlineAtMs: c.now() - 1, kind: 'k' })
  t.is(slots.active, 1)
  release()
  release() // twice is once
  t.is(slots.active, 0)
})

test('the wait line is served earliest deadline first, ties in arrival order', async (t) => {
  const c = clock()
  const slots = new DeadlineSlots(1, { nowMs: c.now })
  const first = await slots.acquire({ deadlineAtMs: c.now() + 100_000, kind: 'k' })
  const order: string[] = []
  const wait = (name: string, inMs: number): Promise<void> => slots.acquire({ deadlineAtMs: c.now() + inMs, kind: 'k' }).then((release) => { order.push(name); release() })
  const all = [wait('late', 9_000), wait('soon-a', 2_000), wait('mid', 5_000), wait('soon-b', 2_000)]
  t.is(slots.waiting, 4)
  first()
  await Promise.all(all)
  t.deepEqual(order, ['soon-a', 'soon-b', 'mid', 'late'])
})

test('a waiter with less time left than the kind\'s usual run is shed when its turn comes; others are granted', async (t) => {
  const c = clock()
  const slots = new DeadlineSlots(1, { nowMs: c.now })
  // Ten runs of kind "slow" that took 1 s each: its usual run is 1 s.
  for (let i = 0; i < 10; i++) {
    const release = await slots.acquire({ deadlineAtMs: c.now() + 60_000, kind: 'slow' })
    c.advance(1_000)
    release()
  }
  t.is(slots.typicalMs('slow'), 1_000)
  t.is(slots.typicalMs('never-ran'), undefined)
  const holder = await slots.acquire({ deadlineAtMs: c.now() + 60_000, kind: 'slow' })
  const hopeless = slots.acquire({ deadlineAtMs: c.now() + 1_500, kind: 'slow' })
  const fine = slots.acquire({ deadlineAtMs: c.now() + 5_000, kind: 'slow' })
  c.advance(1_000)
  holder()
  // Its turn came first (earliest deadline) with 500 ms left: shed at once, and the slot went to the next.
  const shed = await t.throwsAsync(hopeless, { instanceOf: DeadlineUnreachableError })
  t.is(shed?.code, 'DEADLINE_UNREACHABLE')
  t.is(shed?.remainingMs, 500)
  t.is(shed?.typicalMs, 1_000)
  t.regex(shed?.message ?? '', /500 ms were left before the deadline .* takes 1000 ms/)
  const releaseFine = await fine
  t.is(slots.active, 1)
  // A kind with no runs yet is never shed on a guess, however near its deadline.
  const unknown = slots.acquire({ deadlineAtMs: c.now() + 1, kind: 'new' })
  c.advance(10)
  releaseFine()
  const releaseUnknown = await unknown
  releaseUnknown()
  t.is(slots.active, 0)
  t.is(slots.waiting, 0)
})

test('the usual run is the 90th percentile of the kind\'s last 32 runs', async (t) => {
  const c = clock()
  const slots = new DeadlineSlots(4, { nowMs: c.now })
  const run = async (ms: number): Promise<void> => {
    const release = await slots.acquire({ deadlineAtMs: c.now() + 60_000, kind: 'k' })
    c.advance(ms)
    release()
  }
  for (let i = 1; i <= 10; i++) await run(i * 100)
  t.is(slots.typicalMs('k'), 900)
  // 40 more runs of 10 ms: the old ones are forgotten.
  for (let i = 0; i < 40; i++) await run(10)
  t.is(slots.typicalMs('k'), 10)
})

test('a waiter whose signal aborts leaves the line without a slot', async (t) => {
  const c = clock()
  const slots = new DeadlineSlots(1, { nowMs: c.now })
  const holder = await slots.acquire({ deadlineAtMs: c.now() + 1_000, kind: 'k' })
  const controller = new AbortController()
  const waiting = slots.acquire({ deadlineAtMs: c.now() + 1_000, kind: 'k', signal: controller.signal })
  controller.abort('gone')
  const err = await t.throwsAsync(waiting, { instanceOf: SlotWaitAbortedError })
  t.is(err?.reason, 'gone')
  t.is(slots.waiting, 0)
  holder()
  t.is(slots.active, 0)
  await t.throwsAsync(slots.acquire({ deadlineAtMs: 0, kind: 'k', signal: controller.signal }), { instanceOf: SlotWaitAbortedError })
})

test('the limit drops by a quarter when runs end late and slow, never below the floor, and climbs back as runs end in time', async (t) => {
  const c = clock()
  const slots = new DeadlineSlots(64, { nowMs: c.now })
  const run = async (ms: number, deadlineInMs: number): Promise<void> => {
    const release = await slots.acquire({ deadlineAtMs: c.now() + deadlineInMs, kind: 'k' })
    c.advance(ms)
    release()
  }
  // Pace when not congested: 10 ms runs, ending in time. At the configured limit, nothing to raise.
  for (let i = 0; i < 8; i++) await run(10, 1_000)
  t.is(slots.current, 64)
  // A run past its deadline but not slow (the deadline was too short for the kind): no signal.
  await run(15, 5)
  t.is(slots.current, 64)
  // Late and slow (more than twice the median in-time run): a cut.
  await run(2_000, 1_000)
  t.is(slots.current, 48)
  // Another within CUT_SPACING_MS does not cut again; after it, it does.
  c.advance(-2_000 + 100)
  await run(2_000, 1_000)
  t.is(slots.current, 48)
  for (let i = 0; i < 20; i++) await run(2_000, 1_000)
  t.is(slots.current, 8, 'never below the floor')
  // Runs in time raise it by one per `current` of them.
  for (let i = 0; i < 8; i++) await run(10, 1_000)
  t.is(slots.current, 9)
  for (let i = 0; i < 9; i++) await run(10, 1_000)
  t.is(slots.current, 10)
})

test('with the limit lowered, the extra waiters queue by deadline instead of running at once', async (t) => {
  const c = clock()
  const slots = new DeadlineSlots(16, { nowMs: c.now })
  for (let i = 0; i < 8; i++) {
    const release = await slots.acquire({ deadlineAtMs: c.now() + 1_000, kind: 'k' })
    c.advance(10)
    release()
  }
  // One late, slow run: 16 → 12 places.
  const slow = await slots.acquire({ deadlineAtMs: c.now() + 100, kind: 'k' })
  c.advance(500)
  slow()
  t.is(slots.current, 12)
  const held = await Promise.all(Array.from({ length: 12 }, async () => await slots.acquire({ deadlineAtMs: c.now() + 60_000, kind: 'k' })))
  const extra = slots.acquire({ deadlineAtMs: c.now() + 60_000, kind: 'k' })
  t.is(slots.active, 12)
  t.is(slots.waiting, 1)
  held[0]?.()
  const release = await extra
  t.is(slots.active, 12)
  release()
  for (const r of held) r()
  t.is(slots.active, 0)
})
