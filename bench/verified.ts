/**
 * Verified results, measured: the same trivial job through the gateway of a 10-node devnet with
 * verification `reexecute` (v=2, q=2: end to end until the client holds the certificate) and with
 * `none`, alternated pair by pair in one run so the machine's noise falls on both alike.
 *
 * The devnet is `startDevnet`'s with 3 validators: a scheduler+gateway, 6 workers serving a warm
 * trivial container, and 3 validators (the first also the archive), which the devnet gives one-shot
 * containers only; they are restarted serving the workers' warm container, so re-executions are
 * warm too.
 *
 * "Container time excluded" subtracts what the receipts say the containers took: for `none`, the
 * worker's receipt latency_ms; for a certified job, the worker's plus the part of the slowest
 * attesting validator's re-run that was still going after the worker's result arrived (validators
 * start when the worker accepts the job), read from each validator's own record of its re-execution
 * (GetJob of the validation job id on its public API, after the run).
 */
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parse, stringify } from 'yaml'
import { connectControl, connectNode, type NodeClient } from '../src/api/client.ts'
import { envelopeFromWire } from '../src/api/convert.ts'
import { startDevnet, type Devnet, type DevnetNode } from '../src/cli/devnet.ts'
import type { Job } from '../src/protocol/index.ts'
import { decodeReceipt } from '../src/receipt/index.ts'
import { validationJobId, verifyCertificate } from '../src/verification/index.ts'
import { cpuMs, settle } from './proc.ts'
import { restart, until } from './reassign.ts'
import { percentile, summarise, type Summary } from './stats.ts'
import { warmEcho, WARM_ECHO_ID } from './warm-echo.ts'
import type { BenchContext } from './run.ts'

const NODES = 10
/** v=2, and a third so a lost or refusing validator has a replacement. */
const VALIDATORS = 3
/** The rest, less the gateway: every worker serves the warm container. */
const WORKERS = NODES - 1 - VALIDATORS
const POLICY = { method: 'reexecute', validators: 2, quorum: 2 } as const
/** A job's deadline: ample for a warm echo and its re-runs; a job that needs it is a failure worth seeing. */
const DEADLINE_MS = 30_000
/** Until the mesh serves the warm container and certifies (9 warm containers start on 2 cores). */
const READY_TIMEOUT_MS = 240_000
/** Unmeasured jobs of each kind first: connections from the gateway to every worker and validator open. */
const WARMUP_JOBS = 12
/** The idle mesh's own CPU (heartbeats, gossip, DHT) is measured this long and taken off the CPU per job. */
const IDLE_WINDOW_MS = 5_000

type Kind = 'certified' | 'none'

interface Sample { kind: Kind, pair: number, ms: number, job?: Job, error?: string, verifyMs?: number }

export interface VerifiedSide {
  /** Client-observed RunJob call → the finished job in hand. */
  endToEnd: Summary
  /** endToEnd minus the container time the receipts record (see the file comment). */
  excluded: Summary
  /** What was subtracted. */
  containerMs: Summary
  /** Jobs that failed or threw (not in the latencies). */
  failed: number
}

