import anyTest, { type TestFn } from 'ava'
import { jobToWire } from '../../src/api/convert.ts'
import { levelStore } from '../../src/store/index.ts'
import { computeJobHash, sha256, verifyReceipt } from '../../src/receipt/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import type { RunRequest } from '../../src/runtime/types.ts'
import {
  FakeRuntime, afterEachCtx, beforeEachCtx, config, container, dec, enc, record, result, settled, setup, sleep, until,
  type Behaviour, type Ctx
} from '../helpers/fake-runtime.ts'

const test = anyTest as TestFn<Ctx>

test.beforeEach(beforeEachCtx)
test.afterEach.always(afterEachCtx)

const digestOf = (id: string): string => 'sha256:' + Buffer.from(id.padEnd(32, '-')).toString('hex')
const CHAIN = [container('a'), container('b'), container('c'), container('j', { inputSchema: 'json' }), container('inner', { external: false })]

/** a upper-cases, b reverses, c appends "!", inner wraps in brackets; each reports its own image digest. */
function transforms (): Behaviour {
  return (req: RunRequest) => {
    const text = dec(req.input)
    const id = req.container.id
    const out = id === 'a' ? text.toUpperCase() : id === 'b' ? [...text].reverse().join('') : id === 'c' ? `${text}!` : `[${text}]`
    return result(enc(out), digestOf(id))
  }
}

test('a chain threads each output into the next input and keeps the intermediates', async (t) => {
  const { orch, runtime, events } = await setup(t, { runtime: new FakeRuntime(transforms()), containers: CHAIN })
  const { job: accepted } = await orch.submit({ containers: ['a', 'b', 'c'], input: enc('hello') })
  t.deepEqual(accepted.containers, ['a', 'b', 'c'])
  t.is(accepted.containerId, 'a')
  const job = await settled(orch, accepted.id)
  t.is(job.state, 'success')
  t.is(dec(job.output), 'OLLEH!')
  t.deepEqual(runtime.requests.map((r) => [r.container.id, dec(r.input)]), [['a', 'hello'], ['b', 'HELLO'], ['c', 'OLLEH']])
  t.deepEqual(job.steps.map((s) => [s.containerId, s.status, s.imageDigest, s.outputBytes]), [
    ['a', 'success', digestOf('a'), 5], ['b', 'success', digestOf('b'), 5], ['c', 'success', digestOf('c'), 6]
  ])
  // Intermediates are stored; the last output is the job's and is not stored twice.
  t.deepEqual(job.steps.map((s) => s.output === undefined ? undefined : dec(s.output)), ['HELLO', 'OLLEH', undefined])
  t.deepEqual(job.steps.map((s) => s.outputHash), [sha256(enc('HELLO')), sha256(enc('OLLEH')), sha256(enc('OLLEH!'))])
  t.is(job.imageDigest, digestOf('c'))
  await until(() => events.length >= 5)
  t.deepEqual(events.map((e) => [e.state, e.detail]), [
    ['pending', 'accepted'], ['running', 'step 1/3: a'], ['running', 'step 2/3: b'], ['running', 'step 3/3: c'], ['success', 'succeeded']
  ])
  t.true(events.every((e) => e.containerId === 'a'))
})

test('the receipt covers every step and hashes the whole chain', async (t) => {
  const { orch } = await setup(t, { runtime: new FakeRuntime(transforms()), containers: CHAIN })
  const { job: accepted } = await orch.submit({ containers: ['a', 'b', 'c'], input: enc('abc') })
  const job = await settled(orch, accepted.id)
  const verdict = verifyReceipt(job.receipt!, { output: job.output, input: enc('abc') })
  t.true(verdict.valid)
  if (!verdict.valid) return
  const r = verdict.receipt
  t.deepEqual(r.jobHash, computeJobHash(job.id, ['a', 'b', 'c'], sha256(enc('abc'))))
  t.notDeepEqual(r.jobHash, computeJobHash(job.id, ['a'], sha256(enc('abc'))))
  t.deepEqual(r.steps.map((s) => [s.containerId, s.imageDigest, s.exitCode]), [['a', digestOf('a'), 0], ['b', digestOf('b'), 0], ['c', digestOf('c'), 0]])
  t.deepEqual(r.steps.map((s) => s.outputHash), [sha256(enc('ABC')), sha256(enc('CBA')), sha256(enc('CBA!'))])
  t.deepEqual(r.outputHash, sha256(enc('CBA!')))
})

