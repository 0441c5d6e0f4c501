import test from 'ava'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { Writable } from 'node:stream'
import * as grpc from '@grpc/grpc-js'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { exitCodeOf, followJob } from '../../src/cli/follow.ts'
import { peerClients } from '../../src/api/client.ts'
import { signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { encodeOutputChunk, PAYLOAD_TYPES, type OutputChunk } from '../../src/protocol/index.ts'
import { verifyReceipt } from '../../src/receipt/index.ts'
import { sealTo, SEAL_CONTEXTS } from '../../src/seal/index.ts'
import { containerYaml, eventually, meshAddr, startFor, text, type TestNode } from '../helpers/node.ts'

// Streaming output through real nodes (Docker, gRPC, LevelDB, libp2p on 127.0.0.1). Each job is held
// open by its container until the test has seen the first chunk and checked, with GetJob, that the job
// is still running; then the test lets it finish (a signal to the container, or a file in it). So the
// order of events is asserted, never a timing.

const run = promisify(execFile)

/** Prints two lines, then waits for SIGUSR1 to print the third and exit. */
const CHATTY = ['sh', '-c', "trap 'echo three; exit 0' USR1; echo one; echo two; while :; do sleep 0.1; done"]
const chatty = (id = 'chatty'): Record<string, unknown> => containerYaml(id, { command: CHATTY, timeout_ms: 60_000 })

/** A service whose answer (text/plain, CGI under busybox httpd) streams a line, waits for /tmp/go, then another. */
const STREAMING_SERVICE = [
  'sh', '-c',
  "mkdir -p /tmp/www/cgi-bin && printf '*.sh:/bin/sh\\n' > /tmp/httpd.conf && echo ok > /tmp/www/health && " +
  "printf 'echo \"Content-Type: text/plain\\r\"\\necho \"\\r\"\\necho first\\nwhile [ ! -e /tmp/go ]; do sleep 0.1; done\\necho second\\n' > /tmp/www/cgi-bin/run.sh && " +
  'exec httpd -f -p 8080 -h /tmp/www -c /tmp/httpd.conf'
]

async function containerOf (label: string): Promise<string> {
  return await eventually(async () => {
    const { stdout } = await run('docker', ['ps', '-q', '--filter', `label=${label}`])
    return stdout.trim().split('\n')[0] || undefined
  })
}

/** Lets a CHATTY job's container print its last line and exit. */
async function release (jobId: string): Promise<void> {
  await run('docker', ['kill', '-s', 'USR1', await containerOf(`inframind.job=${jobId}`)])
}

interface Followed { chunks: OutputChunk[], data: Buffer, last: OutputChunk, stateAtFirst: string }

/**
 * Reads StreamJobOutput to its end; at the first chunk with data, notes the job's state (GetJob) and
 * then calls `atFirst` (which lets the job finish).
 */
async function follow (n: TestNode, jobId: string, atFirst: () => Promise<void>): Promise<Followed> {
  const chunks: OutputChunk[] = []
  let stateAtFirst = ''
  for await (const chunk of n.client.streamJobOutput(jobId, { timeoutMs: 90_000 })) {
    chunks.push(chunk)
    if (stateAtFirst === '' && chunk.data.byteLength > 0) {
      stateAtFirst = (await n.client.getJob(jobId)).state
      await atFirst()
    }
  }
  const last = chunks[chunks.length - 1] as OutputChunk
  const data = Buffer.concat(chunks.filter((c) => !c.done).map((c) => Buffer.from(c.data)))
  return { chunks, data, last, stateAtFirst }
}

function sha256 (b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest()
}

test('a one-shot container\'s first line reaches the client while the job runs; the chunks make the output the receipt covers', async (t) => {
  const n = await startFor(t, { containers: [chatty()] })
  const { jobId } = await n.client.submitJob({ containerId: 'chatty', input: text('') })
  const got = await follow(n, jobId, async () => { await release(jobId) })
  t.is(got.stateAtFirst, 'JOB_STATE_RUNNING', 'the first chunk came before the job ended')
  t.deepEqual(got.chunks.map((c) => c.index), got.chunks.map((_, i) => i), 'indexes 0, 1, 2… with no gap')
  t.true(got.last.done)
  t.true(got.chunks.slice(0, -1).every((c) => !c.done && c.data.byteLength > 0))
  t.is(got.last.state, 'JOB_STATE_SUCCESS', got.last.error)
  const job = await n.client.getJob(jobId)
  t.is(got.data.toString(), 'one\ntwo\nthree\n')
  t.deepEqual(got.data, Buffer.from(job.output))
  t.deepEqual(Buffer.from(got.last.outputHash), sha256(got.data))
  t.is(got.last.outputBytes, got.data.byteLength)
  t.true(job.receipt !== null && verifyReceipt(envelopeFromWire(job.receipt), { output: got.data }).valid, 'the receipt covers the streamed output')
  // A reader that comes after the end gets the whole output and the same last message.
  const late = await follow(n, jobId, async () => {})
  t.is(late.stateAtFirst, 'JOB_STATE_SUCCESS')
  t.deepEqual(late.data, got.data)
  t.deepEqual(Buffer.from(late.last.outputHash), sha256(got.data))
  // The CLI's follower (infra logs -f), writing to a slow sink that asks it to wait for each drain.
  const written: Buffer[] = []
  const sink = new Writable({ highWaterMark: 1, write: (chunk: Buffer, _enc, done) => { written.push(chunk); setTimeout(done, 20) } })
  const followed = await followJob(n.client, jobId, { out: sink })
  t.like(followed, { state: 'success', complete: true, bytes: got.data.byteLength })
  t.deepEqual(Buffer.concat(written), got.data)
  t.is(exitCodeOf(followed), 0)
})

test('a service\'s streamed (text/plain) answer reaches the client as it is written', async (t) => {
  const n = await startFor(t, {
    containers: [containerYaml('streamer', {
      mode: 'service',
      command: STREAMING_SERVICE,
      service: { port: 8080, path: '/cgi-bin/run.sh', health_path: '/health', startup_timeout_ms: 20_000, health_interval_ms: 500 },
      timeout_ms: 60_000
    })]
  })
  await eventually(async () => (await n.control.listContainers()).find((c) => c.id === 'streamer' && c.state === 'healthy'), 60_000)
  const { jobId } = await n.client.submitJob({ containerId: 'streamer', input: text('go') })
  const got = await follow(n, jobId, async () => {
    await run('docker', ['exec', await containerOf('inframind.service=streamer'), 'touch', '/tmp/go'])
  })
  t.is(got.stateAtFirst, 'JOB_STATE_RUNNING', 'the first line came before the answer ended')
  t.is(got.last.state, 'JOB_STATE_SUCCESS', got.last.error)
  t.is(got.data.toString(), 'first\nsecond\n')
  const job = await n.client.getJob(jobId)
  t.deepEqual(got.data, Buffer.from(job.output))
  t.true(job.receipt !== null && verifyReceipt(envelopeFromWire(job.receipt), { output: got.data }).valid)
})

test('mesh: the worker\'s chunks reach the gateway\'s client while the job runs, and nobody else can add to them', async (t) => {
  const worker = await startFor(t, { mesh: {}, containers: [chatty()] })
  const gateway = await startFor(t, { mesh: { bootstrap: [meshAddr(worker)] }, node: { roles: ['scheduler', 'gateway'] }, containers: [chatty()] })
  await eventually(() => gateway.node.mesh?.livePeer(worker.node.identity.nodeId)?.grpcAddress)
  const { jobId } = await gateway.client.submitJob({ containerId: 'chatty', input: text('') })
  const peers = peerClients()
  t.teardown(() => peers.close())
  const outsider = identityFromSeed(randomBytes(32))
  const forged = (signer: typeof outsider, workerId: string): ReturnType<typeof signEnvelope> => signEnvelope(signer, PAYLOAD_TYPES.outputChunk, encodeOutputChunk({
    jobId,
    workerId,
    schedulerId: gateway.node.identity.nodeId,
    offset: 0,
    sealedData: sealTo(gateway.node.identity.nodeId, text('forged\n'), SEAL_CONTEXTS.outputChunk(jobId)),
    atMs: Date.now()
  }))
  const verdicts: Array<{ accepted: boolean, reason: string }> = []
  const got = await follow(gateway, jobId, async () => {
    // While the job runs on the worker: a chunk from another node, whether it names itself or the worker, is refused.
    const address = gateway.node.api.publicAddress()
    verdicts.push(await peers.reportOutput(address, forged(outsider, outsider.nodeId), AbortSignal.timeout(10_000)))
    verdicts.push(await peers.reportOutput(address, forged(outsider, worker.node.identity.nodeId), AbortSignal.timeout(10_000)))
    await release(jobId)
  })
  t.is(got.stateAtFirst, 'JOB_STATE_RUNNING', 'the first chunk came from the worker before the job ended')
  t.deepEqual(verdicts.map((v) => v.accepted), [false, false])
  t.regex(verdicts[0]?.reason ?? '', /not with/)
  t.regex(verdicts[1]?.reason ?? '', /signed by/)
  t.is(got.last.state, 'JOB_STATE_SUCCESS', got.last.error)
  t.is(got.data.toString(), 'one\ntwo\nthree\n', 'only the worker\'s bytes, in order')
  const job = await gateway.client.getJob(jobId)
  t.is(job.workerId, worker.node.identity.nodeId, 'the worker ran it')
  t.true(job.receipt !== null && verifyReceipt(envelopeFromWire(job.receipt), { output: got.data }).valid, 'the worker\'s receipt covers the streamed output')
  // The worker shows how the job ended, never its output (the id may have been seen by others).
  const onWorker = await follow(worker, jobId, async () => {})
  t.is(onWorker.chunks.length, 1)
  t.true(onWorker.last.done)
  t.is(onWorker.last.outputBytes, 0)
})

test('output past max_output_bytes is cut at the cap and the job fails OUTPUT_TOO_LARGE; bad requests get clear errors', async (t) => {
  const n = await startFor(t, { containers: [containerYaml('flood', { command: ['sh', '-c', 'head -c 300000 /dev/zero'], max_output_bytes: 4096 })] })
  const { jobId } = await n.client.submitJob({ containerId: 'flood', input: text('') })
  const got = await follow(n, jobId, async () => {})
  t.true(got.data.byteLength <= 4096, `streamed ${got.data.byteLength} bytes`)
  t.true(got.last.done)
  t.is(got.last.state, 'JOB_STATE_FAILED')
  t.is(got.last.errorCode, 'OUTPUT_TOO_LARGE')
  t.is(got.last.outputBytes, 0)
  const followed = await followJob(n.client, jobId, { out: new Writable({ write: (_c, _e, done) => { done() } }) })
  t.like(followed, { state: 'failed', errorCode: 'OUTPUT_TOO_LARGE', complete: false })
  t.is(exitCodeOf(followed), 1)
  const failure = async (id: string): Promise<grpc.ServiceError> => {
    const err = await t.throwsAsync(async () => { for await (const _ of n.client.streamJobOutput(id, { timeoutMs: 10_000 })) { /* none */ } })
    return err as grpc.ServiceError
  }
  t.is((await failure('')).code, grpc.status.INVALID_ARGUMENT)
  t.is((await failure('no such job')).code, grpc.status.INVALID_ARGUMENT)
  const missing = await failure('missing-job')
  t.is(missing.code, grpc.status.NOT_FOUND)
  t.regex(missing.details, /no job with id "missing-job"/)
  // A node with no scheduler refuses output chunks as it refuses results.
  const peers = peerClients()
  t.teardown(() => peers.close())
  const err = await t.throwsAsync(async () => await peers.reportOutput(n.node.api.publicAddress(), signEnvelope(identityFromSeed(randomBytes(32)), PAYLOAD_TYPES.outputChunk, new Uint8Array([1, 2, 3])), AbortSignal.timeout(10_000)))
  t.is((err as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION)
})
