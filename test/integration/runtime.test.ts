import test from 'ava'
import type { ExecutionContext } from 'ava'
import Dockerode from 'dockerode'
import { dockerRuntime, resolveEngine } from '../../src/runtime/index.ts'
import type { ContainerEvent, HardwareInfo, ImageResolver, Runtime, RunResult } from '../../src/runtime/index.ts'
import type { ContainerConfig } from '../../src/config/types.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { engineOf } from '../../src/runtime/docker.ts'
import { ECHO_IMAGE, NLP_IMAGE, lockedDigest, nlpContainer, shContainer, testContainer } from '../helpers/images.ts'

// Every sandbox property is proven against the real engine, one test at a time (serial: timing and
// leak checks must not see each other's containers). After each test the runtime must still serve a
// job and no container of this file may be left. Network checks never leave the container's own
// network namespace and name no address at all.

// DOCKER_HOST picks the engine, so the same file runs against Podman's Docker-compatible service too
// (docs/PODMAN.md); only what the engines legitimately report differently depends on `podman`.
const docker = new Dockerode(resolveEngine().options)
let podman = false
/** The event of a container's removal: Docker says destroy, Podman remove. */
const removed = (): string => podman ? 'remove' : 'destroy'
const PREFIX = `rt-it-${process.pid}-${Date.now().toString(36)}`
let seq = 0
let runtime: Runtime

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (r: RunResult): string => Buffer.from(r.output).toString()
const jobId = (name: string): string => `${PREFIX}-${++seq}-${name}`.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 100)

async function run (name: string, container: ContainerConfig, input = '', signal?: AbortSignal): Promise<RunResult> {
  return await runtime.run({ jobId: jobId(name), container, input: enc(input), ...(signal === undefined ? {} : { signal }) })
}

/** Asserts the run fails with the error `name` and `code`; returns the error for further checks. */
async function fails (t: ExecutionContext, promise: Promise<unknown>, name: string, code: string): Promise<Error & Record<string, unknown>> {
  const err = await t.throwsAsync(promise) as Error & Record<string, unknown>
  t.is(err?.name, name, `error name (message: ${err?.message})`)
  t.is(err?.code, code)
  return err
}

async function leftovers (): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: ['inframind.job'] } })
  return list.filter((c) => c.Labels['inframind.job']?.startsWith(PREFIX) === true).map((c) => c.Names.join(','))
}

/** Container events the engine recorded for one job (create, start, die, destroy, ...). */
async function eventsOf (id: string, sinceMs: number): Promise<string[]> {
  const stream = await docker.getEvents({
    since: Math.floor(sinceMs / 1000) - 1,
    until: Number((Date.now() / 1000 + 0.05).toFixed(3)),
    filters: { type: ['container'], label: [`inframind.job=${id}`] }
  }) as NodeJS.ReadableStream
  let body = ''
  for await (const chunk of stream) body += String(chunk)
  return body.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { Action: string }).Action)
}

/** Asserts `start(jobId)` fails with `name`/`code` and that the engine never saw a container for that job. */
async function nothingRan (t: ExecutionContext, start: (id: string) => Promise<unknown>, name: string, code: string): Promise<void> {
  const id = jobId(name)
  const since = Date.now()
  await fails(t, start(id), name, code)
  t.deepEqual(await eventsOf(id, since), [], 'the engine never saw a container for the job')
}

test.before(async () => {
  podman = engineOf(await docker.version()) === 'podman'
  runtime = dockerRuntime({})({ logger: silentLogger() })
  await runtime.start()
})

test.after.always(async () => {
  await runtime?.stop()
})

test.afterEach.always(async (t) => {
  await runtime.settled()
  t.deepEqual(await leftovers(), [], 'no job container left behind')
  t.is(runtime.activeContainers(), 0)
  const after = await run('health', testContainer(), 'still serving')
  t.is(text(after), 'still serving', 'the runtime still serves a normal job')
})

