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

/** Waits until the container's states satisfy `done` (`what` names the condition in the error). */
async function until (h: Harness, id: string, what: string, done: (states: ContainerState[]) => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done(statesOf(h, id))) {
    if (Date.now() > deadline) {
      throw new Error(`${id}: ${what} not seen within ${timeoutMs} ms; events: ${statesOf(h, id).join(' > ')}; status: ${JSON.stringify(statusOf(h, id))}`)
    }
    await sleep(25)
  }
}

const count = (states: ContainerState[], state: ContainerState): number => states.filter((s) => s === state).length

/**
 * Every move the service monitor (src/runtime/services.ts, service-instance.ts) can make. Which of them
 * a service takes may depend on timing: on a busy machine a health check can notice a crash before the
 * exit watcher does (`unhealthy` first), and a slow warm-up can run past its startup timeout (a restart).
 * So tests check that what they saw is a path of this machine, and assert only the moves that must happen.
 */
const NEXT: Partial<Record<ContainerState, readonly ContainerState[]>> = {
  stopped: ['pulling'],
  pulling: ['starting', 'failed', 'stopped'],
  starting: ['healthy', 'restarting', 'failed', 'stopped'],
  healthy: ['unhealthy', 'restarting', 'failed', 'stopped'],
  unhealthy: ['restarting', 'failed'],
  restarting: ['starting', 'stopped'],
  failed: ['stopped']
}

function assertValidPath (t: ExecutionContext, states: ContainerState[]): void {
  t.is(states[0], 'pulling', `a service's life begins with its image (path: ${states.join(' > ')})`)
  const bad = states.findIndex((to, i) => i > 0 && NEXT[states[i - 1]!]?.includes(to) !== true)
  t.is(bad, -1, `${states[bad - 1]} > ${states[bad]} is not a move of the service state machine (path: ${states.join(' > ')})`)
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

test.serial('the nlp image as a warm service: pulled, started, healthy, then answers jobs', async (t) => {
  const nlp = serviceContainer(sid('nlp'), 'serve', { env: { TASK: 'analyze' } })
  const h = harness([nlp])
  await h.runtime.start()
  t.false(statesOf(h, nlp.id).includes('healthy'), 'start() does not wait for the service to warm up')
  await reach(h, nlp.id, 'healthy')
  const states = statesOf(h, nlp.id)
  assertValidPath(t, states)
  t.deepEqual(states.slice(0, 2), ['pulling', 'starting'])
  const status = statusOf(h, nlp.id)
  t.like(status, { mode: 'service', state: 'healthy' })
  // A warm-up slower than its startup timeout (a busy machine) is a restart: counted, and it says why.
  t.is(status.restarts, count(states, 'restarting'))
  t.is(status.lastError === '', status.restarts === 0, `lastError: ${status.lastError}`)
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
  // Health checks far apart: the crash is then noticed by the exit watcher, whose reason (the exit code
  // and last output) is under test here; every 200 ms, a busy machine lets a refused health check win.
  const svc = serviceContainer(sid('crash'), 'testserver', { service: { healthIntervalMs: 60_000 } })
  const h = harness([svc])
  await h.runtime.start()
  await reach(h, svc.id, 'healthy')
  t.is(text(await call(h, svc, 'before')), 'before')
  const restartsBefore = count(statesOf(h, svc.id), 'restarting')

  await fails(t, call(h, svc, 'crash'), 'ServiceCallError', 'SERVICE_CALL_FAILED')
  await until(h, svc.id, 'a restart after the crash, then healthy', (s) => count(s, 'restarting') > restartsBefore && s.at(-1) === 'healthy')
  const states = statesOf(h, svc.id)
  assertValidPath(t, states)
  const status = statusOf(h, svc.id)
  t.is(status.state, 'healthy')
  t.is(status.restarts, count(states, 'restarting'))
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
    await until(h, svc.id, `healthy (round ${round})`, (s) => s.at(-1) === 'healthy')
    const restartsBefore = count(statesOf(h, svc.id), 'restarting')
    t.is(text(await call(h, svc, `r${round}a`)), `r${round}a`)
    t.is(text(await call(h, svc, `r${round}b`)), `r${round}b`)
    served += 2
    // The second answer was its last: the server exits, seen by the exit watcher or by health checks.
    await until(h, svc.id, `a restart after round ${round}`, (s) => count(s, 'restarting') > restartsBefore)
  }
  await until(h, svc.id, 'healthy after the last crash', (s) => s.at(-1) === 'healthy')
  t.is(served, 4)
  const states = statesOf(h, svc.id)
  assertValidPath(t, states)
  t.true(count(states, 'restarting') >= 2, states.join(' > '))
  t.is(statusOf(h, svc.id).restarts, count(states, 'restarting'))
  t.is(text(await call(h, svc, 'still here')), 'still here')
})

