import test from 'ava'
import type { ExecutionContext } from 'ava'
import Dockerode from 'dockerode'
import type { ContainerConfig } from '../../src/config/types.ts'
import { dockerRuntime, resolveEngine } from '../../src/runtime/index.ts'
import type { ContainerEvent, ContainerState, ImageResolver, Runtime, RunResult } from '../../src/runtime/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { NLP_IMAGE, lockedDigest, serviceContainer, testContainer } from '../helpers/images.ts'

// Warm service containers against the real engine. Every runtime a test makes is stopped after it,
// and no container labelled with this file's service ids may be left. Serial: restarts and timing
// must not compete with each other for the two cores.

const docker = new Dockerode(resolveEngine().options)
const TOKEN = `t${process.pid.toString(36)}${Date.now().toString(36)}`
let seq = 0
const runtimes: Runtime[] = []

interface Harness {
  runtime: Runtime
  events: ContainerEvent[]
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (r: RunResult): string => Buffer.from(r.output).toString()
const sid = (name: string): string => `${TOKEN}-${name}`
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function harness (containers: ContainerConfig[], images?: ImageResolver): Harness {
  const runtime = dockerRuntime({ containers, engineTimeoutMs: 10_000, startTimeoutMs: 10_000, ...(images === undefined ? {} : { images }) })({ logger: silentLogger() })
  const events: ContainerEvent[] = []
  runtime.onContainerEvent((e) => { events.push(e) })
  runtimes.push(runtime)
  return { runtime, events }
}

async function call (h: Harness, container: ContainerConfig, input: string, signal?: AbortSignal): Promise<RunResult> {
  return await h.runtime.run({ jobId: `${TOKEN}-job-${++seq}`, container, input: enc(input), ...(signal === undefined ? {} : { signal }) })
}

function statusOf (h: Harness, id: string): ReturnType<Runtime['containerStatuses']>[number] {
  const status = h.runtime.containerStatuses().find((s) => s.id === id)
  if (status === undefined) throw new Error(`no status for ${id}`)
  return status
}

/** Waits until the container's event list holds `count` events with `state` (states are asserted by the caller). */
async function reach (h: Harness, id: string, state: ContainerState, timeoutMs = 20_000, count = 1): Promise<void> {
  const until = Date.now() + timeoutMs
  while (h.events.filter((e) => e.containerId === id && e.state === state).length < count) {
    if (Date.now() > until) {
      throw new Error(`${id} did not reach ${state} x${count} within ${timeoutMs} ms; events: ${statesOf(h, id).join(' > ')}; status: ${JSON.stringify(statusOf(h, id))}`)
    }
    await sleep(25)
  }
}

function statesOf (h: Harness, id: string): ContainerState[] {
  return h.events.filter((e) => e.containerId === id).map((e) => e.state)
}

async function fails (t: ExecutionContext, promise: Promise<unknown>, name: string, code: string): Promise<Error & Record<string, unknown>> {
  const err = await t.throwsAsync(promise) as Error & Record<string, unknown>
  t.is(err?.name, name, `error name (message: ${err?.message})`)
  t.is(err?.code, code)
  return err
}

/** Engine containers of this file (any state), by the service label. */
async function ourContainers (): Promise<Dockerode.ContainerInfo[]> {
  const list = await docker.listContainers({ all: true, filters: { label: ['inframind.service'] } })
  return list.filter((c) => c.Labels['inframind.service']?.startsWith(TOKEN) === true)
}

test.afterEach.always(async (t) => {
  await Promise.all(runtimes.splice(0).map(async (r) => { await r.stop() }))
  t.deepEqual((await ourContainers()).map((c) => c.Names.join(',')), [], 'no service container left behind')
})

test.serial('the nlp image as a warm service: pulling > starting > healthy, then answers jobs', async (t) => {
  const nlp = serviceContainer(sid('nlp'), 'serve', { env: { TASK: 'analyze' } })
  const h = harness([nlp])
  const began = Date.now()
  await h.runtime.start()
  t.true(Date.now() - began < 2000, 'start() does not wait for the service to warm up')
  await reach(h, nlp.id, 'healthy')
  t.deepEqual(statesOf(h, nlp.id), ['pulling', 'starting', 'healthy'])
  const status = statusOf(h, nlp.id)
  t.like(status, { mode: 'service', state: 'healthy', restarts: 0, lastError: '' })
  t.true(status.hostPort > 0)

  const result = await call(h, nlp, 'I absolutely love the new release on Monday, it is wonderful!')
  const out = JSON.parse(text(result)) as { label: string, sentiment: number, entities: unknown[], tokens: number }
  t.is(out.label, 'positive')
  t.deepEqual(out.entities, [{ value: 'Monday', type: 'DATE' }])
  t.is(result.exitCode, 0)
  t.is(result.imageDigest, lockedDigest(NLP_IMAGE))
  t.true(result.startedAtMs <= result.finishedAtMs)
  // The service's answer is the same analysis the one-shot task prints.
  const negative = JSON.parse(text(await call(h, nlp, JSON.stringify({ text: 'This is terrible and awful. I hate it.' })))) as { label: string }
  t.is(negative.label, 'negative')

  // Bad input is the service's 400, not a result.
  const err = await fails(t, call(h, nlp, '   '), 'ServiceHttpError', 'SERVICE_HTTP_ERROR')
  t.is(err.status, 400)
  t.is(err.serviceCode, 'BAD_INPUT')
  t.is(statusOf(h, nlp.id).state, 'healthy', 'a bad job does not make the service unhealthy')
})

test.serial('the request carries job_id, the input per schema and the origin; bytes travel as base64', async (t) => {
  const textEcho = serviceContainer(sid('echo-text'), 'testserver')
  const jsonEcho = serviceContainer(sid('echo-json'), 'testserver', { inputSchema: 'json', outputSchema: 'json' })
  const bytesEcho = serviceContainer(sid('echo-bytes'), 'testserver', { inputSchema: 'bytes', outputSchema: 'bytes' })
  const h = harness([textEcho, jsonEcho, bytesEcho])
  await h.runtime.start()
  await Promise.all([textEcho, jsonEcho, bytesEcho].map(async (c) => { await reach(h, c.id, 'healthy') }))

  const who = await h.runtime.run({ jobId: 'job-who', container: textEcho, input: enc('whoami'), origin: { ip: '10.0.0.7', peerId: '12D3KooWpeer', delegate: 'del' } })
  t.deepEqual(JSON.parse(text(who)), { job_id: 'job-who', origin: { ip: '10.0.0.7', peer_id: '12D3KooWpeer', delegate: 'del' } })
  const anonymous = await h.runtime.run({ jobId: 'job-anon', container: textEcho, input: enc('whoami') })
  t.deepEqual(JSON.parse(text(anonymous)), { job_id: 'job-anon', origin: { ip: '', peer_id: '', delegate: '' } })

  t.is(text(await call(h, textEcho, 'héllo "quoted"\n')), 'héllo "quoted"\n', 'text input as a string, string output as UTF-8')
  t.is(text(await call(h, jsonEcho, ' {"a": [1, 2.5, null]} ')), '{"a":[1,2.5,null]}', 'json input as the value, output re-serialised')
  const bytes = Buffer.from([0, 1, 2, 250, 255, 10, 13])
  const echoed = await h.runtime.run({ jobId: 'job-bytes', container: bytesEcho, input: bytes })
  t.true(Buffer.from(echoed.output).equals(bytes))
  await fails(t, call(h, jsonEcho, 'not json'), 'InputSchemaError', 'INVALID_INPUT')
})

test.serial('the published port is bound to 127.0.0.1 only, in the job sandbox, with the service labels', async (t) => {
  const svc = serviceContainer(sid('port'), 'testserver')
  const h = harness([svc])
  await h.runtime.start()
  await reach(h, svc.id, 'healthy')
  const [info] = await ourContainers()
  t.truthy(info)
  const inspect = await docker.getContainer(info?.Id ?? '').inspect()
  t.deepEqual(inspect.HostConfig.PortBindings, { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] })
  const published = (inspect.NetworkSettings.Ports as Record<string, Array<{ HostIp: string, HostPort: string }>>)['8080/tcp'] ?? []
  t.true(published.length > 0)
  for (const binding of published) t.is(binding.HostIp, '127.0.0.1')
  t.is(Number(published[0]?.HostPort), statusOf(h, svc.id).hostPort)
  t.is(inspect.Config.Labels['inframind.service'], svc.id)
  t.truthy(inspect.Config.Labels['inframind.runtime'])
  t.like(inspect.HostConfig, { ReadonlyRootfs: true, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], NetworkMode: 'bridge', PidsLimit: 64, Memory: 256 * 1024 * 1024, MemorySwap: 256 * 1024 * 1024 })
  t.is(inspect.Config.User, '65534:65534')
})