test('a failure at step i stops the chain, names the step and container, and keeps the code', async (t) => {
  const ok = transforms()
  const runtime = new FakeRuntime((req) => {
    if (req.container.id === 'b') {
      throw Object.assign(new Error('container exited with code 2'), { code: 'CONTAINER_EXIT', exitCode: 2, imageDigest: digestOf('b'), stderrTail: 'bad line' })
    }
    return ok(req)
  })
  const { orch, events } = await setup(t, { runtime, containers: CHAIN })
  const { job: accepted } = await orch.submit({ containers: ['a', 'b', 'c'], input: enc('x') })
  const job = await settled(orch, accepted.id)
  t.like(job, { state: 'failed', errorCode: 'CONTAINER_EXIT', exitCode: 2, imageDigest: digestOf('b') })
  t.true(job.error?.startsWith('step 2/3 (container "b"): '), job.error ?? '')
  t.deepEqual(runtime.requests.map((r) => r.container.id), ['a', 'b'])
  t.deepEqual(job.steps.map((s) => [s.containerId, s.status, s.errorCode]), [['a', 'success', ''], ['b', 'failed', 'CONTAINER_EXIT']])
  t.is(job.steps[1]?.error, job.error ?? '')
  const verdict = verifyReceipt(job.receipt!)
  t.true(verdict.valid)
  if (verdict.valid) {
    // c never ran: named, with no image and no exit status.
    t.deepEqual(verdict.receipt.steps.map((s) => [s.containerId, s.imageDigest, s.exitCode]), [['a', digestOf('a'), 0], ['b', digestOf('b'), 2], ['c', '', -1]])
    t.is(verdict.receipt.status, 'failed')
  }
  await until(() => events.some((e) => e.state === 'failed'))
  t.like(events.at(-1), { state: 'failed', errorCode: 'CONTAINER_EXIT', detail: 'failed at step 2/3: CONTAINER_EXIT' })
})

test('an output that does not fit the next input schema fails that step without running it', async (t) => {
  const { orch, runtime } = await setup(t, { runtime: new FakeRuntime(transforms()), containers: CHAIN })
  const { job: accepted } = await orch.submit({ containers: ['a', 'j'], input: enc('not json') })
  const job = await settled(orch, accepted.id)
  t.like(job, { state: 'failed', errorCode: 'STEP_INPUT_INVALID' })
  t.true(job.error?.startsWith('step 2/2 (container "j"): '), job.error ?? '')
  t.deepEqual(runtime.requests.map((r) => r.container.id), ['a'])
  t.deepEqual(job.steps.map((s) => [s.containerId, s.status, s.imageDigest]), [['a', 'success', digestOf('a')], ['j', 'failed', '']])
})

test('the deadline covers the whole chain, not each step', async (t) => {
  // Each step alone is far inside its container timeout; together they overrun the job's deadline.
  const runtime = new FakeRuntime(async (req) => {
    await sleep(100, req.signal)
    return result(req.input)
  })
  const { orch } = await setup(t, { runtime, containers: CHAIN })
  const { job: accepted } = await orch.submit({ containers: ['a', 'b', 'c', 'a', 'b'], input: enc('x'), deadlineMs: 250 })
  const job = await settled(orch, accepted.id)
  t.like(job, { state: 'failed', errorCode: 'DEADLINE_EXCEEDED' })
  const failedAt = job.steps.length
  t.true(failedAt >= 2 && failedAt <= 4, `failed at step ${failedAt}`)
  t.true(job.error?.startsWith(`step ${failedAt}/5 `), job.error ?? '')
  t.true(job.steps.slice(0, -1).every((s) => s.status === 'success'))
  t.is(job.steps.at(-1)?.status, 'failed')
  t.is(runtime.running, 0)
  t.true(verifyReceipt(job.receipt!).valid)
})

test('GetJob: step outputs only with include_steps; hashes, sizes and digests always', async (t) => {
  const { orch } = await setup(t, { runtime: new FakeRuntime(transforms()), containers: CHAIN })
  const job = await settled(orch, (await orch.submit({ containers: ['a', 'b'], input: enc('ab') })).job.id)
  const plain = jobToWire(job)
  t.deepEqual(plain.containers, ['a', 'b'])
  t.deepEqual(plain.steps.map((s) => [s.containerId, s.imageDigest, s.outputBytes, s.output.byteLength, s.status]), [
    ['a', digestOf('a'), 2, 0, 'success'], ['b', digestOf('b'), 2, 0, 'success']
  ])
  t.deepEqual(new Uint8Array(plain.steps[0]!.outputHash), sha256(enc('AB')))
  const full = jobToWire(job, { includeSteps: true })
  t.deepEqual(full.steps.map((s) => s.output.toString()), ['AB', 'BA'])
  t.is(full.output.toString(), 'BA')
})

