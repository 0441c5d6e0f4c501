import anyTest, { type TestFn } from 'ava'
import { randomBytes } from 'node:crypto'
import { identityFromSeed } from '../../src/identity/index.ts'
import { computeJobHash, sha256, signReceipt, verifyReceipt } from '../../src/receipt/index.ts'
import { defaults } from '../../src/config/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import type { RemoteExecutor, RemoteJob, VerifyOutcome, RemoteResult } from '../../src/gateway/types.ts'
import {
  DIGEST, afterEachCtx, beforeEachCtx, container, dec, enc, settled, setup, until, type Ctx
} from '../helpers/fake-runtime.ts'

// The gateway's mesh lane with a stand-in scheduler: admission, in-flight limits, and the checks on
// what a worker sends back. The executor here runs nothing (a pure gateway), so every job is a mesh job.

const test = anyTest as TestFn<Ctx>
test.beforeEach(beforeEachCtx)
test.afterEach.always(afterEachCtx)

interface Held { job: RemoteJob, signal: AbortSignal, answer: (r: RemoteResult) => void, fail: (err: Error) => void }

/** A scheduler stand-in: holds every job until the test answers it, as a worker signing real receipts would. */
class FakeRemote implements RemoteExecutor {
  readonly worker: Identity = identityFromSeed(randomBytes(32))
  readonly held = new Map<string, Held>()
  served = new Set(['echo', 'json'])
  maxHeld = 0

  servedContainers (): Set<string> { return new Set(this.served) }

  /** What the gateway reported with misbehaved(): "CODE: reason". */
  readonly misbehaving: string[] = []

  misbehaved (_workerId: string, reason: string): void { this.misbehaving.push(reason) }

  /** These tests submit unverified jobs: a call here is a bug in the gateway. */
  async verify (): Promise<VerifyOutcome> {
    throw new Error('verify called for an unverified job')
  }

  async runRemote (job: RemoteJob, opts: { signal: AbortSignal }): Promise<RemoteResult> {
    return await new Promise((resolve, reject) => {
      this.held.set(job.jobId, { job, signal: opts.signal, answer: resolve, fail: reject })
      this.maxHeld = Math.max(this.maxHeld, this.held.size)
      opts.signal.addEventListener('abort', () => {
        this.held.delete(job.jobId)
        reject(new Error('aborted'))
      }, { once: true })
    })
  }

  /** The worker's genuine answer: output and a receipt it signed for exactly this job. */
  result (job: RemoteJob, output: Uint8Array, fields: { imageDigest?: string, jobId?: string } = {}): RemoteResult {
    const jobId = fields.jobId ?? job.jobId
    const now = Date.now()
    const decoded = {
      jobId,
      jobHash: computeJobHash(jobId, job.containers, sha256(job.input)),
      inputHash: sha256(job.input),
      outputHash: sha256(output),
      steps: job.containers.map((containerId) => ({ containerId, imageDigest: fields.imageDigest ?? DIGEST, outputHash: sha256(output), exitCode: 0 })),
      status: 'success' as const,
      exitCode: 0,
      latencyMs: 1,
      startedAtMs: now - 1,
      finishedAtMs: now,
      workerId: this.worker.nodeId,
      schedulerId: 'scheduler',
      error: ''
    }
    return { output, receipt: signReceipt(this.worker, decoded), decoded, workerId: this.worker.nodeId, probation: false }
  }

  answer (id: string, output: Uint8Array, fields: { imageDigest?: string, jobId?: string } = {}): void {
    const h = this.held.get(id)
    if (h === undefined) throw new Error(`job ${id} is not held`)
    this.held.delete(id)
    h.answer(this.result(h.job, output, fields))
  }
}

async function gateway (t: { context: Ctx }, opts: { remote?: FakeRemote, maxInFlight?: number, queueSize?: number } = {}) {
  const remote = opts.remote ?? new FakeRemote()
  const s = await setup(t, { remote, runs: [], gateway: { maxInFlight: opts.maxInFlight, queueSize: opts.queueSize } })
  return { ...s, remote }
}

