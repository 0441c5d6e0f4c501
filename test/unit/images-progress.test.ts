import test from 'ava'
import { Readable } from 'node:stream'
import type Dockerode from 'dockerode'
import { ImageEngine } from '../../src/images/engine.ts'
import { ProgressThrottle, PullProgressTally } from '../../src/images/progress.ts'
import type { ThrottleClock } from '../../src/images/progress.ts'
import type { ImageProgress } from '../../src/runtime/types.ts'

// The byte progress of image fetches: the tally of the engine's pull stream and the throttle that
// hands progress on. The engine is a stand-in whose modem answers with a recorded-shape stream.

/** A Docker 20-27 pull of an image with three layers, one already present (shape as the engine streams it). */
const PULL_STREAM = [
  { status: 'Pulling from library/app', id: '1.2' },
  { status: 'Already exists', progressDetail: {}, id: 'a1a1a1a1a1a1' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'b2b2b2b2b2b2' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'c3c3c3c3c3c3' },
  { status: 'Waiting', progressDetail: {}, id: 'c3c3c3c3c3c3' },
  { status: 'Downloading', progressDetail: { current: 1_000, total: 10_000 }, progress: '[=====>    ]  1kB/10kB', id: 'b2b2b2b2b2b2' },
  { status: 'Downloading', progressDetail: { current: 6_000, total: 10_000 }, progress: '[==========>  ]  6kB/10kB', id: 'b2b2b2b2b2b2' },
  { status: 'Downloading', progressDetail: { current: 500, total: 4_000 }, progress: '[=>  ]  500B/4kB', id: 'c3c3c3c3c3c3' },
  { status: 'Verifying Checksum', progressDetail: {}, id: 'b2b2b2b2b2b2' },
  { status: 'Download complete', progressDetail: {}, id: 'b2b2b2b2b2b2' },
  { status: 'Extracting', progressDetail: { current: 32_768, total: 10_000 }, id: 'b2b2b2b2b2b2' },
  { status: 'Downloading', progressDetail: { current: 4_000, total: 4_000 }, id: 'c3c3c3c3c3c3' },
  { status: 'Download complete', progressDetail: {}, id: 'c3c3c3c3c3c3' },
  { status: 'Pull complete', progressDetail: {}, id: 'b2b2b2b2b2b2' },
  { status: 'Pull complete', progressDetail: {}, id: 'c3c3c3c3c3c3' },
  { status: 'Digest: sha256:' + 'd'.repeat(64) },
  { status: 'Status: Downloaded newer image for app:1.2' }
]

test('the pull tally sums downloaded bytes over layers; the total is known once every layer said its size', (t) => {
  const tally = new PullProgressTally()
  const seen: ImageProgress[] = []
  for (const line of PULL_STREAM) if (tally.line(line)) seen.push(tally.progress())
  // a already exists (nothing to fetch); announcing b and c changes no number.
  t.deepEqual(seen, [
    { doneBytes: 1_000, totalBytes: 0 }, // c's size still unknown
    { doneBytes: 6_000, totalBytes: 0 },
    { doneBytes: 6_500, totalBytes: 14_000 }, // every layer sized
    { doneBytes: 10_500, totalBytes: 14_000 }, // b verified: all its bytes (extraction adds none)
    { doneBytes: 14_000, totalBytes: 14_000 } // c downloaded
  ])
  t.deepEqual(tally.progress(), { doneBytes: 14_000, totalBytes: 14_000 })
})

test('the pull tally ignores lines that are not layers and counts a layer done without a size as done', (t) => {
  const tally = new PullProgressTally()
  t.false(tally.line({ status: 'Pulling from library/x', id: 'latest' }))
  t.false(tally.line({ status: 'Digest: sha256:00' }))
  t.false(tally.line({ id: 'x', progressDetail: { current: 5, total: 9 } }), 'no status')
  t.false(tally.line({ status: 'Downloading', id: 7 }), 'id not a string')
  t.false(tally.line({ status: 'Pulling fs layer', id: 'small' }), 'announced: no bytes yet')
  t.false(tally.line({ status: 'Download complete', id: 'small' }), 'done without a size: still no bytes')
  t.false(tally.line({ status: 'Downloading', id: 'big', progressDetail: { current: 'lots', total: -3 } }), 'nonsense numbers count as 0')
  t.true(tally.line({ status: 'Downloading', id: 'big', progressDetail: { current: 300, total: 1_000 } }))
  t.deepEqual(tally.progress(), { doneBytes: 300, totalBytes: 1_000 }, 'the sizeless small layer never holds the total back')
  t.true(tally.line({ status: 'Retrying in 5 seconds', id: 'big' }))
  t.deepEqual(tally.progress(), { doneBytes: 0, totalBytes: 1_000 }, 'a retry starts the layer again')
  t.true(tally.line({ status: 'Pulling fs layer', id: 'late' }))
  t.deepEqual(tally.progress(), { doneBytes: 0, totalBytes: 0 }, 'a layer of unknown size makes the total unknown again')
})