test.serial('a warm container that crashes is restarted and jobs go on succeeding', async (t) => {
  const svc = serviceContainer(sid('crash'), 'testserver')
  const h = harness([svc])
  await h.runtime.start()
  await reach(h, svc.id, 'healthy')
  t.is(text(await call(h, svc, 'before')), 'before')

  await fails(t, call(h, svc, 'crash'), 'ServiceCallError', 'SERVICE_CALL_FAILED')
  await reach(h, svc.id, 'healthy', 20_000, 2)
  t.deepEqual(statesOf(h, svc.id), ['pulling', 'starting', 'healthy', 'restarting', 'starting', 'healthy'])
  const status = statusOf(h, svc.id)
  t.is(status.restarts, 1)
  t.regex(status.lastError, /exited with code 3/)
  t.regex(status.lastError, /crashing: asked to by a job/, 'the last output says why')
  for (let i = 0; i < 3; i++) t.is(text(await call(h, svc, `after ${i}`)), `after ${i}`)
})

test.serial('a container that crashes after N jobs keeps coming back; the restart count goes up', async (t) => {
  const svc = serviceContainer(sid('crashn'), 'testserver', { env: { CRASH_AFTER: '2' } })
  const h = harness([svc])
  await h.runtime.start()
  let served = 0
  for (let round = 1; round <= 2; round++) {
    await reach(h, svc.id, 'healthy', 20_000, round)
    t.is(text(await call(h, svc, `r${round}a`)), `r${round}a`)
    t.is(text(await call(h, svc, `r${round}b`)), `r${round}b`)
    served += 2
    await reach(h, svc.id, 'restarting', 20_000, round)
  }
  await reach(h, svc.id, 'healthy', 20_000, 3)
  t.is(served, 4)
  t.is(statusOf(h, svc.id).restarts, 2)
  t.is(text(await call(h, svc, 'still here')), 'still here')
})