test('with the default config a gateway keeps far more mesh jobs in flight than jobs.concurrency, and none holds an executor slot', async (t) => {
  const { orch, remote, runtime } = await gateway(t)
  t.true(defaults.DEFAULT_GATEWAY_MAX_IN_FLIGHT >= 100)
  const n = 60
  const ids = []
  for (let i = 0; i < n; i++) ids.push((await orch.submit({ containerId: 'echo', input: enc(`job ${i}`) })).job.id)
  await until(() => remote.held.size === n)
  t.is(remote.maxHeld, n, 'every job was handed to the mesh at once')
  t.like(orch.stats(), { meshInFlight: n, active: n, queued: 0 })
  t.is(runtime.calls.length, 0, 'nothing ran on this node')
  for (const id of ids) remote.answer(id, enc(`done ${id}`))
  for (const id of ids) {
    const job = await settled(orch, id)
    t.is(job.state, 'success')
    t.is(dec(job.output), `done ${id}`)
    t.true(verifyReceipt(job.receipt!, { output: job.output }).valid)
  }
})

test('beyond gateway.max_in_flight jobs wait in the gateway\'s queue; beyond its queue_size: GATEWAY_FULL', async (t) => {
  const { orch, remote } = await gateway(t, { maxInFlight: 3, queueSize: 2 })
  const ids = []
  for (let i = 0; i < 5; i++) ids.push((await orch.submit({ containerId: 'echo', input: enc(`${i}`) })).job.id)
  await until(() => remote.held.size === 3)
  t.like(orch.stats(), { meshInFlight: 3, queued: 2 })
  const full = await t.throwsAsync(orch.submit({ containerId: 'echo', input: enc('one too many') }))
  t.is((full as { code?: string }).code, 'GATEWAY_FULL')
  t.is(full?.name, 'GatewayFullError')
  // Every accepted job still finishes, in turn.
  for (let done = 0; done < 5; done++) {
    await until(() => remote.held.size > 0)
    const [id] = remote.held.keys()
    remote.answer(id as string, enc('ok'))
  }
  for (const id of ids) t.is((await settled(orch, id)).state, 'success')
})

test('the gateway\'s Guardian judges the client of a mesh job with its own rules, and the origin travels with the job', async (t) => {
  const remote = new FakeRemote()
  const containers = [container('echo', { allowedIps: ['10.0.0.0/8'] })]
  const s = await setup(t, { remote, runs: [], containers })
  const refused = await t.throwsAsync(s.orch.submit({ containerId: 'echo', input: enc('x'), origin: { ip: '192.168.1.5', peerId: '', delegate: '' } }))
  t.is((refused as { code?: string }).code, 'PERMISSION_DENIED')
  t.deepEqual(s.rejections.map((r) => r.reason), ['IP_NOT_ALLOWED'])
  const { job } = await s.orch.submit({ containerId: 'echo', input: enc('x'), origin: { ip: '10.1.2.3', peerId: '', delegate: 'd1' } })
  await until(() => remote.held.has(job.id))
  t.deepEqual(remote.held.get(job.id)?.job.origin, { ip: '10.1.2.3', peerId: '', delegate: 'd1' })
  // Limits of the listed container apply at intake too (max_input_bytes 64 in this config).
  const big = await t.throwsAsync(s.orch.submit({ containerId: 'echo', input: new Uint8Array(65), origin: { ip: '10.1.2.3', peerId: '', delegate: '' } }))
  t.is((big as { code?: string }).code, 'INPUT_TOO_LARGE')
})

test('a container the gateway lists but no live worker serves is refused at intake with NO_WORKER; one it does not list, UNKNOWN_CONTAINER', async (t) => {
  const remote = new FakeRemote()
  remote.served = new Set(['json'])
  const { orch } = await gateway(t, { remote })
  const unserved = await t.throwsAsync(orch.submit({ containerId: 'echo', input: enc('x') }))
  t.is((unserved as { code?: string }).code, 'NO_WORKER')
  const unknown = await t.throwsAsync(orch.submit({ containerId: 'nope', input: enc('x') }))
  t.is((unknown as { code?: string }).code, 'NOT_FOUND')
  t.deepEqual(await orch.list(), [])
})

