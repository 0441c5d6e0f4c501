import test, { type ExecutionContext } from 'ava'
import { createRequire } from 'node:module'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { verifyReceipt } from '../../src/receipt/index.ts'
import { containerYaml, startTestNode, text, waitJob, type TestNode } from '../helpers/node.ts'

const require = createRequire(import.meta.url)
/** Starts a node owned by one test: its teardown stops it even when the test fails (tests run concurrently). */
async function start (t: ExecutionContext, opts: Parameters<typeof startTestNode>[0] = {}): Promise<TestNode> {
  const n = await startTestNode(opts)
  t.teardown(async () => await n.destroy())
  return n
}

function rpcCode (err: unknown): string {
  const code = (err as { code?: number }).code
  return code === undefined ? `not a gRPC error: ${String(err)}` : grpc.status[code]
}

test('GetInfo reports the node id, roles, containers and hardware', async (t) => {
  const n = await start(t)
  const info = await n.client.getInfo()
  t.regex(info.nodeId, /^12D3KooW[1-9A-HJ-NP-Za-km-z]+$/)
  t.is(info.nodeId, n.node.identity.nodeId)
  t.deepEqual(info.roles, ['worker'])
  t.deepEqual(info.containers.map((c) => c.id), ['echo'])
  t.true(info.containers[0].imagePresent)
  t.true((info.hardware?.cpuCores ?? 0) > 0)
  t.true((info.hardware?.memoryBytes ?? 0) > 0)
  t.true(info.uptimeMs >= 0)
})

test('a submitted job streams pending → running → success and returns output with a valid receipt', async (t) => {
  const n = await start(t)
  const { jobId, state } = await n.client.submitJob({ containerId: 'echo', input: text('hello node') })
  t.is(state, 'JOB_STATE_PENDING')
  const seen: string[] = []
  let final
  for await (const event of n.client.watchJob(jobId)) {
    seen.push(event.state)
    if (event.job !== null) final = event.job
  }
  t.deepEqual(seen.filter((s, i) => seen.indexOf(s) === i), ['JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_SUCCESS'])
  t.truthy(final)
  t.is(Buffer.from(final!.output).toString(), 'hello node')
  const verdict = verifyReceipt(envelopeFromWire(final!.receipt!), { output: new Uint8Array(final!.output) })
  t.true(verdict.valid, verdict.valid ? '' : verdict.reason)
  if (verdict.valid) {
    t.is(verdict.receipt.jobId, jobId)
    t.is(verdict.receipt.workerId, n.node.identity.nodeId)
    t.is(verdict.receipt.status, 'success')
    t.is(verdict.receipt.steps[0].imageDigest, n.config.containers[0].digest)
  }
  const again = await n.client.getJob(jobId)
  t.deepEqual(Buffer.from(again.output), Buffer.from(final!.output))
  const listed = await n.client.listJobs({ state: 'JOB_STATE_SUCCESS' })
  t.true(listed.some((j) => j.jobId === jobId))
  t.is((await n.client.listJobs({ state: 'JOB_STATE_FAILED' })).length, 0)
})

test('bad requests get the right status code and the node keeps serving', async (t) => {
  const n = await start(t, {
    api: { max_message_bytes: 256 * 1024 },
    containers: [containerYaml('echo', { max_input_bytes: 1024 }), containerYaml('json', { input_schema: 'json', output_schema: 'json', max_input_bytes: 1024 })]
  })
  const cases: Array<[string, () => Promise<unknown>, string]> = [
    ['unknown container', async () => await n.client.submitJob({ containerId: 'nope', input: text('x') }), 'NOT_FOUND'],
    ['missing container id', async () => await n.client.submitJob({ containerId: '', input: text('x') }), 'INVALID_ARGUMENT'],
    ['input above max_input_bytes', async () => await n.client.submitJob({ containerId: 'echo', input: new Uint8Array(2048) }), 'INVALID_ARGUMENT'],
    ['input not matching the json schema', async () => await n.client.submitJob({ containerId: 'json', input: text('{not json') }), 'INVALID_ARGUMENT'],
    ['message above max_message_bytes', async () => await n.client.submitJob({ containerId: 'echo', input: new Uint8Array(300 * 1024) }), 'RESOURCE_EXHAUSTED'],
    ['bad job id', async () => await n.client.submitJob({ containerId: 'echo', input: text('x'), jobId: 'has spaces/and slashes' }), 'INVALID_ARGUMENT'],
    ['unknown job', async () => await n.client.getJob('no-such-job'), 'NOT_FOUND'],
    ['empty job id', async () => await n.client.getJob(''), 'INVALID_ARGUMENT'],
    ['list limit too large', async () => await n.client.listJobs({ limit: 100_000 }), 'INVALID_ARGUMENT']
  ]
  for (const [name, fn, expected] of cases) {
    const err = await t.throwsAsync(fn, undefined, name)
    t.is(rpcCode(err), expected, name)
    t.true(((err as grpc.ServiceError).details ?? '').length > 10, `${name}: the message says what to fix`)
  }
  const { jobId } = await n.client.submitJob({ containerId: 'echo', input: text('still alive') })
  t.is(Buffer.from((await waitJob(n.client, jobId)).output).toString(), 'still alive')
})

