import test from 'ava'
import type { ExecutionContext } from 'ava'
import type * as grpc from '@grpc/grpc-js'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { sha256, verifyReceipt } from '../../src/receipt/index.ts'
import type { Job as WireJob } from '../../src/protocol/index.ts'
import { containerYaml, eventually, startTestNode, text, waitJob, type TestNode } from '../helpers/node.ts'

// Infernet-protocol containers (protocol: infernet) on a real node: real Docker, the sample image
// inframind/infernet-echo:1 (containers/infernet-echo/server.mjs, which answers with the data in
// capitals and the request it received), jobs over real gRPC. One node for the file; tests are serial
// so the two service containers are started once.

const INFERNET_IMAGE = 'inframind/infernet-echo:1'

/** The sample image as an Infernet container: only `protocol: infernet` and test-sized limits. */
const infernet = (id: string, extra: Record<string, unknown> = {}): Record<string, unknown> => {
  const entry = containerYaml(id, {
    image: INFERNET_IMAGE,
    protocol: 'infernet',
    // A busy machine may take long to start Node; health checks need not be frequent here.
    service: { startup_timeout_ms: 60_000, health_interval_ms: 2000, health_timeout_ms: 2000, unhealthy_threshold: 5 },
    resources: { cpus: 0.5, memory: '128m', pids: 64 },
    timeout_ms: 30_000,
    ...extra
  })
  // No command, no schemas: the image's own entry point, and the protocol's JSON defaults.
  delete entry.command
  delete entry.input_schema
  delete entry.output_schema
  return entry
}

const CONTAINERS = [
  infernet('infernet-echo', { generates_proofs: true }),
  // Same image with a short timeout: the node must give up on an answer that does not come.
  infernet('infernet-slow', { timeout_ms: 1500 }),
  // Ours, one-shot on busybox: text in, {"text": ...} out (into an Infernet step).
  containerYaml('wrap', { command: ['sh', '-c', 'printf \'{"text":"\'; tr -d \'\\n"\\\\\'; printf \'"}\''], output_schema: 'json' }),
  // Ours after an Infernet step: takes its JSON answer as input and adds a line of its own.
  containerYaml('note', { command: ['sh', '-c', 'cat; printf "\\nseen by ours"'], input_schema: 'json', output_schema: 'text' })
]

let n: TestNode

test.before(async () => {
  n = await startTestNode({ containers: CONTAINERS, jobs: { concurrency: 2, default_deadline_ms: 120_000 } })
  await eventually(async () => {
    const states = (await n.control.listContainers()).filter((c) => c.id.startsWith('infernet-'))
    const broken = states.find((c) => c.state === 'failed')
    if (broken !== undefined) throw new Error(`${broken.id} failed to start: ${broken.lastError}`)
    return states.length === 2 && states.every((c) => c.state === 'healthy')
  }, 90_000)
})

test.after.always(async () => { await n?.destroy() })

interface EchoAnswer {
  output: unknown
  received: { source: number, destination: number, data: unknown, requires_proof: boolean }
}

async function run (containers: string[], input: string, opts: { requiresProof?: boolean } = {}): Promise<WireJob> {
  const { jobId } = await n.client.submitJob({ containers, input: text(input), ...opts })
  return await waitJob(n.client, jobId)
}

function answerOf (t: ExecutionContext, job: WireJob): EchoAnswer {
  t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
  return JSON.parse(job.output.toString()) as EchoAnswer
}

test.serial('one Infernet job: the container gets {source: 1, destination: 1, data, requires_proof} and its JSON answer is the output', async (t) => {
  const input = '{"prompt": "hello infernet", "n": 123456789012345678901234567890}'
  const job = await run(['infernet-echo'], input)
  const answer = answerOf(t, job)
  t.deepEqual(answer.received, { source: 1, destination: 1, data: { prompt: 'hello infernet', n: 123456789012345678901234567890 }, requires_proof: false })
  t.deepEqual(answer.output, { prompt: 'HELLO INFERNET', n: 123456789012345678901234567890 })
  // The output is the body as the container sent it (no re-serialisation), and the receipt covers it.
  t.is(job.output.toString(), JSON.stringify(answer))
  t.is(job.exitCode, 0)
  const verdict = verifyReceipt(envelopeFromWire(job.receipt!), { output: new Uint8Array(job.output), input: text(input) })
  t.true(verdict.valid, verdict.valid ? '' : verdict.reason)
  const pinned = n.config.containers.find((c) => c.id === 'infernet-echo')?.digest ?? 'no pin'
  if (verdict.valid) t.is(verdict.receipt.steps[0]?.imageDigest, pinned, 'the receipt names the pinned Infernet image')
})

