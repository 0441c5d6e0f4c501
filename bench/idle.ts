import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { BenchContext } from './run.ts'
import { rssMiB, spawnRepoNode } from './proc.ts'

/** Starts a real node process from the repo's config.yaml (ports moved to free ones), lets it settle, reads its RSS. */
export async function benchIdleRss (ctx: BenchContext, opts: { settleMs: number }): Promise<{ rssMiB: number, settleMs: number, containers: number }> {
  const dir = path.join(ctx.tmp, 'idle')
  await mkdir(dir, { recursive: true })
  const node = await spawnRepoNode(ctx.root, dir)
  try {
    await new Promise((resolve) => setTimeout(resolve, opts.settleMs))
    if (node.child.exitCode !== null) throw new Error(`idle node exited early: ${node.stderr()}`)
    return { rssMiB: await rssMiB(node.child.pid), settleMs: opts.settleMs, containers: node.containers }
  } finally {
    node.child.kill('SIGTERM')
    await new Promise((resolve) => node.child.once('exit', resolve))
  }
}
