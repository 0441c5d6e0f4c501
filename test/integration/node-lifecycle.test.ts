import test, { type ExecutionContext } from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { stringify } from 'yaml'
import { connectControl, connectNode } from '../../src/api/client.ts'
import { parseConfig } from '../../src/config/index.ts'
import type { NodeConfig } from '../../src/config/types.ts'
import { createNode, type InframindNode } from '../../src/node.ts'
import { levelStore } from '../../src/store/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { containerYaml, text } from '../helpers/node.ts'

// The node as a whole (createNode): start-failure rollback, concurrent and repeated start/stop,
// restart in the same process. Real LevelDB, Docker engine, gRPC and (where enabled) libp2p on 127.0.0.1.

interface NodeOptions {
  dir?: string
  api?: Record<string, unknown>
  metrics?: string
  /** mesh: section (listen defaults to 127.0.0.1, port 0); default: the mesh is disabled. */
  mesh?: Record<string, unknown>
  roles?: string[]
}

interface Built { node: InframindNode, config: NodeConfig, dir: string }

async function tempDir (t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-lifecycle-'))
  // Registered first, so it runs after the nodes' teardowns (they run in reverse order).
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  return dir
}

/** A node built from a config.yaml document as the entrypoint would, not started; stopped at teardown. */
async function buildNode (t: ExecutionContext, opts: NodeOptions = {}): Promise<Built> {
  const dir = opts.dir ?? await tempDir(t)
  const doc = {
    node: { name: 'lifecycle', roles: opts.roles ?? ['worker'], data_dir: dir },
    identity: { key_file: path.join(dir, 'keys', 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0', ...opts.api },
    jobs: { concurrency: 2, queue_size: 16, default_deadline_ms: 60_000 },
    store: { max_results: 100 },
    telemetry: { metrics: { enabled: true, listen: opts.metrics ?? '127.0.0.1:0' }, log_level: 'silent' },
    dashboard: { listen: '' },
    runtime: { prefetch: false },
    mesh: opts.mesh === undefined ? { enabled: false } : { listen: ['/ip4/127.0.0.1/tcp/0'], heartbeat_interval_ms: 1000, ...opts.mesh },
    containers: [containerYaml('echo')]
  }
  const config = parseConfig(stringify(doc), path.join(dir, 'config.yaml'))
  const node = await createNode({ config, logger: silentLogger() })
  t.teardown(async () => await node.stop())
  return { node, config, dir }
}

/** A port the OS just handed out on 127.0.0.1 and that nothing holds now. */
async function freePort (): Promise<number> {
  const s = await listen(0)
  const port = (s.address() as net.AddressInfo).port
  await close(s)
  return port
}

async function listen (port: number): Promise<net.Server> {
  const s = net.createServer()
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    s.listen(port, '127.0.0.1', () => { s.off('error', reject); resolve() })
  })
  return s
}

async function close (s: net.Server): Promise<void> {
  await new Promise<void>((resolve) => s.close(() => resolve()))
}

/** True when a listener can bind 127.0.0.1:port now (it is released at once). */
async function isFree (port: number): Promise<boolean> {
  try {
    await close(await listen(port))
    return true
  } catch {
    return false
  }
}

/**
 * The port can be bound again within 10 s. A released port can still be taken for a moment by
 * another test process's outgoing connection (ports chosen by the OS come from the same range), so a
 * single failed bind on a busy machine does not prove the node kept it.
 */
