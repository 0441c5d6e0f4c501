import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { stringify } from 'yaml'
import { parseConfig } from '../src/config/index.ts'
import { createNode } from '../src/node.ts'
import { connectNode } from '../src/api/client.ts'
import { silentLogger } from '../src/telemetry/logger.ts'
import type { ContainerConfig } from '../src/config/types.ts'
import { summarise, percentile, type Summary } from './stats.ts'
import type { BenchContext } from './run.ts'

const IMAGE = 'inframind/echo:1'

/** The docker CLI flags that give the same sandbox the runtime builds, so both sides do the same work. */
function dockerRunArgs (c: ContainerConfig): string[] {
  return [
    'run', '--rm', '-i', '--network', 'none', '--read-only', '--tmpfs', '/tmp:rw,noexec,nosuid,size=64m',
    '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--pids-limit', String(c.resources.pids),
    '--memory', String(c.resources.memoryBytes), '--memory-swap', String(c.resources.memoryBytes),
    '--cpus', String(c.resources.cpus), '--user', c.user, '-e', 'JOB_ID=bench', c.digest, ...c.command
  ]
}

async function dockerRun (args: string[], input: Uint8Array): Promise<number> {
  const t0 = performance.now()
  await new Promise<void>((resolve, reject) => {
    const p = spawn('docker', args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = 0
    p.stdout.on('data', (d: Buffer) => { out += d.byteLength })
    p.on('error', reject)
    p.on('close', (code) => code === 0 && out === input.byteLength ? resolve() : reject(new Error(`docker run exited ${code} with ${out} bytes`)))
    p.stdin.end(input)
  })
  return performance.now() - t0
}

export interface OneShotResult {
  image: string
  pairs: number
  inputBytes: number
  node: Summary
  dockerRun: Summary
  ratioOfMedians: number
  medianPairedRatio: number
}

export async function benchOneShot (ctx: BenchContext, opts: { pairs: number }): Promise<OneShotResult> {
  const lock = JSON.parse(readFileSync(path.join(ctx.root, 'containers', 'images.lock.json'), 'utf8')) as Record<string, string>
  const doc = {
    node: { name: 'bench', roles: ['worker'], data_dir: path.join(ctx.tmp, 'oneshot') },
    identity: { key_file: path.join(ctx.tmp, 'oneshot', 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0' },
    telemetry: { metrics: { enabled: false, listen: '127.0.0.1:0' }, log_level: 'silent' },
    dashboard: { listen: '' },
    mesh: { enabled: false },
    containers: [{
      id: 'echo', image: IMAGE, digest: lock[IMAGE], command: ['cat'],
      resources: { cpus: 1, memory: '64m', pids: 32 }, timeout_ms: 30_000, max_output_bytes: 1 << 20,
      input_schema: 'text', output_schema: 'text'
    }]
  }
  const config = parseConfig(stringify(doc), path.join(ctx.tmp, 'oneshot', 'config.yaml'))
  const node = await createNode({ config, logger: silentLogger() })
  await node.start()
  const client = connectNode(node.api.publicAddress())
  const input = new TextEncoder().encode('the quick brown fox jumps over the lazy dog\n'.repeat(20))
  const args = dockerRunArgs(config.containers[0])

  const viaNode = async (): Promise<number> => {
    const t0 = performance.now()
    const { jobId } = await client.submitJob({ containerId: 'echo', input })
    for await (const event of client.watchJob(jobId, { timeoutMs: 60_000 })) {
      if (event.job !== null) {
        if (event.job.state !== 'JOB_STATE_SUCCESS' || event.job.output.byteLength !== input.byteLength) throw new Error(`bench job failed: ${event.job.error}`)
      }
    }
    return performance.now() - t0
  }

  try {
    // Warm both paths once (first container start, page cache, gRPC channel).
    await viaNode()
    await dockerRun(args, input)
    const nodeTimes: number[] = []
    const dockerTimes: number[] = []
    const ratios: number[] = []
    for (let i = 0; i < opts.pairs; i++) {
      let a: number
      let b: number
      if (i % 2 === 0) { a = await viaNode(); b = await dockerRun(args, input) } else { b = await dockerRun(args, input); a = await viaNode() }
      nodeTimes.push(a)
      dockerTimes.push(b)
      ratios.push(a / b)
    }
    const node50 = percentile(nodeTimes, 50)
    const docker50 = percentile(dockerTimes, 50)
    return {
      image: IMAGE,
      pairs: opts.pairs,
      inputBytes: input.byteLength,
      node: summarise(nodeTimes),
      dockerRun: summarise(dockerTimes),
      ratioOfMedians: node50 / docker50,
      medianPairedRatio: percentile(ratios, 50)
    }
  } finally {
    client.close()
    await node.stop()
  }
}