test('internal containers may follow but not lead; origins reach every step', async (t) => {
  const { orch, runtime, rejections } = await setup(t, { runtime: new FakeRuntime(transforms()), containers: CHAIN })
  const origin = { ip: '10.0.0.7', peerId: '', delegate: '' }
  const err = await t.throwsAsync(orch.submit({ containerId: 'inner', input: enc('x'), origin }), { name: 'GuardianRejectedError' })
  t.like(err, { code: 'PERMISSION_DENIED', reason: 'NOT_EXTERNAL', containerId: 'inner' })
  t.deepEqual(rejections, [{ reason: 'NOT_EXTERNAL', containerId: 'inner', code: 'PERMISSION_DENIED' }])
  t.is(orch.stats().guardianRejections, 1)
  t.deepEqual(await orch.list(), [])
  const job = await settled(orch, (await orch.submit({ containers: ['a', 'inner'], input: enc('x'), origin })).job.id)
  t.is(dec(job.output), '[X]')
  t.deepEqual(runtime.requests.map((r) => r.origin), [origin, origin])
  t.is(orch.stats().guardianRejections, 1)
})

test('the Guardian runs on every submit: IP rules, proofs, and the chain shape', async (t) => {
  const containers = [
    container('open'),
    container('lan', { allowedIps: ['10.0.0.0/8'] }),
    container('prover', { generatesProofs: true })
  ]
  const { orch, rejections } = await setup(t, { containers })
  const from = (ip: string): { ip: string, peerId: string, delegate: string } => ({ ip, peerId: '', delegate: '' })
  await t.throwsAsync(orch.submit({ containers: ['open', 'lan'], input: enc('x'), origin: from('192.168.1.1') }), { name: 'GuardianRejectedError', code: 'PERMISSION_DENIED' })
  // An origin the API could not tell (no IP) is refused by a non-empty list.
  await t.throwsAsync(orch.submit({ containerId: 'lan', input: enc('x') }), { name: 'GuardianRejectedError', code: 'PERMISSION_DENIED' })
  t.is((await settled(orch, (await orch.submit({ containers: ['open', 'lan'], input: enc('x'), origin: from('::ffff:10.9.9.9') })).job.id)).state, 'success')
  await t.throwsAsync(orch.submit({ containers: ['prover', 'open'], input: enc('x'), requiresProof: true }), { name: 'GuardianRejectedError', code: 'FAILED_PRECONDITION' })
  t.is((await settled(orch, (await orch.submit({ containers: ['open', 'prover'], input: enc('x'), requiresProof: true })).job.id)).requiresProof, true)
  await t.throwsAsync(orch.submit({ input: enc('x') }), { name: 'GuardianRejectedError', code: 'INVALID_ARGUMENT' })
  await t.throwsAsync(orch.submit({ containers: [], containerId: '', input: enc('x') }), { name: 'GuardianRejectedError', code: 'INVALID_ARGUMENT' })
  t.deepEqual(rejections.map((r) => r.reason), ['IP_NOT_ALLOWED', 'IP_NOT_ALLOWED', 'PROOF_UNSUPPORTED', 'NO_CONTAINERS', 'NO_CONTAINERS'])
  t.is(orch.stats().guardianRejections, 5)
  // Shape errors are the client's, not the Guardian's, and are not counted as rejections.
  await t.throwsAsync(orch.submit({ containerId: 'open', containers: ['lan'], input: enc('x') }), { name: 'InvalidChainError', code: 'INVALID_CHAIN' })
  await t.throwsAsync(orch.submit({ containers: Array<string>(17).fill('open'), input: enc('x') }), { name: 'InvalidChainError' })
  await t.throwsAsync(orch.submit({ containers: ['open', ''], input: enc('x') }), { name: 'InvalidChainError' })
  t.is((await orch.submit({ containerId: 'open', containers: ['open', 'prover'], input: enc('x') })).job.containers.length, 2)
  t.is(orch.stats().guardianRejections, 5)
  // The input checks apply to the first container.
  await t.throwsAsync(orch.submit({ containers: ['open', 'lan'], input: new Uint8Array(65), origin: from('10.0.0.1') }), { name: 'InputTooLargeError' })
})

test('a container needing more than the node has is refused at submit, before anything is stored', async (t) => {
  const containers = [
    container('small'),
    container('greedy', { resources: { cpus: 8, memoryBytes: 64 << 20, pids: 32, gpu: false } }),
    container('hungry', { resources: { cpus: 1, memoryBytes: 16 * 1024 ** 3, pids: 32, gpu: false } }),
    container('gpu', { resources: { cpus: 1, memoryBytes: 64 << 20, pids: 32, gpu: true } })
  ]
  const { orch, runtime } = await setup(t, { containers, hardware: { cpuCores: 2, memoryBytes: 4 * 1024 ** 3, gpus: [] } })
  const cpu = await t.throwsAsync(orch.submit({ containers: ['small', 'greedy'], input: enc('x') }), { name: 'InsufficientResourcesError', code: 'INSUFFICIENT_RESOURCES' })
  t.like(cpu, { containerId: 'greedy', resource: 'cpus', needed: 8, available: 2 })
  t.like(await t.throwsAsync(orch.submit({ containerId: 'hungry', input: enc('x') }), { name: 'InsufficientResourcesError' }), { resource: 'memory' })
  await t.throwsAsync(orch.submit({ containerId: 'gpu', input: enc('x') }), { name: 'GpuUnavailableError', code: 'GPU_UNAVAILABLE' })
  t.deepEqual(await orch.list(), [])
  t.deepEqual(runtime.calls, [])
  t.is(orch.stats().guardianRejections, 0)
  t.is((await settled(orch, (await orch.submit({ containerId: 'small', input: enc('x') })).job.id)).state, 'success')
})