test('a body that is not protobuf is INVALID_ARGUMENT naming the message type', async (t) => {
  const n = await start(t)
  const raw = new grpc.Client(n.node.api.publicAddress(), grpc.credentials.createInsecure())
  t.teardown(() => raw.close())
  const send = async (method: string, body: number[]): Promise<grpc.ServiceError | null> => await new Promise((resolve) => {
    raw.makeUnaryRequest(`/inframind.v1.Node/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(body), (e) => resolve(e))
  })
  for (const body of [[0x0f, 0x01, 0x02], [0x0a, 0x05, 0x61], [0x08, 0x01]]) {
    const err = await send('SubmitJob', body)
    t.is(rpcCode(err), 'INVALID_ARGUMENT')
    t.regex(err?.details ?? '', /SubmitJobRequest/)
  }
  const err = await send('GetJob', [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])
  t.is(rpcCode(err), 'INVALID_ARGUMENT')
  const { jobId } = await n.client.submitJob({ containerId: 'echo', input: text('ok') })
  t.is((await waitJob(n.client, jobId)).state, 'JOB_STATE_SUCCESS')
})

test('a full queue answers RESOURCE_EXHAUSTED and every accepted job still finishes', async (t) => {
  const n = await start(t, {
    jobs: { concurrency: 1, queue_size: 2 },
    containers: [containerYaml('slow', { command: ['sh', '-c', 'sleep 0.5; cat'] })]
  })
  const accepted: string[] = []
  let refused = 0
  for (let i = 0; i < 6; i++) {
    try {
      accepted.push((await n.client.submitJob({ containerId: 'slow', input: text(`job ${i}`) })).jobId)
    } catch (err) {
      t.is(rpcCode(err), 'RESOURCE_EXHAUSTED')
      refused++
    }
  }
  t.true(refused >= 1, 'some submissions were refused')
  t.true(accepted.length >= 2, 'some were accepted')
  for (const id of accepted) t.is((await waitJob(n.client, id)).state, 'JOB_STATE_SUCCESS')
})

test('a job past its deadline fails with DEADLINE_EXCEEDED and a signed receipt', async (t) => {
  const n = await start(t, { containers: [containerYaml('sleepy', { command: ['sh', '-c', 'sleep 5; cat'] })] })
  const { jobId } = await n.client.submitJob({ containerId: 'sleepy', input: text('x'), deadlineMs: 800 })
  const job = await waitJob(n.client, jobId)
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'DEADLINE_EXCEEDED')
  const verdict = verifyReceipt(envelopeFromWire(job.receipt!))
  t.true(verdict.valid)
  if (verdict.valid) t.is(verdict.receipt.status, 'failed')
})

test('a repeated job id returns the same job and runs it once', async (t) => {
  const n = await start(t)
  const first = await n.client.submitJob({ containerId: 'echo', input: text('once'), jobId: 'client-key-1' })
  const second = await n.client.submitJob({ containerId: 'echo', input: text('once'), jobId: 'client-key-1' })
  t.is(first.jobId, 'client-key-1')
  t.false(first.duplicate)
  t.true(second.duplicate)
  await waitJob(n.client, 'client-key-1')
  const status = await n.control.getStatus()
  t.is(status.jobsServed, 1)
})

test('health, reflection and the split between public and control listeners', async (t) => {
  const n = await start(t)
  const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(require('grpc-health-check').protoPath, { enums: String })) as any
  for (const addr of [n.node.api.publicAddress(), n.node.api.controlAddress()]) {
    const health = new healthPkg.grpc.health.v1.Health(addr, grpc.credentials.createInsecure())
    const res = await new Promise<any>((resolve, reject) => health.Check({ service: '' }, (e: unknown, r: unknown) => e != null ? reject(e) : resolve(r)))
    t.is(res.status, 'SERVING')
    health.close()
  }
  const reflectionProto = require.resolve('@grpc/reflection').replace(/build\/src\/index\.js$/, 'build/proto/grpc/reflection/v1/reflection.proto')
  const refPkg = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true })) as any
  const listServices = async (addr: string): Promise<string[]> => {
    const client = new refPkg.grpc.reflection.v1.ServerReflection(addr, grpc.credentials.createInsecure())
    const call = client.ServerReflectionInfo()
    const done = new Promise<string[]>((resolve, reject) => {
      call.on('data', (msg: any) => { resolve(msg.list_services_response.service.map((s: { name: string }) => s.name)); call.end() })
      call.on('error', reject)
    })
    call.write({ list_services: '' })
    const names = await done
    client.close()
    return names
  }
  const publicServices = await listServices(n.node.api.publicAddress())
  t.true(publicServices.includes('inframind.v1.Node'))
  t.true(publicServices.includes('grpc.health.v1.Health'))
  t.false(publicServices.includes('inframind.v1.Control'), 'the control service is not on the public listener')
  const controlServices = await listServices(n.node.api.controlAddress())
  t.true(controlServices.includes('inframind.v1.Control'))
  // The control service is really absent from the public port, not just unlisted.
  const raw = new grpc.Client(n.node.api.publicAddress(), grpc.credentials.createInsecure())
  const err = await new Promise<grpc.ServiceError | null>((resolve) => {
    raw.makeUnaryRequest('/inframind.v1.Control/GetStatus', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (e) => resolve(e))
  })
  raw.close()
  t.is(rpcCode(err), 'UNIMPLEMENTED')
  t.regex(n.node.api.controlAddress(), /^127\.0\.0\.1:\d+$/)
})

test('Control: status, containers, events and metrics follow the jobs', async (t) => {
  const n = await start(t)
  const events: string[] = []
  const abort = new AbortController()
  const streaming = (async () => {
    try {
      for await (const e of n.control.streamEvents({ signal: abort.signal })) {
        events.push(`${e.kind}:${e.state}`)
        if (e.state === 'JOB_STATE_SUCCESS') break
      }
    } catch {}
  })()
  await new Promise((resolve) => setTimeout(resolve, 200))
  const { jobId } = await n.client.submitJob({ containerId: 'echo', input: text('metrics please') })
  await waitJob(n.client, jobId)
  await Promise.race([streaming, new Promise((resolve) => setTimeout(resolve, 5000))])
  abort.abort()
  t.deepEqual(events, ['job:JOB_STATE_PENDING', 'job:JOB_STATE_RUNNING', 'job:JOB_STATE_SUCCESS'])

  const status = await n.control.getStatus()
  t.is(status.nodeId, n.node.identity.nodeId)
  t.is(status.jobsServed, 1)
  t.is(status.succeeded, 1)
  t.true(status.avgLatencyMs > 0)
  t.true(status.rssBytes > 0)
  t.is(status.containers[0].id, 'echo')
  const containers = await n.control.listContainers()
  t.true(containers[0].imagePresent)

  const metrics = await (await fetch(status.metricsUrl)).text()
  t.regex(metrics, /inframind_jobs_total\{container="echo",status="success",lane="local"\} 1/)
  t.regex(metrics, /inframind_job_latency_seconds_count\{container="echo"\} 1/)
  t.regex(metrics, /inframind_process_resident_memory_bytes \d+/)
  t.regex(metrics, /inframind_active_jobs 0/)
  t.false(metrics.includes('metrics please'), 'metrics never carry job input')
})

test('a restarted node keeps its identity and its results', async (t) => {
  const first = await start(t)
  const id = first.node.identity.nodeId
  const { jobId } = await first.client.submitJob({ containerId: 'echo', input: text('survive a restart') })
  const done = await waitJob(first.client, jobId)
  await first.stop()
  const second = await start(t, { dir: first.dir })
  t.is(second.node.identity.nodeId, id)
  const again = await second.client.getJob(jobId)
  t.is(again.state, 'JOB_STATE_SUCCESS')
  t.is(Buffer.from(again.output).toString(), 'survive a restart')
  t.deepEqual(Buffer.from(again.receipt!.signature), Buffer.from(done.receipt!.signature))
  t.is((await second.control.getStatus()).jobsServed, 1)
})
