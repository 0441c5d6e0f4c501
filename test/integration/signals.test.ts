/**
 * `infra start` and `infra devnet` stop on a signal sent to the pid the user started (the launcher
 * bin/infra.js), not only on Ctrl-C to the whole process group: exit 0 after a clean stop, and a
 * devnet leaves none of its node processes behind.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { containerYaml } from '../helpers/node.ts'

const INFRA = fileURLToPath(new URL('../../bin/infra.js', import.meta.url))
/** A devnet starts several node processes on a shared 2-core machine: be patient. */
const UP_TIMEOUT_MS = 110_000
const EXIT_TIMEOUT_MS = 60_000

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

interface Launched { child: ChildProcess, output: () => string, exited: Promise<number | null> }

/** `node bin/infra.js ...` in its own process group; teardown kills the group and `extraPids()` whatever happens. */
function launch (t: ExecutionContext, args: string[], extraPids: () => number[] = () => []): Launched {
  const child = spawn(process.execPath, [INFRA, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr?.on('data', (b: Buffer) => { out += b.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => {
    for (const pid of extraPids()) if (alive(pid)) process.kill(pid, 'SIGKILL')
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }
  })
  return { child, output: () => out, exited }
}

/** Polls `fn` until it gives a value (not undefined or false) or `timeoutMs` passes (then undefined). */
async function eventually<T> (fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T | undefined> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > until) return undefined
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

async function exitCode (l: Launched): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), EXIT_TIMEOUT_MS) })
  const code = await Promise.race([l.exited, late])
  clearTimeout(timer)
  if (code === 'late') throw new Error(`no exit within ${EXIT_TIMEOUT_MS / 1000} s of the signal; output:\n${l.output()}`)
  return code
}

async function nodeFile (dir: string): Promise<{ pid: number } | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, 'node.json'), 'utf8')) as { pid: number }
  } catch {
    return undefined
  }
}

async function startConfig (t: ExecutionContext): Promise<{ dir: string, file: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-signals-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'config.yaml')
  const doc = {
    node: { name: 'signals', roles: ['worker'], data_dir: dir },
    identity: { key_file: path.join(dir, 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0' },
    telemetry: { metrics: { enabled: false }, log_level: 'warn' },
    dashboard: { listen: '' },
    runtime: { prefetch: false },
    mesh: { enabled: false },
    containers: [containerYaml('echo')]
  }
  await writeFile(file, stringify(doc))
  return { dir, file }
}

/** `infra start` launched and up: the launcher and the pid of the node process it runs. */
async function startedNode (t: ExecutionContext): Promise<{ l: ReturnType<typeof launch>, nodePid: number }> {
  const { dir, file } = await startConfig(t)
  let nodePid = 0
  const l = launch(t, ['start', '--config', file], () => nodePid === 0 ? [] : [nodePid])
  const info = await eventually(async () => l.child.exitCode === null ? await nodeFile(dir) : false, UP_TIMEOUT_MS)
  t.truthy(info, l.output())
  nodePid = info!.pid
  return { l, nodePid }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test.serial(`infra start stops cleanly on ${signal} sent to its pid and exits 0`, async (t) => {
    const { l, nodePid } = await startedNode(t)
    t.not(nodePid, l.child.pid, 'the node runs in the launcher\'s child')
    process.kill(l.child.pid!, signal)
    t.is(await exitCode(l), 0, l.output())
    t.true(await eventually(() => !alive(nodePid), EXIT_TIMEOUT_MS), 'the node process is gone')
  })
}

test.serial('a second SIGTERM to infra start forces the stop with exit 143', async (t) => {
  const { l, nodePid } = await startedNode(t)
  process.kill(l.child.pid!, 'SIGTERM')
  process.kill(l.child.pid!, 'SIGTERM')
  const code = await exitCode(l)
  // The node may finish its clean stop before the second signal is read; either way it is not left running.
  t.true(code === 143 || code === 0, `exit ${code}: ${l.output()}`)
  t.true(await eventually(() => !alive(nodePid), EXIT_TIMEOUT_MS), 'the node process is gone')
})

test.serial('infra devnet stops on SIGTERM sent to its pid, and every node process it started is gone', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-devnet-signals-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const pids: number[] = []
  const l = launch(t, ['devnet', '--nodes', '4', '--validators', '2', '--dir', dir], () => pids)
  const up = await eventually(() => l.child.exitCode === null && l.output().includes('is up'), UP_TIMEOUT_MS)
  t.true(up, l.output())
  // --validators 2 of --nodes 4: a gateway, one worker, two validators (the first also the archive).
  t.regex(l.output(), /validator-1 +validator\+archive /)
  t.regex(l.output(), /validator-2 +validator /)
  for (const name of ['gateway', 'worker-1', 'validator-1', 'validator-2']) {
    const info = await nodeFile(path.join(dir, name))
    t.truthy(info, `${name} wrote node.json`)
    if (info !== undefined) pids.push(info.pid)
  }
  t.is(pids.length, 4)
  t.true(pids.every(alive))
  process.kill(l.child.pid!, 'SIGTERM')
  t.is(await exitCode(l), 0, l.output())
  await eventually(() => pids.every((pid) => !alive(pid)), EXIT_TIMEOUT_MS)
  t.deepEqual(pids.filter(alive), [], 'no node process outlives the devnet')
})
