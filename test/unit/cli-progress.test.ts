import test from 'ava'
import { containerProgress, containerStage, jobFraction, jobProgress, stepOf } from '../../src/cli/progress.ts'

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
