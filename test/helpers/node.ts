import type { ExecutionContext } from 'ava'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { NODE_FILE } from '../../src/types.ts'
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import path from 'node:path'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/index.ts'
import type { NodeConfig } from '../../src/config/types.ts'
import { createNode, type InframindNode } from '../../src/node.ts'
import { connectControl, connectNode, type ControlClient, type NodeClient } from '../../src/api/client.ts'
import type { Job as WireJob } from '../../src/protocol/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { generateIdentity, identityFromSeed, loadIdentity } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { createNetworkKeyFile, readNetworkKeyFile } from '../../src/admission/network-key.ts'
import { signRoster, signedRosterText } from '../../src/roster/index.ts'
import type { SignedEnvelope } from '../../src/envelope/types.ts'

const LOCK = JSON.parse(readFileSync(new URL('../../containers/images.lock.json', import.meta.url), 'utf8')) as Record<string, string>

/**
 * A scheduler in the tests waits this long for an ack: on a machine kept busy a live worker may take
 * seconds to answer, and a test must not fail for that (tests about silence set their own).
 */
export const ACK_TIMEOUT_IN_TESTS_MS = 15_000

export const ECHO_IMAGE = 'inframind/echo:1'
export const NLP_IMAGE = 'inframind/nlp:1'

/** A container entry as written in config.yaml (snake_case), pinned to the locally built image. */
export function containerYaml (id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const image = (overrides.image as string | undefined) ?? ECHO_IMAGE
  return {
    id,
    image,
    digest: LOCK[image],
    command: ['cat'],
    resources: { cpus: 0.5, memory: '64m', pids: 32 },
    timeout_ms: 10_000,
    max_output_bytes: 65_536,
    input_schema: 'text',
    output_schema: 'text',
    ...overrides
  }
}

/**
 * Every mesh node a test process starts joins one private mesh: one pre-shared key, one operator key,
 * and a roster listing each node with the roles its config gives it (tests about admission add
 * outsiders themselves). A new member is pushed to every running node at once, as `infra roster
 * push` would, so tests never wait for the roster to spread.
 */
export const TEST_OPERATOR: Identity = identityFromSeed(randomBytes(32))
export const TEST_MESH = 'inframind-test'
let meshKeyFile: string | undefined
const members = new Map<string, string[]>()
let rosterVersion = 0
let currentRoster: SignedEnvelope | undefined
const rosterHolders = new Set<InframindNode>()

/** The test mesh's key file (created once per test process). */
export function testMeshKeyFile (): string {
  if (meshKeyFile === undefined) {
    meshKeyFile = path.join(os.tmpdir(), `inframind-mesh-${process.pid}-${randomBytes(4).toString('hex')}.key`)
    createNetworkKeyFile(meshKeyFile)
  }
  return meshKeyFile
}

export function testMeshKey (): Uint8Array {
  return readNetworkKeyFile(testMeshKeyFile())
}

/**
 * Adds (or updates) a member of the test roster and signs the next version; applies it on every
 * running node unless `push` is false (then the test delivers it, e.g. with UpdateRoster).
 */
export async function rosterMember (nodeId: string, roles: string[], opts: { push?: boolean } = {}): Promise<SignedEnvelope> {
  members.set(nodeId, roles)
  rosterVersion += 1
  currentRoster = signRoster(TEST_OPERATOR, {
    mesh: TEST_MESH,
    version: rosterVersion,
    issuedAtMs: Date.now(),
    expiresAtMs: 0,
    members: [...members].map(([id, r]) => ({ nodeId: id, roles: r, name: '' }))
  })
  const env = currentRoster
  if (opts.push === false) return env
  await Promise.all([...rosterHolders].map(async (n) => await n.roster?.apply(env, 'test').catch(() => undefined)))
  return env
}

/** The admission section of a test mesh node's config. */
export function testAdmission (dir: string): Record<string, unknown> {
  return { mode: 'private', mesh_name: TEST_MESH, network_key_file: testMeshKeyFile(), operators: [TEST_OPERATOR.nodeId], roster_file: path.join(dir, 'roster.json') }
}

