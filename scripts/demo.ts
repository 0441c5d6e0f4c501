/**
 * `npm run demo`: a local mesh of separate node processes on loopback (a scheduler+gateway, three
 * workers, two validators), joined by bootstrap and the DHT. Sample jobs go in through the gateway's
 * gRPC API as a client would, with progress shown; a table shows each result, the worker that ran
 * it, and its receipt verified offline; one job asks both validators to re-run it and its
 * certificate is checked offline, then looked up again on the archive node; a recurring subscription
 * shows two distinct workers answering every interval (scripts/demo-subscription.ts).
 *
 * `npm run demo -- --cheat` adds a worker whose echo container tampers with its output and catches
 * it first (scripts/demo-cheat.ts); the sample jobs then run and none goes to it.
 *
 * The demo ends by itself: exit 0 when everything it shows held, 1 otherwise. Ctrl-C stops
 * everything, containers included.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { status as grpcStatus } from '@grpc/grpc-js'
import { connectControl, connectNode, type NodeClient } from '../src/api/client.ts'
import { envelopeFromWire } from '../src/api/convert.ts'
import type { Job as WireJob } from '../src/protocol/index.ts'
import { parseArgs } from '../src/cli/args.ts'
import { startDevnet, type Devnet } from '../src/cli/devnet.ts'
import { spinner, stateName, table } from '../src/cli/format.ts'
import { verifyReceipt } from '../src/receipt/index.ts'
import { verifyCertificate } from '../src/verification/index.ts'
import { showArchivedCertificate, showSubscription } from './demo-subscription.ts'
import { catchTheCheat, CHEAT_NAME, CHEAT_WORKER, laterJobs, showReputation, type CheatContext } from './demo-cheat.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Two validators, so a sample can ask for 2 of 2 (and, with --cheat, a disputed job finds a fresh one). */
const VALIDATORS = 2
const WORKERS = 3
/** A verified job runs the container on a worker and on each validator: more time than the node's default on a busy machine. */
const VERIFIED_DEADLINE_MS = 120_000

interface Sample { label: string, containers: string[], input: string, verification?: { method: 'reexecute', validators: number, quorum: number } }

const SAMPLES: Sample[] = [
  { label: 'echo', containers: ['echo'], input: 'hello from the inframind mesh' },
  { label: 'sentiment (positive)', containers: ['sentiment'], input: JSON.stringify({ text: 'I love how fast the team shipped this on March 5, 2026. Great work! Write to alice@example.com' }) },
  { label: 'sentiment (negative)', containers: ['sentiment'], input: 'The delivery cost $45, arrived 3 days late and the box was badly damaged. Terrible.' },
  { label: 'embedding', containers: ['embed'], input: 'edge nodes run sandboxed containers and sign receipts' },
  { label: 'warm model server', containers: ['sentiment-warm'], input: 'What a wonderful, delightful surprise!' },
  { label: 'chain echo → sentiment', containers: ['echo', 'sentiment'], input: 'This chain works beautifully.' },
  { label: `echo, verified ${VALIDATORS} of ${VALIDATORS}`, containers: ['echo'], input: `check me: re-run by ${VALIDATORS} validators`, verification: { method: 'reexecute', validators: VALIDATORS, quorum: VALIDATORS } }
]

interface Outcome { sample: Sample, job?: WireJob, refused?: string }

