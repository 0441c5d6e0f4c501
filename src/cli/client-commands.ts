import { readFile, writeFile } from 'node:fs/promises'
import * as grpc from '@grpc/grpc-js'
import { connectControl, connectNode } from '../api/client.ts'
import { envelopeFromWire } from '../api/convert.ts'
import type { Job, JobStep } from '../protocol/generated.ts'
import { envelopeToJson } from '../envelope/index.ts'
import { str, UsageError, type ParsedArgs } from './args.ts'
import type { CliIo } from './io.ts'
import { resolveEndpoints, type Endpoints } from './endpoints.ts'
import { formatBytes, formatDuration, printable, shortDigest, stateName, table } from './format.ts'
import { jobProgress } from './progress.ts'

export type { CliIo } from './io.ts'

export async function endpoints (args: ParsedArgs, io: CliIo, needs: 'control' | 'both' = 'both'): Promise<Endpoints> {
  return await resolveEndpoints({ addr: str(args, 'addr'), control: str(args, 'control'), config: str(args, 'config'), needs }, io.env)
}

export function timeoutMs (args: ParsedArgs): number {
  const t = str(args, 'timeout')
  if (t === undefined) return 10_000
  const n = Number(t)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout must be a positive number of milliseconds, got "${t}"`)
  return n
}

/** The JSON form of a job: what `--json` prints and what `infra verify` accepts. */
export function jobToJson (job: Job): Record<string, unknown> {
  const text = printable(job.output)
  return {
    job_id: job.jobId,
    container_id: job.containerId,
    containers: job.containers,
    state: stateName(job.state),
    ...(text !== undefined ? { output: text } : {}),
    output_base64: Buffer.from(job.output).toString('base64'),
    error: job.error,
    error_code: job.errorCode,
    exit_code: job.exitCode,
    latency_ms: job.latencyMs,
    worker_id: job.workerId,
    // Open mesh: a worker not in the roster ran it, and nobody has verified the result.
    ...(job.workerOnProbation ? { worker_on_probation: true } : {}),
    created_at: iso(job.createdAtMs),
    started_at: iso(job.startedAtMs),
    finished_at: iso(job.finishedAtMs),
    history: job.history.map((h) => ({ state: stateName(h.state), at: iso(h.atMs), detail: h.detail })),
    steps: job.steps.map(stepToJson),
    receipt: job.receipt !== null ? envelopeToJson(envelopeFromWire(job.receipt)) : null,
    verification: {
      method: job.verification?.method ?? 'none',
      validators: job.verification?.validators ?? 0,
      quorum: job.verification?.quorum ?? 0,
      state: job.verificationState,
      reason: job.verificationReason
    },
    certificate: job.certificate !== null ? envelopeToJson(envelopeFromWire(job.certificate)) : null
  }
}

function stepToJson (step: JobStep): Record<string, unknown> {
  const text = step.output.byteLength > 0 ? printable(step.output) : undefined
  return {
    container_id: step.containerId,
    image_digest: step.imageDigest,
    status: step.status,
    exit_code: step.exitCode,
    latency_ms: step.latencyMs,
    output_bytes: step.outputBytes,
    output_hash: Buffer.from(step.outputHash).toString('hex'),
    ...(text !== undefined ? { output: text } : {}),
    ...(step.output.byteLength > 0 ? { output_base64: Buffer.from(step.output).toString('base64') } : {}),
    error: step.error
  }
}

function iso (ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null
}

export async function runStatus (args: ParsedArgs, io: CliIo): Promise<number> {
  const ep = await endpoints(args, io, 'control')
  const client = connectControl(ep.control)
  try {
    const s = await client.getStatus({ timeoutMs: timeoutMs(args) })
    if (args.flags.has('json')) {
      io.out(JSON.stringify(s, null, 2) + '\n')
      return 0
    }
    const rows: Array<[string, string]> = [
      ['Node ID', s.nodeId],
      ['Version', s.version],
      ['Roles', s.roles.join(', ')],
      ['Uptime', formatDuration(s.uptimeMs)],
      ['Jobs Served', `${s.jobsServed} (${s.succeeded} succeeded, ${s.failed} failed)`],
      ['Avg Latency', s.jobsServed > 0 ? `${s.avgLatencyMs.toFixed(1)} ms (last 50 jobs)` : '-'],
      ['Active Jobs', `${s.activeJobs} running${s.meshJobsInFlight > 0 ? ` (${s.meshJobsInFlight} on mesh workers)` : ''}, ${s.queuedJobs} queued`],
      ['CPU', `${s.cpuPercent.toFixed(1)} % of one core (node process)`],
      ['RAM', `${formatBytes(s.rssBytes)} node RSS; host ${formatBytes(s.memoryUsedBytes)} used of ${formatBytes(s.memoryTotalBytes)}`],
      ['Image Cache', s.imageCacheHits + s.imageCacheMisses === 0 ? 'no lookups yet' : `${(s.imageCacheHitRatio * 100).toFixed(1)} % hits (${s.imageCacheHits} hits, ${s.imageCacheMisses} fetched)`],
      ['Guardian', `${s.guardianRejections} jobs refused`],
      ...(s.containersReapedAtStart > 0 ? [['Cleanup', `${s.containersReapedAtStart} containers left by an earlier run removed at start`] as [string, string]] : []),
      ['Metrics', s.metricsUrl === '' ? 'disabled' : s.metricsUrl]
    ]
    io.out(rows.map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n') + '\n\nContainers\n')
    io.out(table(['ID', 'MODE', 'STATE', 'RESTARTS', 'IMAGE', 'DIGEST', 'SCHEMA', 'NOTE'], s.containers.map((c) => [
      c.id, c.mode, c.state, String(c.restarts), c.image, shortDigest(c.digest), `${c.inputSchema} -> ${c.outputSchema}`,
      c.lastError !== '' ? c.lastError.slice(0, 80) : (c.imagePresent ? '' : 'image missing: run npm run setup')
    ])))
    return 0
  } catch (err) {
    return reportRpcError(err, ep.control, io)
  } finally {
    client.close()
  }
}

async function readInput (args: ParsedArgs, io: CliIo): Promise<Uint8Array> {
  const text = str(args, 'input')
  const file = str(args, 'input-file')
  if ((text === undefined) === (file === undefined)) throw new UsageError('give exactly one of --input TEXT or --input-file FILE (- for stdin)')
  if (text !== undefined) return new TextEncoder().encode(text)
  if (file === '-') return await io.stdin()
  return new Uint8Array(await readFile(file as string))
}

/** `--container a` or a chain `--container a,b,c` (the output of each feeds the next). */
export function parseContainerList (value: string | undefined): string[] {
  if (value === undefined) throw new UsageError('--container ID is required (list them with `infra status`; a,b,c runs a chain)')
  const ids = value.split(',').map((id) => id.trim())
  if (ids.some((id) => id === '')) throw new UsageError(`--container "${value}" has an empty entry; give ID or ID,ID,...`)
  return ids
}

/** `--verify none|signature|reexecute [--validators V] [--quorum Q]`; nothing given = the gateway's default. */
function verificationArgs (args: ParsedArgs): { verification?: { method: 'none' | 'signature' | 'reexecute', validators: number, quorum: number } } {
  const method = str(args, 'verify')
  const count = (name: string): number => {
    const v = str(args, name)
    if (v === undefined) return 0
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number of validators, got "${v}"`)
    return n
  }
  const validators = count('validators')
  const quorum = count('quorum')
  if (method === undefined) {
    if (validators > 0 || quorum > 0) throw new UsageError('--validators and --quorum go with --verify signature|reexecute')
    return {}
  }
  if (method !== 'none' && method !== 'signature' && method !== 'reexecute') throw new UsageError(`--verify must be none, signature or reexecute, got "${method}"`)
  return { verification: { method, validators, quorum } }
}

