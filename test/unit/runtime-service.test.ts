import test from 'ava'
import type { ExecutionContext } from 'ava'
import { Agent, createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { containerConfig } from '../../src/config/index.ts'
import type { ContainerConfig } from '../../src/config/types.ts'
import { buildServiceCreateSpec, decodeOutput, encodeServiceRequest } from '../../src/runtime/index.ts'
import { callService } from '../../src/runtime/service-call.ts'
import type { RunResult } from '../../src/runtime/index.ts'

// The service call contract without Docker: a plain HTTP server on 127.0.0.1 plays the container.

const DIGEST = 'sha256:' + 'cd'.repeat(32)
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (r: RunResult | Uint8Array): string => Buffer.from('output' in r ? r.output : r).toString()

function service (overrides: Partial<ContainerConfig> = {}): ContainerConfig {
  return containerConfig({
    id: 'svc',
    image: 'inframind/nlp:1',
    digest: DIGEST,
    mode: 'service',
    network: 'bridge',
    inputSchema: 'text',
    outputSchema: 'text',
    timeoutMs: 2000,
    maxOutputBytes: 1000,
    resources: { cpus: 1, memoryBytes: 256 * 1024 * 1024, pids: 64, gpu: false },
    service: {
      port: 8080, path: '/run', healthPath: '/health', startupTimeoutMs: 1000, healthIntervalMs: 100, healthTimeoutMs: 100,
      unhealthyThreshold: 1, maxRestarts: 0, restartBackoffMs: 100, restartBackoffMaxMs: 100
    },
    ...overrides
  })
}

async function fails (t: ExecutionContext, promise: Promise<unknown>, name: string, code: string): Promise<Error & Record<string, unknown>> {
  const err = await t.throwsAsync(promise) as Error & Record<string, unknown>
  t.is(err?.name, name, `error name (message: ${err?.message})`)
  t.is(err?.code, code)
  return err
}

/** A loopback server answering with `handler`; closed (with its agent) after the test. */
async function serve (t: ExecutionContext, handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ port: number, agent: Agent, server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => { handler(req, Buffer.concat(chunks).toString(), res) })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const agent = new Agent({ keepAlive: true })
  t.teardown(async () => {
    agent.destroy()
    server.closeAllConnections()
    await new Promise((resolve) => { server.close(resolve) })
  })
  return { port: (server.address() as AddressInfo).port, agent, server }
}

function json (res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

async function run (endpoint: { port: number, agent: Agent }, container: ContainerConfig, input: string, signal = new AbortController().signal): Promise<RunResult> {
  return await callService({ ...endpoint, imageId: DIGEST }, { jobId: 'job-1', container, input: enc(input) }, signal, Date.now())
}

test('encodeServiceRequest: job_id, input per schema, origin with empty defaults', (t) => {
  const body = (c: ContainerConfig, input: Uint8Array, origin?: { ip: string, peerId: string, delegate: string }): unknown =>
    JSON.parse(encodeServiceRequest({ jobId: 'j"1', container: c, input, ...(origin === undefined ? {} : { origin }) }))
  t.deepEqual(body(service(), enc('hi "there"\n')), { job_id: 'j"1', input: 'hi "there"\n', origin: { ip: '', peer_id: '', delegate: '' } })
  t.deepEqual(body(service({ inputSchema: 'json' }), enc(' {"a":[1,{"b":null}]} '), { ip: '10.1.2.3', peerId: 'p', delegate: 'd' }),
    { job_id: 'j"1', input: { a: [1, { b: null }] }, origin: { ip: '10.1.2.3', peer_id: 'p', delegate: 'd' } })
  t.deepEqual(body(service({ inputSchema: 'embedding<float>' }), enc('[0.5,-1]')), { job_id: 'j"1', input: [0.5, -1], origin: { ip: '', peer_id: '', delegate: '' } })
  t.deepEqual(body(service({ inputSchema: 'bytes' }), new Uint8Array([0, 255, 10])), { job_id: 'j"1', input: { base64: 'AP8K' }, origin: { ip: '', peer_id: '', delegate: '' } })
})

test('encodeServiceRequest: JSON input that does not parse cannot smuggle fields into the body', (t) => {
  const err = t.throws(() => encodeServiceRequest({ jobId: 'j', container: service({ inputSchema: 'json' }), input: enc('1, "job_id": "other"') }))
  t.is(err?.name, 'InputSchemaError')
  t.is((err as Error & { code: string }).code, 'INVALID_INPUT')
  t.throws(() => encodeServiceRequest({ jobId: 'j', container: service({ inputSchema: 'embedding<float>' }), input: enc('[1, "x"]') }), { name: 'InputSchemaError' })
})

test('decodeOutput: strings as UTF-8, other values as JSON, bytes from base64, contract breaches named', (t) => {
  const out = (c: ContainerConfig, body: string): string => text(decodeOutput(c, Buffer.from(body), DIGEST))
  t.is(out(service(), '{"output":"héllo"}'), 'héllo')
  t.is(out(service({ outputSchema: 'json' }), '{"output":{"a":1}}'), '{"a":1}')
  t.is(out(service({ outputSchema: 'json' }), '{"output":"[1]"}'), '[1]')
  t.is(out(service({ outputSchema: 'embedding<float>' }), '{"output":[0.25,1]}'), '[0.25,1]')
  t.deepEqual([...decodeOutput(service({ outputSchema: 'bytes' }), Buffer.from('{"output":{"base64":"AP8K"}}'), DIGEST)], [0, 255, 10])
  const bad = (c: ContainerConfig, body: string, name: string): void => {
    const err = t.throws(() => decodeOutput(c, Buffer.from(body), DIGEST))
    t.is(err?.name, name, body)
  }
  bad(service(), 'not json', 'ServiceResponseError')
  bad(service(), '{"result":"x"}', 'ServiceResponseError')
  bad(service(), '"x"', 'ServiceResponseError')
  bad(service({ outputSchema: 'json' }), '{"output":"not json"}', 'OutputSchemaError')
  bad(service({ outputSchema: 'embedding<float>' }), '{"output":[1,"x"]}', 'OutputSchemaError')
  bad(service({ outputSchema: 'bytes' }), '{"output":"AP8K"}', 'OutputSchemaError')
  bad(service({ outputSchema: 'bytes' }), '{"output":{"base64":"not base64!"}}', 'OutputSchemaError')
  bad(service({ maxOutputBytes: 3 }), '{"output":"four"}', 'OutputTooLargeError')
})

test('buildServiceCreateSpec: port on 127.0.0.1 only (engine-chosen), job sandbox, service labels, no stdin', (t) => {
  const spec = buildServiceCreateSpec({ container: service({ env: { TASK: 'embed' }, command: ['serve'] }), imageId: DIGEST, runtimeId: 'rt1', nodeId: 'node-1' })
  t.deepEqual(spec.HostConfig.PortBindings, { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] })
  t.deepEqual(spec.ExposedPorts, { '8080/tcp': {} })
  t.like(spec.HostConfig, { NetworkMode: 'bridge', ReadonlyRootfs: true, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Privileged: false, PidsLimit: 64, Memory: 256 * 1024 * 1024, MemorySwap: 256 * 1024 * 1024 })
  t.deepEqual(spec.Labels, {
    'inframind.service': 'svc', 'inframind.container': 'svc', 'inframind.runtime': 'rt1', 'inframind.kind': 'service', 'inframind.node': 'node-1'
  })
  t.like(spec, { Image: DIGEST, User: '65534:65534', AttachStdin: false, OpenStdin: false, Cmd: ['serve'], Env: ['TASK=embed'] })
  t.regex(spec.name, /^inframind-svc-svc-rt1-[0-9a-f]{6}$/)
})