export interface TestNode {
  node: InframindNode
  config: NodeConfig
  dir: string
  client: NodeClient
  control: ControlClient
  /** Stops the node and closes clients; keeps the data dir (for restart tests). */
  stop(): Promise<void>
  /** stop() and delete the data dir. */
  destroy(): Promise<void>
}

export interface TestNodeOptions {
  containers?: Array<Record<string, unknown>>
  jobs?: Record<string, unknown>
  store?: Record<string, unknown>
  api?: Record<string, unknown>
  /** mesh: section; default: the mesh is disabled (tests of one node need none). */
  mesh?: Record<string, unknown>
  node?: Record<string, unknown>
  runtime?: Record<string, unknown>
  /** dashboard: section; default: off (a node on 9090 in every test would clash with the next one). */
  dashboard?: Record<string, unknown>
  /** Reuse a data dir (restart tests). */
  dir?: string
  /** Mesh nodes are in the test roster with their roles unless this is false. */
  rostered?: boolean
}

/** The config.yaml document of a test node in `dir`, written there; mesh nodes are put in the test roster first. */
async function prepareTestNode (opts: TestNodeOptions): Promise<{ dir: string, config: NodeConfig, file: string, onMesh: boolean }> {
  const dir = opts.dir ?? await mkdtemp(path.join(os.tmpdir(), 'inframind-test-'))
  const doc = {
    node: { name: 'test', roles: ['worker'], data_dir: dir, ...opts.node },
    identity: { key_file: path.join(dir, 'keys', 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0', ...opts.api },
    jobs: { concurrency: 2, queue_size: 16, default_deadline_ms: 60_000, ...opts.jobs },
    store: { max_results: 100, ...opts.store },
    telemetry: { metrics: { enabled: true, listen: '127.0.0.1:0' }, log_level: 'silent' },
    dashboard: { listen: '', ...opts.dashboard },
    runtime: { prefetch: false, ...opts.runtime },
    mesh: opts.mesh === undefined ? { enabled: false } : { listen: ['/ip4/127.0.0.1/tcp/0'], heartbeat_interval_ms: 1000, ack_timeout_ms: ACK_TIMEOUT_IN_TESTS_MS, ...opts.mesh },
    containers: opts.containers ?? [containerYaml('echo')]
  }
  const onMesh = opts.mesh !== undefined && opts.mesh.enabled !== false
  if (onMesh) {
    const given = (opts.mesh?.admission ?? {}) as Record<string, unknown>
    ;(doc.mesh as Record<string, unknown>).admission = { ...testAdmission(dir), ...given }
  }
  const file = path.join(dir, 'config.yaml')
  const text = stringify(doc)
  const config = parseConfig(text, file)
  await writeFile(file, text)
  if (onMesh && opts.rostered !== false) {
    // The node id must be in the roster before the node starts, so its first heartbeats count.
    const keyFile = config.identity.keyFile
    const nodeId = existsSync(keyFile) ? loadIdentity(keyFile).nodeId : generateIdentity(keyFile).nodeId
    await rosterMember(nodeId, config.node.roles)
  }
  // The newest roster, as an operator would have copied it (a restarted node's own file may be older).
  if (onMesh && currentRoster !== undefined) await writeFile(config.mesh.admission.rosterFile, signedRosterText(currentRoster), { mode: 0o600 })
  return { dir, config, file, onMesh }
}

/**
 * Starts a real node (real LevelDB, real Docker engine, real gRPC servers on port 0) from a
 * config.yaml document, exactly as the entrypoint would.
 */
export async function startTestNode (opts: TestNodeOptions = {}): Promise<TestNode> {
  const { dir, config, onMesh } = await prepareTestNode(opts)
  const node = await createNode({ config, logger: silentLogger() })
  await node.start()
  if (onMesh) rosterHolders.add(node)
  const client = connectNode(node.api.publicAddress())
  const control = connectControl(node.api.controlAddress())
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    rosterHolders.delete(node)
    client.close()
    control.close()
    await node.stop()
  }
  return {
    node,
    config,
    dir,
    client,
    control,
    stop,
    destroy: async () => {
      await stop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

export function text (s: string): Uint8Array {
  return new TextEncoder().encode(s)
}

/** Waits for a job to end through WatchJob and returns the final job. */
export async function waitJob (client: NodeClient, jobId: string): Promise<WireJob> {
  for await (const event of client.watchJob(jobId, { timeoutMs: 60_000 })) {
    if (event.job !== null) return event.job
  }
  return await client.getJob(jobId)
}

/** startTestNode, destroyed when the test ends (pass or fail). */
export async function startFor (t: ExecutionContext, opts: TestNodeOptions = {}): Promise<TestNode> {
  const n = await startTestNode(opts)
  t.teardown(async () => await n.destroy())
  return n
}

/** The node's mesh address that names its peer id (what another node bootstraps from). */
export function meshAddr (n: TestNode): string {
  const addr = n.node.mesh?.addresses().find((a) => a.includes('/p2p/'))
  if (addr === undefined) throw new Error('node has no mesh address')
  return addr
}

type Maybe<T> = T | undefined | null | false

/**
 * Polls `fn` (awaited when it is async) every 100 ms until it gives a value other than undefined,
 * null or false; throws after timeoutMs.
 */
export async function eventually<T> (fn: () => Maybe<T> | Promise<Maybe<T>>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== null && v !== false) return v
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * `a` has `b` among its gossip peers on `topic` (default: results). Heartbeats reach only schedulers
 * and gateways, so a worker knows its scheduler this way, not by a heartbeat.
 */
export function gossipPeer (a: TestNode, b: TestNode, topic = 'inframind/receipts/1'): boolean {
  return a.node.mesh?.libp2p().services.pubsub.getSubscribers(topic).some((p) => p.toString() === b.node.identity.nodeId) === true
}

/** A test node in its own process (`node entrypoint.ts`), so a test can kill -9 it. */
export interface NodeProcess {
  child: ChildProcess
  dir: string
  config: NodeConfig
  nodeId: string
  publicAddr: string
  meshAddr: string
  client: NodeClient
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>
}

/** Starts a test node as a separate process and waits for its node.json; killed when the test ends. */
export async function spawnFor (t: ExecutionContext, opts: TestNodeOptions = {}): Promise<NodeProcess> {
  const { dir, config, file } = await prepareTestNode(opts)
  // A node.json left by an earlier run of the same dir names dead ports: wait for the new one.
  await rm(path.join(dir, NODE_FILE), { force: true })
  const entry = fileURLToPath(new URL('../../entrypoint.ts', import.meta.url))
  const child = spawn(process.execPath, [entry, '--config', file], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  let client: NodeClient | undefined
  let nodeId = ''
  t.teardown(async () => {
    client?.close()
    await kill()
    // A killed node leaves its job containers behind (a restart would reap them; this one is not restarted).
    if (nodeId !== '') await removeContainersOf(nodeId)
    await rm(dir, { recursive: true, force: true })
  })
  const info = await eventually(() => {
    try {
      return JSON.parse(readFileSync(path.join(dir, NODE_FILE), 'utf8')) as { nodeId: string, public: string, mesh: string[] }
    } catch {
      return undefined
    }
  }, 60_000)
  nodeId = info.nodeId
  client = connectNode(info.public)
  const meshAddr = info.mesh.find((a) => a.startsWith('/ip4/127.0.0.1/') && a.includes('/p2p/')) ?? ''
  return { child, dir, config, nodeId: info.nodeId, publicAddr: info.public, meshAddr, client, kill }
}

/** Removes every container the node `nodeId` created (by its inframind.node label). */
async function removeContainersOf (nodeId: string): Promise<void> {
  const run = async (args: string[]): Promise<string> => await new Promise((resolve) => {
    execFile('docker', args, (_err, stdout) => resolve(String(stdout ?? '')))
  })
  const ids = (await run(['ps', '-aq', '--filter', `label=inframind.node=${nodeId}`])).split('\n').filter((x) => x.trim() !== '')
  if (ids.length > 0) await run(['rm', '-f', ...ids])
}