test.serial('echo round trip: stdin to stdout, JOB_ID and env inside, container created then removed', async (t) => {
  const id = jobId('echo')
  const since = Date.now()
  const result = await runtime.run({ jobId: id, container: shContainer('cat; echo; echo "$JOB_ID $GREETING"', { env: { GREETING: 'hi' } }), input: enc('hello') })
  t.is(text(result), `hello\n${id} hi\n`)
  t.is(result.exitCode, 0)
  t.is(result.imageDigest, lockedDigest(ECHO_IMAGE))
  t.true(result.startedAtMs <= result.finishedAtMs)
  await runtime.settled()
  const events = await eventsOf(id, since)
  t.true(events.includes('create') && events.includes(removed()), `engine events: ${events.join(',')}`)
})

test.serial('binary input passes through the default command byte for byte', async (t) => {
  const input = Buffer.alloc(300_000)
  for (let i = 0; i < input.length; i++) input[i] = (i * 7919) % 256
  const result = await runtime.run({ jobId: jobId('binary'), container: testContainer({ outputSchema: 'bytes' }), input })
  t.true(Buffer.from(result.output).equals(input))
})

test.serial('no network: only the loopback interface, no route, and a name lookup/connection fails', async (t) => {
  const script = 'ls /sys/class/net; echo "routes:$(ip route)"; if nc -w 2 inframind.invalid 80 </dev/null; then echo REACHED; else echo BLOCKED; fi'
  t.is(text(await run('net', shContainer(script))), 'lo\nroutes:\nBLOCKED\n')
  // Control: the same listing with networking enabled shows more than lo, so the check above can fail.
  t.not(text(await run('net-bridge', shContainer('ls /sys/class/net', { network: 'bridge' }))), 'lo\n')
})

test.serial('read-only root: a write to / fails while /tmp works (and /tmp is noexec)', async (t) => {
  // The mount option is checked too: file permissions alone already stop uid 65534 writing to /.
  const script = 'awk \'$2 == "/" { split($4, o, ","); print "root mount " o[1] }\' /proc/mounts; ' +
    'if echo x > /escape; then echo ROOT-WRITABLE; else echo root-ro; fi; echo ok > /tmp/f && cat /tmp/f; ' +
    'cp /bin/busybox /tmp/bb && if /tmp/bb true; then echo TMP-EXEC; else echo tmp-noexec; fi'
  t.is(text(await run('rofs', shContainer(script))), 'root mount ro\nroot-ro\nok\ntmp-noexec\n')
})

test.serial('non-root: the job runs as the configured uid/gid, no capabilities, no new privileges', async (t) => {
  t.is(text(await run('whoami', shContainer('id -u; id -g'))), '65534\n65534\n')
  t.is(text(await run('whoami-1000', shContainer('id -u', { user: '1000:1000' }))), '1000\n')
  const status = text(await run('caps', shContainer("grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status")))
  t.is(status.replace(/[ \t]+/g, ' '), 'CapEff: 0000000000000000\nCapBnd: 0000000000000000\nNoNewPrivs: 1\n')
})

for (const user of ['0', 'root', '0:0', '1000:0', '']) {
  test.serial(`user ${JSON.stringify(user)} is refused before anything runs`, async (t) => {
    await nothingRan(t, async (id) => await runtime.run({ jobId: id, container: testContainer({ user }), input: enc('') }), 'UnsafeUserError', 'UNSAFE_USER')
  })
}

test.serial('cgroup limits: cpus, memory without swap and pids are applied as configured', async (t) => {
  const script = 'if [ -d /sys/fs/cgroup/memory ]; then ' +
    'echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"; ' +
    'echo "$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) $(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes)"; ' +
    'cat /sys/fs/cgroup/pids/pids.max; ' +
    'else cat /sys/fs/cgroup/cpu.max; m=$(cat /sys/fs/cgroup/memory.max); echo "$m $((m + $(cat /sys/fs/cgroup/memory.swap.max)))"; ' +
    'cat /sys/fs/cgroup/pids.max; fi'
  const out = text(await run('cgroups', shContainer(script, { resources: { cpus: 0.5, memoryBytes: 64 * 1024 * 1024, pids: 24 } })))
  t.is(out, '50000 100000\n67108864 67108864\n24\n')
})