test.serial('a container that never becomes ready ends failed while another service serves', async (t) => {
  const never = serviceContainer(sid('never'), 'testserver', { env: { READY_AFTER_MS: 'never' }, service: { startupTimeoutMs: 3000, maxRestarts: 1 } })
  const good = serviceContainer(sid('good'), 'testserver')
  const h = harness([never, good])
  await h.runtime.start()
  t.false(statesOf(h, good.id).includes('healthy') || statesOf(h, never.id).includes('healthy'), 'start() returns without waiting for either service')
  await reach(h, good.id, 'healthy')
  t.is(text(await call(h, good, 'served while the other warms up')), 'served while the other warms up')
  // Which of these it is depends on how long `good` took to warm up; it is never serving.
  const early = await fails(t, call(h, never, 'x'), 'ServiceUnavailableError', 'SERVICE_UNAVAILABLE')
  t.true(['pulling', 'starting', 'restarting', 'failed'].includes(early.state as string), `state ${String(early.state)}`)

  await reach(h, never.id, 'failed', 20_000)
  // The only path for a service that never gets ready, with max_restarts 1, whatever the timing.
  t.deepEqual(statesOf(h, never.id), ['pulling', 'starting', 'restarting', 'starting', 'failed'])
  const status = statusOf(h, never.id)
  t.like(status, { state: 'failed', restarts: 1, hostPort: 0 })
  t.log(status.lastError)
  t.regex(status.lastError, /gave up after 1 restart/)
  t.regex(status.lastError, /not ready within startup_timeout_ms \(3000 ms\)/)
  // The last full health check's answer: the server's 503, or no answer in time on a loaded machine.
  t.regex(status.lastError, /GET \/health (answered HTTP 503|did not answer within 1000 ms)/)
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
  // The only path for a server that always exits at startup, with max_restarts 2, whatever the timing.
  t.deepEqual(statesOf(h, svc.id), ['pulling', 'starting', 'restarting', 'starting', 'restarting', 'starting', 'failed'])
  const status = statusOf(h, svc.id)
  t.is(status.restarts, 2)
  t.log(status.lastError)
  t.regex(status.lastError, /exited with code 1/)
  t.regex(status.lastError, /PORT must be a TCP port/)
  // The delays doubled (as announced in each `restarting`), and each was waited out before the next
  // `starting`. How much longer a restart took (container removal, a busy machine) is not asserted.
  const events = h.events.filter((e) => e.containerId === svc.id)
  const restarts = events.flatMap((e, i) => e.state === 'restarting' ? [{ planned: Number(/restart \d+ in (\d+) ms$/.exec(e.detail)?.[1]), gap: (events[i + 1]?.atMs ?? 0) - e.atMs }] : [])
  t.deepEqual(restarts.map((r) => r.planned), [300, 600])
  for (const r of restarts) t.true(r.gap >= r.planned - 20, `waited ${r.gap} ms of a planned ${r.planned} ms`)
})

test.serial('a service that turns unhealthy is restarted', async (t) => {
  const svc = serviceContainer(sid('sick'), 'testserver')
  const h = harness([svc])
  await h.runtime.start()
  await reach(h, svc.id, 'healthy')
  const sickFrom = statesOf(h, svc.id).length
  t.is(text(await call(h, svc, 'unhealthy')), 'ok')
  await until(h, svc.id, 'a restart, then healthy', (s) => s.slice(sickFrom).includes('restarting') && s.at(-1) === 'healthy')
  const states = statesOf(h, svc.id)
  assertValidPath(t, states)
  // A server that stays up but fails its checks can only leave `healthy` as `unhealthy`.
  t.deepEqual(states.slice(sickFrom, sickFrom + 2), ['unhealthy', 'restarting'])
  const sick = h.events.filter((e) => e.containerId === svc.id && e.state === 'unhealthy')[0]
  t.regex(sick?.detail ?? '', /^2 health check\(s\) failed in a row \(last: GET \/health (answered HTTP 503|did not answer within 1000 ms)\)/)
  t.is(statusOf(h, svc.id).restarts, count(states, 'restarting'))
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

  // Bounds that must hold however busy the machine: not before the limit, and not by waiting for the answer.
  let began = Date.now()
  await fails(t, call(h, svc, 'sleep:5000'), 'ContainerTimeoutError', 'CONTAINER_TIMEOUT')
  let took = Date.now() - began
  t.true(took >= 780 && took < 5000, `the call ends at its timeout (${took} ms)`)
  began = Date.now()
  await fails(t, call(h, svc, 'sleep:5000', AbortSignal.timeout(300)), 'RunAbortedError', 'ABORTED')
  took = Date.now() - began
  t.true(took >= 280 && took < 5000, `the call ends at the abort (${took} ms)`)
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
  const err = await fails(t, call(h, svc, 'x'), 'ServiceUnavailableError', 'SERVICE_UNAVAILABLE')
  // Fast = without waiting for the service to get ready (it answers its health checks 2.5 s after start).
  t.false(statesOf(h, svc.id).includes('healthy'), 'the job failed before the service got ready')
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