export interface VerifiedResult {
  nodes: number
  workers: number
  validators: number
  policy: typeof POLICY
  jobsPerKind: number
  container: string
  none: VerifiedSide
  certified: VerifiedSide & {
    /** Parts of containerMs: the worker's run, and the slowest attesting validator's re-run. */
    workerMs: Summary
    slowestValidatorMs: Summary
    /** The gateway's own history: "verifying" → job finished (re-runs, attestations, certificate). */
    gatewayVerifyPhaseMs: Summary
    /**
     * That phase in three (one machine, one clock), by the validator whose re-run ended last:
     * "verifying" → its jobs service took the re-run; took → ended there (queue + run); ended → the job finished at the gateway.
     */
    phases: { toValidatorMs: Summary, atValidatorMs: Summary, backMs: Summary }
    /** The client's offline verifyCertificate of each certificate (not in endToEnd). */
    certificateCheckMs: Summary
    /** Jobs that finished but not certified, by verificationState, with the first few reasons. */
    notCertified: Record<string, number>
    reasons: string[]
    invalidCertificates: number
    /** Certified jobs whose validator re-run times could not be read (only the worker's time subtracted). */
    validatorTimesMissing: number
  }
  /** certified / none, container time excluded; and end to end. */
  ratioP50: number
  ratioP99: number
  endToEndRatioP50: number
  endToEndRatioP99: number
  /** Median over pairs of certified / none (excluded). */
  medianPairedRatio: number
  /**
   * CPU (user + system) per job in a block of one kind after the timed run, less what the idle mesh
   * uses in as long (idleCores): all node processes, and by role.
   */
  cpuMsPerJob: Record<Kind, { mesh: number, gateway: number, workers: number, validators: number }>
  /** Cores the idle devnet's node processes use together. */
  idleCores: number
  settledAfterMs: number
}

const encode = (s: string): Uint8Array => new TextEncoder().encode(s)
const describe = (err: unknown): string => ((err as { details?: string }).details ?? (err as Error).message ?? String(err)).slice(0, 160)

/** SIGTERM (its containers stop with it), SIGKILL if it has not exited in 20 s. */
async function stopNode (n: DevnetNode): Promise<void> {
  if (n.child.exitCode !== null || n.child.signalCode !== null) return
  const exited = once(n.child, 'exit')
  n.child.kill('SIGTERM')
  const timer = setTimeout(() => n.child.kill('SIGKILL'), 20_000)
  await exited
  clearTimeout(timer)
}

/**
 * The devnet gives its validators config.yaml's one-shot containers only: each is restarted (same
 * identity, store and roster) serving the workers' warm container instead, as an operator would
 * reconfigure a node (a node reads its containers at start).
 */
async function serveWarmOnValidators (validators: DevnetNode[], root: string, echo: Record<string, unknown>): Promise<void> {
  await Promise.all(validators.map(stopNode))
  for (const n of validators) {
    const file = path.join(n.dir, 'config.yaml')
    const doc = parse(await readFile(file, 'utf8')) as Record<string, unknown>
    doc.containers = [echo]
    await writeFile(file, stringify(doc))
    await restart(n, root)
  }
}

async function runOne (client: NodeClient, kind: Kind, pair: number): Promise<Sample> {
  const input = encode(`${kind} job ${pair}`)
  const t0 = performance.now()
  try {
    const job = await client.runJob({
      containerId: WARM_ECHO_ID, input, deadlineMs: DEADLINE_MS, verification: kind === 'none' ? { method: 'none' } : POLICY
    }, { timeoutMs: DEADLINE_MS + 5_000 })
    const ms = performance.now() - t0
    if (job.state !== 'JOB_STATE_SUCCESS') return { kind, pair, ms, job, error: `${job.state} ${job.errorCode}: ${job.error}`.slice(0, 160) }
    if (Buffer.compare(Buffer.from(job.output), Buffer.from(input)) !== 0) return { kind, pair, ms, job, error: 'the output is not the input' }
    if (kind === 'none' || job.verificationState !== 'certified' || job.certificate === null) return { kind, pair, ms, job }
    const v0 = performance.now()
    const checked = verifyCertificate(envelopeFromWire(job.certificate), { output: job.output })
    return { kind, pair, ms, job, verifyMs: performance.now() - v0, error: checked.valid ? undefined : `certificate invalid: ${checked.code}: ${checked.reason}` }
  } catch (err) {
    return { kind, pair, ms: performance.now() - t0, error: describe(err) }
  }
}