/** An ImageEngine whose engine answers the pull with `body`, cut into `pieces` chunks (lines split across them). */
function engineAnswering (body: string, pieces: number): ImageEngine {
  const size = Math.ceil(body.length / pieces)
  const chunks: Buffer[] = []
  for (let i = 0; i < body.length; i += size) chunks.push(Buffer.from(body.slice(i, i + size)))
  const docker = { modem: { dial: (_opts: unknown, cb: (err: unknown, data: unknown) => void) => { cb(null, Readable.from(chunks)) } } }
  return new ImageEngine(docker as unknown as Dockerode, 1_000)
}

test('engine.pull reads the recorded stream across chunk boundaries and reports each change', async (t) => {
  const body = PULL_STREAM.map((l) => JSON.stringify(l)).join('\r\n') + '\r\n'
  const reports: Array<[number, number]> = []
  await engineAnswering(body, 37).pull('app:1.2', undefined, AbortSignal.timeout(5_000), (done, total) => { reports.push([done, total]) })
  t.deepEqual(reports, [[1_000, 0], [6_000, 0], [6_500, 14_000], [10_500, 14_000], [14_000, 14_000]])
  // No listener: the same stream is read without tallying.
  await t.notThrowsAsync(engineAnswering(body, 5).pull('app:1.2', undefined, AbortSignal.timeout(5_000)))
})

test('engine.pull still rejects with the engine\'s error line after progress', async (t) => {
  const body = JSON.stringify(PULL_STREAM[2]) + '\n' + JSON.stringify(PULL_STREAM[5]) + '\n' + JSON.stringify({ errorDetail: { message: 'unexpected EOF' }, error: 'unexpected EOF' }) + '\n'
  const reports: number[] = []
  const err = await t.throwsAsync(engineAnswering(body, 3).pull('app:1.2', undefined, AbortSignal.timeout(5_000), (done) => { reports.push(done) }))
  t.is(err?.message, 'unexpected EOF')
  t.deepEqual(reports, [1_000])
})

/** A clock the test moves by hand, with timers that fire when it is moved past them. */
function manualClock (): ThrottleClock & { advance: (ms: number) => void, pending: () => number } {
  let now = 1_000
  let timers: Array<{ at: number, fn: () => void }> = []
  return {
    now: () => now,
    later: (fn, ms) => {
      const timer = { at: now + ms, fn }
      timers.push(timer)
      return () => { timers = timers.filter((x) => x !== timer) }
    },
    advance: (ms) => {
      now += ms
      const due = timers.filter((x) => x.at <= now)
      timers = timers.filter((x) => x.at > now)
      for (const x of due) x.fn()
    },
    pending: () => timers.length
  }
}

test('the throttle passes the first report at once, then at most one per interval, and the newest held one when the interval ends', (t) => {
  const clock = manualClock()
  const got: number[] = []
  const throttle = new ProgressThrottle((p) => { got.push(p.doneBytes) }, 250, clock)
  throttle.report(1, 100)
  t.deepEqual(got, [1], 'first report at once')
  for (let done = 2; done <= 50; done++) {
    clock.advance(4)
    throttle.report(done, 100)
  }
  // 49 reports over 196 ms: none passed yet, the newest is held for the end of the interval.
  t.deepEqual(got, [1])
  t.is(clock.pending(), 1, 'one timer, however many reports')
  clock.advance(54)
  t.deepEqual(got, [1, 50], 'the newest held report, when the interval ends')
  t.is(clock.pending(), 0)
  clock.advance(1_000)
  throttle.report(60, 100)
  t.deepEqual(got, [1, 50, 60], 'after a quiet interval: at once again')
})

test('close() delivers the held report, leaves no timer, and ignores later reports; a throwing listener breaks nothing', (t) => {
  const clock = manualClock()
  const got: ImageProgress[] = []
  const throttle = new ProgressThrottle((p) => { got.push(p); throw new Error('listener bug') }, 250, clock)
  throttle.report(10, 0)
  clock.advance(10)
  throttle.report(20, 0)
  t.is(clock.pending(), 1)
  throttle.close()
  t.deepEqual(got, [{ doneBytes: 10, totalBytes: 0 }, { doneBytes: 20, totalBytes: 0 }])
  t.is(clock.pending(), 0, 'no timer left')
  throttle.report(30, 0)
  throttle.close()
  clock.advance(1_000)
  t.is(got.length, 2, 'nothing after close')
})
