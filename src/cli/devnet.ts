/**
 * A local mesh of separate node processes on loopback: one or more scheduler+gateways, workers, and
 * one or more validators (archive roles on the first validators, then workers), joined by bootstrap
 * and the DHT. Used by `npm run demo` and `infra devnet --nodes N [--validators V] [--gateways G] [--archives A]`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { connectControl } from '../api/client.ts'
import { loadOrCreateIdentity } from '../identity/index.ts'
import { createNetworkKeyFile } from '../admission/network-key.ts'
import { signRoster, signedRosterText } from '../roster/index.ts'
import { existsSync } from 'node:fs'
import { NODE_FILE } from '../types.ts'
import { str, UsageError, type ParsedArgs } from './args.ts'
import type { CliIo } from './io.ts'
import { spinner, table } from './format.ts'
import { forcedExitCode, onStopRequests } from './stop.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ENTRYPOINT = path.join(ROOT, 'entrypoint.ts')
/** Long enough for a cold 2-core machine to start node processes and a warm model server. */
const READY_TIMEOUT_MS = 120_000
/** The devnet's mesh name (its rosters name it). */
const DEVNET_MESH = 'devnet'
/** As `npm start` runs a node: a small young generation keeps idle RSS low. */
export const NODE_FLAGS = ['--max-semi-space-size=1', ...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof', '--cpu-prof-interval=2000'] : [])]

export interface DevnetNode {
  name: string
  roles: string[]
  nodeId: string
  dir: string
  publicAddr: string
  controlAddr: string
  meshAddr: string
  logFile: string
  child: ChildProcess
}

export interface Devnet {
  nodes: DevnetNode[]
  gateway: DevnetNode
  stop(): Promise<void>
}

/** A devnet node's entry in `containers:` of its config.yaml. */
export type ContainerDoc = Record<string, unknown>

/** A worker added after the others, serving config.yaml's one-shot containers as `containers` rewrites them. */
export interface ExtraWorker {
  name: string
  containers: (oneshot: ContainerDoc[]) => ContainerDoc[]
}

export interface DevnetOptions {
  /** Nodes (≥ validators + 2): one scheduler+gateway, `validators` validators, the rest workers. */
  nodes: number
  /**
   * Validators among `nodes` (default 1). A job asking for v validators needs v live ones, and a
   * disputed job runs again under v that did not judge it; the first validator is also the archive.
   */
  validators?: number
  /**
   * Scheduler+gateway nodes among `nodes` (default 1): with several, each owns a share of the
   * subscriptions and any of them takes a job; the first is everyone's bootstrap peer.
   */
  gateways?: number
  /** Nodes that also keep records (the archive role), validators first, then workers (default 1). */
  archives?: number
  /** Workers added on top of `nodes` (the demo's cheating worker), in the roster like the others. */
  extraWorkers?: ExtraWorker[]
  baseDir: string
  /** Give the first worker the warm `mode: service` containers of config.yaml (others run one-shot only). */
  warmOnFirstWorker: boolean
  progress: (line: string) => void
  /** Replaces config.yaml's containers on the first `count` workers (benchmarks use a trivial warm service). */
  workerContainers?: { count: number, containers: ContainerDoc[] }
  /** Log level of every node (default: config.yaml's). */
  logLevel?: string
}

/**
 * Which containers a node's config lists: all, one-shot only, none, (the gateway) every container any
 * worker serves, or config.yaml's one-shot containers as a function rewrites them.
 */
interface Plan { name: string, roles: string[], containers: 'all' | 'oneshot' | 'none' | 'admit' | ExtraWorker['containers'] }

/** Gateways first (the first is everyone's bootstrap peer), then workers, extra workers, validators last. */
function plan (n: number, validators: number, warmFirst: boolean, extra: ExtraWorker[], gateways = 1, archives = 1): Plan[] {
  const workers = Array.from({ length: n - gateways - validators }, (_, i): Plan => ({
    name: `worker-${i + 1}`, roles: ['worker'], containers: warmFirst && i === 0 ? 'all' : 'oneshot'
  }))
  // The validators re-run one-shot jobs when a scheduler asks (verification: reexecute). One keeps
  // the name it always had; several are numbered like the workers.
  const checkers = Array.from({ length: validators }, (_, i): Plan => ({
    name: validators === 1 ? 'validator' : `validator-${i + 1}`, roles: ['validator'], containers: 'oneshot'
  }))
  // A gateway admits jobs only for containers its config lists (its Guardian and limits apply); it runs none.
  const fronts = Array.from({ length: gateways }, (_, i): Plan => ({ name: i === 0 ? 'gateway' : `gateway-${i + 1}`, roles: ['scheduler', 'gateway'], containers: 'admit' }))
  for (const keeper of [...checkers, ...workers].slice(0, archives)) keeper.roles = [...keeper.roles, 'archive']
  return [
    ...fronts,
    ...workers,
    ...extra.map((w): Plan => ({ name: w.name, roles: ['worker'], containers: w.containers })),
    ...checkers
  ]
}

export async function startDevnet (opts: DevnetOptions): Promise<Devnet> {
  const validators = opts.validators ?? 1
  const gateways = opts.gateways ?? 1
  const archives = opts.archives ?? 1
  if (!Number.isInteger(validators) || validators < 1) throw new UsageError('a devnet needs at least 1 validator')
  if (!Number.isInteger(gateways) || gateways < 1) throw new UsageError('a devnet needs at least 1 gateway')
  if (opts.nodes < validators + gateways + 1) throw new UsageError(`a devnet of ${gateways} gateway(s) and ${validators} validator(s) needs at least ${validators + gateways + 1} nodes (gateways, a worker, validators)`)
  if (!Number.isInteger(archives) || archives < 0 || archives > opts.nodes - gateways) throw new UsageError(`--archives must be an integer from 0 to ${opts.nodes - gateways} (the validators and workers)`)
  const extra = opts.extraWorkers ?? []
  const names = new Set(plan(opts.nodes, validators, false, [], gateways, archives).map((p) => p.name))
  for (const w of extra) {
    if (names.has(w.name) || !/^[a-z0-9][a-z0-9-]{0,31}$/.test(w.name)) throw new UsageError(`extra worker name ${JSON.stringify(w.name)} is taken or not a plain name (a-z, 0-9, -)`)
    names.add(w.name)
  }
  const base = parse(await readFile(path.join(ROOT, 'config.yaml'), 'utf8')) as Record<string, any>
  const started: DevnetNode[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(started.map(async (n) => {
      if (n.child.exitCode !== null || n.child.signalCode !== null) return
      const exited = new Promise((resolve) => n.child.once('exit', resolve))
      n.child.kill('SIGTERM')
      // A node stops its service containers before exiting; give it time, then insist.
      const timer = setTimeout(() => n.child.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(timer)
    }))
  }
  try {
    let bootstrap = ''
    let workerIndex = 0
    const plans = plan(opts.nodes, validators, opts.warmOnFirstWorker, extra, gateways, archives)
    // A private mesh, as an operator would set one up: one mesh key, one operator key, and a signed
    // roster naming every node with its roles (infra roster init/add/sign do the same by hand).
    await mkdir(opts.baseDir, { recursive: true, mode: 0o700 })
    const meshKeyFile = path.join(opts.baseDir, 'mesh.key')
    if (!existsSync(meshKeyFile)) createNetworkKeyFile(meshKeyFile)
    const { identity: operator } = loadOrCreateIdentity(path.join(opts.baseDir, 'operator.key'))
    const ids = plans.map((p) => loadOrCreateIdentity(path.join(opts.baseDir, p.name, 'identity.key')).identity)
    const roster = signedRosterText(signRoster(operator, {
      mesh: DEVNET_MESH,
      version: Date.now(),
      issuedAtMs: Date.now(),
      expiresAtMs: 0,
      members: plans.map((p, i) => ({ nodeId: ids[i]!.nodeId, roles: p.roles, name: p.name }))
    }))
    for (const p of plans) {
      const dir = path.join(opts.baseDir, p.name)
      await mkdir(dir, { recursive: true, mode: 0o700 })
      // A fresh job store each run; the node keeps its identity between runs.
      await rm(path.join(dir, 'store'), { recursive: true, force: true })
      const keyFile = path.join(dir, 'identity.key')
      const { identity } = loadOrCreateIdentity(keyFile)
      await rm(path.join(dir, NODE_FILE), { force: true })
      const doc = structuredClone(base)
      doc.node = { ...doc.node, name: p.name, roles: p.roles, data_dir: dir }
      doc.identity = { key_file: keyFile }
      // Everything on loopback (a devnet is reachable from this machine only), on ports the OS picks:
      // ports chosen in advance can be taken meanwhile by another node's outbound connections.
      doc.api = { ...doc.api, public: '127.0.0.1:0', control: '127.0.0.1:0' }
      doc.telemetry = { ...doc.telemetry, metrics: { ...doc.telemetry.metrics, listen: '127.0.0.1:0' } }
      doc.dashboard = { ...doc.dashboard, listen: '127.0.0.1:0' }
      const rosterFile = path.join(dir, 'roster.json')
      await writeFile(rosterFile, roster, { mode: 0o600 })
      doc.mesh = {
        ...doc.mesh,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: bootstrap === '' ? [] : [bootstrap],
        admission: { mode: 'private', mesh_name: DEVNET_MESH, network_key_file: meshKeyFile, operators: [operator.nodeId], roster_file: rosterFile }
      }
      doc.runtime = { ...doc.runtime, prefetch: false }
      const containers = (doc.containers ?? []) as ContainerDoc[]
      const oneshot = containers.filter((c) => c.mode !== 'service')
      doc.containers = typeof p.containers === 'function'
        ? p.containers(structuredClone(oneshot))
        : p.containers === 'none' ? [] : p.containers === 'oneshot' ? oneshot : containers
      if (p.containers === 'admit' && opts.workerContainers !== undefined) {
        const listed = new Set(doc.containers.map((c: ContainerDoc) => c.id))
        doc.containers.push(...opts.workerContainers.containers.filter((c) => !listed.has(c.id)))
      }
      // Extra workers keep their own containers.
      if (p.roles.includes('worker') && typeof p.containers !== 'function') {
        if (opts.workerContainers !== undefined && workerIndex < opts.workerContainers.count) doc.containers = opts.workerContainers.containers
        workerIndex += 1
      }
      if (opts.logLevel !== undefined) doc.telemetry.log_level = opts.logLevel
      const configFile = path.join(dir, 'config.yaml')
      await writeFile(configFile, stringify(doc))
      const logFile = path.join(dir, 'node.log')
      const log = await open(logFile, 'w')
      const child = spawn(process.execPath, [...NODE_FLAGS, ENTRYPOINT, '--config', configFile], { stdio: ['ignore', log.fd, log.fd] })
      child.once('exit', () => { log.close().catch(() => {}) })
      const node: DevnetNode = { name: p.name, roles: p.roles, nodeId: identity.nodeId, dir, publicAddr: '', controlAddr: '', meshAddr: '', logFile, child }
      started.push(node)
      opts.progress(`starting ${p.name} (${p.roles.join('+')}) ${identity.nodeId}`)
      // The first node is everyone's bootstrap peer: its address is needed before the others start.
      if (bootstrap === '') {
        await listening(node)
        bootstrap = node.meshAddr
      }
    }
    await Promise.all(started.slice(1).map(async (n) => await listening(n)))
    await waitForMesh(started, opts.progress)
    return { nodes: started, gateway: started[0] as DevnetNode, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Waits for the node's node.json (written once it listens) and fills in its addresses. */
async function listening (n: DevnetNode): Promise<void> {
  const until = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    if (n.child.exitCode !== null) {
      const tail = (await readFile(n.logFile, 'utf8').catch(() => '')).split('\n').slice(-12).join('\n')
      throw new Error(`${n.name} exited during start (log ${n.logFile}):\n${tail}`)
    }
    try {
      const info = JSON.parse(await readFile(path.join(n.dir, NODE_FILE), 'utf8')) as { public: string, control: string, mesh: string[] }
      n.publicAddr = info.public
      n.controlAddr = info.control
      n.meshAddr = info.mesh.find((a) => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? info.mesh[0] ?? ''
      return
    } catch {}
    if (Date.now() > until) throw new Error(`${n.name} did not start listening within ${READY_TIMEOUT_MS / 1000} s (log ${n.logFile})`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Until every node answers and the gateway hears every other node's heartbeat. */
async function waitForMesh (nodes: DevnetNode[], progress: (line: string) => void): Promise<void> {
  const until = Date.now() + READY_TIMEOUT_MS
  const gateway = nodes[0] as DevnetNode
  const control = connectControl(gateway.controlAddr)
  try {
    for (;;) {
      const dead = nodes.find((n) => n.child.exitCode !== null)
      if (dead !== undefined) {
        const tail = (await readFile(dead.logFile, 'utf8').catch(() => '')).split('\n').slice(-12).join('\n')
        throw new Error(`${dead.name} exited during start (log ${dead.logFile}):\n${tail}`)
      }
      try {
        const { peers } = await control.listPeers({ timeoutMs: 1000 })
        const alive = peers.filter((p) => p.alive).length
        if (alive >= nodes.length - 1) {
          progress(`mesh ready: the gateway sees ${alive} peers`)
          return
        }
      } catch {}
      if (Date.now() > until) throw new Error(`the mesh did not form within ${READY_TIMEOUT_MS / 1000} s; logs are in ${path.dirname(gateway.dir)}`)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  } finally {
    control.close()
  }
}

/** `infra devnet --nodes N [--validators V]`: start a mesh, print how to use it, keep it running until Ctrl-C. */
export async function runDevnet (args: ParsedArgs, io: CliIo): Promise<number> {
  const nodes = Number(str(args, 'nodes') ?? 5)
  if (!Number.isInteger(nodes) || nodes < 3 || nodes > 64) throw new UsageError('--nodes must be an integer from 3 to 64')
  const validators = Number(str(args, 'validators') ?? 1)
  if (!Number.isInteger(validators) || validators < 1 || validators > nodes - 2) throw new UsageError(`--validators must be an integer from 1 to ${nodes - 2} (--nodes less the gateway and one worker)`)
  const gateways = Number(str(args, 'gateways') ?? 1)
  if (!Number.isInteger(gateways) || gateways < 1 || gateways > nodes - validators - 1) throw new UsageError(`--gateways must be an integer from 1 to ${nodes - validators - 1} (--nodes less the validators and one worker)`)
  const archives = Number(str(args, 'archives') ?? 1)
  const baseDir = path.resolve(str(args, 'dir') ?? path.join(ROOT, '.data', 'devnet'))
  const spin = spinner(io.stderr, `starting a devnet of ${nodes} nodes`)
  let net: Devnet
  try {
    net = await startDevnet({ nodes, validators, gateways, archives, baseDir, warmOnFirstWorker: args.flags.has('warm'), progress: (line) => spin.update(line) })
  } catch (err) {
    spin.stop(`devnet failed: ${(err as Error).message}`)
    return 1
  }
  spin.stop(`devnet of ${nodes} nodes is up (data and logs in ${baseDir})`)
  io.out(table(['NODE', 'ROLES', 'NODE ID', 'gRPC', 'CONTROL'], net.nodes.map((n) => [n.name, n.roles.join('+'), n.nodeId, n.publicAddr, n.controlAddr])))
  io.out(`\nsubmit jobs through the gateway, e.g.:\n  infra submit --addr ${net.gateway.publicAddr} --container echo --input hello --wait\n  infra submit --addr ${net.gateway.publicAddr} --container echo --input hello --wait --verify reexecute --validators ${Math.min(validators, 2)} --quorum ${Math.min(validators, 2)}\n  infra peers --control ${net.gateway.controlAddr}\n\nCtrl-C or SIGTERM stops every node (and their containers); a second one kills them.\n`)
  // The first stop request (signal, or the launcher's) stops every node cleanly and exits 0; a
  // repeated one kills them at once (their containers may stay) and exits 128 + the signal's number.
  let stopping = false
  let forced: (signal: string) => void = () => {}
  const force = new Promise<number>((resolve) => { forced = (signal) => resolve(forcedExitCode(signal)) })
  let dispose = (): void => {}
  await new Promise<void>((resolve) => {
    dispose = onStopRequests((kind, signal) => { if (kind === 'stop') resolve(); else forced(signal) })
    for (const n of net.nodes) n.child.once('exit', (code) => { if (!stopping && code !== 0) io.err(`${n.name} exited (code ${code}); log: ${n.logFile}\n`) })
  })
  stopping = true
  io.err('stopping the devnet... (signal again to force)\n')
  const code = await Promise.race([net.stop().then(() => 0), force])
  if (code !== 0) {
    io.err('forced: killing every node\n')
    for (const n of net.nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL')
  }
  dispose()
  return code
}