test.serial('a container that never becomes ready ends failed while another service serves', async (t) => {
  const never = serviceContainer(sid('never'), 'testserver', { env: { READY_AFTER_MS: 'never' }, service: { startupTimeoutMs: 3000, maxRestarts: 1 } })
  const good = serviceContainer(sid('good'), 'testserver')
  const h = harness([never, good])
  const began = Date.now()
  await h.runtime.start()
  t.true(Date.now() - began < 2000, 'start() returns without waiting for either service')
  await reach(h, good.id, 'healthy')
  t.is(text(await call(h, good, 'served while the other warms up')), 'served while the other warms up')
  const early = await fails(t, call(h, never, 'x'), 'ServiceUnavailableError', 'SERVICE_UNAVAILABLE')
  t.is(early.state, 'starting')

  await reach(h, never.id, 'failed', 20_000)
  t.deepEqual(statesOf(h, never.id), ['pulling', 'starting', 'restarting', 'starting', 'failed'])
  const status = statusOf(h, never.id)
  t.like(status, { state: 'failed', restarts: 1, hostPort: 0 })
  t.log(status.lastError)
  t.regex(status.lastError, /gave up after 1 restart/)
  t.regex(status.lastError, /not ready within startup_timeout_ms \(3000 ms\)/)
  t.regex(status.lastError, /HTTP 503/)
  const err = await fails(t, call(h, never, 'x'), 'ServiceUnavailableError', 'SERVICE_UNAVAILABLE')
  t.is(err.state, 'failed')
  t.regex(err.message, /not ready within/)
  t.is(statusOf(h, good.id).state, 'healthy')
  t.is(text(await call(h, good, 'still serving')), 'still serving')
})