export async function runSubmit (args: ParsedArgs, io: CliIo): Promise<number> {
  const containers = parseContainerList(str(args, 'container'))
  const input = await readInput(args, io)
  const deadline = str(args, 'deadline')
  const deadlineMs = deadline === undefined ? 0 : Number(deadline)
  if (!Number.isInteger(deadlineMs) || deadlineMs < 0) throw new UsageError(`--deadline must be milliseconds, got "${deadline}"`)
  const ep = await endpoints(args, io)
  const client = connectNode(ep.public, { maxMessageBytes: ep.maxMessageBytes })
  try {
    const res = await client.submitJob({
      // One container goes as container_id, which every node version understands.
      ...(containers.length === 1 ? { containerId: containers[0] } : { containers }),
      input,
      deadlineMs,
      jobId: str(args, 'job-id'),
      requiresProof: args.flags.has('requires-proof'),
      allowProbation: args.flags.has('allow-probation'),
      delegate: str(args, 'delegate'),
      ...verificationArgs(args)
    }, { timeoutMs: timeoutMs(args) })
    if (args.flags.has('follow')) {
      if (!args.flags.has('json')) io.err(`job ${res.jobId}\n`)
      return await (await import('./logs.ts')).followToUser(client, res.jobId, args, io)
    }
    if (!args.flags.has('wait')) {
      io.out(args.flags.has('json') ? JSON.stringify({ job_id: res.jobId, state: stateName(res.state), duplicate: res.duplicate }) + '\n' : `${res.jobId}\n`)
      return 0
    }
    const progress = await jobProgress(io.stderr, res.jobId, containers.length, { quiet: args.flags.has('json') })
    progress.update(res.state, '')
    let job: Job | null = null
    try {
      for await (const event of client.watchJob(res.jobId)) {
        progress.update(event.state, event.detail)
        if (event.job !== null) job = event.job
      }
    } finally {
      progress.stop(job !== null ? `job ${job.jobId}: ${stateName(job.state)} in ${job.latencyMs} ms` : undefined)
    }
    if (job === null) job = await client.getJob(res.jobId)
    return await printJob(job, args, io)
  } catch (err) {
    return reportRpcError(err, ep.public, io)
  } finally {
    client.close()
  }
}