test.serial('requires_proof: a job that asks for a proof says so to the container', async (t) => {
  const answer = answerOf(t, await run(['infernet-echo'], '"prove it"', { requiresProof: true }))
  t.deepEqual(answer.received, { source: 1, destination: 1, data: 'prove it', requires_proof: true })
  t.is(answer.output, 'PROVE IT')
})

test.serial('a mixed chain ours → infernet → ours: our JSON output is its data, its JSON answer is our input', async (t) => {
  const chain = ['wrap', 'infernet-echo', 'note']
  const { jobId } = await n.client.submitJob({ containers: chain, input: text('mixed chain\n') })
  const job = await waitJob(n.client, jobId)
  t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
  const [answerText, last] = job.output.toString().split('\n')
  t.is(last, 'seen by ours')
  const answer = JSON.parse(answerText ?? '') as EchoAnswer
  t.deepEqual(answer.received, { source: 1, destination: 1, data: { text: 'mixed chain' }, requires_proof: false })
  t.deepEqual(answer.output, { text: 'MIXED CHAIN' })

  // Each step's output is what the next one got, byte for byte, and the receipt binds all three.
  const full = await n.client.getJob(jobId, { includeSteps: true })
  t.deepEqual(full.steps.map((s) => [s.containerId, s.status]), chain.map((id) => [id, 'success']))
  t.is(full.steps[0]?.output.toString(), '{"text":"mixed chain"}')
  t.is(full.steps[1]?.output.toString(), answerText)
  const verdict = verifyReceipt(envelopeFromWire(job.receipt!), { output: new Uint8Array(job.output) })
  t.true(verdict.valid)
  if (verdict.valid) t.deepEqual(verdict.receipt.steps.map((s) => s.outputHash), full.steps.map((s) => sha256(new Uint8Array(s.output))))
})

test.serial('infernet → infernet chains as Infernet does: the second gets the first\'s whole answer as data, offchain both sides', async (t) => {
  const answer = answerOf(t, await run(['infernet-echo', 'infernet-echo'], '{"word": "twice"}'))
  const first = { output: { word: 'TWICE' }, received: { source: 1, destination: 1, data: { word: 'twice' }, requires_proof: false } }
  t.deepEqual(answer.received, { source: 1, destination: 1, data: first, requires_proof: false })
  t.deepEqual((answer.output as typeof first).output, { word: 'TWICE' })
})

test.serial('input that is not JSON for an Infernet container is refused at submission with what to fix', async (t) => {
  const err = await t.throwsAsync(n.client.submitJob({ containers: ['infernet-echo'], input: text('not json') })) as grpc.ServiceError
  t.is(err.code, 3, err.details) // INVALID_ARGUMENT
  t.regex(err.details, /json/i)
})

test.serial('a 500, an HTML error page, a 2xx that is not JSON and a hung answer each fail the job with a clear error; the container keeps serving', async (t) => {
  const status = await run(['infernet-echo'], '{"echo_test": "status:500"}')
  t.is(status.state, 'JOB_STATE_FAILED')
  t.is(status.errorCode, 'SERVICE_HTTP_ERROR')
  t.is(status.error, 'service container infernet-echo answered HTTP 500: Internal Server Error: asked for HTTP 500')

  const html = await run(['infernet-echo'], '{"echo_test": "html:502"}')
  t.is(html.errorCode, 'SERVICE_HTTP_ERROR')
  t.regex(html.error, /answered HTTP 502: 502 Error Internal Server Error asked for an HTML error page$/)

  const bad = await run(['infernet-echo', 'note'], '{"echo_test": "garbage"}')
  t.is(bad.state, 'JOB_STATE_FAILED')
  t.is(bad.errorCode, 'SERVICE_BAD_RESPONSE')
  t.true(bad.error.startsWith('step 1/2 (container "infernet-echo"): Infernet container infernet-echo answered 2xx but the body is not JSON'), bad.error)
  t.deepEqual(bad.steps.map((s) => [s.containerId, s.status]), [['infernet-echo', 'failed']])

  const hung = await run(['infernet-slow'], '{"echo_test": "sleep:60000"}')
  t.is(hung.state, 'JOB_STATE_FAILED')
  t.is(hung.errorCode, 'CONTAINER_TIMEOUT')
  t.regex(hung.error, /infernet-slow ran longer than its timeout of 1500 ms/)

  // None of it broke a container: both still answer.
  for (const id of ['infernet-echo', 'infernet-slow']) {
    t.deepEqual(answerOf(t, await run([id], '["still", 1]')).output, ['STILL', 1], id)
  }
})