/** Until the gateway sees the warm workers and the validators offer the container, and verified jobs come back certified by each validator. */
async function waitUntilCertifying (client: NodeClient, net: Devnet, validators: DevnetNode[]): Promise<void> {
  const control = connectControl(net.gateway.controlAddr)
  const attested = new Set<string>()
  let last = 'nothing tried yet'
  try {
    await until(`the devnet did not certify ${WARM_ECHO_ID} jobs by every validator`, READY_TIMEOUT_MS, async () => {
      try {
        const { peers } = await control.listPeers({ timeoutMs: 2_000 })
        const offering = peers.filter((p) => p.alive && p.containers.includes(WARM_ECHO_ID))
        const v = offering.filter((p) => p.rosterRoles.includes('validator')).length
        if (offering.length < WORKERS + validators.length || v < validators.length) {
          last = `${offering.length - v} workers and ${v} validators offer ${WARM_ECHO_ID}`
          return undefined
        }
      } catch (err) {
        last = describe(err)
        return undefined
      }
      const s = await runOne(client, 'certified', -1)
      if (s.error !== undefined || s.job?.verificationState !== 'certified') {
        last = s.error ?? `${s.job?.verificationState}: ${s.job?.verificationReason}`
        return undefined
      }
      const checked = verifyCertificate(envelopeFromWire(s.job.certificate!))
      if (checked.valid) for (const a of checked.attestations) attested.add(a.validatorId)
      last = `${attested.size} of ${validators.length} validators attested so far`
      return attested.size >= validators.length ? true : undefined
    }, 250)
  } catch (err) {
    throw new Error(`${(err as Error).message} (last: ${last})`, { cause: err })
  } finally {
    control.close()
  }
}

interface ValidatorRun { latencyMs: number, createdAtMs: number, finishedAtMs: number }

/** Each attesting validator's record of its re-run (receipt latency_ms, and when its jobs service took and ended it); undefined where unreadable. */
async function validatorRuns (job: Job, clients: Map<string, NodeClient>): Promise<Array<ValidatorRun | undefined>> {
  const checked = verifyCertificate(envelopeFromWire(job.certificate!))
  if (!checked.valid) return [undefined]
  const id = validationJobId(decodeReceipt(envelopeFromWire(job.receipt!).payload).jobHash)
  return await Promise.all(checked.attestations.map(async (a) => {
    try {
      const run = await clients.get(a.validatorId)?.getJob(id, { timeoutMs: 5_000 })
      if (run?.receipt == null) return undefined
      return { latencyMs: decodeReceipt(new Uint8Array(run.receipt.payload)).latencyMs, createdAtMs: Number(run.createdAtMs), finishedAtMs: Number(run.finishedAtMs) }
    } catch {
      return undefined
    }
  }))
}

const workerMs = (job: Job): number => decodeReceipt(new Uint8Array(job.receipt!.payload)).latencyMs

