/**
 * `npm run demo`: a local mesh of separate node processes on loopback (a scheduler+gateway, three
 * workers, a validator+archive node), joined by bootstrap and the DHT. Sample jobs go in through the
 * gateway's gRPC API as a client would, with progress shown; a table shows each result, the worker
 * that ran it, and its receipt verified offline. Ctrl-C stops everything, containers included.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { status as grpcStatus } from '@grpc/grpc-js'
import { connectControl, connectNode, type NodeClient } from '../src/api/client.ts'
import { envelopeFromWire } from '../src/api/convert.ts'
import type { Job as WireJob } from '../src/protocol/index.ts'
import { startDevnet, type Devnet } from '../src/cli/devnet.ts'
import { spinner, stateName, table } from '../src/cli/format.ts'
import { verifyReceipt } from '../src/receipt/index.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Sample { label: string, containers: string[], input: string }

const SAMPLES: Sample[] = [
  { label: 'echo', containers: ['echo'], input: 'hello from the inframind mesh' },
  { label: 'sentiment (positive)', containers: ['sentiment'], input: JSON.stringify({ text: 'I love how fast the team shipped this on March 5, 2026. Great work! Write to alice@example.com' }) },
  { label: 'sentiment (negative)', containers: ['sentiment'], input: 'The delivery cost $45, arrived 3 days late and the box was badly damaged. Terrible.' },
  { label: 'embedding', containers: ['embed'], input: 'edge nodes run sandboxed containers and sign receipts' },
  { label: 'warm model server', containers: ['sentiment-warm'], input: 'What a wonderful, delightful surprise!' },
  { label: 'chain echo → sentiment', containers: ['echo', 'sentiment'], input: 'This chain works beautifully.' }
]

interface Outcome { sample: Sample, job?: WireJob, refused?: string }

async function runSample (client: NodeClient, s: Sample): Promise<Outcome> {
  try {
    const { jobId } = await client.submitJob({ containers: s.containers, input: new TextEncoder().encode(s.input) })
    const spin = spinner(process.stderr, `${s.label}: submitted ${jobId}`)
    let job: WireJob | undefined
    for await (const event of client.watchJob(jobId, { timeoutMs: 120_000 })) {
      spin.update(`${s.label}: ${stateName(event.state)}${event.detail !== '' ? ` (${event.detail})` : ''}`)
      if (event.job !== null) job = event.job
    }
    spin.stop(`${s.label}: ${job !== undefined ? `${stateName(job.state)} in ${job.latencyMs} ms` : 'no result'}`)
    return { sample: s, job }
  } catch (err) {
    return { sample: s, refused: (err as Error).message }
  }
}

function summarise (job: WireJob): string {
  const text = Buffer.from(job.output).toString('utf8')
  if (stateName(job.state) === 'failed') return `[${job.errorCode}] ${job.error}`.slice(0, 70)
  try {
    const value = JSON.parse(text) as unknown
    if (Array.isArray(value)) {
      const nums = value.map(Number)
      const norm = Math.sqrt(nums.reduce((a, v) => a + v * v, 0))
      return `${nums.length} floats, ${nums.filter((v) => v !== 0).length} non-zero, |v| = ${norm.toFixed(3)}`
    }
    if (typeof value === 'object' && value !== null) {
      const v = value as { label?: string, sentiment?: number, entities?: Array<{ value: string, type: string }> }
      if (v.label !== undefined) {
        return `${v.label} (${Number(v.sentiment).toFixed(2)}); entities: ${(v.entities ?? []).map((e) => `${e.value}/${e.type}`).join(', ') || 'none'}`
      }
    }
  } catch {}
  return text.trim().slice(0, 70)
}

async function main (): Promise<number> {
  let net: Devnet | undefined
  let interrupted = false
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130)
    interrupted = true
    process.stderr.write('\nstopping the devnet (containers included)...\n')
    ;(net?.stop() ?? Promise.resolve()).finally(() => process.exit(130))
  })
  const spin = spinner(process.stderr, 'starting a local mesh: gateway+scheduler, 3 workers, validator+archive')
  try {
    net = await startDevnet({ nodes: 5, baseDir: path.join(ROOT, '.data', 'demo'), warmOnFirstWorker: true, progress: (line) => spin.update(line) })
  } catch (err) {
    spin.stop(`could not start the mesh: ${(err as Error).message}`)
    return 1
  }
  spin.stop('mesh ready')
  const short = (id: string): string => `${id.slice(0, 12)}…${id.slice(-4)}`
  const names = new Map(net.nodes.map((n) => [n.nodeId, n.name]))
  process.stdout.write('\n' + table(['NODE', 'ROLES', 'NODE ID', 'gRPC', 'MESH'], net.nodes.map((n) => [n.name, n.roles.join('+'), short(n.nodeId), n.publicAddr, n.meshAddr.replace(/\/p2p\/.*/, '')])) + '\n')

  const client = connectNode(net.gateway.publicAddr)
  const control = connectControl(net.gateway.controlAddr)
  const worker1 = connectControl(net.nodes[1]!.controlAddr)
  try {
    // The warm model server loads its model at boot; wait for it rather than fail the first job.
    const warm = spinner(process.stderr, 'waiting for the warm model server on worker-1')
    for (let i = 0; i < 240; i++) {
      const containers = await worker1.listContainers().catch(() => [])
      const state = containers.find((c) => c.id === 'sentiment-warm')?.state ?? 'unknown'
      warm.update(`warm model server on worker-1: ${state}`)
      if (state === 'healthy' || state === 'failed') break
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    warm.stop()

    const results: Outcome[] = []
    for (const s of SAMPLES) results.push(await runSample(client, s))

    const refusals: string[] = []
    for (const bad of [
      { containerId: 'no-such-model', input: new TextEncoder().encode('x') },
      { containerId: 'sentiment', input: new TextEncoder().encode('x'), jobId: 'has spaces' }
    ]) {
      try {
        await client.submitJob(bad)
      } catch (err) {
        const e = err as { code?: number, details?: string, message: string }
        refusals.push(e.details !== undefined ? `${grpcStatus[e.code ?? 2] ?? e.code}: ${e.details}` : e.message)
      }
    }

    const rows = results.map(({ sample, job, refused }) => {
      if (job === undefined) return [sample.label, sample.containers.join('→'), 'refused', '-', '-', refused ?? '', '-']
      let receipt = 'missing'
      let worker = '-'
      if (job.receipt !== null) {
        const v = verifyReceipt(envelopeFromWire(job.receipt), { output: new Uint8Array(job.output) })
        receipt = v.valid ? 'valid ✓' : `INVALID: ${v.reason}`
        if (v.valid) worker = names.get(v.receipt.workerId) ?? short(v.receipt.workerId)
      }
      return [sample.label, sample.containers.join('→'), stateName(job.state), `${job.latencyMs} ms`, worker, summarise(job), receipt]
    })
    process.stdout.write('\n' + table(['JOB', 'CONTAINERS', 'STATE', 'LATENCY', 'WORKER', 'RESULT', 'RECEIPT'], rows))
    process.stdout.write(`\nbad requests refused with a status that says what to fix:\n  ${refusals.join('\n  ')}\n`)

    const peers = await control.listPeers()
    process.stdout.write(`\nthe gateway sees ${peers.peers.filter((p) => p.alive).length} live peers: ${peers.peers.filter((p) => p.alive).map((p) => `${names.get(p.nodeId) ?? short(p.nodeId)} (${p.roles.join('+')}, ${p.latencyMs >= 0 ? `${p.latencyMs.toFixed(0)} ms` : 'ping pending'})`).join(', ')}\n`)
    const allGood = results.every((r) => r.job !== undefined && stateName(r.job.state) === 'success') &&
      rows.every((r) => r[6] === 'valid ✓') && refusals.length === 2
    process.stdout.write(allGood ? '\ndemo OK: every job succeeded on the mesh and every receipt verified\n' : '\ndemo FAILED: see the table above\n')
    return allGood ? 0 : 1
  } finally {
    client.close()
    control.close()
    worker1.close()
    const stopping = spinner(process.stderr, 'stopping the mesh')
    await net.stop()
    stopping.stop('all nodes stopped')
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
