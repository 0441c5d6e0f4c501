import test from 'ava'
import type Dockerode from 'dockerode'
import { containerConfig } from '../../src/config/index.ts'
import type { ContainerConfig } from '../../src/config/types.ts'
import { assertSafeUser, buildCreateSpec, buildHostConfig, buildServiceCreateSpec, containerName } from '../../src/runtime/index.ts'
import { OciRuntimes } from '../../src/runtime/oci-runtimes.ts'

const DIGEST = 'sha256:' + 'ab'.repeat(32)
const SERVICE = {
  port: 8080, path: '/', healthPath: '/health', startupTimeoutMs: 1000, healthIntervalMs: 1000, healthTimeoutMs: 500,
  unhealthyThreshold: 3, maxRestarts: 1, restartBackoffMs: 100, restartBackoffMaxMs: 1000
}

function container (overrides: Partial<ContainerConfig> = {}, gpu = false): ContainerConfig {
  return containerConfig({
    id: 'echo',
    description: 'unit test container',
    image: 'inframind/echo:1',
    digest: DIGEST,
    command: [],
    env: {},
    resources: { cpus: 0.5, memoryBytes: 128 * 1024 * 1024, pids: 32, gpu },
    timeoutMs: 5000,
    maxOutputBytes: 1024,
    maxInputBytes: 1024,
    inputSchema: 'text',
    outputSchema: 'text',
    network: 'none',
    user: '65534:65534',
    ...overrides
  })
}

test('buildHostConfig: the exact sandbox of a CPU job', (t) => {
  t.deepEqual(buildHostConfig(container()), {
    NetworkMode: 'none',
    ReadonlyRootfs: true,
    Tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=64m', '/dev/shm': 'rw,noexec,nosuid,nodev,size=64m' },
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    Privileged: false,
    IpcMode: 'private',
    PidsLimit: 32,
    Memory: 128 * 1024 * 1024,
    MemorySwap: 128 * 1024 * 1024,
    NanoCpus: 500_000_000,
    AutoRemove: false,
    LogConfig: { Type: 'none', Config: {} }
  })
})

test('buildHostConfig: a GPU job asks for every NVIDIA GPU and keeps the same sandbox', (t) => {
  const host = buildHostConfig(container({}, true))
  t.deepEqual(host.DeviceRequests, [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }])
  const { DeviceRequests: _ignored, ...rest } = host
  t.deepEqual(rest, buildHostConfig(container()))
})

test('buildHostConfig: runtime runsc asks the engine for it and keeps the same sandbox; runc leaves the engine its default', (t) => {
  const host = buildHostConfig(container({ runtime: 'runsc' }))
  t.is(host.Runtime, 'runsc')
  const { Runtime: _ignored, ...rest } = host
  t.deepEqual(rest, buildHostConfig(container()))
  t.false('Runtime' in buildHostConfig(container({ runtime: 'runc' })))
})

test('buildCreateSpec and buildServiceCreateSpec: the job and the service containers of a runsc container both run under runsc', (t) => {
  const runsc = container({ runtime: 'runsc' })
  t.is(buildCreateSpec({ jobId: 'j', container: runsc, imageId: DIGEST, runtimeId: 'rt' }).HostConfig.Runtime, 'runsc')
  const svc = container({ runtime: 'runsc', mode: 'service', network: 'bridge', service: SERVICE })
  const spec = buildServiceCreateSpec({ container: svc, imageId: DIGEST, runtimeId: 'rt' })
  t.is(spec.HostConfig.Runtime, 'runsc')
  t.deepEqual(spec.HostConfig.Tmpfs, buildHostConfig(runsc).Tmpfs, '/tmp and /dev/shm as in a job container')
})

/** An engine whose GET /info answers with `answer`, counting the calls. */
function engine (answer: () => Promise<{ Runtimes?: Record<string, unknown> }>): { docker: Dockerode, calls: () => number } {
  let calls = 0
  const docker = { info: async () => { calls++; return await answer() } } as unknown as Dockerode
  return { docker, calls: () => calls }
}

test('OciRuntimes: runc is never asked about; runsc is checked against the engine\'s runtimes', async (t) => {
  const withRunsc = engine(async () => ({ Runtimes: { runc: { path: 'runc' }, runsc: { path: '/usr/bin/runsc' } } }))
  const runtimes = new OciRuntimes({ docker: withRunsc.docker, engineTimeoutMs: 1000 })
  await runtimes.assert(container())
  t.is(withRunsc.calls(), 0)
  await runtimes.assert(container({ runtime: 'runsc' }))
  t.is(withRunsc.calls(), 1)

  const without = new OciRuntimes({ docker: engine(async () => ({ Runtimes: { runc: { path: 'runc' } } })).docker, engineTimeoutMs: 1000 })
  const err = await t.throwsAsync(without.assert(container({ runtime: 'runsc' })))
  t.is(err?.name, 'OciRuntimeUnavailableError')
  t.is((err as Error & { code: string }).code, 'OCI_RUNTIME_UNAVAILABLE')
})

