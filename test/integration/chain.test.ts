import test, { type ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { computeJobHash, sha256, verifyReceipt } from '../../src/receipt/index.ts'
import { NLP_IMAGE, containerYaml, startTestNode, text, type TestNode } from '../helpers/node.ts'
import type { Job as WireJob } from '../../src/protocol/index.ts'

const INFRA = fileURLToPath(new URL('../../bin/infra.js', import.meta.url))

/** Containers on the busybox echo image: upper-case, reverse each line, append "!", fail at once, pass JSON. */
const CONTAINERS = [
  containerYaml('upper', { command: ['tr', 'a-z', 'A-Z'] }),
  containerYaml('rev', { command: ['rev'] }),
  containerYaml('bang', { command: ['sed', 's/$/!/'] }),
  containerYaml('fail', { command: ['sh', '-c', 'cat >/dev/null; echo "cannot go on" >&2; exit 3'] }),
  containerYaml('jsonin', { input_schema: 'json', output_schema: 'json' }),
  containerYaml('sentiment', { image: NLP_IMAGE, command: ['sentiment'], output_schema: 'json', resources: { cpus: 1, memory: '256m', pids: 64 }, timeout_ms: 30_000 })
]

async function start (t: ExecutionContext): Promise<TestNode> {
  const n = await startTestNode({ containers: CONTAINERS })
  t.teardown(async () => await n.destroy())
  return n
}

const digestOf = (n: TestNode, id: string): string => n.config.containers.find((c) => c.id === id)?.digest ?? ''

/** Waits for the end of a job, collecting the details of every event on the way. */
async function watch (n: TestNode, jobId: string): Promise<{ job: WireJob, details: string[] }> {
  const details: string[] = []
  for await (const event of n.client.watchJob(jobId, { timeoutMs: 60_000 })) {
    details.push(event.detail)
    if (event.job !== null) return { job: event.job, details }
  }
  throw new Error(`WatchJob of ${jobId} ended without the finished job`)
}

test('a chain of three one-shot containers: final output, intermediates on request, a receipt of three pinned steps', async (t) => {
  const n = await start(t)
  const input = text('hello chain\n')
  const chain = ['upper', 'rev', 'bang']
  const { jobId } = await n.client.submitJob({ containers: chain, input })
  const { job, details } = await watch(n, jobId)
  t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
  t.is(job.output.toString(), 'NIAHC OLLEH!\n')
  t.deepEqual(job.containers, chain)
  t.is(job.containerId, 'upper')
  for (const step of ['step 1/3: upper', 'step 2/3: rev', 'step 3/3: bang']) t.true(details.includes(step), step)

  // Without include_steps: hashes, sizes and digests, no bytes.
  const plain = await n.client.getJob(jobId)
  t.deepEqual(plain.steps.map((s) => [s.containerId, s.status, s.imageDigest, s.outputBytes, s.output.byteLength]), [
    ['upper', 'success', digestOf(n, 'upper'), 12, 0], ['rev', 'success', digestOf(n, 'rev'), 12, 0], ['bang', 'success', digestOf(n, 'bang'), 13, 0]
  ])
  t.deepEqual(new Uint8Array(plain.steps[0]!.outputHash), sha256(text('HELLO CHAIN\n')))
  const full = await n.client.getJob(jobId, { includeSteps: true })
  t.deepEqual(full.steps.map((s) => s.output.toString()), ['HELLO CHAIN\n', 'NIAHC OLLEH\n', 'NIAHC OLLEH!\n'])

  const verdict = verifyReceipt(envelopeFromWire(job.receipt!), { output: new Uint8Array(job.output), input })
  t.true(verdict.valid, verdict.valid ? '' : verdict.reason)
  if (!verdict.valid) return
  const r = verdict.receipt
  t.deepEqual(r.jobHash, computeJobHash(jobId, chain, sha256(input)))
  t.deepEqual(r.steps.map((s) => [s.containerId, s.imageDigest, s.exitCode]), chain.map((id) => [id, digestOf(n, id), 0]))
  t.deepEqual(r.steps.map((s) => s.outputHash), full.steps.map((s) => sha256(new Uint8Array(s.output))))
})

test('a failure at step 2 stops the chain, names the step and container, and the node keeps serving', async (t) => {
  const n = await start(t)
  const { jobId } = await n.client.submitJob({ containers: ['upper', 'fail', 'bang'], input: text('x') })
  const { job } = await watch(n, jobId)
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'CONTAINER_EXIT')
  t.is(job.exitCode, 3)
  t.true(job.error.startsWith('step 2/3 (container "fail"): '), job.error)
  t.true(job.error.includes('cannot go on'), job.error)
  t.deepEqual(job.steps.map((s) => [s.containerId, s.status]), [['upper', 'success'], ['fail', 'failed']])
  const verdict = verifyReceipt(envelopeFromWire(job.receipt!))
  t.true(verdict.valid)
  if (verdict.valid) {
    t.deepEqual(verdict.receipt.steps.map((s) => [s.containerId, s.exitCode]), [['upper', 0], ['fail', 3], ['bang', -1]])
    t.is(verdict.receipt.steps[2]?.imageDigest, '')
  }
  const next = await n.client.submitJob({ containers: ['rev', 'upper'], input: text('ok\n') })
  t.is((await watch(n, next.jobId)).job.output.toString(), 'KO\n')
})

