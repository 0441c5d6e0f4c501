import test from 'ava'
import { Writable } from 'node:stream'
import Dockerode from 'dockerode'
import type { OciRuntime } from '../../src/config/types.ts'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { verifyReceipt } from '../../src/receipt/index.ts'
import { dockerRuntime, OciRuntimeUnavailableError, resolveEngine } from '../../src/runtime/index.ts'
import type { RunResult } from '../../src/runtime/index.ts'
import { createLogger, silentLogger } from '../../src/telemetry/logger.ts'
import { serviceContainer, shContainer } from '../helpers/images.ts'
import { containerYaml, startTestNode, text, waitJob, type TestNode } from '../helpers/node.ts'

// `runtime: runsc` (gVisor) against the real engine. Whether the engine has runsc registered is
// asked once, here; the tests that need gVisor are skipped, saying so, on an engine without it
// (docs/ARCHITECTURE.md, "The sandbox", says how to register it and what this machine needed).

const docker = new Dockerode(resolveEngine().options)
const engineRuntimes = Object.keys(((await docker.info()) as { Runtimes?: Record<string, unknown> }).Runtimes ?? {})
const hasRunsc = engineRuntimes.includes('runsc')
const withRunsc = hasRunsc ? test.serial : test.serial.skip
const needs = hasRunsc ? '' : ` (skipped: the engine has no runsc runtime, only ${engineRuntimes.join(', ')})`
/** gVisor's sandbox threads count against the pids limit, and its memory against the memory limit. */
const RUNSC_RESOURCES = { cpus: 1, memoryBytes: 64 * 1024 * 1024, pids: 128 }
const PREFIX = `runsc-it-${process.pid}-${Date.now().toString(36)}`
let seq = 0
const jobId = (name: string): string => `${PREFIX}-${++seq}-${name}`
const out = (r: RunResult): string => Buffer.from(r.output).toString()

async function leftovers (): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: ['inframind.job'] } })
  return list.filter((c) => c.Labels['inframind.job']?.startsWith(PREFIX) === true).length
}

test.serial('containers asking for a runtime the engine lacks: a warning at start, a clear job failure, a failed service, no container, never another runtime', async (t) => {
  // runsc itself where the engine lacks it; where it has it, a name no engine has stands in for it
  // (the config accepts only runc and runsc, so the type is bent here, nowhere else).
  const absent = (hasRunsc ? 'runsc-not-registered' : 'runsc') as OciRuntime
  const container = shContainer('echo RAN', { id: 'needs-absent-runtime', runtime: absent, resources: RUNSC_RESOURCES })
  const svc = serviceContainer('service-needs-absent-runtime', 'serve', { runtime: absent, resources: { pids: 128 } })
  const lines: string[] = []
  const logger = createLogger({ level: 'warn', destination: new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } }) })
  const runtime = dockerRuntime({ containers: [container, svc] })({ logger })
  await runtime.start()
  try {
    const warning = lines.map((l) => JSON.parse(l) as { container?: string, msg: string }).find((l) => l.container === container.id)
    t.regex(warning?.msg ?? '', /apt-get install runsc/, 'the start-up warning says how to install it')
    t.regex(warning?.msg ?? '', /--add-runtime runsc=\/usr\/bin\/runsc|runsc install/, 'and how to register it')

    const err = await t.throwsAsync(runtime.run({ jobId: jobId('absent'), container, input: new Uint8Array() }))
    t.is(err?.name, 'OciRuntimeUnavailableError')
    t.is((err as Error & { code: string }).code, 'OCI_RUNTIME_UNAVAILABLE')
    t.is(await leftovers(), 0)
    const status = runtime.containerStatuses().find((s) => s.id === container.id)
    t.is(status?.state, 'missing', 'the container is not ready to run')
    t.is(status?.lastError, err?.message)
    const service = (): { state: string, lastError: string } | undefined => runtime.containerStatuses().find((s) => s.id === svc.id)
    for (let i = 0; i < 100 && service()?.state !== 'failed'; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    t.like(service(), { state: 'failed' }, 'the service container is given up on, not started under runc')
    t.is(service()?.lastError, new OciRuntimeUnavailableError(svc.id, absent, [...engineRuntimes].sort()).message)
    t.is((await docker.listContainers({ all: true, filters: { label: [`inframind.service=${svc.id}`] } })).length, 0)
  } finally {
    await runtime.stop()
  }
})