test('a GPU container is accepted on a node with a GPU', async (t) => {
  const containers = [container('gpu', { resources: { cpus: 1, memoryBytes: 64 << 20, pids: 32, gpu: true } })]
  const { orch } = await setup(t, { containers, hardware: { cpuCores: 2, memoryBytes: 4 * 1024 ** 3, gpus: [{ name: 'T4' }] } })
  t.is((await settled(orch, (await orch.submit({ containerId: 'gpu', input: enc('x') })).job.id)).state, 'success')
})

test('a chain stopped mid-way resumes after its last finished step on the next start', async (t) => {
  const cfg = config(t.context.dir, {}, CHAIN)
  const store = levelStore({ path: cfg.store.path, maxResults: 100 })({ logger: silentLogger() })
  await store.start()
  t.context.started.push(store)
  const ok = transforms()
  // b hangs (until aborted) the first time only.
  let bRuns = 0
  const firstRuntime = new FakeRuntime(async (req) => {
    if (req.container.id === 'b' && bRuns++ === 0) await sleep(60_000, req.signal)
    return await ok(req)
  })
  const first = await setup(t, { store, runtime: firstRuntime, containers: CHAIN })
  const { job: accepted } = await first.orch.submit({ containers: ['a', 'b', 'c'], input: enc('resume') })
  await until(() => firstRuntime.requests.some((r) => r.container.id === 'b'))
  await first.orch.stop()
  const parked = await store.get(accepted.id)
  t.is(parked?.state, 'pending')
  t.deepEqual(parked?.steps.map((s) => [s.containerId, s.status, dec(s.output)]), [['a', 'success', 'RESUME']])

  const secondRuntime = new FakeRuntime(transforms())
  const second = await setup(t, { store, runtime: secondRuntime, containers: CHAIN })
  const job = await settled(second.orch, accepted.id)
  t.is(job.state, 'success')
  t.is(dec(job.output), 'EMUSER!')
  t.deepEqual(secondRuntime.requests.map((r) => [r.container.id, dec(r.input)]), [['b', 'RESUME'], ['c', 'EMUSER']])
  t.deepEqual(job.steps.map((s) => s.containerId), ['a', 'b', 'c'])
  const verdict = verifyReceipt(job.receipt!, { output: job.output })
  t.true(verdict.valid)
  if (verdict.valid) t.deepEqual(verdict.receipt.steps.map((s) => s.imageDigest), [digestOf('a'), digestOf('b'), digestOf('c')])
})

test('a chain found running after a crash fails NODE_RESTARTED and its receipt keeps the finished steps', async (t) => {
  const first = await setup(t, { start: false, containers: CHAIN })
  const now = Date.now()
  await first.store.putActive(record({
    id: 'crashed',
    containers: ['a', 'b'],
    input: enc('x'),
    state: 'running',
    createdAtMs: now - 10,
    startedAtMs: now - 9,
    deadlineAtMs: now + 30_000,
    history: [{ state: 'pending', atMs: now - 10, detail: 'accepted' }, { state: 'running', atMs: now - 9, detail: 'step 2/2: b' }],
    steps: [{
      containerId: 'a', imageDigest: digestOf('a'), output: enc('X'), outputHash: sha256(enc('X')), outputBytes: 1, exitCode: 0,
      latencyMs: 1, startedAtMs: now - 9, finishedAtMs: now - 8, status: 'success', error: '', errorCode: ''
    }]
  }))
  await first.orch.start()
  t.context.started.push(first.orch)
  const job = await settled(first.orch, 'crashed')
  t.like(job, { state: 'failed', errorCode: 'NODE_RESTARTED' })
  const verdict = verifyReceipt(job.receipt!)
  t.true(verdict.valid)
  if (verdict.valid) t.deepEqual(verdict.receipt.steps.map((s) => [s.containerId, s.imageDigest]), [['a', digestOf('a')], ['b', '']])
  t.deepEqual(first.runtime.calls, [])
})
