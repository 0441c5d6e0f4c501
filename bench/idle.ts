import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parse, stringify } from 'yaml'
import type { BenchContext } from './run.ts'
import { NODE_FLAGS } from '../src/cli/devnet.ts'

/** VmRSS of a process, in bytes, from /proc. */
async function rssOf (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1])
  return kb * 1024
}

/** Starts a real node process from the repo's config.yaml (ports moved to free ones), lets it settle, reads its RSS. */
export async function benchIdleRss (ctx: BenchContext, opts: { settleMs: number }): Promise<{ rssMiB: number, settleMs: number, containers: number }> {
  const dir = path.join(ctx.tmp, 'idle')
  await mkdir(dir, { recursive: true })
  const doc = parse(await readFile(path.join(ctx.root, 'config.yaml'), 'utf8')) as Record<string, any>
  doc.node.data_dir = dir
  doc.identity.key_file = path.join(dir, 'identity.key')
  doc.api.public = '127.0.0.1:0'
  doc.api.control = '127.0.0.1:0'
  doc.telemetry.metrics.listen = '127.0.0.1:0'
  doc.mesh.listen = ['/ip4/127.0.0.1/tcp/0']
  doc.telemetry.log_level = 'warn'
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, stringify(doc))
  const child = spawn(process.execPath, [...NODE_FLAGS, path.join(ctx.root, 'entrypoint.ts'), '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  try {
    await new Promise((resolve) => setTimeout(resolve, opts.settleMs))
    if (child.exitCode !== null) throw new Error(`idle node exited early: ${stderr}`)
    return { rssMiB: (await rssOf(child.pid as number)) / 2 ** 20, settleMs: opts.settleMs, containers: (doc.containers as unknown[]).length }
  } finally {
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
  }
}