export async function benchVerified (ctx: BenchContext, opts: { jobs: number }): Promise<VerifiedResult> {
  process.stderr.write(`bench: verified jobs (reexecute v=2 q=2) vs unverified, ${NODES}-node devnet, ${opts.jobs} of each\n`)
  const echo: Record<string, unknown> = { ...await warmEcho(ctx.root), deterministic: true }
  const net = await startDevnet({
    nodes: NODES, validators: VALIDATORS, baseDir: path.join(ctx.tmp, 'verified'), warmOnFirstWorker: false, workerContainers: { count: WORKERS, containers: [echo] }, logLevel: 'warn', progress: () => {}
  })
  const client = connectNode(net.gateway.publicAddr)
  const validatorClients = new Map<string, NodeClient>()
  try {
    const validators = net.nodes.filter((n) => n.roles.includes('validator'))
    await serveWarmOnValidators(validators, ctx.root, echo)
    for (const v of validators) validatorClients.set(v.nodeId, connectNode(v.publicAddr))
    await waitUntilCertifying(client, net, validators)
    for (let i = 0; i < WARMUP_JOBS; i++) await runOne(client, i % 2 === 0 ? 'none' : 'certified', -1)
    const settledAfterMs = await settle(net.nodes.map((n) => n.child.pid))

    const samples: Sample[] = []
    for (let pair = 0; pair < opts.jobs; pair++) {
      // Which kind goes first alternates, so neither always follows the other's leftover work.
      for (const kind of (pair % 2 === 0 ? ['certified', 'none'] : ['none', 'certified']) as Kind[]) samples.push(await runOne(client, kind, pair))
    }

    // What each kind costs the machine, in a block of its own (the timed pairs mix them).
    const cpuMsPerJob = { certified: { mesh: 0, gateway: 0, workers: 0, validators: 0 }, none: { mesh: 0, gateway: 0, workers: 0, validators: 0 } }
    const cpuJobs = Math.min(50, opts.jobs)
    const pids = net.nodes.map((n) => n.child.pid)
    const idleFrom = await Promise.all(pids.map(cpuMs))
    await new Promise((resolve) => setTimeout(resolve, IDLE_WINDOW_MS))
    const idleRate = (await Promise.all(pids.map(cpuMs))).map((v, i) => (v - idleFrom[i]!) / IDLE_WINDOW_MS)
    for (const kind of ['none', 'certified'] as Kind[]) {
      const before = await Promise.all(pids.map(cpuMs))
      const t0 = performance.now()
      for (let i = 0; i < cpuJobs; i++) await runOne(client, kind, -1)
      const elapsed = performance.now() - t0
      const used = (await Promise.all(pids.map(cpuMs))).map((v, i) => v - before[i]! - idleRate[i]! * elapsed)
      const sum = (role: string): number => used.filter((_, i) => net.nodes[i]!.roles.includes(role)).reduce((a, b) => a + b, 0) / cpuJobs
      cpuMsPerJob[kind] = { mesh: used.reduce((a, b) => a + b, 0) / cpuJobs, gateway: sum('gateway'), workers: sum('worker'), validators: sum('validator') }
    }

    // Read after the run, so the timed loop makes no calls but the jobs'.
    const none = { e2e: [] as number[], excluded: [] as number[], container: [] as number[], failed: 0 }
    const cert = { e2e: [] as number[], excluded: [] as number[], container: [] as number[], failed: 0, worker: [] as number[], validator: [] as number[], phase: [] as number[], toValidator: [] as number[], atValidator: [] as number[], back: [] as number[], check: [] as number[], missing: 0, invalid: 0 }
    const notCertified: Record<string, number> = {}
    const reasons = new Set<string>()
    const excludedByPair = new Map<number, Partial<Record<Kind, number>>>()
    for (const s of samples) {
      const side = s.kind === 'none' ? none : cert
      if (s.error !== undefined || s.job === undefined) {
        side.failed++
        if (s.error?.startsWith('certificate invalid') === true) cert.invalid++
        if (reasons.size < 5) reasons.add(`${s.kind}: ${s.error ?? 'no job'}`)
        continue
      }
      let container = workerMs(s.job)
      if (s.kind === 'certified') {
        if (s.job.verificationState !== 'certified') {
          notCertified[s.job.verificationState || '(none)'] = (notCertified[s.job.verificationState || '(none)'] ?? 0) + 1
          if (reasons.size < 5) reasons.add(`${s.job.verificationState}: ${s.job.verificationReason}`.slice(0, 200))
          continue
        }
        const runs = await validatorRuns(s.job, validatorClients)
        const known = runs.every((t) => t !== undefined) ? runs as ValidatorRun[] : undefined
        const verifying = s.job.history.find((h) => h.detail.startsWith('verifying:'))
        // Validators start re-running when the worker accepts the job: only the part of the slowest
        // one's run still going once the worker's result was in is on the client's path.
        const slowest = known === undefined || verifying === undefined
          ? undefined
          : Math.max(0, ...known.map((t) => Math.min(t.latencyMs, t.finishedAtMs - Number(verifying.atMs))))
        if (slowest === undefined) cert.missing++
        else cert.validator.push(slowest)
        cert.worker.push(container)
        container += slowest ?? 0
        const finished = Number(s.job.finishedAtMs)
        if (verifying !== undefined) cert.phase.push(finished - Number(verifying.atMs))
        const last = known?.reduce((a, b) => (b.finishedAtMs > a.finishedAtMs ? b : a))
        if (verifying !== undefined && last !== undefined) {
          cert.toValidator.push(last.createdAtMs - Number(verifying.atMs))
          cert.atValidator.push(last.finishedAtMs - last.createdAtMs)
          cert.back.push(finished - last.finishedAtMs)
        }
        cert.check.push(s.verifyMs ?? 0)
      }
      side.e2e.push(s.ms)
      side.container.push(container)
      side.excluded.push(Math.max(0, s.ms - container))
      excludedByPair.set(s.pair, { ...excludedByPair.get(s.pair), [s.kind]: Math.max(0, s.ms - container) })
    }
    const side = (x: typeof none): VerifiedSide => ({ endToEnd: summarise(x.e2e), excluded: summarise(x.excluded), containerMs: summarise(x.container), failed: x.failed })
    const n = side(none)
    const c = side(cert)
    const paired = [...excludedByPair.values()].filter((p) => p.certified !== undefined && p.none !== undefined && p.none > 0).map((p) => p.certified! / p.none!)
    return {
      nodes: NODES,
      workers: WORKERS,
      validators: validators.length,
      policy: POLICY,
      jobsPerKind: opts.jobs,
      container: `${WARM_ECHO_ID} (warm service, ${String(echo.image)} testserver, deterministic: true)`,
      none: n,
      certified: {
        ...c,
        workerMs: summarise(cert.worker),
        slowestValidatorMs: summarise(cert.validator),
        gatewayVerifyPhaseMs: summarise(cert.phase),
        phases: { toValidatorMs: summarise(cert.toValidator), atValidatorMs: summarise(cert.atValidator), backMs: summarise(cert.back) },
        certificateCheckMs: summarise(cert.check),
        notCertified,
        reasons: [...reasons],
        invalidCertificates: cert.invalid,
        validatorTimesMissing: cert.missing
      },
      ratioP50: c.excluded.p50 / n.excluded.p50,
      ratioP99: c.excluded.p99 / n.excluded.p99,
      endToEndRatioP50: c.endToEnd.p50 / n.endToEnd.p50,
      endToEndRatioP99: c.endToEnd.p99 / n.endToEnd.p99,
      medianPairedRatio: percentile(paired, 50),
      cpuMsPerJob,
      idleCores: idleRate.reduce((a, b) => a + b, 0),
      settledAfterMs
    }
  } finally {
    client.close()
    for (const v of validatorClients.values()) v.close()
    await net.stop()
  }
}