async function freedSoon (port: number): Promise<boolean> {
  const until = Date.now() + 10_000
  for (;;) {
    if (await isFree(port)) return true
    if (Date.now() > until) return false
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/**
 * Active resources (sockets, servers, timers: what keeps the process alive) beyond `baseline`, once
 * they have had up to 5 s to close; [] when none are left over.
 */
async function settlesTo (baseline: string[]): Promise<string[]> {
  const count = (list: string[]): Map<string, number> => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>())
  const allowed = count(baseline)
  const until = Date.now() + 5_000
  for (;;) {
    const extra = [...count(process.getActiveResourcesInfo())].filter(([k, n]) => n > (allowed.get(k) ?? 0)).map(([k, n]) => `${k} x${n - (allowed.get(k) ?? 0)}`)
    if (extra.length === 0 || Date.now() > until) return extra
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** True when the LevelDB at `storePath` can be opened (nobody in this process holds its lock). */
async function storeOpens (storePath: string): Promise<boolean> {
  const store = levelStore({ path: storePath, maxResults: 100 })({ logger: silentLogger() })
  try {
    await store.start()
  } catch {
    return false
  }
  await store.stop()
  return true
}

/** Runs one echo job through the node's public gRPC address and returns its output. */
async function runEcho (node: InframindNode, input: string): Promise<{ jobId: string, output: string }> {
  const client = connectNode(node.api.publicAddress())
  try {
    const job = await client.runJob({ containerId: 'echo', input: text(input) }, { timeoutMs: 60_000 })
    if (job.state !== 'JOB_STATE_SUCCESS') throw new Error(`job ended ${job.state}: ${job.error}`)
    return { jobId: job.jobId, output: Buffer.from(job.output).toString() }
  } finally {
    client.close()
  }
}

async function heldPort (t: ExecutionContext): Promise<number> {
  const held = await listen(0)
  t.teardown(async () => await close(held))
  return (held.address() as net.AddressInfo).port
}

const startFailures: Array<[string, (t: ExecutionContext, dir: string) => Promise<Record<string, unknown>>]> = [
  ['its public port is taken', async (t) => ({ public: `127.0.0.1:${await heldPort(t)}` })],
  // The public listener is bound by then: the api must release it itself.
  ['its control socket cannot be created', async (_t, dir) => ({ public: `127.0.0.1:${await freePort()}`, control_socket: path.join(dir, 'no-such-dir', 'deeper', 'control.sock') })]
]

for (const [why, apiSection] of startFailures) {
  test.serial(`when the api cannot start (${why}), start() rejects with NodeStartError and releases everything that had started`, async (t) => {
    const dir = await tempDir(t)
    const api = await apiSection(t, dir)
    const metricsPort = await freePort()
    const meshPort = await freePort()
    // Serial tests run alone, so whatever keeps this process alive now is the baseline.
    const baseline = process.getActiveResourcesInfo()
    // Every role and the mesh, so every component but the api starts before the failure.
    const { node, config } = await buildNode(t, {
      dir,
      api,
      metrics: `127.0.0.1:${metricsPort}`,
      mesh: { listen: [`/ip4/127.0.0.1/tcp/${meshPort}`] },
      roles: ['scheduler', 'gateway', 'worker']
    })

    const err = await t.throwsAsync(node.start())
    t.is(err?.name, 'NodeStartError')
    t.is((err as Error & { component?: string }).component, 'api')
    t.is((err?.cause as Error | undefined)?.name, 'ListenError')

    const extra = await settlesTo(baseline)
    t.deepEqual(extra, [], 'no socket, server or timer of the node keeps the process alive')

    t.true(await storeOpens(config.store.path), 'the LevelDB store was closed')
    t.true(await freedSoon(metricsPort), 'the metrics port was released')
    t.true(await freedSoon(meshPort), 'the mesh port was released')
    if (typeof api.public === 'string' && api.control_socket !== undefined) {
      t.true(await isFree(Number(api.public.split(':')[1])), 'the public port bound before the control socket failed was released')
    }
    await node.stop()

    // The same data dir and ports serve a node whose api can start.
    const again = await buildNode(t, { dir, metrics: `127.0.0.1:${metricsPort}`, mesh: { listen: [`/ip4/127.0.0.1/tcp/${meshPort}`] }, roles: ['scheduler', 'gateway', 'worker'] })
    await again.node.start()
    t.is(again.node.identity.nodeId, node.identity.nodeId, 'same key file, same node')
    t.is((await runEcho(again.node, 'after a failed start')).output, 'after a failed start')
    await again.node.stop()
  })
}

// Known bug (src/api/server.ts): when the control listener fails, the public listener is shut down
// but publicAddress() keeps the address it had bound ("'' before start" no longer holds).
test('after the api failed to start at its control socket, it reports no public address', async (t) => {
  const dir = await tempDir(t)
  const { node } = await buildNode(t, { dir, api: { control_socket: path.join(dir, 'no-such-dir', 'deeper', 'control.sock') } })
  await t.throwsAsync(node.start(), { name: 'NodeStartError' })
  t.is(node.api.publicAddress(), '')
})

const meshVariants: Array<[string, Record<string, unknown> | undefined]> = [['without the mesh', undefined], ['with the mesh', {}]]

for (const [variant, meshSection] of meshVariants) {
  test(`${variant}: concurrent start() calls start the node once; start() when started and a second stop() are no-ops; it restarts in the same process`, async (t) => {
    // A fixed public port: a second gRPC listener could not bind it, and a leaked one would keep it.
    const publicPort = await freePort()
    const { node, config } = await buildNode(t, { api: { public: `127.0.0.1:${publicPort}` }, mesh: meshSection })

    const both = await Promise.allSettled([node.start(), node.start()])
    t.deepEqual(both.map((r) => r.status), ['fulfilled', 'fulfilled'], String(both.map((r) => r.status === 'rejected' ? r.reason : '')))
    const address = node.api.publicAddress()
    t.is(address, `127.0.0.1:${publicPort}`)
    const meshAddresses = node.mesh?.addresses() ?? []
    if (meshSection !== undefined) t.true(meshAddresses.length > 0)

    await node.start()
    t.is(node.api.publicAddress(), address, 'start() when started changes nothing')
    t.deepEqual(node.mesh?.addresses() ?? [], meshAddresses)
    const first = await runEcho(node, 'started once')
    t.is(first.output, 'started once')

    await node.stop()
    await node.stop()
    t.true(await isFree(publicPort), 'stopped: the public port is free')
    t.true(await storeOpens(config.store.path), 'stopped: the store is closed')

    await node.start()
    t.is(node.api.publicAddress(), address)
    t.is((await runEcho(node, 'restarted')).output, 'restarted')
    const client = connectNode(node.api.publicAddress())
    t.teardown(() => client.close())
    t.is((await client.getJob(first.jobId)).state, 'JOB_STATE_SUCCESS', 'the job from before the restart is still there')
    await node.stop()
    t.true(await isFree(publicPort))
  })

  test(`${variant}: stop() during start() waits for the start, then leaves nothing running`, async (t) => {
    const publicPort = await freePort()
    const { node, config } = await buildNode(t, { api: { public: `127.0.0.1:${publicPort}` }, mesh: meshSection })
    const results = await Promise.allSettled([node.start(), node.stop()])
    t.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled'])
    t.true(await isFree(publicPort), 'the public port is free')
    t.true(await storeOpens(config.store.path), 'the store is closed')
    await node.start()
    t.is((await runEcho(node, 'started after all')).output, 'started after all')
  })

  // Known bug (src/node.ts stop()): the first stop() empties `started` before it has stopped
  // anything, so a second stop() finds nothing to stop and resolves at once.
  test(`${variant}: a stop() called while another is under way resolves once the node has stopped`, async (t) => {
    const publicPort = await freePort()
    const { node, config } = await buildNode(t, { api: { public: `127.0.0.1:${publicPort}` }, mesh: meshSection })
    await node.start()
    await holdOpenStream(t, node)
    const first = node.stop()
    t.teardown(async () => await first)
    await node.stop()
    t.is(node.api.publicAddress(), '', 'the api has stopped when the second stop() resolves')
    t.true(await storeOpens(config.store.path), 'the store is closed when the second stop() resolves')
    t.true(await isFree(publicPort), 'the public port is free when the second stop() resolves')
    await first
  })

  // Known bug (src/node.ts start()): a start() during a stop sees the components still listed as
  // started and returns at once; the stop then completes and the node is left stopped.
  test(`${variant}: start() called while a stop is under way leaves a started node that serves jobs`, async (t) => {
    const { node } = await buildNode(t, { mesh: meshSection })
    await node.start()
    await holdOpenStream(t, node)
    const stopping = node.stop()
    await node.start()
    await stopping
    t.not(node.api.publicAddress(), '', 'the node is listening')
    t.is((await runEcho(node, 'started again')).output, 'started again')
  })
}

/**
 * Opens Control.StreamEvents and waits for its first event: a stream never ends on its own, so the
 * api's stop() then takes its whole shutdown grace, and a node's stop() is under way for that long.
 */
async function holdOpenStream (t: ExecutionContext, node: InframindNode): Promise<void> {
  const control = connectControl(node.api.controlAddress())
  const events = control.streamEvents()[Symbol.asyncIterator]()
  t.teardown(async () => {
    await events.return?.()
    control.close()
  })
  const first = events.next()
  // The stream is open once it carries an event; a job makes one.
  for (;;) {
    await runEcho(node, 'stream')
    const got = await Promise.race([first, new Promise((resolve) => setTimeout(() => resolve(undefined), 500))])
    if (got !== undefined) return
  }
}