test.serial('a server that dies at startup is retried with doubling backoff, then given up on', async (t) => {
  // PORT is not a port: the server exits with code 1 before it listens.
  const svc = serviceContainer(sid('badport'), 'testserver', { env: { PORT: 'nope' }, service: { maxRestarts: 2, restartBackoffMs: 300, restartBackoffMaxMs: 5000 } })
  const h = harness([svc])
  await h.runtime.start()
  await reach(h, svc.id, 'failed', 30_000)
  t.deepEqual(statesOf(h, svc.id), ['pulling', 'starting', 'restarting', 'starting', 'restarting', 'starting', 'failed'])
  const status = statusOf(h, svc.id)
  t.is(status.restarts, 2)
  t.log(status.lastError)
  t.regex(status.lastError, /exited with code 1/)
  t.regex(status.lastError, /PORT must be a TCP port/)
  // Delay between each `restarting` and the following `starting`: 300 ms, then 600 ms.
  const events = h.events.filter((e) => e.containerId === svc.id)
  const gaps = events.flatMap((e, i) => e.state === 'restarting' ? [(events[i + 1]?.atMs ?? 0) - e.atMs] : [])
  t.is(gaps.length, 2)
  t.true((gaps[0] ?? 0) >= 280 && (gaps[0] ?? 0) < 1500, `first backoff ${gaps[0]} ms`)
  t.true((gaps[1] ?? 0) >= 580 && (gaps[1] ?? 0) < 2000, `second backoff ${gaps[1]} ms`)
})

test.serial('a service that turns unhealthy is restarted', async (t) => {
  const svc = serviceContainer(sid('sick'), 'testserver')
  const h = harness([svc])
  await h.runtime.start()
  await reach(h, svc.id, 'healthy')
  t.is(text(await call(h, svc, 'unhealthy')), 'ok')
  await reach(h, svc.id, 'healthy', 20_000, 2)
  t.deepEqual(statesOf(h, svc.id), ['pulling', 'starting', 'healthy', 'unhealthy', 'restarting', 'starting', 'healthy'])
  t.regex(statusOf(h, svc.id).lastError, /2 health check\(s\) failed in a row \(last: GET \/health answered HTTP 503\)/)
  t.is(statusOf(h, svc.id).restarts, 1)
  t.is(text(await call(h, svc, 'recovered')), 'recovered')
})

test.serial('an HTTP error fails the job with SERVICE_HTTP_ERROR and never becomes a result', async (t) => {
  const svc = serviceContainer(sid('errors'), 'testserver')
  const h = harness([svc])
  await h.runtime.start()
  await reach(h, svc.id, 'healthy')
  for (const status of [500, 422]) {
    const err = await fails(t, call(h, svc, `status:${status}`), 'ServiceHttpError', 'SERVICE_HTTP_ERROR')
    t.is(err.status, status)
    t.is(err.serviceCode, 'TEST_ERROR')
    t.is(err.serviceMessage, `asked for HTTP ${status}`)
    t.is(err.imageDigest, lockedDigest(NLP_IMAGE))
  }
  const raw = await fails(t, call(h, svc, 'raw:503:5000'), 'ServiceHttpError', 'SERVICE_HTTP_ERROR')
  t.is(raw.status, 503)
  t.is(raw.serviceMessage, 'E'.repeat(512), 'a non-JSON body: its first 512 bytes')
  await fails(t, call(h, svc, 'badjson'), 'ServiceResponseError', 'SERVICE_BAD_RESPONSE')
  await fails(t, call(h, svc, 'nooutput'), 'ServiceResponseError', 'SERVICE_BAD_RESPONSE')
  t.is(text(await call(h, svc, 'fine')), 'fine')
  t.is(statusOf(h, svc.id).restarts, 0)
})

test.serial('limits hold for service calls: timeout, abort, output cap, output schema', async (t) => {
  const svc = serviceContainer(sid('limits'), 'testserver', { timeoutMs: 800, maxOutputBytes: 1000 })
  const json = serviceContainer(sid('limits-json'), 'testserver', { outputSchema: 'json' })
  const h = harness([svc, json])
  await h.runtime.start()
  await Promise.all([reach(h, svc.id, 'healthy'), reach(h, json.id, 'healthy')])

  let began = Date.now()
  await fails(t, call(h, svc, 'sleep:5000'), 'ContainerTimeoutError', 'CONTAINER_TIMEOUT')
  t.true(Date.now() - began < 2500, 'the call ends at its timeout')
  began = Date.now()
  await fails(t, call(h, svc, 'sleep:5000', AbortSignal.timeout(300)), 'RunAbortedError', 'ABORTED')
  t.true(Date.now() - began < 2000)
  await fails(t, call(h, svc, 'big:200000'), 'OutputTooLargeError', 'OUTPUT_TOO_LARGE')
  t.is(text(await call(h, svc, 'big:1000')), 'x'.repeat(1000), 'exactly at the cap is fine')
  await fails(t, call(h, json, 'not json'), 'OutputSchemaError', 'OUTPUT_SCHEMA')
  t.is(text(await call(h, json, '[1,2]')), '[1,2]', 'a string that is JSON passes the json schema')
  t.is(statusOf(h, svc.id).state, 'healthy')
})