test('callService: POSTs the contract to the configured path and returns the output', async (t) => {
  let seen: { method?: string, url?: string, type?: string, body?: unknown } = {}
  const s = await serve(t, (req, body, res) => {
    seen = { method: req.method, url: req.url, type: req.headers['content-type'], body: JSON.parse(body) }
    json(res, 200, { output: 'done' })
  })
  const result = await run(s, service(), 'in')
  t.is(text(result), 'done')
  t.like(result, { exitCode: 0, imageDigest: DIGEST, stderrTail: '' })
  t.deepEqual(seen, { method: 'POST', url: '/run', type: 'application/json', body: { job_id: 'job-1', input: 'in', origin: { ip: '', peer_id: '', delegate: '' } } })
})

test('callService: non-2xx is ServiceHttpError with the structured error, or the start of a plain body', async (t) => {
  const s = await serve(t, (_req, body, res) => {
    const input = (JSON.parse(body) as { input: string }).input
    if (input === 'json') json(res, 422, { error: { code: 'BAD_INPUT', message: 'no text' }, output: 'must not leak' })
    else { res.writeHead(502); res.end('x'.repeat(100_000)) }
  })
  const err = await fails(t, run(s, service(), 'json'), 'ServiceHttpError', 'SERVICE_HTTP_ERROR')
  t.like(err, { status: 422, serviceCode: 'BAD_INPUT', serviceMessage: 'no text', imageDigest: DIGEST })
  const plain = await fails(t, run(s, service(), 'plain'), 'ServiceHttpError', 'SERVICE_HTTP_ERROR')
  t.like(plain, { status: 502, serviceCode: '', serviceMessage: 'x'.repeat(512) })
})

test('callService: timeout, abort and an endless body end the call', async (t) => {
  const s = await serve(t, (_req, body, res) => {
    const input = (JSON.parse(body) as { input: string }).input
    if (input === 'flood') {
      res.writeHead(200)
      const timer = setInterval(() => { res.write('x'.repeat(16_384)) }, 1)
      res.on('close', () => { clearInterval(timer) })
    }
    // 'hang': never answers.
  })
  await fails(t, run(s, service({ timeoutMs: 200 }), 'hang'), 'ContainerTimeoutError', 'CONTAINER_TIMEOUT')
  const controller = new AbortController()
  setTimeout(() => { controller.abort('the caller gave up') }, 100)
  const aborted = await fails(t, run(s, service(), 'hang', controller.signal), 'RunAbortedError', 'ABORTED')
  t.regex(aborted.message, /the caller gave up/)
  await fails(t, run(s, service(), 'flood'), 'OutputTooLargeError', 'OUTPUT_TOO_LARGE')
})

test('callService: a kept-alive connection the server dropped is retried once on a fresh one', async (t) => {
  const perSocket = new WeakMap<object, number>()
  let answered = 0
  const s = await serve(t, (req, _body, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1
    perSocket.set(req.socket, n)
    // The second request on a connection finds it closed, like a server's idle timeout racing a reuse.
    if (n === 2) { req.socket.destroy(); return }
    answered++
    json(res, 200, { output: `answer ${answered}` })
  })
  t.is(text(await run(s, service(), 'a')), 'answer 1')
  t.is(text(await run(s, service(), 'b')), 'answer 2', 'retried on a new connection')
  // A connection that fails without reuse is not retried: the error is the call's.
  s.server.closeAllConnections()
  await new Promise((resolve) => { s.server.close(resolve) })
  await fails(t, run({ port: s.port, agent: new Agent() }, service(), 'c'), 'ServiceCallError', 'SERVICE_CALL_FAILED')
})
