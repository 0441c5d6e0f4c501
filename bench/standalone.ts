/**
 * One node of the bench's own process, alone (mesh off, metrics off, silent), on port 0 listeners,
 * with a data folder under the run's tmp: what the single-node rows (service, rest, dashboard, cli)
 * measure against.
 */
import path from 'node:path'
import { stringify } from 'yaml'
import { parseConfig } from '../src/config/index.ts'
import { createNode, type InframindNode } from '../src/node.ts'
import { silentLogger } from '../src/telemetry/logger.ts'
import type { BenchContext } from './run.ts'

export interface StandaloneOptions {
  containers: unknown[]
  /** Sections added to (or replacing) the defaults below, e.g. rest, dashboard, jobs. */
  sections?: Record<string, unknown>
}

export async function startStandalone (ctx: BenchContext, name: string, opts: StandaloneOptions): Promise<InframindNode> {
  const dir = path.join(ctx.tmp, name)
  const doc = {
    node: { name: `bench-${name}`, roles: ['worker'], data_dir: dir },
    identity: { key_file: path.join(dir, 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0' },
    jobs: { concurrency: 16, queue_size: 256 },
    telemetry: { metrics: { enabled: false, listen: '127.0.0.1:0' }, log_level: 'silent' },
    dashboard: { listen: '' },
    mesh: { enabled: false },
    ...opts.sections,
    containers: opts.containers
  }
  const node = await createNode({ config: parseConfig(stringify(doc), path.join(dir, 'config.yaml')), logger: silentLogger() })
  await node.start()
  return node
}

/** Waits until the node's service container `id` is healthy (up to a minute); throws if it failed. */
export async function waitHealthy (node: InframindNode, id: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const s = node.runtime.containerStatuses().find((c) => c.id === id)
    if (s?.state === 'healthy') return
    if (s?.state === 'failed') throw new Error(`warm container failed: ${s.lastError}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`container ${id} was not healthy within a minute`)
}

/** `clients` closed loops calling `one` for `seconds`: calls finished per second. */
export async function throughput (seconds: number, clients: number, one: () => Promise<unknown>): Promise<number> {
  const until = performance.now() + seconds * 1000
  let done = 0
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < until) { await one(); done++ }
  }))
  return done / seconds
}