test.serial('a job to a service that is not healthy fails fast with SERVICE_UNAVAILABLE', async (t) => {
  const svc = serviceContainer(sid('slow'), 'testserver', { env: { READY_AFTER_MS: '2500' } })
  const h = harness([svc])
  await h.runtime.start()
  await reach(h, svc.id, 'starting')
  const began = Date.now()
  const err = await fails(t, call(h, svc, 'x'), 'ServiceUnavailableError', 'SERVICE_UNAVAILABLE')
  t.true(Date.now() - began < 100, `failed in ${Date.now() - began} ms`)
  t.is(err.state, 'starting')
  // A service the runtime was not given is never called either.
  const unknown = serviceContainer(sid('unknown'), 'testserver')
  await fails(t, call(h, unknown, 'x'), 'ServiceUnavailableError', 'SERVICE_UNAVAILABLE')
  await reach(h, svc.id, 'healthy')
  t.is(text(await call(h, svc, 'ready now')), 'ready now')
})

test.serial('image problems fail that service at boot; a plugged-in resolver is asked for every image', async (t) => {
  const wrong = serviceContainer(sid('wrongdigest'), 'testserver', { digest: lockedDigest('inframind/echo:1') })
  const h = harness([wrong])
  await h.runtime.start()
  await reach(h, wrong.id, 'failed')
  t.deepEqual(statesOf(h, wrong.id), ['pulling', 'failed'])
  t.regex(statusOf(h, wrong.id).lastError, /refusing to run it/)

  const asked: string[] = []
  const resolver: ImageResolver = {
    ensure: async (c) => {
      asked.push(c.id)
      if (c.id === sid('refused')) throw new Error('the test resolver refuses this one')
      return lockedDigest(c.image)
    }
  }
  const svc = serviceContainer(sid('resolved'), 'testserver')
  const refused = serviceContainer(sid('refused'), 'testserver')
  const echo = testContainer({ id: 'oneshot-echo' })
  const r = harness([svc, refused, echo], resolver)
  await r.runtime.start()
  await reach(r, svc.id, 'healthy')
  await reach(r, refused.id, 'failed')
  t.is(statusOf(r, refused.id).lastError, 'the test resolver refuses this one')
  t.is(text(await call(r, echo, 'one-shot')), 'one-shot')
  t.deepEqual(asked.sort(), [svc.id, refused.id, 'oneshot-echo'].sort())
  t.like(statusOf(r, 'oneshot-echo'), { mode: 'oneshot', state: 'ready', restarts: 0, hostPort: 0 })
  await r.runtime.settled()
})

test.serial('stop() removes every service container, reports stopped, leaves no timer, and is idempotent', async (t) => {
  const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const a = serviceContainer(sid('stop-a'), 'testserver')
  const b = serviceContainer(sid('stop-b'), 'serve')
  const never = serviceContainer(sid('stop-never'), 'testserver', { env: { READY_AFTER_MS: 'never' } })
  const h = harness([a, b, never])
  await h.runtime.start()
  await Promise.all([reach(h, a.id, 'healthy'), reach(h, b.id, 'healthy'), reach(h, never.id, 'starting')])
  t.is((await ourContainers()).length, 3)
  const pending = call(h, a, 'sleep:5000')
  pending.catch(() => {})
  await sleep(100)

  await h.runtime.stop()
  await fails(t, pending, 'RunAbortedError', 'ABORTED')
  t.deepEqual(await ourContainers(), [], 'no container with the service label is left')
  for (const c of [a, b, never]) t.like(statusOf(h, c.id), { state: 'stopped', hostPort: 0 })
  t.is(h.events.at(-1)?.state, 'stopped')
  await h.runtime.stop()
  t.is(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, timersBefore, 'no timer left running')
  await fails(t, call(h, a, 'x'), 'RuntimeNotStartedError', 'NOT_STARTED')
})
