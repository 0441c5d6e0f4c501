/**
 * `npm run demo`: starts a real node (a separate process, as an operator would), submits sample
 * jobs through its gRPC API as a client would, shows progress, and prints a table of results with
 * each receipt verified offline.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises'
import { status as grpcStatus } from '@grpc/grpc-js'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { connectControl, connectNode, type NodeClient } from '../src/api/client.ts'
import { envelopeFromWire } from '../src/api/convert.ts'
import type { WireJob } from '../src/api/wire.ts'
import { verifyReceipt } from '../src/receipt/index.ts'
import { spinner, stateName, table, formatBytes } from '../src/cli/format.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEMO_DIR = path.join(ROOT, '.data', 'demo')

function grpcStatusName (code: number): string {
  return grpcStatus[code] ?? String(code)
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

async function writeDemoConfig (): Promise<{ file: string, publicAddr: string, controlAddr: string }> {
  const doc = parse(await readFile(path.join(ROOT, 'config.yaml'), 'utf8')) as Record<string, any>
  const [pub, ctl, metrics] = [await freePort(), await freePort(), await freePort()]
  doc.node.data_dir = DEMO_DIR
  doc.node.name = 'demo'
  doc.identity.key_file = path.join(DEMO_DIR, 'identity.key')
  // The demo listens on loopback only: nothing outside this machine needs to reach it.
  doc.api.public = `127.0.0.1:${pub}`
  doc.api.control = `127.0.0.1:${ctl}`
  doc.telemetry.metrics.listen = `127.0.0.1:${metrics}`
  doc.mesh.listen = ['/ip4/127.0.0.1/tcp/0']
  const file = path.join(DEMO_DIR, 'config.yaml')
  await writeFile(file, stringify(doc))
  return { file, publicAddr: `127.0.0.1:${pub}`, controlAddr: `127.0.0.1:${ctl}` }
}

interface Sample { label: string, containerId: string, input: string }

const SAMPLES: Sample[] = [
  { label: 'echo', containerId: 'echo', input: 'hello from the inframind demo' },
  { label: 'sentiment (positive)', containerId: 'sentiment', input: JSON.stringify({ text: 'I love how fast the team shipped this on March 5, 2026. Great work! Write to alice@example.com' }) },
  { label: 'sentiment (negative)', containerId: 'sentiment', input: 'The delivery cost $45, arrived 3 days late and the box was badly damaged. Terrible.' },
  { label: 'embedding', containerId: 'embed', input: 'edge nodes run sandboxed containers and sign receipts' }
]

async function runSample (client: NodeClient, s: Sample): Promise<{ sample: Sample, job?: WireJob, refused?: string }> {
  try {
    const { jobId } = await client.submitJob({ containerId: s.containerId, input: new TextEncoder().encode(s.input) })
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
  await mkdir(DEMO_DIR, { recursive: true, mode: 0o700 })
  // Each demo starts with an empty job store; the demo node keeps its identity between runs.
  await rm(path.join(DEMO_DIR, 'store'), { recursive: true, force: true })
  const { file, publicAddr, controlAddr } = await writeDemoConfig()
  const logFile = path.join(DEMO_DIR, 'node.log')
  const log = await open(logFile, 'w')
  process.stderr.write(`starting a node (config ${path.relative(ROOT, file)}, log ${path.relative(ROOT, logFile)})\n`)
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'entrypoint.ts'), '--config', file], {
    stdio: ['ignore', log.fd, log.fd]
  })
  let exited = false
  child.on('exit', () => { exited = true })
  const stopNode = async (): Promise<void> => {
    if (exited) return
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
  }
  process.on('SIGINT', () => { stopNode().finally(() => process.exit(130)) })

  const client = connectNode(publicAddr)
  const control = connectControl(controlAddr)
  try {
    const spin = spinner(process.stderr, 'waiting for the node to listen')
    const ready = Date.now()
    for (;;) {
      if (exited) throw new Error(`the node exited during start; see ${logFile}:\n${(await readFile(logFile, 'utf8')).split('\n').slice(-15).join('\n')}`)
      try {
        await control.getStatus({ timeoutMs: 1000 })
        break
      } catch {
        if (Date.now() - ready > 60_000) throw new Error(`the node did not answer within 60 s; see ${logFile}`)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
    spin.stop(`node ready in ${Date.now() - ready} ms`)

    const info = await client.getInfo()
    process.stdout.write(`\nnode ${info.nodeId} (v${info.version}, roles: ${info.roles.join(', ')})\n`)
    process.stdout.write(`hardware: ${info.hardware.cpuCores} x ${info.hardware.cpuModel}, ${formatBytes(info.hardware.memoryBytes)} RAM, GPUs: ${info.hardware.gpus.length === 0 ? 'none' : info.hardware.gpus.map((g) => g.name).join(', ')}\n`)
    process.stdout.write(`containers: ${info.containers.map((c) => `${c.id} (${c.inputSchema} -> ${c.outputSchema}${c.imagePresent ? '' : ', IMAGE MISSING'})`).join(', ')}\n\n`)

    const results = []
    for (const s of SAMPLES) results.push(await runSample(client, s))

    // Bad requests are refused with a status that says what to fix; the node keeps serving.
    const refusals: string[] = []
    for (const bad of [
      { containerId: 'no-such-model', input: new TextEncoder().encode('x') },
      { containerId: 'sentiment', input: Uint8Array.from([0xff, 0xfe, 0x00]) }
    ]) {
      try {
        await client.submitJob(bad)
      } catch (err) {
        const e = err as { code?: number, details?: string, message: string }
        refusals.push(e.details !== undefined ? `${e.code !== undefined ? grpcStatusName(e.code) : ''}: ${e.details}` : e.message)
      }
    }
    const refusal = refusals.length === 2 ? refusals.join('\n  ') : ''

    const rows = results.map(({ sample, job, refused }) => {
      if (job === undefined) return [sample.label, sample.containerId, 'refused', '-', refused ?? '', '-']
      let receipt = 'missing'
      if (job.receipt !== null) {
        const v = verifyReceipt(envelopeFromWire(job.receipt), { output: new Uint8Array(job.output) })
        receipt = v.valid ? 'valid ✓' : `INVALID: ${v.reason}`
      }
      return [sample.label, sample.containerId, stateName(job.state), `${job.latencyMs} ms`, summarise(job), receipt]
    })
    process.stdout.write('\n' + table(['JOB', 'CONTAINER', 'STATE', 'LATENCY', 'RESULT', 'RECEIPT'], rows))
    process.stdout.write(`\nbad requests refused as expected:\n  ${refusal !== '' ? refusal : 'NOT REFUSED (unexpected)'}\n`)

    const status = await control.getStatus()
    process.stdout.write(`jobs served: ${status.jobsServed} (${status.succeeded} ok, ${status.failed} failed), avg latency ${status.avgLatencyMs.toFixed(1)} ms, metrics at ${status.metricsUrl}\n`)
    const allGood = results.every((r) => r.job !== undefined && stateName(r.job.state) === 'success') &&
      rows.every((r) => r[5] === 'valid ✓') && refusal !== ''
    process.stdout.write(allGood ? '\ndemo OK: every job succeeded and every receipt verified\n' : '\ndemo FAILED: see the table above\n')
    return allGood ? 0 : 1
  } finally {
    client.close()
    control.close()
    await stopNode()
    await log.close()
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`)
  process.exit(1)
})
