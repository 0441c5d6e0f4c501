/**
 * Streaming output: time from a one-shot container's own first write to that output at a client of
 * Node.StreamJobOutput, against the same container's first write reaching a raw reader of the engine's
 * attach stream (dockerode), alternated in one run. The container stamps its first write with its own
 * clock: it runs busybox `adjtimex`, which reads the kernel's time (microseconds) and prints it as its
 * whole first write; the readers stamp arrival with the same clock (one kernel), so each difference is
 * the time that write took to reach the reader. The container then sleeps, so the job is still
 * running when its first chunk arrives.
 */
import path from 'node:path'
import { readFileSync } from 'node:fs'
import type { Duplex } from 'node:stream'
import Dockerode from 'dockerode'
import { stringify } from 'yaml'
import { parseConfig } from '../src/config/index.ts'
import { createNode } from '../src/node.ts'
import { connectNode, type NodeClient } from '../src/api/client.ts'
import { silentLogger } from '../src/telemetry/logger.ts'
import { resolveEngine } from '../src/runtime/docker.ts'
import { summarise, type Summary } from './stats.ts'
import type { BenchContext } from './run.ts'

const IMAGE = 'inframind/echo:1'
/** The first write carries the container's clock; the job then runs on (still running at the first chunk). */
const COMMAND = ['sh', '-c', 'adjtimex; usleep 300000; echo done']

/** Node overhead p50 over the container's own first write (issue 13). */
export const STREAMING_TARGET_MS = 5

export interface StreamingResult {
  rounds: number
  /** Container's first write → first chunk at a StreamJobOutput client, ms. */
  node: Summary
  /** Container's first write → first stdout frame at a raw attach-stream reader, ms. */
  attach: Summary
  /** node.p50 - attach.p50: what the node adds to the engine's own path. */
  addedP50Ms: number
  /** Rounds whose first chunk came while GetJob still said running (should be all). */
  whileRunning: number
  failed: number
}

/** Epoch ms with sub-ms precision (performance's clock starts at timeOrigin). */
function nowMs (): number {
  return performance.timeOrigin + performance.now()
}

/** The container's clock from adjtimex's output (time.tv_sec / time.tv_usec), epoch ms; undefined until both lines are in. */
function containerClock (text: string): number | undefined {
  const sec = /time\.tv_sec:\s+(\d+)/.exec(text)?.[1]
  const usec = /time\.tv_usec:\s+(\d+)/.exec(text)?.[1]
  return sec === undefined || usec === undefined ? undefined : Number(sec) * 1000 + Number(usec) / 1000
}

async function viaNode (client: NodeClient): Promise<{ ms: number, running: boolean }> {
  const { jobId } = await client.submitJob({ containerId: 'clock', input: new Uint8Array() })
  let firstAt = 0
  let text = ''
  let running = false
  for await (const chunk of client.streamJobOutput(jobId, { timeoutMs: 60_000 })) {
    if (chunk.done) {
      if (chunk.state !== 'JOB_STATE_SUCCESS') throw new Error(`streaming job failed: ${chunk.errorCode} ${chunk.error}`)
      break
    }
    if (firstAt === 0) {
      firstAt = nowMs()
      running = (await client.getJob(jobId)).state === 'JOB_STATE_RUNNING'
    }
    text += Buffer.from(chunk.data).toString()
  }
  const wrote = containerClock(text)
  if (wrote === undefined) throw new Error(`no clock in the output: ${JSON.stringify(text.slice(0, 200))}`)
  return { ms: firstAt - wrote, running }
}

/** The same container, created and attached by hand: the engine's own path from the write to a reader. */
async function viaAttach (docker: Dockerode, digest: string): Promise<number> {
  const container = await docker.createContainer({
    Image: digest,
    Cmd: COMMAND,
    User: '65534:65534',
    NetworkDisabled: true,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: { ReadonlyRootfs: true, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Tmpfs: { '/tmp': 'rw,noexec,nosuid,size=64m' }, NetworkMode: 'none' }
  })
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true }) as unknown as Duplex
    let firstAt = 0
    let text = ''
    const done = new Promise<void>((resolve, reject) => {
      // Docker's multiplexed frames: 8-byte header, then the payload; only the arrival of the first matters.
      stream.on('data', (buf: Buffer) => {
        if (firstAt === 0) firstAt = nowMs()
        text += buf.toString('latin1')
      })
      stream.on('end', resolve)
      stream.on('close', resolve)
      stream.on('error', reject)
    })
    await container.start()
    await Promise.race([done, container.wait()])
    stream.destroy()
    const wrote = containerClock(text)
    if (wrote === undefined) throw new Error('no clock in the attach stream')
    return firstAt - wrote
  } finally {
    await container.remove({ force: true }).catch(() => {})
  }
}