test('a worker\'s answer that contradicts the job is never delivered: the worker loses a dispute and the job runs elsewhere, failing after 3 such answers', async (t) => {
  const { orch, remote } = await gateway(t)
  const submit = async (text: string): Promise<string> => (await orch.submit({ containerId: 'echo', input: enc(text) })).job.id
  const [other, swapped, tampered] = [await submit('a'), await submit('b'), await submit('c')]
  const wrong: Record<string, () => void> = {
    // A receipt signed for another job id.
    [other]: () => { remote.answer(other, enc('x'), { jobId: 'some-other-job' }) },
    // An image other than the pin ran.
    [swapped]: () => { remote.answer(swapped, enc('x'), { imageDigest: 'sha256:' + 'ee'.repeat(32) }) },
    // Output bytes that are not the ones the receipt signed.
    [tampered]: () => {
      const h = remote.held.get(tampered) as Held
      remote.held.delete(tampered)
      h.answer({ ...remote.result(h.job, enc('signed')), output: enc('tampered') })
    }
  }
  await until(() => remote.held.size === 3)
  for (const id of [other, swapped, tampered]) wrong[id]!()
  // Each runs again, the worker that answered wrongly left out, and it is reported as misbehaving.
  await until(() => remote.held.size === 3)
  for (const id of [other, swapped, tampered]) t.deepEqual(remote.held.get(id)?.job.excludeWorkers, [remote.worker.nodeId])
  t.deepEqual(remote.misbehaving.map((m) => m.split(':')[0]).sort(), ['REMOTE_IMAGE_MISMATCH', 'REMOTE_OUTPUT_MISMATCH', 'REMOTE_RECEIPT_MISMATCH'])
  // An honest answer on the re-run is the result.
  remote.answer(swapped, enc('b'))
  t.like(await settled(orch, swapped), { state: 'success' })
  // Wrong twice more (three workers in all): the job fails with the code, and no output is delivered.
  for (const id of [other, tampered]) {
    wrong[id]!()
    await until(() => remote.held.has(id))
    wrong[id]!()
  }
  t.like(await settled(orch, other), { state: 'failed', errorCode: 'REMOTE_RECEIPT_MISMATCH' })
  const bad = await settled(orch, tampered)
  t.like(bad, { state: 'failed', errorCode: 'REMOTE_OUTPUT_MISMATCH' })
  t.is(bad.output, undefined)
  t.is(remote.misbehaving.length, 5, 'the third wrong answer fails the job instead')
})

test('stop() puts mesh jobs back to pending; the next start hands them to the mesh again', async (t) => {
  const remote = new FakeRemote()
  const first = await gateway(t, { remote })
  const { job } = await first.orch.submit({ containerId: 'echo', input: enc('survives') })
  await until(() => remote.held.has(job.id))
  await first.orch.stop()
  t.false(remote.held.has(job.id), 'the wait on the mesh was aborted')
  t.is((await first.store.get(job.id))?.state, 'pending')
  const second = await setup(t, { remote, runs: [], store: first.store })
  await until(() => remote.held.has(job.id))
  remote.answer(job.id, enc('after restart'))
  t.is(dec((await settled(second.orch, job.id)).output), 'after restart')
})

test('a mesh job\'s deadline covers its wait for an in-flight place', async (t) => {
  const { orch, remote } = await gateway(t, { maxInFlight: 1 })
  const { job: blocker } = await orch.submit({ containerId: 'echo', input: enc('slow') })
  const { job: waiting } = await orch.submit({ containerId: 'echo', input: enc('waits'), deadlineMs: 100 })
  const expired = await settled(orch, waiting.id)
  t.like(expired, { state: 'failed', errorCode: 'DEADLINE_EXCEEDED' })
  t.false(remote.held.has(waiting.id), 'it never reached the mesh')
  remote.answer(blocker.id, enc('ok'))
  t.is((await settled(orch, blocker.id)).state, 'success')
})