/** Jobs of the certified side that did not count: failed, not certified, or with a certificate that did not verify. */
export function verifiedShortfall (r: VerifiedResult): number {
  return r.certified.failed + Object.values(r.certified.notCertified).reduce((a, b) => a + b, 0)
}

export function renderVerified (r: VerifiedResult, targets: { met50: boolean, met99: boolean }): string {
  const ms = (v: number): string => `${v.toFixed(1)} ms`
  const short = verifiedShortfall(r)
  const lost = [
    short > 0 ? `${short} of ${r.jobsPerKind} verified jobs NOT certified` : '',
    r.none.failed > 0 ? `${r.none.failed} unverified jobs FAILED` : ''
  ].filter((x) => x !== '').join(', ')
  return `| verified job (reexecute v=2 q=2, certificate in hand) vs unverified, ${r.nodes} nodes (${r.workers} workers, ${r.validators} validators), warm trivial container, ${r.jobsPerKind} of each alternated${lost !== '' ? ` (${lost})` : ''}, container time excluded | p50 ${ms(r.certified.excluded.p50)}, p99 ${ms(r.certified.excluded.p99)} (end to end p50 ${ms(r.certified.endToEnd.p50)}, p99 ${ms(r.certified.endToEnd.p99)}) | verification none: p50 ${ms(r.none.excluded.p50)}, p99 ${ms(r.none.excluded.p99)} (end to end p50 ${ms(r.none.endToEnd.p50)}, p99 ${ms(r.none.endToEnd.p99)}) | p50 ${r.ratioP50.toFixed(2)}, p99 ${r.ratioP99.toFixed(2)} (median paired ${r.medianPairedRatio.toFixed(2)}; end to end p50 ${r.endToEndRatioP50.toFixed(2)}, p99 ${r.endToEndRatioP99.toFixed(2)}) | p50 <= 2x ${targets.met50 ? 'met' : 'NOT met'}, p99 <= 3x ${targets.met99 ? 'met' : 'NOT met'} |`
}