test.serial('a runsc job runs where the engine lists runsc, and is refused where it does not', async (t) => {
  const runtime = dockerRuntime({})({ logger: silentLogger() })
  await runtime.start()
  try {
    const container = shContainer('echo RAN', { id: 'runsc-or-refused', runtime: 'runsc', resources: RUNSC_RESOURCES })
    const attempt = runtime.run({ jobId: jobId('runsc-or-refused'), container, input: new Uint8Array() })
    if (hasRunsc) t.is(out(await attempt), 'RAN\n')
    else await t.throwsAsync(attempt, { name: 'OciRuntimeUnavailableError' })
    await runtime.settled()
    t.is(await leftovers(), 0)
  } finally {
    await runtime.stop()
  }
})

let n: TestNode | undefined
test.after.always(async () => { await n?.destroy() })

withRunsc(`the echo job runs under gVisor through the whole node, with a valid receipt${needs}`, async (t) => {
  const runsc = { runtime: 'runsc', resources: { cpus: 0.5, memory: '64m', pids: 128 } }
  n = await startTestNode({
    containers: [
      containerYaml('echo-gvisor', runsc),
      // Only gVisor's kernel log starts like this; under runc a non-root dmesg is refused.
      containerYaml('kernel', { ...runsc, command: ['sh', '-c', 'dmesg | head -n 1'] })
    ]
  })
  const { jobId: id } = await n.client.submitJob({ containerId: 'echo-gvisor', input: text('hello gVisor') })
  const job = await waitJob(n.client, id)
  t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
  t.is(Buffer.from(job.output).toString(), 'hello gVisor')
  t.true(verifyReceipt(envelopeFromWire(job.receipt!), { output: new Uint8Array(job.output) }).valid)

  const kernel = await waitJob(n.client, (await n.client.submitJob({ containerId: 'kernel', input: text('') })).jobId)
  t.regex(Buffer.from(kernel.output).toString(), /Starting gVisor/, 'the job ran on gVisor\'s kernel, not the host\'s')
})

withRunsc(`the sandbox holds under runsc: non-root, read-only root, noexec /tmp and /dev/shm, loopback only${needs}`, async (t) => {
  const runtime = dockerRuntime({})({ logger: silentLogger() })
  await runtime.start()
  try {
    // /sys/class/net is empty under gVisor, so the interfaces are read from /proc/net/dev.
    const script = [
      'id -u',
      'echo x > /escape 2>/dev/null && echo WROTE-ROOT',
      'for d in /tmp /dev/shm; do cp /bin/sh $d/sh && { $d/sh -c true 2>/dev/null && echo EXEC-$d || echo noexec-$d; }; done',
      "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"
    ].join('; ')
    const result = await runtime.run({ jobId: jobId('sandbox'), container: shContainer(script, { id: 'runsc-sandbox', runtime: 'runsc', resources: RUNSC_RESOURCES }), input: new Uint8Array() })
    t.is(out(result), '65534\nnoexec-/tmp\nnoexec-/dev/shm\nlo\n')
    await runtime.settled()
    t.is(await leftovers(), 0)
  } finally {
    await runtime.stop()
  }
})

withRunsc(`a service container runs under gVisor too, reachable on its published port${needs}`, async (t) => {
  const svc = serviceContainer('runsc-warm', 'serve', {
    runtime: 'runsc',
    env: { TASK: 'sentiment' },
    resources: { memoryBytes: 256 * 1024 * 1024, pids: 128 },
    // Node.js on gVisor's ptrace platform boots in seconds, not milliseconds.
    service: { startupTimeoutMs: 60_000 }
  })
  const runtime = dockerRuntime({ containers: [svc], startTimeoutMs: 60_000 })({ logger: silentLogger() })
  await runtime.start()
  try {
    const state = (): string => runtime.containerStatuses()[0]?.state ?? ''
    for (let i = 0; i < 600 && !['healthy', 'failed'].includes(state()); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    t.is(state(), 'healthy', runtime.containerStatuses()[0]?.lastError)
    const result = await runtime.run({ jobId: jobId('warm'), container: svc, input: new TextEncoder().encode('What a wonderful day') })
    t.regex(out(result), /positive/)
    const [running] = await docker.listContainers({ filters: { label: ['inframind.service=runsc-warm'] } })
    t.is((await docker.getContainer(running?.Id ?? '').inspect()).HostConfig.Runtime, 'runsc')
  } finally {
    await runtime.stop()
  }
  t.is((await docker.listContainers({ all: true, filters: { label: ['inframind.service=runsc-warm'] } })).length, 0)
})
