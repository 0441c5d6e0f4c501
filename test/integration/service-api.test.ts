import test from 'ava'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { containerYaml, NLP_IMAGE, startTestNode, text, waitJob, type TestNode } from '../helpers/node.ts'

// Warm service containers seen through the node's own surfaces: Control.ListContainers,
// Control.StreamEvents, Control.GetStatus / `infra status`, and jobs over gRPC.

const INFRA = fileURLToPath(new URL('../../bin/infra.js', import.meta.url))
let n: TestNode

const service = (id: string, extra: Record<string, unknown> = {}): Record<string, unknown> => containerYaml(id, {
  image: NLP_IMAGE,
  command: ['testserver'],
  mode: 'service',
  service: { port: 8080, startup_timeout_ms: 5000, health_interval_ms: 200, health_timeout_ms: 1000, unhealthy_threshold: 2, max_restarts: 3, restart_backoff_ms: 200, restart_backoff_max_ms: 1000 },
  resources: { cpus: 0.5, memory: '128m', pids: 64 },
  ...extra
})

test.before(async () => {
  n = await startTestNode({
    containers: [
      service('warm'),
      service('never-ready', { env: { READY_AFTER_MS: 'never' }, service: { port: 8080, startup_timeout_ms: 1500, max_restarts: 0, restart_backoff_ms: 200 } }),
      containerYaml('echo')
    ]
  })
})

test.after.always(async () => { await n?.destroy() })

async function until<T> (fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

test.serial('ListContainers shows the warm container healthy and the broken one failed with its reason, while jobs run', async (t) => {
  const warm = await until(async () => (await n.control.listContainers()).find((c) => c.id === 'warm' && c.state === 'healthy'))
  t.is(warm.mode, 'service')
  const broken = await until(async () => (await n.control.listContainers()).find((c) => c.id === 'never-ready' && c.state === 'failed'))
  t.regex(broken.lastError, /startup_timeout_ms|not ready/)
  const echo = (await n.control.listContainers()).find((c) => c.id === 'echo')
  t.is(echo?.mode, 'oneshot')
  // The node serves the healthy ones.
  const { jobId } = await n.client.submitJob({ containerId: 'warm', input: text('warm hello') })
  t.is(Buffer.from((await waitJob(n.client, jobId)).output).toString(), 'warm hello')
  const refused = await waitJob(n.client, (await n.client.submitJob({ containerId: 'never-ready', input: text('x') })).jobId)
  t.is(refused.state, 'JOB_STATE_FAILED')
  t.is(refused.errorCode, 'SERVICE_UNAVAILABLE')
})

test.serial('a crash is streamed by StreamEvents as restarting → starting → healthy, and jobs go on', async (t) => {
  await until(async () => (await n.control.listContainers()).find((c) => c.id === 'warm' && c.state === 'healthy'))
  const seen: string[] = []
  const abort = new AbortController()
  const streaming = (async () => {
    try {
      for await (const e of n.control.streamEvents({ signal: abort.signal })) {
        if (e.kind === 'container' && e.containerId === 'warm') seen.push(e.detail.split(':')[0] as string)
        if (seen.includes('restarting') && seen[seen.length - 1] === 'healthy') break
      }
    } catch {}
  })()
  await new Promise((resolve) => setTimeout(resolve, 200))
  const crashed = await waitJob(n.client, (await n.client.submitJob({ containerId: 'warm', input: text('crash') })).jobId)
  t.is(crashed.state, 'JOB_STATE_FAILED')
  await Promise.race([streaming, new Promise((resolve) => setTimeout(resolve, 20_000))])
  abort.abort()
  t.true(seen.includes('restarting'), seen.join(' → '))
  t.is(seen[seen.length - 1], 'healthy', seen.join(' → '))
  const after = await waitJob(n.client, (await n.client.submitJob({ containerId: 'warm', input: text('after the crash') })).jobId)
  t.is(Buffer.from(after.output).toString(), 'after the crash')
  const status = await n.control.getStatus()
  t.true(status.containers.find((c) => c.id === 'warm')!.restarts >= 1)
})

test.serial('infra status prints each container with its mode, state and restarts', async (t) => {
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [INFRA, 'status'], { env: { ...process.env, INFRAMIND_CONFIG: '', INFRAMIND_CONTROL: n.node.api.controlAddress() }, timeout: 30_000 },
      (err, stdout, stderr) => err !== null ? reject(new Error(stderr)) : resolve(stdout))
  })
  t.regex(out, /warm\s+service\s+healthy/)
  t.regex(out, /never-ready\s+service\s+failed/)
  t.regex(out, /echo\s+oneshot\s+ready/)
  t.regex(out, /Image Cache/)
})