async function runSample (client: NodeClient, s: Sample): Promise<Outcome> {
  try {
    const verified = s.verification !== undefined ? { verification: s.verification, deadlineMs: VERIFIED_DEADLINE_MS } : {}
    const { jobId } = await client.submitJob({ containers: s.containers, input: new TextEncoder().encode(s.input), ...verified })
    const spin = spinner(process.stderr, `${s.label}: submitted ${jobId}`)
    let job: WireJob | undefined
    for await (const event of client.watchJob(jobId, { timeoutMs: VERIFIED_DEADLINE_MS + 30_000 })) {
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

/** The certificate of a verified sample, checked offline as a client would: who certified it, and whether it holds. */
function certificateLines (s: Sample, job: WireJob, named: (id: string) => string): { text: string, ok: boolean } {
  const head = `"${s.label}" (reexecute, ${s.verification?.quorum} of ${s.verification?.validators} validators)`
  if (stateName(job.state) !== 'success') return { text: `${head}: the job ${stateName(job.state)}: ${job.error}`, ok: false }
  if (job.verificationState !== 'certified' || job.certificate === null) return { text: `${head}: ${job.verificationState || 'not verified'}: ${job.verificationReason}`, ok: false }
  const checked = verifyCertificate(envelopeFromWire(job.certificate), { output: new Uint8Array(job.output) })
  if (!checked.valid) return { text: `${head}: certified, but the certificate does NOT verify offline: ${checked.code}: ${checked.reason}`, ok: false }
  const by = checked.attestations.map((a) => named(a.validatorId))
  return {
    text: `${head}: ran on ${named(checked.receipt.workerId)}, certified by ${by.join(' and ')}\n` +
      `  certificate verified offline ✓: signed by the scheduler (${named(checked.certificate.schedulerId)}), the worker's receipt, ` +
      `${checked.attestations.length} attestations of validators that re-ran the job and got the same output hash, and the output matches`,
    ok: true
  }
}

async function main (): Promise<number> {
  let cheat: boolean
  try {
    cheat = parseArgs(process.argv.slice(2), [], ['cheat']).flags.has('cheat')
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: npm run demo [-- --cheat]   (--cheat: add a worker that tampers with its output, and catch it)\n`)
    return 2
  }
  let net: Devnet | undefined
  let interrupted = false
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130)
    interrupted = true
    process.stderr.write('\nstopping the devnet (containers included)...\n')
    ;(net?.stop() ?? Promise.resolve()).finally(() => process.exit(130))
  })
  const spin = spinner(process.stderr, `starting a local mesh: gateway+scheduler, ${WORKERS} workers${cheat ? ` and a cheating one (${CHEAT_NAME})` : ''}, ${VALIDATORS} validators`)
  try {
    net = await startDevnet({
      nodes: 1 + WORKERS + VALIDATORS,
      validators: VALIDATORS,
      extraWorkers: cheat ? [CHEAT_WORKER] : [],
      baseDir: path.join(ROOT, '.data', 'demo'),
      warmOnFirstWorker: true,
      progress: (line) => spin.update(line)
    })
  } catch (err) {
    spin.stop(`could not start the mesh: ${(err as Error).message}`)
    return 1
  }
  spin.stop('mesh ready')
  const short = (id: string): string => `${id.slice(0, 12)}…${id.slice(-4)}`
  const names = new Map(net.nodes.map((n) => [n.nodeId, n.name]))
  const name = (id: string): string => names.get(id) ?? short(id)
  // Node ids inside the scheduler's progress lines and reasons, by name.
  const named = (text: string): string => text.replace(/12D3KooW[1-9A-HJ-NP-Za-km-z]+/g, name)
  const out = (text: string): void => { process.stdout.write(text) }
  out('\n' + table(['NODE', 'ROLES', 'NODE ID', 'gRPC', 'MESH'], net.nodes.map((n) => [n.name, n.roles.join('+'), short(n.nodeId), n.publicAddr, n.meshAddr.replace(/\/p2p\/.*/, '')])) + '\n')

  const client = connectNode(net.gateway.publicAddr)
  const control = connectControl(net.gateway.controlAddr)
  const worker1 = connectControl(net.nodes[1]!.controlAddr)
  const cheatNode = net.nodes.find((n) => n.name === CHEAT_NAME)
  const cheatClient = cheatNode !== undefined ? connectNode(cheatNode.publicAddr) : undefined
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

    // With --cheat the cheat is caught first, so every sample job after it shows where work goes then.
    const problems: string[] = []
    const ctx: CheatContext | undefined = cheatNode === undefined || cheatClient === undefined
      ? undefined
      : { client, control, cheatClient, cheatId: cheatNode.nodeId, validators: VALIDATORS, named, out }
    const run = ctx === undefined ? undefined : await catchTheCheat(ctx)
    if (ctx !== undefined && run !== undefined) problems.push(...run.problems, ...await showReputation(ctx))

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
        if (v.valid) worker = name(v.receipt.workerId)
      }
      return [sample.label, sample.containers.join('→'), stateName(job.state), `${job.latencyMs} ms`, worker, summarise(job), receipt]
    })
    out('\n' + table(['JOB', 'CONTAINERS', 'STATE', 'LATENCY', 'WORKER', 'RESULT', 'RECEIPT'], rows))
    for (const r of results) {
      if (r.sample.verification === undefined || r.job === undefined) continue
      const c = certificateLines(r.sample, r.job, name)
      out(`\nverified result ${c.text}\n`)
      if (!c.ok) problems.push(`"${r.sample.label}" has no certificate that verifies`)
    }
    out(`\nbad requests refused with a status that says what to fix:\n  ${refusals.join('\n  ')}\n`)

    // Archives and subscriptions (skipped with --cheat, which shows the cheat instead).
    if (ctx === undefined) {
      const verified = results.find((r) => r.sample.verification !== undefined && r.job !== undefined && stateName(r.job.state) === 'success')
      if (verified?.job !== undefined) problems.push(...await showArchivedCertificate(net, verified.job.jobId, new Uint8Array(verified.job.output), { out, name }))
      problems.push(...await showSubscription(net, { out, name }))
    }

    if (ctx !== undefined && run !== undefined && run.caughtAt >= 0) {
      problems.push(...laterJobs(ctx, [
        ...run.jobs.slice(run.caughtAt + 1).map((job, i) => ({ label: `job ${run.caughtAt + i + 2}`, job })),
        ...results.flatMap((r) => r.job !== undefined ? [{ label: r.sample.label, job: r.job }] : [])
      ]))
    }

    const peers = (await control.listPeers()).peers.filter((p) => p.alive)
    out(`\nthe gateway sees ${peers.length} live peers: ${peers.map((p) => {
      const standing = p.score < 0 ? '' : `, score ${p.score.toFixed(2)}${p.excludedUntilMs > Date.now() ? ` excluded ${Math.ceil((p.excludedUntilMs - Date.now()) / 60_000)} min` : ''}`
      return `${name(p.nodeId)} (${p.roles.join('+')}, ${p.latencyMs >= 0 ? `${p.latencyMs.toFixed(0)} ms` : 'ping pending'}${standing})`
    }).join(', ')}\n`)
    if (!results.every((r) => r.job !== undefined && stateName(r.job.state) === 'success')) problems.push('not every sample job succeeded')
    if (!rows.every((r) => r[6] === 'valid ✓')) problems.push('not every receipt verified')
    if (refusals.length !== 2) problems.push('a bad request was not refused')
    if (problems.length > 0) {
      out(`\ndemo FAILED:\n  ${problems.join('\n  ')}\n`)
      return 1
    }
    out(cheat
      ? '\ndemo OK: the cheat\'s first result was disputed and never reached the client, every verified job was certified with the honest output, no job went to the cheat after its exclusion, and every receipt and certificate verified\n'
      : '\ndemo OK: every job succeeded on the mesh, every receipt verified, the verified job\'s certificate held (and its archived copy), and every interval of the subscription got its responses from distinct workers\n')
    return 0
  } finally {
    client.close()
    control.close()
    worker1.close()
    cheatClient?.close()
    const stopping = spinner(process.stderr, 'stopping the mesh')
    await net.stop()
    stopping.stop('all nodes stopped')
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