test.serial('pids limit: forks beyond it fail, and a fork bomb ends instead of hanging', async (t) => {
  const forks = 'n=0; while [ $n -lt 100 ]; do sleep 60 & n=$((n+1)); done; echo started $n'
  const err = await fails(t, run('forks', shContainer(forks, { resources: { pids: 16 } })), 'ContainerExitError', 'CONTAINER_EXIT')
  t.regex(String(err.stderrTail), /can't fork/)

  const began = Date.now()
  const bomb = run('forkbomb', shContainer('b() { b | b & }; b; sleep 5', { timeoutMs: 10_000, resources: { pids: 32, cpus: 0.5 } }))
  const outcome = await bomb.then(() => 'exited 0', (e: Error) => e.name)
  t.true(['exited 0', 'ContainerExitError', 'ContainerTimeoutError', 'ContainerOomError'].includes(outcome), outcome)
  t.true(Date.now() - began < 30_000, 'the fork bomb job ended')
})

test.serial('memory limit: a memory hog is OOM-killed', async (t) => {
  const err = await fails(t, run('memhog', testContainer({ command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=300M', 'count=1'] })),
    'ContainerOomError', 'CONTAINER_OOM')
  t.is(err.exitCode, 137)
  t.is(err.imageDigest, lockedDigest(ECHO_IMAGE))
})

test.serial('wall-clock timeout: an endless loop is killed after timeoutMs', async (t) => {
  const began = Date.now()
  await fails(t, run('loop', shContainer('while :; do :; done', { timeoutMs: 1500 })), 'ContainerTimeoutError', 'CONTAINER_TIMEOUT')
  const took = Date.now() - began
  t.true(took >= 1500 && took < 10_000, `took ${took} ms`)
})

test.serial('output cap: a flood is stopped at maxOutputBytes, not at the timeout', async (t) => {
  const began = Date.now()
  await fails(t, run('yes', testContainer({ command: ['yes'], maxOutputBytes: 65536, timeoutMs: 60_000 })), 'OutputTooLargeError', 'OUTPUT_TOO_LARGE')
  await fails(t, run('zero', testContainer({ command: ['cat', '/dev/zero'], outputSchema: 'bytes', maxOutputBytes: 1 << 20, timeoutMs: 60_000 })),
    'OutputTooLargeError', 'OUTPUT_TOO_LARGE')
  t.true(Date.now() - began < 20_000, 'killed as soon as the cap was crossed')
  // Exactly at the cap is fine.
  const exact = await run('exact', testContainer({ command: ['head', '-c', '65536', '/dev/zero'], outputSchema: 'bytes', maxOutputBytes: 65536 }))
  t.is(exact.output.byteLength, 65536)
})

test.serial('non-zero exit: ContainerExitError with the exit code and the stderr tail', async (t) => {
  const err = await fails(t, run('crash', shContainer('echo partial; echo "model file missing" >&2; exit 3')), 'ContainerExitError', 'CONTAINER_EXIT')
  t.is(err.exitCode, 3)
  t.is(err.stderrTail, 'model file missing\n')
  t.is(err.imageDigest, lockedDigest(ECHO_IMAGE))
  const noisy = 'i=0; while [ $i -lt 3000 ]; do echo "line $i" >&2; i=$((i+1)); done; exit 1'
  const tail = String((await fails(t, run('noisy', shContainer(noisy)), 'ContainerExitError', 'CONTAINER_EXIT')).stderrTail)
  t.true(tail.length <= 4096 && tail.length > 4000, `tail of ${tail.length} chars`)
  t.true(tail.endsWith('line 2999\n'))
})

test.serial('a command missing from the image fails to start', async (t) => {
  await fails(t, run('nocmd', testContainer({ command: ['no-such-binary'] })), 'ContainerStartError', 'CONTAINER_START_FAILED')
})

test.serial('output schema: an embedding passes, a bad one and non-JSON fail with OutputSchemaError', async (t) => {
  const embedding = testContainer({ outputSchema: 'embedding<float>' })
  t.is(text(await run('emb-ok', embedding, '[0.5, -1, 2e3]')), '[0.5, -1, 2e3]')
  const err = await fails(t, run('emb-bad', embedding, '[1, "x"]'), 'OutputSchemaError', 'OUTPUT_SCHEMA')
  t.is(typeof err.reason, 'string')
  await fails(t, run('json-bad', testContainer({ outputSchema: 'json' }), 'not json'), 'OutputSchemaError', 'OUTPUT_SCHEMA')
})

test.serial('digest mismatch or missing image: refused, and nothing ran', async (t) => {
  const wrong = testContainer({ digest: lockedDigest(NLP_IMAGE) })
  const id = jobId('mismatch')
  const since = Date.now()
  const err = await fails(t, runtime.run({ jobId: id, container: wrong, input: enc('x') }), 'ImageDigestMismatchError', 'IMAGE_DIGEST_MISMATCH')
  t.is(err.expected, lockedDigest(NLP_IMAGE))
  t.is(err.actual, lockedDigest(ECHO_IMAGE))
  t.deepEqual(await eventsOf(id, since), [], 'no container was created')
  await nothingRan(t, async (i) => await runtime.run({ jobId: i, container: testContainer({ image: 'inframind/absent:1', digest: lockedDigest(ECHO_IMAGE) }), input: enc('') }),
    'ImageNotFoundError', 'IMAGE_NOT_FOUND')
})

test.serial('imageStatus reports the engine id of present images and absence of others', async (t) => {
  t.deepEqual(await runtime.imageStatus(ECHO_IMAGE), { image: ECHO_IMAGE, present: true, digest: lockedDigest(ECHO_IMAGE) })
  t.deepEqual(await runtime.imageStatus('inframind/absent:1'), { image: 'inframind/absent:1', present: false, digest: '' })
})

test.serial('one-shot containers report ready or missing from the image check; listeners that throw are contained', async (t) => {
  const echo = testContainer({ id: 'status-echo' })
  const absent = testContainer({ id: 'status-absent', image: 'inframind/absent:1', digest: lockedDigest(ECHO_IMAGE) })
  const other = dockerRuntime({ containers: [echo, absent] })({ logger: silentLogger() })
  const events: ContainerEvent[] = []
  other.onContainerEvent(() => { throw new Error('a broken listener') })
  const unsubscribe = other.onContainerEvent((e) => { events.push(e) })
  t.deepEqual(other.containerStatuses().map((s) => [s.id, s.state]), [['status-echo', 'missing'], ['status-absent', 'missing']], 'nothing checked before start')
  await other.start()
  try {
    for (let i = 0; i < 200 && events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    t.deepEqual(events.map((e) => [e.containerId, e.state]), [['status-echo', 'ready']])
    const [ready, missing] = other.containerStatuses()
    t.deepEqual(ready, { id: 'status-echo', mode: 'oneshot', state: 'ready', restarts: 0, lastError: '', hostPort: 0 })
    t.like(missing, { id: 'status-absent', mode: 'oneshot', state: 'missing', restarts: 0, hostPort: 0 })
    t.regex(missing?.lastError ?? '', /not in the local engine/)
    unsubscribe()
    await t.throwsAsync(other.run({ jobId: jobId('absent'), container: absent, input: enc('') }), { name: 'ImageNotFoundError' })
    t.is(events.length, 1, 'no event after unsubscribing')
  } finally {
    await other.stop()
  }
})

test.serial('a plugged-in image resolver decides which image a one-shot job runs', async (t) => {
  const asked: string[] = []
  const resolver: ImageResolver = {
    ensure: async (c) => {
      asked.push(c.id)
      if (c.id === 'refused') throw Object.assign(new Error('not in the cache'), { code: 'IMAGE_FETCH_FAILED' })
      return lockedDigest(c.image)
    }
  }
  const other = dockerRuntime({ images: resolver })({ logger: silentLogger() })
  await other.start()
  try {
    const result = await other.run({ jobId: jobId('resolver'), container: testContainer(), input: enc('via resolver') })
    t.is(text(result), 'via resolver')
    t.is(result.imageDigest, lockedDigest(ECHO_IMAGE))
    await nothingRan(t, async (id) => await other.run({ jobId: id, container: testContainer({ id: 'refused' }), input: enc('') }), 'Error', 'IMAGE_FETCH_FAILED')
    t.deepEqual(asked, ['echo', 'refused'])
  } finally {
    await other.stop()
  }
})

test.serial('abort: a running job is killed promptly; an already aborted one never starts', async (t) => {
  const controller = new AbortController()
  const began = Date.now()
  setTimeout(() => { controller.abort() }, 500)
  await fails(t, run('abort', shContainer('sleep 30'), '', controller.signal), 'RunAbortedError', 'ABORTED')
  t.true(Date.now() - began < 10_000)
  await nothingRan(t, async (id) => await runtime.run({ jobId: id, container: testContainer(), input: enc(''), signal: AbortSignal.abort() }),
    'RunAbortedError', 'ABORTED')
})

test.serial('input above maxInputBytes is refused before anything runs', async (t) => {
  await nothingRan(t, async (id) => await runtime.run({ jobId: id, container: testContainer({ maxInputBytes: 4 }), input: enc('12345') }),
    'InputTooLargeError', 'INPUT_TOO_LARGE')
})

test.serial('a GPU job is refused with GpuUnavailableError on a node without a GPU', async (t) => {
  const noGpu = async (): Promise<HardwareInfo> => ({ arch: 'x64', platform: 'linux', cpuModel: 'test', cpuCores: 2, memoryBytes: 1 << 30, gpus: [] })
  const gpuless = dockerRuntime({ detectHardware: noGpu })({ logger: silentLogger() })
  await gpuless.start()
  try {
    await nothingRan(t, async (id) => await gpuless.run({ jobId: id, container: testContainer({ resources: { gpu: true } }), input: enc('') }),
      'GpuUnavailableError', 'GPU_UNAVAILABLE')
  } finally {
    await gpuless.stop()
  }
})

test.serial('stop() kills and removes a running job, is idempotent, and later runs are refused', async (t) => {
  const other = dockerRuntime({})({ logger: silentLogger() })
  await other.start()
  await other.start()
  const pending = other.run({ jobId: jobId('stop'), container: shContainer('sleep 30'), input: enc('') })
  pending.catch(() => {})
  for (let i = 0; i < 200 && other.activeContainers() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  t.is(other.activeContainers(), 1)
  await other.stop()
  await fails(t, pending, 'RunAbortedError', 'ABORTED')
  t.is(other.activeContainers(), 0)
  await other.stop()
  await fails(t, other.run({ jobId: jobId('after-stop'), container: testContainer(), input: enc('') }), 'RuntimeNotStartedError', 'NOT_STARTED')
})

test.serial('two jobs run side by side', async (t) => {
  const [a, b] = await Promise.all([run('par-a', testContainer(), 'a'), run('par-b', testContainer(), 'b')])
  t.is(text(a), 'a')
  t.is(text(b), 'b')
})

test.serial('nlp image: analyze finds positive sentiment and an entity', async (t) => {
  const result = await run('nlp-analyze', nlpContainer('analyze'), JSON.stringify({ text: 'I absolutely love the new release on Monday, it is wonderful!' }))
  const out = JSON.parse(text(result)) as { sentiment: number, label: string, entities: Array<{ value: string, type: string }>, tokens: number }
  t.is(out.label, 'positive')
  t.true(out.sentiment > 0)
  t.deepEqual(out.entities, [{ value: 'Monday', type: 'DATE' }])
  t.true(out.tokens > 5)
  const negative = JSON.parse(text(await run('nlp-neg', nlpContainer('sentiment'), 'This is terrible and awful. I hate it.'))) as { label: string }
  t.is(negative.label, 'negative')
})

test.serial('nlp image: embed gives 64 finite numbers of unit length, deterministically', async (t) => {
  const input = 'Edge nodes run sandboxed inference jobs'
  const first = await run('nlp-embed', nlpContainer('embed'), input)
  const vector = JSON.parse(text(first)) as number[]
  t.is(vector.length, 64)
  t.true(vector.every((v) => typeof v === 'number' && Number.isFinite(v)))
  t.true(Math.abs(Math.hypot(...vector) - 1) < 1e-9)
  const second = await run('nlp-embed-again', nlpContainer('embed'), input)
  t.true(Buffer.from(first.output).equals(Buffer.from(second.output)), 'same input, same bytes')
})

test.serial('nlp image: bad input exits with code 2 and says why on stderr', async (t) => {
  const err = await fails(t, run('nlp-bad', nlpContainer('analyze'), '{"no_text": 1}'), 'ContainerExitError', 'CONTAINER_EXIT')
  t.is(err.exitCode, 2)
  t.regex(String(err.stderrTail), /"text"/)
})