test('OciRuntimes: one engine answer serves a burst; a failed answer is not kept', async (t) => {
  let fail = true
  const e = engine(async () => { if (fail) throw new Error('engine down'); return { Runtimes: { runsc: {} } } })
  const runtimes = new OciRuntimes({ docker: e.docker, engineTimeoutMs: 1000, refreshMs: 60_000 })
  const err = await t.throwsAsync(runtimes.assert(container({ runtime: 'runsc' })))
  t.is(err?.name, 'EngineRequestError')
  fail = false
  await Promise.all([1, 2, 3].map(async () => { await runtimes.assert(container({ runtime: 'runsc' })) }))
  t.is(e.calls(), 2, 'the failure, then one answer for three checks')
})

test('buildHostConfig: bridge networking only when the container config says so', (t) => {
  t.is(buildHostConfig(container({ network: 'bridge' })).NetworkMode, 'bridge')
  t.is(buildHostConfig(container({ network: 'none' })).NetworkMode, 'none')
})

test('buildHostConfig: fractional cpus become whole NanoCpus', (t) => {
  t.is(buildHostConfig(container({ resources: { cpus: 1.25, memoryBytes: 1 << 26, pids: 8, gpu: false } })).NanoCpus, 1_250_000_000)
})

test('buildCreateSpec: runs the verified image id, not the tag, with JOB_ID, labels and stdin attached', (t) => {
  const spec = buildCreateSpec({
    jobId: 'job-1',
    container: container({ command: ['sh', '-c', 'cat'], env: { A: 'b', JOB_ID: 'spoofed' } }),
    imageId: DIGEST,
    runtimeId: 'rt1',
    nodeId: 'node-1'
  })
  t.is(spec.Image, DIGEST)
  t.deepEqual(spec.Cmd, ['sh', '-c', 'cat'])
  t.deepEqual(spec.Env, ['JOB_ID=job-1', 'A=b'], 'JOB_ID is the job id and the config cannot override it')
  t.deepEqual(spec.Labels, {
    'inframind.job': 'job-1', 'inframind.container': 'echo', 'inframind.runtime': 'rt1', 'inframind.kind': 'oneshot', 'inframind.node': 'node-1'
  })
  t.is(spec.User, '65534:65534')
  t.true(spec.OpenStdin && spec.StdinOnce && spec.AttachStdin && !spec.Tty)
  t.deepEqual(spec.HostConfig, buildHostConfig(container()))
})

test('buildCreateSpec: without a node id the container carries no node label (so no node ever reaps it)', (t) => {
  const spec = buildCreateSpec({ jobId: 'j', container: container(), imageId: DIGEST, runtimeId: 'rt' })
  t.false('inframind.node' in spec.Labels)
  t.is(spec.Labels['inframind.kind'], 'oneshot')
})

test('buildCreateSpec: an empty command keeps the image default', (t) => {
  const spec = buildCreateSpec({ jobId: 'j', container: container(), imageId: DIGEST, runtimeId: 'rt' })
  t.false('Cmd' in spec)
})

test('containerName: engine-safe and unique per run', (t) => {
  const a = containerName('weird id/with:chars?')
  const b = containerName('weird id/with:chars?')
  t.regex(a, /^inframind-[a-zA-Z0-9_.-]+$/)
  t.not(a, b)
  t.true(containerName('x'.repeat(500)).length < 80)
})

for (const user of ['65534', '65534:65534', '1000:1000', '1:2']) {
  test(`assertSafeUser accepts ${JSON.stringify(user)}`, (t) => {
    t.notThrows(() => { assertSafeUser(container({ user })) })
  })
}

for (const user of ['0', 'root', '0:0', '00', '1000:0', 'root:root', 'nobody', '', ' 65534', '65534:', '-1']) {
  test(`assertSafeUser refuses ${JSON.stringify(user)}`, (t) => {
    const err = t.throws(() => { assertSafeUser(container({ user })) })
    t.is(err?.name, 'UnsafeUserError')
    t.is((err as Error & { code: string }).code, 'UNSAFE_USER')
  })
}
