import test from 'ava'
import { dockerRuntime, resolveEngine } from '../../src/runtime/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { serviceContainer, testContainer } from '../helpers/images.ts'

// No engine needed: these talk to a unix socket path that does not exist.
const MISSING_SOCKET = '/nonexistent/inframind-test/docker.sock'

test('start() fails with EngineUnavailableError when no engine answers', async (t) => {
  const runtime = dockerRuntime({ socket: MISSING_SOCKET, engineTimeoutMs: 1000 })({ logger: silentLogger() })
  const err = await t.throwsAsync(runtime.start())
  t.is(err?.name, 'EngineUnavailableError')
  t.is((err as Error & { code: string }).code, 'ENGINE_UNAVAILABLE')
  t.truthy(err?.cause, 'carries the underlying connection error')
  await t.notThrowsAsync(runtime.stop(), 'stop() after a failed start is a no-op')
})

test('run() and imageStatus() before start() throw RuntimeNotStartedError', async (t) => {
  const runtime = dockerRuntime({ socket: MISSING_SOCKET })({ logger: silentLogger() })
  const runErr = await t.throwsAsync(runtime.run({ jobId: 'j', container: testContainer(), input: new Uint8Array() }))
  t.is((runErr as Error & { code: string }).code, 'NOT_STARTED')
  const statusErr = await t.throwsAsync(runtime.imageStatus('inframind/echo:1'))
  t.is(statusErr?.name, 'RuntimeNotStartedError')
  t.is(runtime.activeContainers(), 0)
})

test('resolveEngine: explicit socket, then DOCKER_HOST, then the default socket', (t) => {
  const saved = process.env['DOCKER_HOST']
  try {
    t.deepEqual(resolveEngine('/x/docker.sock').options, { socketPath: '/x/docker.sock' })
    t.deepEqual(resolveEngine('unix:///x/docker.sock').options, { socketPath: '/x/docker.sock' })
    process.env['DOCKER_HOST'] = 'unix:///y/docker.sock'
    t.is(resolveEngine('').where, 'unix:///y/docker.sock')
    t.deepEqual(resolveEngine('/x/docker.sock').options, { socketPath: '/x/docker.sock' }, 'explicit socket wins')
    delete process.env['DOCKER_HOST']
    t.deepEqual(resolveEngine().options, { socketPath: '/var/run/docker.sock' })
  } finally {
    if (saved === undefined) delete process.env['DOCKER_HOST']
    else process.env['DOCKER_HOST'] = saved
  }
})

test('before start(): services read stopped, one-shot containers missing; a service job is NOT_STARTED', async (t) => {
  const svc = serviceContainer('svc', 'serve')
  const runtime = dockerRuntime({ socket: MISSING_SOCKET, containers: [testContainer(), svc] })({ logger: silentLogger() })
  t.deepEqual(runtime.containerStatuses(), [
    { id: 'echo', mode: 'oneshot', state: 'missing', restarts: 0, lastError: 'not checked yet', hostPort: 0 },
    { id: 'svc', mode: 'service', state: 'stopped', restarts: 0, lastError: '', hostPort: 0 }
  ])
  const err = await t.throwsAsync(runtime.run({ jobId: 'j', container: svc, input: new Uint8Array() }))
  t.is((err as Error & { code: string }).code, 'NOT_STARTED')
  await t.throwsAsync(runtime.start(), { name: 'EngineUnavailableError' })
  t.is(runtime.containerStatuses()[1]?.state, 'stopped', 'no service is started when the engine is not there')
  await runtime.stop()
})
