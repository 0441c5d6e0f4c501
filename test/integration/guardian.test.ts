import test, { type ExecutionContext } from 'ava'
import os from 'node:os'
import * as grpc from '@grpc/grpc-js'
import { containerYaml, startTestNode, text, waitJob, type TestNode } from '../helpers/node.ts'

const DELEGATE_OK = '12D3KooW' + 'A'.repeat(44)
const DELEGATE_OTHER = '12D3KooW' + 'B'.repeat(44)

const CONTAINERS = [
  containerYaml('echo'),
  containerYaml('lan-only', { allowed_ips: ['10.0.0.0/8'] }),
  containerYaml('loopback', { allowed_ips: ['127.0.0.0/8', '::1/128'] }),
  containerYaml('inner', { external: false, command: ['sed', 's/^/inner:/'] }),
  containerYaml('prover', { generates_proofs: true }),
  containerYaml('delegated', { allowed_delegates: [DELEGATE_OK] }),
  // More cores than this machine has (config allows up to 1024).
  containerYaml('greedy', { resources: { cpus: os.availableParallelism() + 1, memory: '64m', pids: 32 } }),
  containerYaml('gpu', { resources: { cpus: 0.5, memory: '64m', pids: 32, gpu: true } })
]

async function start (t: ExecutionContext): Promise<TestNode> {
  const n = await startTestNode({ containers: CONTAINERS })
  t.teardown(async () => await n.destroy())
  return n
}

interface Refusal { status: string, code: string, reason: string, details: string }

/** The gRPC status and the node's error trailers of a refused call. */
async function refusal (t: ExecutionContext, call: Promise<unknown>): Promise<Refusal> {
  const err = await t.throwsAsync(call)
  const e = err as unknown as grpc.ServiceError
  const first = (key: string): string => String(e.metadata?.get(key)[0] ?? '')
  return { status: grpc.status[e.code], code: first('inframind-error-code'), reason: first('inframind-error-reason'), details: e.details }
}

async function stillServes (t: ExecutionContext, n: TestNode): Promise<void> {
  const { jobId } = await n.client.submitJob({ containerId: 'echo', input: text('still here') })
  const job = await waitJob(n.client, jobId)
  t.is(job.state, 'JOB_STATE_SUCCESS')
  t.is(job.output.toString(), 'still here')
}

test('allowed_ips: a loopback client is refused by 10.0.0.0/8 with the reason, and runs under 127.0.0.0/8', async (t) => {
  const n = await start(t)
  t.regex(n.node.api.publicAddress(), /^127\.0\.0\.1:/)
  const denied = await refusal(t, n.client.submitJob({ containerId: 'lan-only', input: text('x') }))
  t.like(denied, { status: 'PERMISSION_DENIED', code: 'PERMISSION_DENIED', reason: 'IP_NOT_ALLOWED' })
  t.true(denied.details.includes('"lan-only"'), denied.details)
  // Every container of a chain is checked, not only the first.
  t.like(await refusal(t, n.client.submitJob({ containers: ['echo', 'lan-only'], input: text('x') })), { status: 'PERMISSION_DENIED', reason: 'IP_NOT_ALLOWED' })
  const { jobId } = await n.client.submitJob({ containerId: 'loopback', input: text('from loopback') })
  t.is((await waitJob(n.client, jobId)).output.toString(), 'from loopback')
  t.is(n.node.jobs.stats().guardianRejections, 2)
  await stillServes(t, n)
})

test('an internal container is refused as the first step and works as step 2', async (t) => {
  const n = await start(t)
  t.like(await refusal(t, n.client.submitJob({ containerId: 'inner', input: text('x') })), { status: 'PERMISSION_DENIED', reason: 'NOT_EXTERNAL' })
  t.like(await refusal(t, n.client.submitJob({ containers: ['inner', 'echo'], input: text('x') })), { status: 'PERMISSION_DENIED', reason: 'NOT_EXTERNAL' })
  const { jobId } = await n.client.submitJob({ containers: ['echo', 'inner'], input: text('data') })
  const job = await waitJob(n.client, jobId)
  t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
  t.is(job.output.toString(), 'inner:data')
  await stillServes(t, n)
})

