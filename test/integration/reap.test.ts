import test from 'ava'
import type { ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import Dockerode from 'dockerode'
import { stringify } from 'yaml'
import { connectNode } from '../../src/api/client.ts'
import { dockerRuntime, resolveEngine } from '../../src/runtime/index.ts'
import type { Runtime } from '../../src/runtime/index.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { ECHO_IMAGE, lockedDigest, serviceContainer } from '../helpers/images.ts'
import { containerYaml, text } from '../helpers/node.ts'
import { connectControl } from '../../src/api/client.ts'

// Orphan reaping against the real engine: a node removes the containers an earlier run of itself
// left behind (found by the inframind.node label), and nothing else. Serial: the kill test spawns
// whole node processes, which must not compete with the other tests for the two cores.

const docker = new Dockerode(resolveEngine().options)
const ENTRYPOINT = fileURLToPath(new URL('../../entrypoint.ts', import.meta.url))
const TOKEN = `reap-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`
const REMOVED = /^removed (\d+) containers left by an earlier run of this node$/

interface LogLine { msg?: string, removed?: number, [key: string]: unknown }

/** A logger whose JSON lines the test reads back. */
function capturingLogger (): { logger: ReturnType<typeof createLogger>, lines: LogLine[] } {
  const lines: LogLine[] = []
  const destination = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine)
      done()
    }
  })
  return { logger: createLogger({ level: 'info', destination }), lines }
}

/** Polls `fn` until it resolves a value (not undefined); throws after timeoutMs. Generous: the box is shared. */
async function poll<T> (fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Whether the engine still has the container (any state). */
async function exists (id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect()
    return true
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false
    throw err
  }
}

/** Removes every container labelled with one of `nodeIds` plus the given ids, whatever state they are in. */
async function removeAll (nodeIds: string[], ids: string[] = []): Promise<void> {
  const labelled = await Promise.all(nodeIds.map(async (id) => await docker.listContainers({ all: true, filters: { label: [`inframind.node=${id}`] } })))
  const all = new Set([...ids, ...labelled.flat().map((c) => c.Id)])
  await Promise.all([...all].map(async (id) => { await docker.getContainer(id).remove({ force: true }).catch(() => {}) }))
}

/** A container made through the engine directly, as an earlier run (or someone else) would have left it. */
async function leave (name: string, labels: Record<string, string>, state: 'created' | 'exited' | 'running'): Promise<string> {
  const container = await docker.createContainer({
    name: `${TOKEN}-${name}`,
    Image: lockedDigest(ECHO_IMAGE),
    Cmd: state === 'running' ? ['sleep', '60'] : ['true'],
    Labels: labels,
    HostConfig: { NetworkMode: 'none' }
  })
  if (state !== 'created') await container.start()
  if (state === 'exited') await container.wait()
  return container.id
}

test.serial('start removes this node\'s leftovers (created, exited, running), never another node\'s or an unlabelled container', async (t) => {
  const nodeId = `${TOKEN}-me`
  const otherNode = `${TOKEN}-other`
  const made: string[] = []
  const runtimes: Runtime[] = []
  t.teardown(async () => {
    for (const r of runtimes) await r.stop()
    await removeAll([nodeId, otherNode], made)
  })
  const mine = async (name: string, kind: string, state: 'created' | 'exited' | 'running'): Promise<string> => {
    const id = await leave(name, { 'inframind.node': nodeId, 'inframind.kind': kind, 'inframind.job': `${TOKEN}-${name}` }, state)
    made.push(id)
    return id
  }
  const exited = await mine('exited', 'oneshot', 'exited')
  const created = await mine('created', 'oneshot', 'created')
  const running = await mine('running', 'service', 'running')
  const another = await leave('another', { 'inframind.node': otherNode, 'inframind.kind': 'oneshot' }, 'exited')
  made.push(another)
  const unlabelled = await leave('user', {}, 'created')
  made.push(unlabelled)
  t.is((await docker.getContainer(exited).inspect()).State.Status, 'exited')
  t.is((await docker.getContainer(created).inspect()).State.Status, 'created')

  const { logger, lines } = capturingLogger()
  const runtime = dockerRuntime({ nodeId })({ logger })
  runtimes.push(runtime)
  await runtime.start()

  for (const id of [exited, created, running]) t.false(await exists(id), `leftover ${id} is removed`)
  t.true(await exists(another), 'another node\'s container stays')
  t.true(await exists(unlabelled), 'an unlabelled container stays')
  t.is(runtime.stats().reapedAtStart, 3)
  const report = lines.find((l) => REMOVED.test(l.msg ?? ''))
  t.is(report?.msg, 'removed 3 containers left by an earlier run of this node')
  t.is(report?.removed, 3)

  // A start with nothing left over reports zero, and a runtime without a node id reaps nothing.
  const again = dockerRuntime({ nodeId })({ logger })
  runtimes.push(again)
  await again.start()
  t.is(again.stats().reapedAtStart, 0)
  const anonymous = dockerRuntime({})({ logger })
  runtimes.push(anonymous)
  await anonymous.start()
  t.is(anonymous.stats().reapedAtStart, 0)
  t.true(await exists(another))
  t.true(await exists(unlabelled))
})