export async function benchStreaming (ctx: BenchContext, opts: { rounds: number }): Promise<StreamingResult> {
  const lock = JSON.parse(readFileSync(path.join(ctx.root, 'containers', 'images.lock.json'), 'utf8')) as Record<string, string>
  const digest = lock[IMAGE] as string
  const dir = path.join(ctx.tmp, 'streaming')
  const doc = {
    node: { name: 'bench', roles: ['worker'], data_dir: dir },
    identity: { key_file: path.join(dir, 'identity.key') },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0' },
    telemetry: { metrics: { enabled: false, listen: '127.0.0.1:0' }, log_level: 'silent' },
    dashboard: { listen: '' },
    mesh: { enabled: false },
    containers: [{
      id: 'clock', image: IMAGE, digest, command: COMMAND,
      resources: { cpus: 1, memory: '64m', pids: 32 }, timeout_ms: 30_000, max_output_bytes: 1 << 16,
      input_schema: 'text', output_schema: 'text'
    }]
  }
  const config = parseConfig(stringify(doc), path.join(dir, 'config.yaml'))
  const node = await createNode({ config, logger: silentLogger() })
  await node.start()
  const client = connectNode(node.api.publicAddress())
  const docker = new Dockerode(resolveEngine(config.runtime.socket).options)
  const nodeMs: number[] = []
  const attachMs: number[] = []
  let whileRunning = 0
  let failed = 0
  try {
    // One of each first, unmeasured: image and engine caches warm for both sides.
    await viaNode(client)
    await viaAttach(docker, digest)
    for (let i = 0; i < opts.rounds; i++) {
      const sides: Array<() => Promise<void>> = [
        async () => {
          const r = await viaNode(client)
          nodeMs.push(r.ms)
          if (r.running) whileRunning += 1
        },
        async () => { attachMs.push(await viaAttach(docker, digest)) }
      ]
      // Alternate which side goes first, so neither always runs on a machine the other just warmed or loaded.
      if (i % 2 === 1) sides.reverse()
      for (const side of sides) {
        try {
          await side()
        } catch (err) {
          failed += 1
          process.stderr.write(`bench streaming: ${(err as Error).message}\n`)
        }
      }
    }
  } finally {
    client.close()
    await node.stop()
  }
  const n = summarise(nodeMs)
  const a = summarise(attachMs)
  return { rounds: opts.rounds, node: n, attach: a, addedP50Ms: n.p50 - a.p50, whileRunning, failed }
}

export function streamingMet (r: StreamingResult): boolean {
  return r.failed === 0 && r.node.p50 <= STREAMING_TARGET_MS
}

export function renderStreaming (r: StreamingResult): string {
  const ms = (v: number): string => `${v.toFixed(2)} ms`
  return `| streaming: a one-shot container's first write to the first chunk at a StreamJobOutput client, ${r.rounds} rounds alternated${r.failed > 0 ? ` (${r.failed} FAILED)` : ''} | p50 ${ms(r.node.p50)}, p99 ${ms(r.node.p99)} (${r.whileRunning}/${r.node.n} while the job ran) | the same write to a raw reader of the engine's attach stream: p50 ${ms(r.attach.p50)}, p99 ${ms(r.attach.p99)} | node adds ${ms(r.addedP50Ms)} at p50 | p50 <= ${STREAMING_TARGET_MS} ms ${streamingMet(r) ? 'met' : 'NOT met'} |`
}

export function streamingNote (r: StreamingResult): string {
  return `Streaming: one node in the bench process; the container (${IMAGE}, \`${COMMAND.join(' ')}\`) stamps its first write with the kernel clock (busybox adjtimex prints tv_sec/tv_usec), and each reader stamps the first bytes' arrival with the same clock; the baseline creates and attaches the same container through the engine API by hand. ${r.rounds} rounds, the two sides alternating which goes first.`
}