test('requires_proof needs a last container with generates_proofs (FAILED_PRECONDITION)', async (t) => {
  const n = await start(t)
  t.like(await refusal(t, n.client.submitJob({ containerId: 'echo', input: text('x'), requiresProof: true })), { status: 'FAILED_PRECONDITION', reason: 'PROOF_UNSUPPORTED' })
  t.like(await refusal(t, n.client.submitJob({ containers: ['prover', 'echo'], input: text('x'), requiresProof: true })), { status: 'FAILED_PRECONDITION', reason: 'PROOF_UNSUPPORTED' })
  const { jobId } = await n.client.submitJob({ containers: ['echo', 'prover'], input: text('proved'), requiresProof: true })
  t.is((await waitJob(n.client, jobId)).state, 'JOB_STATE_SUCCESS')
  await stillServes(t, n)
})

test('allowed_delegates: a delegate not on the list is refused, and one on it is refused too when only named in the request', async (t) => {
  const n = await start(t)
  t.like(await refusal(t, n.client.submitJob({ containerId: 'delegated', input: text('x'), delegate: DELEGATE_OTHER })), { status: 'PERMISSION_DENIED', reason: 'DELEGATE_NOT_ALLOWED' })
  // Typing a listed delegate's id proves nothing: only a subscription it signed is its delegated work.
  const typed = await refusal(t, n.client.submitJob({ containerId: 'delegated', input: text('x'), delegate: DELEGATE_OK }))
  t.like(typed, { status: 'PERMISSION_DENIED', reason: 'DELEGATE_NOT_ALLOWED' })
  // Undelegated work is not delegated work: allowed_delegates does not restrict it.
  const { jobId } = await n.client.submitJob({ containerId: 'delegated', input: text('x') })
  t.is((await waitJob(n.client, jobId)).state, 'JOB_STATE_SUCCESS')
})

test('a container needing more than the machine has is FAILED_PRECONDITION at submit', async (t) => {
  const n = await start(t)
  t.like(await refusal(t, n.client.submitJob({ containerId: 'greedy', input: text('x') })), { status: 'FAILED_PRECONDITION', code: 'INSUFFICIENT_RESOURCES', reason: '' })
  t.like(await refusal(t, n.client.submitJob({ containers: ['echo', 'greedy'], input: text('x') })), { status: 'FAILED_PRECONDITION', code: 'INSUFFICIENT_RESOURCES' })
  t.like(await refusal(t, n.client.submitJob({ containerId: 'gpu', input: text('x') })), { status: 'FAILED_PRECONDITION', code: 'GPU_UNAVAILABLE' })
  t.deepEqual(await n.client.listJobs(), [])
  // Not a Guardian rule: not counted as a rejection.
  t.is(n.node.jobs.stats().guardianRejections, 0)
  await stillServes(t, n)
})

test('unknown and missing containers keep their statuses; conflicting fields are INVALID_ARGUMENT', async (t) => {
  const n = await start(t)
  t.like(await refusal(t, n.client.submitJob({ containerId: 'nope', input: text('x') })), { status: 'NOT_FOUND', reason: 'UNKNOWN_CONTAINER' })
  t.like(await refusal(t, n.client.submitJob({ containers: ['echo', 'nope'], input: text('x') })), { status: 'NOT_FOUND', reason: 'UNKNOWN_CONTAINER' })
  t.like(await refusal(t, n.client.submitJob({ input: text('x') })), { status: 'INVALID_ARGUMENT', reason: 'NO_CONTAINERS' })
  t.like(await refusal(t, n.client.submitJob({ containerId: 'echo', containers: ['loopback'], input: text('x') })), { status: 'INVALID_ARGUMENT', code: 'INVALID_CHAIN' })
  const same = await n.client.submitJob({ containerId: 'echo', containers: ['echo', 'loopback'], input: text('x') })
  t.is((await waitJob(n.client, same.jobId)).state, 'JOB_STATE_SUCCESS')
  await stillServes(t, n)
})