/** Prints a finished job as `submit --wait` does (output, or the failure; --json; --output-file). */
export async function printJob (job: Job, args: ParsedArgs, io: CliIo): Promise<number> {
  const outFile = str(args, 'output-file')
  if (outFile !== undefined) await writeFile(outFile, job.output)
  const failed = stateName(job.state) === 'failed'
  if (args.flags.has('json')) {
    io.out(JSON.stringify(jobToJson(job), null, 2) + '\n')
    return failed ? 1 : 0
  }
  if (failed) {
    io.err(`job ${job.jobId} failed [${job.errorCode}]: ${job.error}\n`)
    return 1
  }
  const text = printable(job.output)
  if (outFile === undefined) io.out(text !== undefined ? (text.endsWith('\n') ? text : text + '\n') : `(${job.output.byteLength} bytes of binary output; use --output-file FILE or --json)\n`)
  return 0
}

export async function runJob (args: ParsedArgs, io: CliIo): Promise<number> {
  const id = args.positionals[0]
  if (id === undefined) throw new UsageError('usage: infra job ID [--json | --receipt | --certificate | --steps] [--output-file FILE]')
  const ep = await endpoints(args, io)
  const client = connectNode(ep.public, { maxMessageBytes: ep.maxMessageBytes })
  try {
    const job = await client.getJob(id, { timeoutMs: timeoutMs(args), includeSteps: args.flags.has('steps') })
    if (args.flags.has('receipt')) {
      if (job.receipt === null) { io.err(`job ${id} has no receipt yet (state: ${stateName(job.state)})\n`); return 1 }
      io.out(JSON.stringify(envelopeToJson(envelopeFromWire(job.receipt)), null, 2) + '\n')
      return 0
    }
    if (args.flags.has('certificate')) {
      if (job.certificate === null) {
        const why = job.verificationState === '' ? 'the job was not verified (submit it with --verify reexecute)' : `verification is ${job.verificationState}${job.verificationReason !== '' ? `: ${job.verificationReason}` : ''}`
        io.err(`job ${id} has no certificate: ${why}\n`)
        return 1
      }
      io.out(JSON.stringify(envelopeToJson(envelopeFromWire(job.certificate)), null, 2) + '\n')
      return 0
    }
    if (args.flags.has('json')) return await printJob(job, args, io)
    const rows: Array<[string, string]> = [
      ['Job', job.jobId],
      [job.containers.length > 1 ? 'Chain' : 'Container', job.containers.length > 1 ? job.containers.join(' → ') : job.containerId],
      ['State', stateName(job.state) + (job.errorCode !== '' ? ` [${job.errorCode}]` : '')],
      ['Latency', job.finishedAtMs > 0 ? `${job.latencyMs} ms` : '-'],
      ['Input', formatBytes(job.inputBytes)],
      ['Output', formatBytes(job.output.byteLength)],
      ['Receipt', job.receipt !== null ? 'signed (infra job ID --receipt > r.json; infra verify r.json)' : 'none yet']
    ]
    if (job.workerId !== '') rows.push(['Worker', job.workerId + (job.workerOnProbation ? ' (on probation: not in the roster, result unverified)' : '')])
    if (job.verificationState !== '') {
      const v = job.verification
      const how = v !== null ? `${v.method}, ${v.quorum} of ${v.validators} validators` : ''
      const said = job.verificationState === 'certified' ? 'certified (infra job ID --certificate > c.json; infra verify c.json)' : `${job.verificationState}${job.verificationReason !== '' ? `: ${job.verificationReason}` : ''}`
      rows.push(['Verified', `${said} [${how}]`])
    }
    if (job.error !== '') rows.push(['Error', job.error])
    io.out(rows.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n') + '\n')
    io.out('History\n' + job.history.map((h) => `  ${new Date(h.atMs).toISOString()}  ${stateName(h.state).padEnd(8)} ${h.detail}`).join('\n') + '\n')
    if (args.flags.has('steps')) io.out(formatSteps(job.steps))
    const text = printable(job.output)
    if (job.output.byteLength > 0) io.out('Output\n' + (text ?? `(${job.output.byteLength} bytes of binary output)`) + '\n')
    return 0
  } catch (err) {
    return reportRpcError(err, ep.public, io)
  } finally {
    client.close()
  }
}

/** One block per step: a table row, then its output when it is text (only present with --steps). */
function formatSteps (steps: JobStep[]): string {
  if (steps.length === 0) return 'Steps\n  (none ran yet)\n'
  const rows = steps.map((s, i) => [
    `${i + 1}/${steps.length}`, s.containerId, shortDigest(s.imageDigest) || '-', s.status, `${s.latencyMs} ms`, formatBytes(s.outputBytes)
  ])
  const lines = table(['STEP', 'CONTAINER', 'DIGEST', 'STATUS', 'LATENCY', 'OUTPUT'], rows).trimEnd().split('\n')
  let out = 'Steps\n' + lines[0] + '\n'
  steps.forEach((s, i) => {
    out += lines[i + 1] + '\n'
    if (s.error !== '') out += `    error: ${s.error}\n`
    const text = s.output.byteLength > 0 ? printable(s.output) : undefined
    if (text !== undefined) out += text.replace(/\n$/, '').split('\n').map((l) => `    | ${l}`).join('\n') + '\n'
    else if (s.output.byteLength > 0) out += `    (${s.output.byteLength} bytes of binary output; use --json)\n`
  })
  return out
}

export async function runJobs (args: ParsedArgs, io: CliIo): Promise<number> {
  const state = str(args, 'state')
  const states = ['pending', 'running', 'success', 'failed']
  if (state !== undefined && !states.includes(state)) throw new UsageError(`--state must be one of ${states.join(', ')}`)
  const limitText = str(args, 'limit')
  const limit = Number(limitText ?? 50)
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a whole number of jobs, got "${limitText}"`)
  const ep = await endpoints(args, io)
  const client = connectNode(ep.public)
  try {
    const jobs = await client.listJobs({
      state: state === undefined ? undefined : `JOB_STATE_${state.toUpperCase()}` as never,
      limit
    }, { timeoutMs: timeoutMs(args) })
    if (args.flags.has('json')) { io.out(JSON.stringify(jobs, null, 2) + '\n'); return 0 }
    if (jobs.length === 0) { io.out('no jobs\n'); return 0 }
    io.out(table(['JOB', 'CONTAINER', 'STATE', 'LATENCY', 'CREATED', 'ERROR'], jobs.map((j) => [
      j.jobId, j.containerId, stateName(j.state), j.finishedAtMs > 0 ? `${j.latencyMs} ms` : '-',
      new Date(j.createdAtMs).toISOString(), j.error.length > 60 ? j.error.slice(0, 57) + '...' : j.error
    ])))
    return 0
  } catch (err) {
    return reportRpcError(err, ep.public, io)
  } finally {
    client.close()
  }
}

export async function runPeers (args: ParsedArgs, io: CliIo): Promise<number> {
  const ep = await endpoints(args, io, 'control')
  const client = connectControl(ep.control)
  try {
    const res = await client.listPeers({ timeoutMs: timeoutMs(args) })
    if (args.flags.has('json')) { io.out(JSON.stringify(res, null, 2) + '\n'); return 0 }
    if (res.addresses.length === 0) { io.out('this node is not on the mesh (mesh.enabled is false)\n'); return 0 }
    io.out(`node ${res.nodeId}\nlistening on ${res.addresses.join(', ')}\nadmission: ${res.admission} mesh\n\n`)
    const peers = res.peers.filter((p) => args.flags.has('all') || p.alive || p.connected)
    if (peers.length === 0) io.out('no peers yet (check mesh.bootstrap)\n')
    else {
      // ROLES: what the roster grants (claims in heartbeats count for nothing); heartbeats reach only schedulers.
      // SCORE: this node's scheduler's record of the worker (- when it never assigned to it).
      io.out(table(['NODE', 'ROLES', 'CONTAINERS', 'LATENCY', 'LAST SEEN', 'LOAD', 'SCORE', 'ADDRESS'], peers.map((p) => [
        p.nodeId, (p.rosterRoles ?? []).join(',') || 'not in roster', p.containers.join(',') || '-', p.latencyMs >= 0 ? `${p.latencyMs.toFixed(0)} ms` : '-',
        p.lastSeenMs > 0 ? `${((Date.now() - p.lastSeenMs) / 1000).toFixed(1)} s ago` : 'never', p.load.toFixed(2),
        (p.score ?? -1) < 0 ? '-' : `${p.score.toFixed(2)}${(p.excludedUntilMs ?? 0) > Date.now() ? ` excluded ${Math.ceil((p.excludedUntilMs - Date.now()) / 60_000)} min` : ''}`,
        p.addresses[0] ?? '-'
      ])))
    }
    const rejected = Object.entries(res.rejected)
    if (rejected.length > 0) io.out(`\nrejected gossip: ${rejected.map(([k, v]) => `${k} ${v}`).join(', ')}\n`)
    const ignored = Object.entries(res.ignored ?? {})
    if (ignored.length > 0) io.out(`ignored gossip (valid, unwanted): ${ignored.map(([k, v]) => `${k} ${v}`).join(', ')}\n`)
    for (const b of res.banned ?? []) io.out(`banned: ${b.nodeId} for ${Math.max(0, Math.round((b.untilMs - Date.now()) / 1000))} s more (${b.reason})\n`)
    return 0
  } catch (err) {
    return reportRpcError(err, ep.control, io)
  } finally {
    client.close()
  }
}

/** One place that turns an RPC failure into what the user should do. */
export function reportRpcError (err: unknown, address: string, io: CliIo): number {
  if (err instanceof UsageError) throw err
  const e = err as Partial<grpc.ServiceError>
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED && /waiting for|connect/i.test(e.details ?? '')) {
    io.err(`inframind node not reachable at ${address}: is it running? Start it with \`infra start\` (or \`npm start\`), or point the CLI at it with --addr/--control.\n`)
    return 1
  }
  if (typeof e.code === 'number') {
    io.err(`error: ${e.details ?? e.message} (${grpc.status[e.code]})\n`)
    return 1
  }
  io.err(`error: ${(err as Error).message ?? String(err)}\n`)
  return 1
}
