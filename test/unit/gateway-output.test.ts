import test from 'ava'
import { MAX_CHUNK_BYTES, OutputHub, outputStream, startCursor, type HubCursor, type OutputSource } from '../../src/gateway/output.ts'
import type { JobEvent } from '../../src/gateway/types.ts'
import type { JobRecord } from '../../src/store/types.ts'

// The output hub's logic on its own: offsets, overlaps, the cap, the end, readers at their own pace.

const b = (s: string): Uint8Array => new TextEncoder().encode(s)
const s = (u: Uint8Array): string => new TextDecoder().decode(u)

/** Everything a reader at `position` (or with `cursor`) can read now. */
function drain (hub: OutputHub, from: number | HubCursor = 0): string {
  const cursor = typeof from === 'number' ? { ...startCursor(), position: from } : from
  let text = ''
  for (;;) {
    const got = hub.read(cursor)
    if (got === undefined) return text
    text += s(got.data)
  }
}

const at = (position: number): HubCursor => ({ ...startCursor(), position })

test('appended pieces are read in order from any position, merged up to the chunk size', (t) => {
  const hub = new OutputHub('j', 1 << 20)
  hub.append(b('one\n'))
  hub.append(b('two\n'))
  t.is(drain(hub), 'one\ntwo\n')
  t.is(drain(hub, 2), 'e\ntwo\n')
  const first = hub.read(startCursor())
  t.is(s(first?.data ?? new Uint8Array()), 'one\ntwo\n', 'a reader behind gets what it missed in one chunk')
  hub.append(new Uint8Array(MAX_CHUNK_BYTES + 10))
  const big = hub.read(at(8))
  t.is(big?.data.byteLength, MAX_CHUNK_BYTES)
  t.false(hub.done(at(8)))
})

test('bytes at an offset: a repeat overlaps, a gap is left out, different bytes stop the live stream', (t) => {
  const hub = new OutputHub('j', 1 << 20)
  t.true(hub.put(0, b('abc')))
  t.true(hub.put(0, b('abcdef')), 'the same bytes again, and more')
  t.is(drain(hub), 'abcdef')
  t.false(hub.put(10, b('xyz')), 'a gap: nothing taken')
  t.is(hub.length, 6)
  t.false(hub.put(3, b('XYZ')), 'other bytes where some are held')
  t.false(hub.put(6, b('ghi')), 'nothing more is taken after a mismatch')
  t.is(drain(hub), 'abcdef')
})

test('nothing past the cap is held', (t) => {
  const hub = new OutputHub('j', 5)
  hub.append(b('abc'))
  hub.append(b('defgh'))
  hub.append(b('ij'))
  t.is(drain(hub), 'abcde')
})

test('at the end readers carry on into the final output when what they read is its start, else OUTPUT_RESTARTED', (t) => {
  const hub = new OutputHub('j', 1 << 20)
  hub.append(b('one\n'))
  hub.append(b('twX'))
  hub.end(b('one\ntwo\nthree\n'))
  const fresh = startCursor()
  t.is(drain(hub, fresh), 'one\ntwo\nthree\n', 'a reader that had read nothing gets it all')
  t.true(hub.done(fresh))
  t.is(drain(hub, 4), 'two\nthree\n', 'one that read the agreeing part carries on')
  t.is(hub.read(at(7)), undefined, 'one that read past the agreeing part gets nothing more')
  t.throws(() => hub.done(at(7)), { code: 'OUTPUT_RESTARTED' })
})

test('a job that failed ends its readers after what was produced; an abort ends them with its error', (t) => {
  const failed = new OutputHub('j', 1 << 20)
  failed.append(b('partial'))
  failed.end(undefined)
  t.is(drain(failed), 'partial')
  t.true(failed.done(at(7)))
  const stopped = new OutputHub('j', 1 << 20)
  stopped.append(b('x'))
  stopped.abort(Object.assign(new Error('stopping'), { code: 'NOT_STARTED' }))
  t.is(stopped.read(startCursor()), undefined)
  t.throws(() => stopped.done(startCursor()), { code: 'NOT_STARTED' })
})

function source (hub: OutputHub | undefined, job?: Partial<JobRecord>): OutputSource {
  return {
    hub: () => hub,
    on: (_l: (e: JobEvent) => void) => () => {},
    get: async () => job as JobRecord | undefined
  }
}

test('outputStream: live chunks, then the rest at the end; a slow reader holds nothing of its own', async (t) => {
  const hub = new OutputHub('j', 1 << 20)
  const it = outputStream('j', source(hub))[Symbol.asyncIterator]()
  hub.append(b('a'))
  t.like((await it.next()).value, { index: 0, jobId: 'j' })
  const next = it.next()
  // Written while the reader was away: merged into its next chunk.
  hub.append(b('b'))
  hub.append(b('c'))
  t.is(s((await next).value.data), 'bc')
  hub.end(b('abcd'))
  const last = await it.next()
  t.like(last.value, { index: 2 })
  t.is(s(last.value.data), 'd')
  t.true((await it.next()).done)
})

test('outputStream: a finished job (no hub) yields its stored output; an unknown id throws JOB_NOT_FOUND; an abort ends the wait', async (t) => {
  const chunks = []
  for await (const c of outputStream('j', source(undefined, { id: 'j', state: 'success', output: b('stored') }))) chunks.push(s(c.data))
  t.deepEqual(chunks, ['stored'])
  await t.throwsAsync(async () => { for await (const _ of outputStream('x', source(undefined))) { /* none */ } }, { code: 'JOB_NOT_FOUND' })
  const hub = new OutputHub('j', 1 << 20)
  const controller = new AbortController()
  const reading = (async () => { for await (const _ of outputStream('j', source(hub), controller.signal)) { /* none */ } })()
  controller.abort()
  await t.throwsAsync(reading, { code: 'ABORTED' })
})
