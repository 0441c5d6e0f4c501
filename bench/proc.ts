/** What the benches read about node processes from /proc (Linux), and waiting for a fresh mesh to go quiet. */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parse, stringify } from 'yaml'
import { NODE_FLAGS } from '../src/cli/devnet.ts'

/** Settled = the node processes together use under half the machine over a 5 s window. */
const SETTLE_WINDOW_MS = 5_000
const SETTLE_LIMIT_MS = 180_000

/**
 * Waits for the mesh to finish starting (connections, identify, DHT walks and provider records keep a
 * fresh mesh busy for a while), so it is measured in steady state. Returns the time waited.
 */
export async function settle (pids: Array<number | undefined>): Promise<number> {
  const start = Date.now()
  const budget = os.availableParallelism() * SETTLE_WINDOW_MS / 2
  for (;;) {
    const before = await Promise.all(pids.map(async (p) => await cpuMs(p)))
    await new Promise((resolve) => setTimeout(resolve, SETTLE_WINDOW_MS))
    const after = await Promise.all(pids.map(async (p) => await cpuMs(p)))
    const used = after.reduce((sum, a, i) => sum + a - before[i]!, 0)
    if (used < budget || Date.now() - start > SETTLE_LIMIT_MS) return Date.now() - start
  }
}

/** User + system CPU time of a process so far, ms (from /proc; clock ticks are 10 ms). */
export async function cpuMs (pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10
}

/** Busy CPU time of the whole machine so far, ms (from /proc/stat: all but idle and iowait; ticks are 10 ms). */
export async function machineCpuMs (): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? ''
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  return (f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0)) * 10
}

export async function rssMiB (pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
}

/** A node process started from the repo's config.yaml; its stderr's tail is kept for error messages. */
export interface RepoNode { child: ChildProcess, containers: number, stderr: () => string }

/**
 * Starts a real node process from the repo's config.yaml in `dir`, every listener moved to a free
 * port on 127.0.0.1 and logging only warnings, as `npm start` runs it (NODE_FLAGS).
 */
export async function spawnRepoNode (root: string, dir: string): Promise<RepoNode> {
  const doc = parse(await readFile(path.join(root, 'config.yaml'), 'utf8')) as Record<string, any>
  doc.node.data_dir = dir
  doc.identity.key_file = path.join(dir, 'identity.key')
  doc.api.public = '127.0.0.1:0'
  doc.api.control = '127.0.0.1:0'
  doc.telemetry.metrics.listen = '127.0.0.1:0'
  doc.dashboard = { ...doc.dashboard, listen: '127.0.0.1:0' }
  doc.mesh.listen = ['/ip4/127.0.0.1/tcp/0']
  doc.telemetry.log_level = 'warn'
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, stringify(doc))
  const child = spawn(process.execPath, [...NODE_FLAGS, path.join(root, 'entrypoint.ts'), '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8192) })
  return { child, containers: (doc.containers as unknown[]).length, stderr: () => stderr }
}