test('an output that does not fit the next container\'s input schema fails that step', async (t) => {
  const n = await start(t)
  const { jobId } = await n.client.submitJob({ containers: ['upper', 'jsonin'], input: text('plain text') })
  const { job } = await watch(n, jobId)
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'STEP_INPUT_INVALID')
  t.true(job.error.startsWith('step 2/2 (container "jsonin"): '), job.error)
  t.deepEqual(job.steps.map((s) => [s.containerId, s.status, s.imageDigest]), [['upper', 'success', digestOf(n, 'upper')], ['jsonin', 'failed', '']])
})

test('steps on different images each carry their own pinned digest', async (t) => {
  const n = await start(t)
  const { jobId } = await n.client.submitJob({ containers: ['upper', 'sentiment'], input: text('what a wonderful, lovely day') })
  const { job } = await watch(n, jobId)
  t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
  t.is((JSON.parse(job.output.toString()) as { label: string }).label, 'positive')
  t.notDeepEqual(digestOf(n, 'upper'), digestOf(n, 'sentiment'))
  const verdict = verifyReceipt(envelopeFromWire(job.receipt!), { output: new Uint8Array(job.output) })
  t.true(verdict.valid)
  if (verdict.valid) t.deepEqual(verdict.receipt.steps.map((s) => s.imageDigest), [digestOf(n, 'upper'), digestOf(n, 'sentiment')])
})

test('the CLI submits a chain with --container a,b,c and prints each step with job --steps', async (t) => {
  const n = await start(t)
  const env = { ...process.env, INFRAMIND_CONFIG: '', INFRAMIND_ADDR: n.node.api.publicAddress(), INFRAMIND_CONTROL: n.node.api.controlAddress() }
  const infra = async (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => await new Promise((resolve) => {
    execFile(process.execPath, [INFRA, ...args], { cwd: os.tmpdir(), env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : 1), stdout, stderr })
    }).stdin?.end()
  })
  const submit = await infra(['submit', '--container', 'upper,rev,bang', '--input', 'abc', '--wait', '--json'])
  t.is(submit.code, 0, submit.stderr)
  const job = JSON.parse(submit.stdout) as { job_id: string, output: string, containers: string[] }
  t.is(job.output, 'CBA!')
  t.deepEqual(job.containers, ['upper', 'rev', 'bang'])
  const steps = await infra(['job', job.job_id, '--steps'])
  t.is(steps.code, 0, steps.stderr)
  t.true(steps.stdout.includes('upper → rev → bang'), steps.stdout)
  for (const line of ['| ABC', '| CBA', '| CBA!']) t.true(steps.stdout.includes(line), line)
  t.regex(steps.stdout, /1\/3\s+upper\s+sha256:\w{12}\s+success/)
  const bad = await infra(['submit', '--container', 'upper,,rev', '--input', 'x'])
  t.is(bad.code, 2)
})