test.serial('a service container carries the node labels, and the next start of the same node replaces a stale one', async (t) => {
  const nodeId = `${TOKEN}-svc`
  const runtimes: Runtime[] = []
  t.teardown(async () => {
    for (const r of runtimes) await r.stop()
    await removeAll([nodeId])
  })
  const svc = serviceContainer(`${TOKEN}-svc`, 'testserver')
  const logger = capturingLogger().logger
  // The first runtime stands for a node that dies: it is never stopped before the second starts.
  const dead = dockerRuntime({ nodeId, containers: [svc], startTimeoutMs: 30_000 })({ logger })
  runtimes.push(dead)
  await dead.start()
  const stale = await poll(async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`inframind.node=${nodeId}`] } })
    return list.length === 1 ? list[0] : undefined
  }, 60_000, 'the service container is created')
  t.is(stale.Labels['inframind.kind'], 'service')
  t.is(stale.Labels['inframind.service'], svc.id)

  const next = dockerRuntime({ nodeId, containers: [svc], startTimeoutMs: 30_000 })({ logger })
  runtimes.unshift(next)
  await next.start()
  t.is(next.stats().reapedAtStart, 1)
  t.false(await exists(stale.Id), 'the stale service container is removed before its successor starts')
  await poll(async () => next.containerStatuses()[0]?.state === 'healthy' ? true : undefined, 60_000, 'the new service container is healthy')
})

/** A node process started from a config file, as `infra start` would; its stdout log lines are kept. */
interface NodeProcess {
  child: ChildProcess
  lines: LogLine[]
  exited: Promise<void>
}

function spawnNode (config: string): NodeProcess {
  const child = spawn(process.execPath, [ENTRYPOINT, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: LogLine[] = []
  let partial = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line) as LogLine)
      } catch {
        // Not a log line; the node writes nothing else to stdout.
      }
    }
  })
  child.stderr?.resume()
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  return { child, lines, exited }
}

async function killHard (n: NodeProcess): Promise<void> {
  if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL')
  await n.exited
}

/** node.json of a running node process, once the process with this pid wrote it (it is written when the node has started). */
async function started (dir: string, n: NodeProcess, t: ExecutionContext): Promise<{ nodeId: string, public: string }> {
  return await poll(async () => {
    if (n.child.exitCode !== null) throw new Error(`the node exited with code ${n.child.exitCode}: ${JSON.stringify(n.lines.slice(-5))}`)
    const body = await readFile(path.join(dir, 'node.json'), 'utf8').catch(() => undefined)
    if (body === undefined) return undefined
    const file = JSON.parse(body) as { nodeId: string, public: string, pid: number }
    if (file.pid !== n.child.pid) return undefined
    t.log(`node ${file.nodeId} (pid ${file.pid}) started`)
    return file
  }, 90_000, 'the node process starts')
}

test.serial('a node killed with SIGKILL leaves its job container; its restart removes it and reports the count', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-reap-'))
  const procs: NodeProcess[] = []
  let nodeId: string | undefined
  t.teardown(async () => {
    for (const p of procs) await killHard(p)
    if (nodeId !== undefined) await removeAll([nodeId])
    await rm(dir, { recursive: true, force: true })
  })
  const config = path.join(dir, 'config.yaml')
  await writeFile(config, stringify({
    node: { name: 'reap', roles: ['worker'], data_dir: dir },
    identity: { key_file: path.join(dir, 'keys', 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0' },
    jobs: { concurrency: 1, queue_size: 4, default_deadline_ms: 120_000 },
    telemetry: { metrics: { enabled: false }, log_level: 'info' },
    dashboard: { listen: '' },
    runtime: { prefetch: false },
    mesh: { enabled: false },
    // Runs long enough to be killed in the middle of.
    containers: [containerYaml('sleeper', { command: ['sh', '-c', 'sleep 60'], timeout_ms: 120_000 })]
  }))

  const first = spawnNode(config)
  procs.push(first)
  const info = await started(dir, first, t)
  nodeId = info.nodeId
  const client = connectNode(info.public)
  let jobId: string
  try {
    jobId = (await client.submitJob({ containerId: 'sleeper', input: text('x') })).jobId
  } finally {
    client.close()
  }
  const labelled = async (): Promise<Dockerode.ContainerInfo[]> => await docker.listContainers({ all: true, filters: { label: [`inframind.node=${info.nodeId}`] } })
  const orphan = await poll(async () => (await labelled()).find((c) => c.State === 'running'), 60_000, 'the job container runs')
  t.is(orphan.Labels['inframind.job'], jobId)
  t.is(orphan.Labels['inframind.kind'], 'oneshot')

  await killHard(first)
  t.true(await exists(orphan.Id), 'the SIGKILLed node could not remove its job container')

  const second = spawnNode(config)
  procs.push(second)
  const again = await started(dir, second, t)
  t.is(again.nodeId, info.nodeId, 'the same node (same identity) restarted')
  t.false(await exists(orphan.Id), 'the restart removed the container the killed run left')
  t.deepEqual(await labelled(), [], 'no container of this node is left')
  const report = second.lines.find((l) => REMOVED.test(l.msg ?? ''))
  t.is(report?.msg, 'removed 1 containers left by an earlier run of this node', 'the node reports the count')
  t.is(report?.removed, 1)
  // And says so in its status.
  const nodeFile = JSON.parse(await readFile(path.join(dir, 'node.json'), 'utf8')) as { control: string }
  const control = connectControl(nodeFile.control)
  try {
    t.is((await control.getStatus()).containersReapedAtStart, 1)
  } finally {
    control.close()
  }

  // A clean stop leaves nothing behind either.
  second.child.kill('SIGTERM')
  await second.exited
  t.is(second.child.exitCode, 0)
  t.deepEqual(await labelled(), [])
})
