import test, { type ExecutionContext } from 'ava'
import http from 'node:http'
import net from 'node:net'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { stringify } from 'yaml'
import { containerYaml, NLP_IMAGE } from '../helpers/node.ts'
import { parseConfig } from '../../src/config/index.ts'
import { createNode, type InframindNode } from '../../src/node.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { envelopeFromJson } from '../../src/envelope/index.ts'
import { verifyReceipt } from '../../src/receipt/index.ts'
import { JOB_ID_HEADER, type JobResult } from '../../src/rest/index.ts'

// The Infernet-compatible REST API against a real node (real Docker, LevelDB, gRPC and HTTP on
// loopback): an Infernet client's session, every Infernet error path with its status code, a
// Python client speaking exactly what infernet_client sends, and junk input that must never be a 500.

interface Reply { status: number, headers: http.IncomingHttpHeaders, text: string, json: any }

interface RestNode { node: InframindNode, base: { host: string, port: number }, dir: string }

/** A node with the REST listener on a free loopback port (test/helpers/node.ts has no rest: section). */
async function startRestNode (opts: { containers: Array<Record<string, unknown>>, jobs?: Record<string, unknown>, rest?: Record<string, unknown> }): Promise<RestNode> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-rest-'))
  const doc = {
    node: { name: 'rest', roles: ['worker'], data_dir: dir },
    identity: { key_file: path.join(dir, 'keys', 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0' },
    jobs: { concurrency: 2, queue_size: 32, default_deadline_ms: 60_000, ...opts.jobs },
    store: { max_results: 200 },
    telemetry: { metrics: { enabled: false, listen: '127.0.0.1:0' }, log_level: 'silent' },
    dashboard: { listen: '' },
    runtime: { prefetch: false },
    mesh: { enabled: false },
    rest: { listen: '127.0.0.1:0', ...opts.rest },
    containers: opts.containers
  }
  const config = parseConfig(stringify(doc), path.join(dir, 'config.yaml'))
  const node = await createNode({ config, logger: silentLogger() })
  try {
    await node.start()
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const address = node.rest?.address() ?? ''
  const port = Number(address.slice(address.lastIndexOf(':') + 1))
  return { node, base: { host: '127.0.0.1', port }, dir }
}

async function destroy (n: RestNode | undefined): Promise<void> {
  if (n === undefined) return
  await n.node.stop()
  await rm(n.dir, { recursive: true, force: true })
}

/** One HTTP call; `from` picks the client's source address (127.0.0.x are all this machine). */
async function call (n: RestNode, method: string, url: string, opts: { body?: unknown, raw?: string | Buffer, from?: string, headers?: Record<string, string> } = {}): Promise<Reply> {
  const payload = opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined)
  const headers: Record<string, string> = { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers }
  return await new Promise((resolve, reject) => {
    const req = http.request({ ...n.base, method, path: url, headers, localAddress: opts.from }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown
        try { json = JSON.parse(text) } catch { json = undefined }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** Polls GET /api/jobs?id=… until none is running (as infernet_client's get_job_result_sync does, faster). */
async function results (n: RestNode, ids: string[], opts: { intermediate?: boolean, from?: string } = {}): Promise<JobResult[]> {
  const url = `/api/jobs?${ids.map((id) => `id=${encodeURIComponent(id)}`).join('&')}${opts.intermediate === true ? '&intermediate=true' : ''}`
  const until = Date.now() + 90_000
  for (;;) {
    const r = await call(n, 'GET', url, { from: opts.from })
    if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${r.text}`)
    const list = r.json as JobResult[]
    if (list.length === ids.length && list.every((j) => j.status !== 'running')) return list
    if (Date.now() > until) throw new Error(`jobs still running: ${r.text.slice(0, 500)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Every refusal: Infernet's shape, JSON, with our code in params. */
function assertError (t: ExecutionContext, r: Reply, status: number, code: string, error?: string | RegExp): void {
  t.is(r.status, status, r.text)
  t.regex(String(r.headers['content-type']), /^application\/json/)
  t.is(typeof r.json?.error, 'string', r.text)
  t.is(r.json?.params?.code, code, r.text)
  if (typeof error === 'string') t.is(r.json.error, error)
  else if (error !== undefined) t.regex(r.json.error, error)
}

const warm = (id: string): Record<string, unknown> => containerYaml(id, {
  image: NLP_IMAGE,
  command: ['testserver'],
  mode: 'service',
  service: { port: 8080, startup_timeout_ms: 30_000, health_interval_ms: 1000 },
  resources: { cpus: 0.5, memory: '128m', pids: 64 },
  output_schema: 'json'
})

let n: RestNode

test.before(async () => {
  n = await startRestNode({
    rest: { max_body_bytes: '256k', max_batch: 5 },
    containers: [
      containerYaml('echo'),
      containerYaml('sentiment', { image: NLP_IMAGE, command: ['analyze'], output_schema: 'json', resources: { cpus: 1, memory: '256m', pids: 64 }, timeout_ms: 30_000 }),
      containerYaml('slow', { command: ['sh', '-c', 'sleep 2; cat'] }),
      containerYaml('chatty', { command: ['sh', '-c', 'echo one; sleep 1; echo two'] }),
      containerYaml('talky', { command: ['sh', '-c', 'echo one; sleep 8; echo two'], timeout_ms: 30_000 }),
      containerYaml('internal', { external: false }),
      containerYaml('fenced', { allowed_ips: ['127.0.0.2/32'] }),
      containerYaml('tiny', { max_input_bytes: 16 }),
      containerYaml('vector', { input_schema: 'embedding<float>' }),
      warm('warm')
    ]
  })
})

test.after.always(async () => { await destroy(n) })

test('an Infernet client session: health, info, resources, submit, poll, list, pending filter', async (t) => {
  const health = await call(n, 'GET', '/health')
  t.is(health.status, 200)
  t.deepEqual(health.json, { status: 'healthy' })

  const info = await call(n, 'GET', '/info')
  t.is(info.status, 200)
  t.is(typeof info.json.version, 'string')
  t.deepEqual(info.json.chain, { enabled: false, address: '' })
  t.is(typeof info.json.pending.offchain, 'number')
  t.is(info.json.pending.onchain, 0)
  const echo = info.json.containers.find((c: { id: string }) => c.id === 'echo')
  t.like(echo, { id: 'echo', external: true, image: 'inframind/echo:1', description: '', mode: 'oneshot', input_schema: 'text' })
  t.like(info.json.containers.find((c: { id: string }) => c.id === 'internal'), { external: false })
  t.is(info.json.node_id, n.node.identity.nodeId)

  const resources = await call(n, 'GET', '/resources')
  t.is(resources.status, 200)
  t.like(resources.json.echo, { service_id: 'echo', compute_capability: [] })
  t.is(resources.json.echo.hardware_capabilities[0].capability_id, 'base')
  t.is(resources.json.tiny.limits.max_input_bytes, 16)
  const model = await call(n, 'GET', '/resources?model_id=some/model')
  t.deepEqual(model.json.echo, { supported: false })

  // POST /api/jobs as infernet_client's request_job sends it.
  const submitted = await call(n, 'POST', '/api/jobs', { body: { containers: ['echo'], data: { text: 'hello infernet' }, requires_proof: false } })
  t.is(submitted.status, 200, submitted.text)
  t.deepEqual(Object.keys(submitted.json), ['id'])
  const id = submitted.json.id as string
  t.regex(id, /^[0-9a-f-]{36}$/)

  const slow = await call(n, 'POST', '/api/jobs', { body: { containers: ['slow'], data: 'takes a while' } })
  t.is(slow.status, 200)
  // While it runs it is pending, and its result is null.
  const pendingNow = await call(n, 'GET', '/api/jobs?pending=true')
  t.true((pendingNow.json as string[]).includes(slow.json.id))
  const running = await call(n, 'GET', `/api/jobs?id=${slow.json.id as string}`)
  t.like(running.json[0], { id: slow.json.id, status: 'running', result: null })

  const [done] = await results(n, [id])
  t.is(done.id, id)
  t.is(done.status, 'success')
  // echo's output schema is text: Infernet's {"output": text} wrapping of the container's output.
  t.deepEqual(done.result, { container: 'echo', output: { output: '{"text":"hello infernet"}' } })
  t.false('intermediate_results' in done)
  // Ours: the node's signed receipt for exactly this input and output.
  t.not(done.receipt, null)
  const receipt = verifyReceipt(envelopeFromJson(done.receipt), { input: Buffer.from('{"text":"hello infernet"}'), output: Buffer.from('{"text":"hello infernet"}') })
  t.true(receipt.valid, JSON.stringify(receipt))
  if (receipt.valid) t.is(receipt.receipt.jobId, id)
  t.is(done.certificate, null)
  t.is(done.error_code, null)
  t.is(typeof done.latency_ms, 'number')

  const [slowDone] = await results(n, [slow.json.id])
  t.deepEqual(slowDone.result, { container: 'slow', output: { output: 'takes a while' } })

  // The client's own ids, and the pending filter.
  const all = (await call(n, 'GET', '/api/jobs')).json as string[]
  t.true(all.includes(id) && all.includes(slow.json.id))
  const finished = (await call(n, 'GET', '/api/jobs?pending=false')).json as string[]
  t.true(finished.includes(id) && finished.includes(slow.json.id))
  const pendingAfter = (await call(n, 'GET', '/api/jobs?pending=true')).json as string[]
  t.false(pendingAfter.includes(id))
  t.false(pendingAfter.includes(slow.json.id))

  // Several ids at once, in the order asked; unknown and malformed ids are left out, as Infernet does.
  const both = await call(n, 'GET', `/api/jobs?id=${slow.json.id as string}&id=no-such-job&id=${id}&id=${encodeURIComponent('../../etc/passwd')}`)
  t.deepEqual((both.json as JobResult[]).map((j) => j.id), [slow.json.id, id])
})

test('batch: answers in request order, each an id or Infernet\'s {error, params}', async (t) => {
  const r = await call(n, 'POST', '/api/jobs/batch', {
    body: [
      { containers: ['echo'], data: 'first' },
      { containers: ['nope'], data: {} },
      { containers: ['echo'], data: 'third' },
      { containers: ['internal'], data: {} },
      { subscription: {}, signature: {}, data: {} }
    ]
  })
  t.is(r.status, 200, r.text)
  const list = r.json as Array<{ id?: string, error?: string, params?: Record<string, unknown> }>
  t.is(list.length, 5)
  t.is(typeof list[0].id, 'string')
  t.like(list[1], { error: 'Container not supported', params: { container: 'nope', status: 405 } })
  t.is(typeof list[2].id, 'string')
  t.like(list[3], { error: 'First container must be external', params: { first_container: 'internal', status: 405 } })
  t.like(list[4], { error: 'Chain not enabled', params: { status: 405 } })
  const done = await results(n, [list[0].id as string, list[2].id as string])
  t.deepEqual(done.map((j) => j.result), [{ container: 'echo', output: { output: 'first' } }, { container: 'echo', output: { output: 'third' } }])
})

test('a chain: intermediate results only when asked, each container\'s output in its schema', async (t) => {
  const r = await call(n, 'POST', '/api/jobs', { body: { containers: ['echo', 'sentiment'], data: { text: 'I love this wonderful node' } } })
  t.is(r.status, 200, r.text)
  const id = r.json.id as string
  const [withSteps] = await results(n, [id], { intermediate: true })
  t.is(withSteps.status, 'success', JSON.stringify(withSteps))
  t.deepEqual(withSteps.intermediate_results, [{ container: 'echo', output: { output: '{"text":"I love this wonderful node"}' } }])
  // sentiment's output schema is json: the value itself, as an Infernet container answers.
  t.is(withSteps.result?.container, 'sentiment')
  const output = (withSteps.result as { output: { sentiment: number, label: string } }).output
  t.is(output.label, 'positive', JSON.stringify(output))
  t.is(typeof output.sentiment, 'number')
  const [plain] = await results(n, [id])
  t.false('intermediate_results' in plain)
  t.deepEqual(plain.result, withSteps.result)
})

test('a failed job: result is Infernet\'s {container, error}, with our error code', async (t) => {
  // The first step succeeds; its text is no embedding, so the chain fails at the second container.
  const r = await call(n, 'POST', '/api/jobs', { body: { containers: ['echo', 'sentiment', 'vector'], data: 'not a vector' } })
  t.is(r.status, 200, r.text)
  const [job] = await results(n, [r.json.id], { intermediate: true })
  t.is(job.status, 'failed')
  t.is(job.result !== null && 'error' in job.result ? job.result.container : '', 'vector', JSON.stringify(job))
  t.is(typeof (job.result as { error: string }).error, 'string')
  t.deepEqual(job.intermediate_results?.map((s) => s.container), ['echo', 'sentiment'])
  t.is(typeof job.error_code, 'string')
})

test('stream: the job id on the first line, then the output as it is produced', async (t) => {
  const r = await new Promise<{ status: number, headers: http.IncomingHttpHeaders, chunks: Buffer[] }>((resolve, reject) => {
    const req = http.request({ ...n.base, method: 'POST', path: '/api/jobs/stream', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, chunks }))
    })
    req.on('error', reject)
    req.end(JSON.stringify({ containers: ['chatty'], data: {} }))
  })
  t.is(r.status, 200)
  t.is(r.headers['content-type'], 'application/octet-stream')
  const body = Buffer.concat(r.chunks).toString()
  const newline = body.indexOf('\n')
  const id = body.slice(0, newline)
  t.regex(id, /^[0-9a-f-]{36}$/)
  t.is(r.headers[JOB_ID_HEADER], id)
  // The id arrives on its own, before any output (Infernet clients read the first chunk as the id).
  t.is(r.chunks[0].toString(), `${id}\n`)
  t.is(body.slice(newline + 1), 'one\ntwo\n')
  const [job] = await results(n, [id])
  t.deepEqual(job.result, { container: 'chatty', output: { output: 'one\ntwo\n' } })

  // A refused stream is a JSON error, never a 200.
  assertError(t, await call(n, 'POST', '/api/jobs/stream', { body: { containers: ['nope'], data: {} } }), 405, 'UNKNOWN_CONTAINER', 'Container not supported')
  assertError(t, await call(n, 'POST', '/api/jobs/stream', { body: { containers: 'chatty', data: {} } }), 400, 'INVALID_REQUEST', /body\.containers must be a list/)
})

test('the job\'s origin is the HTTP client\'s address: it reaches the container, the Guardian judges it, and results are per client', async (t) => {
  const who = await call(n, 'POST', '/api/jobs', { body: { containers: ['warm'], data: 'whoami' } })
  t.is(who.status, 200, who.text)
  const [job] = await results(n, [who.json.id])
  t.like(job.result, { container: 'warm', output: { job_id: who.json.id, origin: { ip: '127.0.0.1' } } })

  // allowed_ips: 127.0.0.2 only.
  assertError(t, await call(n, 'POST', '/api/jobs', { body: { containers: ['fenced'], data: 'x' } }), 405, 'IP_NOT_ALLOWED', 'Container not allowed for address')
  const refused = await call(n, 'POST', '/api/jobs', { body: { containers: ['fenced'], data: 'x' } })
  t.like(refused.json.params, { container: 'fenced', address: '127.0.0.1' })
  const other = await call(n, 'POST', '/api/jobs', { body: { containers: ['fenced'], data: 'from .2' }, from: '127.0.0.2' })
  t.is(other.status, 200, other.text)
  const [fenced] = await results(n, [other.json.id], { from: '127.0.0.2' })
  t.deepEqual(fenced.result, { container: 'fenced', output: { output: 'from .2' } })

  // Another address neither sees the job nor lists it (Infernet keys jobs by address and id).
  t.deepEqual((await call(n, 'GET', `/api/jobs?id=${other.json.id as string}`)).json, [])
  t.false(((await call(n, 'GET', '/api/jobs')).json as string[]).includes(other.json.id))
  t.deepEqual((await call(n, 'GET', '/api/jobs', { from: '127.0.0.2' })).json, [other.json.id])
  t.deepEqual((await call(n, 'GET', `/api/jobs?id=${who.json.id as string}`, { from: '127.0.0.2' })).json, [])
})

test('every Infernet refusal of a job: 405 with Infernet\'s words and params', async (t) => {
  const post = async (body: unknown): Promise<Reply> => await call(n, 'POST', '/api/jobs', { body })
  assertError(t, await post({ containers: [], data: {} }), 405, 'NO_CONTAINERS', 'No containers specified')
  const unknown = await post({ containers: ['echo', 'nope'], data: {} })
  assertError(t, unknown, 405, 'UNKNOWN_CONTAINER', 'Container not supported')
  t.is(unknown.json.params.container, 'nope')
  const malformedId = await post({ containers: ['Not A Container!'], data: {} })
  assertError(t, malformedId, 405, 'INVALID_CONTAINER_ID', 'Container not supported')
  t.is(malformedId.json.params.container, 'Not A Container!')
  const internal = await post({ containers: ['internal'], data: {} })
  assertError(t, internal, 405, 'NOT_EXTERNAL', 'First container must be external')
  t.is(internal.json.params.first_container, 'internal')
  const proof = await post({ containers: ['echo'], data: {}, requires_proof: true })
  assertError(t, proof, 405, 'PROOF_UNSUPPORTED', 'Container does not generate proof')
  t.is(proof.json.params.container, 'echo')
  assertError(t, await post({ subscription: { owner: '0x0' }, signature: { nonce: 1 }, data: {} }), 405, 'CHAIN_NOT_ENABLED', 'Chain not enabled')
  // The same limits as gRPC: the container's input size and schema.
  assertError(t, await post({ containers: ['tiny'], data: 'more than sixteen bytes' }), 413, 'INPUT_TOO_LARGE', /at most 16/)
  assertError(t, await post({ containers: ['vector'], data: { not: 'a vector' } }), 400, 'INVALID_INPUT', /embedding/)
})

test('malformed requests: a 4xx in Infernet\'s shape that says what to fix', async (t) => {
  assertError(t, await call(n, 'POST', '/api/jobs', { raw: '{"containers": ["echo"', headers: { 'content-type': 'application/json' } }), 400, 'INVALID_JSON', /not valid JSON/)
  assertError(t, await call(n, 'POST', '/api/jobs', { raw: '' }), 400, 'INVALID_REQUEST', /body must be an object/)
  assertError(t, await call(n, 'POST', '/api/jobs', { body: [1, 2] }), 400, 'INVALID_REQUEST', /body must be an object/)
  assertError(t, await call(n, 'POST', '/api/jobs', { body: { data: {} } }), 400, 'INVALID_REQUEST', /body\.containers is required/)
  assertError(t, await call(n, 'POST', '/api/jobs', { body: { containers: ['echo'] } }), 400, 'INVALID_REQUEST', /body\.data is required/)
  assertError(t, await call(n, 'POST', '/api/jobs', { body: { containers: 'echo', data: {} } }), 400, 'INVALID_REQUEST', /body\.containers must be a list/)
  assertError(t, await call(n, 'POST', '/api/jobs', { body: { containers: [7], data: {} } }), 400, 'INVALID_REQUEST', /body\.containers\[0\] must be a string/)
  assertError(t, await call(n, 'POST', '/api/jobs', { body: { containers: ['echo'], data: 5 } }), 400, 'INVALID_REQUEST', /body\.data must be an object or a string/)
  assertError(t, await call(n, 'POST', '/api/jobs', { body: { containers: ['echo'], data: {}, requires_proof: 'yes' } }), 400, 'INVALID_REQUEST', /requires_proof must be a boolean or a null/)
  assertError(t, await call(n, 'POST', '/api/jobs', { body: { containers: Array(17).fill('echo'), data: {} } }), 400, 'INVALID_REQUEST', /more than 16/)
  // rest.max_body_bytes is 256k here.
  const huge = await call(n, 'POST', '/api/jobs', { body: { containers: ['echo'], data: 'x'.repeat(300_000) } })
  assertError(t, huge, 413, 'BODY_TOO_LARGE', /rest\.max_body_bytes/)
  t.is(huge.json.params.limit, 256 * 1024)
  // A body without Content-Type (or with another one) is still read as JSON.
  t.is((await call(n, 'POST', '/api/jobs', { raw: JSON.stringify({ containers: ['echo'], data: 'no header' }) })).status, 200)
  t.is((await call(n, 'POST', '/api/jobs', { raw: JSON.stringify({ containers: ['echo'], data: 'text/plain' }), headers: { 'content-type': 'text/plain' } })).status, 200)

  assertError(t, await call(n, 'POST', '/api/jobs/batch', { body: { containers: ['echo'], data: {} } }), 400, 'INVALID_REQUEST', /body must be a list/)
  assertError(t, await call(n, 'POST', '/api/jobs/batch', { body: Array(6).fill({ containers: ['echo'], data: {} }) }), 400, 'INVALID_REQUEST', /at most 5/)
  assertError(t, await call(n, 'POST', '/api/jobs/batch', { body: [{ containers: ['echo'], data: {} }, { containers: ['echo'], data: 1 }] }), 400, 'INVALID_REQUEST', /body\[1\]\.data must be/)

  assertError(t, await call(n, 'GET', '/api/jobs?pending=yes'), 400, 'INVALID_REQUEST', /query\.pending must be one of "true", "false"/)
  assertError(t, await call(n, 'GET', '/api/jobs?id=a&intermediate=1'), 400, 'INVALID_REQUEST', /query\.intermediate/)
  assertError(t, await call(n, 'GET', `/api/jobs?${Array(1001).fill('id=a').join('&')}`), 400, 'INVALID_REQUEST', /more than 1000/)
  assertError(t, await call(n, 'GET', '/no/such/path'), 404, 'ROUTE_NOT_FOUND', /no route GET/)
  const method = await call(n, 'DELETE', '/api/jobs')
  assertError(t, method, 405, 'METHOD_NOT_ALLOWED', /DELETE is not allowed on \/api\/jobs/)
  t.is(method.headers.allow, 'GET, POST, HEAD')
  assertError(t, await call(n, 'PUT', '/api/status', { body: { id: 'x', status: 'success', containers: ['echo'], data: {} } }), 405, 'METHOD_NOT_ALLOWED')
  assertError(t, await call(n, 'GET', '/api/jobs/stream'), 405, 'METHOD_NOT_ALLOWED')
})

test('junk never makes a 500: random JSON bodies and query strings', async (t) => {
  const bodies = fc.sample(fc.oneof(
    fc.jsonValue(),
    // Container names of at most 3 characters: none is configured, so no junk ever runs a container.
    fc.record({ containers: fc.array(fc.oneof(fc.string({ maxLength: 3 }), fc.integer())), data: fc.jsonValue(), requires_proof: fc.jsonValue() }, { requiredKeys: [] }),
    fc.array(fc.record({ containers: fc.array(fc.string({ maxLength: 3 })), data: fc.jsonValue() }, { requiredKeys: [] }), { maxLength: 4 })
  ), { numRuns: 120, seed: 13 })
  for (const body of bodies) {
    for (const route of ['/api/jobs', '/api/jobs/batch']) {
      const r = await call(n, 'POST', route, { raw: JSON.stringify(body) ?? 'null', headers: { 'content-type': 'application/json' } })
      t.true(r.status < 500, `${route} ${JSON.stringify(body)} → ${r.status} ${r.text}`)
      if (r.status >= 400) t.is(typeof r.json?.error, 'string', r.text)
    }
  }
  const junk = fc.sample(fc.string({ unit: 'binary', maxLength: 64 }), { numRuns: 60, seed: 13 })
  for (const s of junk) {
    const r = await call(n, 'POST', '/api/jobs', { raw: Buffer.from(s), headers: { 'content-type': 'application/json' } })
    t.true(r.status < 500, `${JSON.stringify(s)} → ${r.status} ${r.text}`)
    const q = await call(n, 'GET', `/api/jobs?${encodeURIComponent(s)}=${encodeURIComponent(s)}&id=${encodeURIComponent(s)}`)
    t.true(q.status < 500, `${JSON.stringify(s)} → ${q.status} ${q.text}`)
  }
})

test('a full queue is Infernet-shaped 503 with Retry-After; the client retries later', async (t) => {
  const small = await startRestNode({ jobs: { concurrency: 1, queue_size: 1 }, containers: [containerYaml('slow', { command: ['sh', '-c', 'sleep 3; cat'] })] })
  t.teardown(async () => { await destroy(small) })
  const replies: Reply[] = []
  for (let i = 0; i < 6; i++) {
    const r = await call(small, 'POST', '/api/jobs', { body: { containers: ['slow'], data: `job ${i}` } })
    replies.push(r)
    if (r.status !== 200) break
  }
  const full = replies[replies.length - 1]
  assertError(t, full, 503, 'QUEUE_FULL', /queue is full/)
  t.is(full.headers['retry-after'], '1')
  t.true(replies.slice(0, -1).every((r) => r.status === 200))
})

/** Opens POST /api/jobs/stream and hands back the response as it arrives. */
async function openStream (rn: RestNode, body: unknown): Promise<{ res: http.IncomingMessage, next: () => Promise<Buffer | undefined>, ended: Promise<'end' | 'aborted'> }> {
  return await new Promise((resolve, reject) => {
    const req = http.request({ ...rn.base, method: 'POST', path: '/api/jobs/stream', headers: { 'content-type': 'application/json' } }, (res) => {
      const queue: Buffer[] = []
      let wake: (() => void) | undefined
      let done = false
      const ended = new Promise<'end' | 'aborted'>((resolveEnd) => {
        res.on('end', () => resolveEnd('end'))
        res.on('aborted', () => resolveEnd('aborted'))
        res.on('error', () => resolveEnd('aborted'))
      })
      void ended.then(() => { done = true; wake?.() })
      res.on('data', (c: Buffer) => { queue.push(c); wake?.() })
      const next = async (): Promise<Buffer | undefined> => {
        while (queue.length === 0 && !done) await new Promise<void>((w) => { wake = w })
        return queue.shift()
      }
      resolve({ res, next, ended })
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

test('stream: the first output reaches the client while the job still runs', async (t) => {
  const s = await openStream(n, { containers: ['talky'], data: {} })
  t.is(s.res.statusCode, 200)
  const id = (await s.next())?.toString().trim() ?? ''
  t.regex(id, /^[0-9a-f-]{36}$/)
  const first = (await s.next())?.toString()
  t.is(first, 'one\n')
  // The container sleeps 8 s after its first line: the job is still running now.
  const [running] = (await call(n, 'GET', `/api/jobs?id=${id}`)).json as JobResult[]
  t.is(running.status, 'running')
  t.is(await s.ended, 'end')
  const [job] = await results(n, [id])
  t.deepEqual(job.result, { container: 'talky', output: { output: 'one\ntwo\n' } })
})

test('lifecycle: stopping the node cuts open streams (the job resumes on restart); start twice is a no-op', async (t) => {
  const own = await startRestNode({ containers: [containerYaml('slow', { command: ['sh', '-c', 'sleep 4; cat'] })] })
  t.teardown(async () => { await destroy(own) })
  const rest = own.node.rest
  if (rest === undefined) throw new Error('no REST listener')
  const before = rest.address()
  await rest.start()
  t.is(rest.address(), before)
  const s = await openStream(own, { containers: ['slow'], data: 'survives a restart' })
  const id = (await s.next())?.toString().trim() ?? ''
  t.regex(id, /^[0-9a-f-]{36}$/)
  await own.node.stop()
  // Cut without HTTP's last chunk: the client can tell the body is incomplete.
  t.is(await s.ended, 'aborted')
  t.is(rest.address(), '')
  await own.node.start()
  const after = rest.address()
  own.base.port = Number(after.slice(after.lastIndexOf(':') + 1))
  t.is((await call(own, 'GET', '/health')).status, 200)
  const [job] = await results(own, [id])
  t.deepEqual(job.result, { container: 'slow', output: { output: 'survives a restart' } })
})

test('lifecycle: a REST port already taken fails the node\'s start, naming the component', async (t) => {
  const taken = net.createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  const port = (taken.address() as net.AddressInfo).port
  const err = await t.throwsAsync(startRestNode({ rest: { listen: `127.0.0.1:${port}` }, containers: [containerYaml('echo')] }))
  t.is((err as { code?: string }).code, 'NODE_START_FAILED')
  t.is((err as { component?: string }).component, 'rest')
  t.regex(err?.message ?? '', /EADDRINUSE/)
})

test('config: the REST listener is off by default, and its keys are checked', (t) => {
  t.false(parseConfig('', '').rest.enabled)
  const on = parseConfig('rest:\n  listen: 127.0.0.1:4000\n', '')
  t.like(on.rest, { enabled: true, host: '127.0.0.1', port: 4000, maxBodyBytes: 4 * 1024 * 1024, maxBatch: 100 })
  const err = t.throws(() => parseConfig('rest:\n  listen: 4000\n  max_body_bytes: 10\n  max_batch: 0\n  limit: 1\n', ''))
  for (const key of ['rest.listen', 'rest.max_body_bytes', 'rest.max_batch', 'rest.limit']) t.true(err?.message.includes(key), err?.message)
  t.throws(() => parseConfig('rest:\n  listen: 127.0.0.1:9000\napi:\n  public: 127.0.0.1:9000\n', ''), { message: /rest\.listen: port 9000 is also used by api\.public/ })
})

let python = false
try {
  execFileSync('python3', ['--version'], { stdio: 'ignore' })
  python = true
} catch {}

/** What infernet_client (ritual-net/infernet-monorepo libraries/infernet_client) sends, with urllib only. */
const PYTHON_CLIENT = String.raw`
import json, sys, time, urllib.request, urllib.error
base = sys.argv[1]
def req(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(base + path, data=data, method=method)
    if body is not None:
        r.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
out = {}
out["health"] = req("GET", "/health")[1]["status"] == "healthy"
out["info_containers"] = [c["id"] for c in req("GET", "/info")[1]["containers"]]
status, body = req("POST", "/api/jobs", {"containers": ["echo"], "data": {"text": "from python"}, "requires_proof": False})
job_id = body["id"]
status, batch = req("POST", "/api/jobs/batch", [{"containers": ["echo"], "data": {"n": 1}}, {"containers": ["missing"], "data": {}}])
out["batch"] = batch
ids = [job_id, batch[0]["id"]]
for _ in range(600):
    status, results = req("GET", "/api/jobs?id=" + "&id=".join(ids))
    if len(results) == 2 and all(r["status"] != "running" for r in results):
        break
    time.sleep(0.1)
out["results"] = [{"id": r["id"], "status": r["status"], "result": r["result"]} for r in results]
out["completed"] = req("GET", "/api/jobs?pending=false")[1]
status, err = req("POST", "/api/jobs", {"containers": ["missing"], "data": {}})
out["error"] = [status, err["error"], err.get("params", {}).get("container")]
r = urllib.request.Request(base + "/api/jobs/stream", data=json.dumps({"containers": ["echo"], "data": {"s": 1}, "requires_proof": False}).encode(), method="POST")
r.add_header("Content-Type", "application/json")
with urllib.request.urlopen(r, timeout=60) as resp:
    streamed = b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        streamed += chunk
first, _, rest = streamed.partition(b"\n")
out["stream"] = [first.decode().strip(), rest.decode()]
print(json.dumps(out))
`

;(python ? test : test.skip)('a Python client sending exactly what infernet_client sends (urllib only)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-rest-py-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const script = path.join(dir, 'client.py')
  await writeFile(script, PYTHON_CLIENT)
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('python3', [script, `http://127.0.0.1:${n.base.port}`], { timeout: 120_000 }, (err, out, errOut) => {
      if (err !== null) reject(new Error(`${err.message}\n${errOut}`))
      else resolve(out)
    })
  })
  const out = JSON.parse(stdout)
  t.true(out.health)
  t.true(out.info_containers.includes('echo'))
  t.is(out.batch.length, 2)
  t.is(typeof out.batch[0].id, 'string')
  t.like(out.batch[1], { error: 'Container not supported', params: { container: 'missing' } })
  t.deepEqual(out.results.map((r: { status: string }) => r.status), ['success', 'success'])
  t.deepEqual(out.results[0].result, { container: 'echo', output: { output: '{"text":"from python"}' } })
  t.deepEqual(out.results[1].result, { container: 'echo', output: { output: '{"n":1}' } })
  t.true(out.results.every((r: { id: string }) => out.completed.includes(r.id)))
  t.deepEqual(out.error, [405, 'Container not supported', 'missing'])
  t.regex(out.stream[0], /^[0-9a-f-]{36}$/)
  t.is(out.stream[1], '{"s":1}')
})
