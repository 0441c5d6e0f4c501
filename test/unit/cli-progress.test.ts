import test from 'ava'
import { containerProgress, containerStage, jobFraction, jobProgress, pullStep, pullText, stepOf } from '../../src/cli/progress.ts'

/** A stream that records what is written; a TTY of 100 columns when `tty`. */
function stream (tty: boolean): { s: NodeJS.WriteStream, text: () => string } {
  let text = ''
  const s = {
    isTTY: tty,
    columns: 100,
    write: (chunk: string) => { text += chunk; return true },
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
    on: () => s,
    removeListener: () => s
  } as unknown as NodeJS.WriteStream
  return { s, text: () => text }
}

test('stepOf and jobFraction: a chain moves a step at a time; a finished job is complete', (t) => {
  t.deepEqual(stepOf('step 2/3: resize'), [2, 3])
  t.is(stepOf('verifying: reexecute, 1 of 1 validators'), undefined)
  t.is(jobFraction('JOB_STATE_PENDING', 'accepted', 3, 0), 0)
  t.is(jobFraction('JOB_STATE_RUNNING', 'step 1/3: a', 3, 0), 0.5)
  t.is(jobFraction('JOB_STATE_RUNNING', 'step 3/3: c', 3, 1.5), 2.5)
  t.is(jobFraction('JOB_STATE_RUNNING', 'verifying: ...', 3, 2.5), 2.5, 'never goes back')
  t.is(jobFraction('running', 'scheduling on the mesh', 1, 0), 0.5)
  t.is(jobFraction('JOB_STATE_FAILED', 'failed at step 2/3', 3, 1.5), 3)
})

test('containerStage: image present, started, healthy; failures are told apart', (t) => {
  t.like(containerStage('missing'), { done: false, failed: false })
  t.like(containerStage('ready'), { done: true })
  t.like(containerStage('mesh'), { done: true })
  t.true(containerStage('pulling').at < containerStage('starting').at)
  t.true(containerStage('starting').at < containerStage('healthy').at)
  t.like(containerStage('healthy'), { done: true })
  t.like(containerStage('failed'), { failed: true, done: false })
  t.like(containerStage('something new'), { done: false, failed: false })
})

test('off a TTY: one plain line per change and the final line; nothing at all when quiet (--json)', async (t) => {
  const plain = stream(false)
  const p = await jobProgress(plain.s, 'j1', 2)
  p.update('JOB_STATE_PENDING', 'accepted')
  p.update('JOB_STATE_PENDING', 'accepted')
  p.update('JOB_STATE_RUNNING', 'step 1/2: a')
  p.stop('job j1: success in 5 ms')
  t.is(plain.text(), 'job j1: pending (accepted)\njob j1: running (step 1/2: a)\njob j1: success in 5 ms\n')

  const quiet = stream(true)
  const q = await jobProgress(quiet.s, 'j2', 1, { quiet: true })
  q.update('JOB_STATE_RUNNING', 'step 1/1: a')
  q.stop('done')
  t.is(quiet.text(), '')

  const rows = stream(false)
  const c = await containerProgress(rows.s)
  c.update([{ id: 'sentiment', state: 'pulling', image: 'nlp:1', note: '' }])
  c.update([{ id: 'sentiment', state: 'pulling', image: 'nlp:1', note: '' }])
  c.update([{ id: 'sentiment', state: 'healthy', image: 'nlp:1', note: '' }])
  c.stop('1 of 1 containers ready')
  t.is(rows.text(), 'container sentiment: pulling\ncontainer sentiment: healthy\n1 of 1 containers ready\n')
})

test('on a TTY: a bar with the steps done, the state and the step; cleared at the end', async (t) => {
  const tty = stream(true)
  const p = await jobProgress(tty.s, 'j3', 2)
  p.update('JOB_STATE_RUNNING', 'step 2/2: b')
  // cli-progress draws on a timer and on stop; stop draws the last state before clearing.
  p.stop('job j3: success in 9 ms')
  t.regex(tty.text(), /job j3 [█░]+ 1\/2 running step 2\/2: b/)
  t.true(tty.text().endsWith('job j3: success in 9 ms\n'))

  const rows = stream(true)
  const c = await containerProgress(rows.s)
  c.update([{ id: 'echo', state: 'ready', image: 'inframind/echo:1', note: '' }, { id: 'sentiment', state: 'starting', image: 'inframind/nlp:1', note: '' }])
  c.stop()
  t.regex(rows.text(), /echo +█+ ready +inframind\/echo:1/)
  t.regex(rows.text(), /sentiment [█░]+ starting +inframind\/nlp:1/)
})

test('pullText and pullStep: bytes of a total, or so far; a plain line at each tenth or each doubling', (t) => {
  const MiB = 1024 * 1024
  t.is(pullText({ doneBytes: 3 * MiB, totalBytes: 12 * MiB }), '3.0 MiB of 12.0 MiB (25%)')
  t.is(pullText({ doneBytes: 1536, totalBytes: 0 }), '1.5 KiB so far')
  t.is(pullText({ doneBytes: 20, totalBytes: 10 }), '20 B of 10 B (100%)', 'never past 100%')
  t.deepEqual([0, 1, 9.9, 10, 55, 100].map((pct) => pullStep({ doneBytes: pct, totalBytes: 100 })), [0, 0, 0, 1, 5, 10])
  t.deepEqual([0, MiB - 1, MiB, 3 * MiB, 4 * MiB, 1024 * MiB].map((b) => pullStep({ doneBytes: b, totalBytes: 0 })), [0, 0, 1, 2, 3, 11])
})

test('containers being pulled: off a TTY a line per tenth of the download; on a TTY a byte bar, or a moving block while the size is unknown', async (t) => {
  const KiB = 1024
  const plain = stream(false)
  const c = await containerProgress(plain.s)
  for (const done of [0, 5, 10, 12, 19, 20, 100]) c.update([{ id: 'nlp', state: 'pulling', image: 'nlp:1', note: '', pull: { doneBytes: done * KiB, totalBytes: 100 * KiB } }])
  c.update([{ id: 'nlp', state: 'starting', image: 'nlp:1', note: '' }])
  c.stop()
  t.is(plain.text(), [
    'container nlp: pulling 0 B of 100.0 KiB (0%)',
    'container nlp: pulling 10.0 KiB of 100.0 KiB (10%)',
    'container nlp: pulling 20.0 KiB of 100.0 KiB (20%)',
    'container nlp: pulling 100.0 KiB of 100.0 KiB (100%)',
    'container nlp: starting', ''
  ].join('\n'))

  const tty = stream(true)
  const bars = await containerProgress(tty.s)
  bars.update([
    { id: 'sized', state: 'pulling', image: 'a:1', note: '', pull: { doneBytes: 50 * KiB, totalBytes: 100 * KiB } },
    { id: 'unsized', state: 'pulling', image: 'b:1', note: '', pull: { doneBytes: 3 * KiB, totalBytes: 0 } },
    { id: 'plain', state: 'starting', image: 'c:1', note: '' }
  ])
  bars.stop()
  t.regex(tty.text(), /sized +█{12}░{12} pulling +50\.0 KiB of 100\.0 KiB \(50%\) +a:1/, 'half the bytes, half the bar')
  t.regex(tty.text(), /unsized ░*████░* pulling +3\.0 KiB so far +b:1/, 'a block of four, no fill')
  t.regex(tty.text(), /plain +█{8}░{16} starting +c:1/, 'the state bar for the others')
})