export function verifiedNote (r: VerifiedResult): string {
  const ms = (v: number): string => `${v.toFixed(1)} ms`
  const c = r.certified
  const notCert = Object.entries(c.notCertified).map(([k, v]) => `${v} ${k}`).join(', ')
  return `Verified: a devnet of ${r.nodes} node processes (gateway+scheduler, ${r.workers} workers, ${r.validators} validators in its roster); the devnet gives validators one-shot containers only, so they are restarted serving the workers' warm container, and all ${r.workers + r.validators} serve ${r.container}. ` +
    `One client runs RunJob through the gateway one job at a time, ${r.jobsPerKind} pairs of a verified and an unverified job with the order alternating, after warm-up jobs and once the mesh settled (${(r.settledAfterMs / 1000).toFixed(0)} s). A verified job counts only when it came back certified and its certificate passed verifyCertificate against the output (checked by the client after the call: ${ms(c.certificateCheckMs.p50)} at the median, not in the times). ` +
    `Container time excluded: the unverified side subtracts the worker's receipt latency_ms (p50 ${ms(r.none.containerMs.p50)}); the verified side subtracts the worker's (p50 ${ms(c.workerMs.p50)}) plus the part of the slower attesting validator's re-run still going after the worker's result was in (validators start re-running when the worker accepts the job; read from each validator's own record of its re-execution after the run; p50 ${ms(c.slowestValidatorMs.p50)}, p99 ${ms(c.slowestValidatorMs.p99)})${c.validatorTimesMissing > 0 ? `; for ${c.validatorTimesMissing} jobs those could not be read and only the worker's time was subtracted` : ''}. The validators re-run on warm containers too, so what is left is the mesh's and the verification's own cost. ` +
    `At the gateway, "verifying" → certificate signed took p50 ${ms(c.gatewayVerifyPhaseMs.p50)}, p99 ${ms(c.gatewayVerifyPhaseMs.p99)}; by the validator that finished last (medians, ms clocks of one machine): to its jobs service taking the re-run ${ms(c.phases.toValidatorMs.p50)} (negative: taken early, while the worker ran), there until it ended (queue + run) ${ms(c.phases.atValidatorMs.p50)}, then to the job finished at the gateway ${ms(c.phases.backMs.p50)}. ` +
    `CPU per job (user + system over all ${r.nodes} node processes, in blocks of one kind after the timed run, less the idle mesh's ${r.idleCores.toFixed(2)} cores for as long; 10 ms clock ticks): ${(['certified', 'none'] as Kind[]).map((k) => `${k === 'none' ? 'unverified' : 'verified'} ${r.cpuMsPerJob[k].mesh.toFixed(1)} ms (gateway ${r.cpuMsPerJob[k].gateway.toFixed(1)}, workers ${r.cpuMsPerJob[k].workers.toFixed(1)}, validators ${r.cpuMsPerJob[k].validators.toFixed(1)})`).join(', ')}.` +
    (notCert !== '' || c.failed > 0 ? ` Not certified: ${[notCert, c.failed > 0 ? `${c.failed} failed${c.invalidCertificates > 0 ? ` (${c.invalidCertificates} with an invalid certificate)` : ''}` : ''].filter((x) => x !== '').join(', ')}; e.g. ${c.reasons.join(' | ')}.` : '') +
    ' The targets count as met only when every verified job was certified.'
}
