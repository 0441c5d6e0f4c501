/**
 * Commands through several gateways (`infra sub`, `infra records`, `infra submit --gateway a,b`,
 * `infra run`): one client-library client per command, failures in the user's terms. A job keeps one
 * id on every gateway tried, so a gateway dying mid-job never makes it run twice.
 */
import { readFile } from 'node:fs/promises'
import { connectNode } from '../api/client.ts'
import { inframindClient, type InframindClient, type JobSpec } from '../client/index.ts'
import type { Job } from '../protocol/generated.ts'
import { str, UsageError, type ParsedArgs } from './args.ts'
import { parseContainerList, printJob, reportRpcError } from './client-commands.ts'
import type { CliIo } from './io.ts'
import { resolveEndpoints, resolveGateways } from './endpoints.ts'
import { stateName } from './format.ts'
import { jobProgress } from './progress.ts'

function perCallTimeout (args: ParsedArgs): number {
  const t = str(args, 'timeout')
  if (t === undefined) return 10_000
  const n = Number(t)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout must be a positive number of milliseconds, got "${t}"`)
  return n
}

/** The client for a command's --gateway list (or --addr / INFRAMIND_ADDR / config.yaml). */
export async function clientFor (args: ParsedArgs, io: CliIo): Promise<{ client: InframindClient, gateways: string[], maxMessageBytes?: number }> {
  const gateways = await resolveGateways({ gateway: str(args, 'gateway'), addr: str(args, 'addr'), config: str(args, 'config') }, io.env)
  const { maxMessageBytes } = await resolveEndpoints({ addr: gateways[0], config: str(args, 'config') }, io.env)
  return { client: inframindClient({ gateways, timeoutMs: perCallTimeout(args), maxMessageBytes }), gateways, maxMessageBytes }
}

/**
 * Runs one command's calls on a client for the gateways the arguments name, reporting a failure in
 * the user's terms (`report`, default reportError) and closing the client whatever happens.
 */
export async function withClient (args: ParsedArgs, io: CliIo, act: (client: InframindClient) => Promise<number>,
  report: (err: unknown, gateways: string[], io: CliIo) => number = reportError): Promise<number> {
  const { client, gateways } = await clientFor(args, io)
  try {
    return await act(client)
  } catch (err) {
    return report(err, gateways, io)
  } finally {
    client.close()
  }
}

/** Client-library failures in the user's terms; gRPC statuses as every other command reports them. */
export function reportError (err: unknown, gateways: string[], io: CliIo): number {
  const name = (err as { name?: string }).name
  if (name === 'GatewaysUnavailableError' || name === 'ClientDeadlineError') {
    io.err(`${(err as Error).message}\n(gateways tried: ${gateways.join(', ')}; give others with --gateway a,b,c)\n`)
    return 1
  }
  if (name === 'UsageError') throw err
  return reportRpcError(err, gateways.join(','), io)
}

export function whole (args: ParsedArgs, name: string, min: number, fallback?: number): number {
  const v = str(args, name)
  if (v === undefined) {
    if (fallback !== undefined) return fallback
    throw new UsageError(`--${name} is required`)
  }
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number >= ${min}, got "${v}"`)
  return n
}

/**
 * `infra submit` through several gateways (and `infra run` = `submit --wait`): the same options and
 * output as the one-node submit, with --gateway a,b,c. The job id (--job-id, else a fresh UUID) is
 * the same on every gateway tried, so a gateway dying mid-job never makes it run twice.
 */
export async function runSubmitFailover (args: ParsedArgs, io: CliIo, signal?: AbortSignal): Promise<number> {
  const containers = parseContainerList(str(args, 'container'))
  const text = str(args, 'input')
  const file = str(args, 'input-file')
  if ((text === undefined) === (file === undefined)) throw new UsageError('give exactly one of --input TEXT or --input-file FILE (- for stdin)')
  const input = text !== undefined ? new TextEncoder().encode(text) : file === '-' ? await io.stdin() : new Uint8Array(await readFile(file as string))
  const deadlineMs = whole(args, 'deadline', 0, 0)
  const method = str(args, 'verify')
  if (method !== undefined && method !== 'none' && method !== 'signature' && method !== 'reexecute') throw new UsageError(`--verify must be none, signature or reexecute, got "${method}"`)
  if (method === undefined && (str(args, 'validators') !== undefined || str(args, 'quorum') !== undefined)) throw new UsageError('--validators and --quorum go with --verify signature|reexecute')
  const job: JobSpec = {
    containers,
    input,
    deadlineMs,
    jobId: str(args, 'job-id'),
    requiresProof: args.flags.has('requires-proof'),
    allowProbation: args.flags.has('allow-probation'),
    delegate: str(args, 'delegate'),
    ...(method !== undefined ? { verification: { method, validators: whole(args, 'validators', 1, 0), quorum: whole(args, 'quorum', 1, 0) } } : {})
  }
  const { client, gateways, maxMessageBytes } = await clientFor(args, io)
  const onFailover = (addr: string, err: Error): void => { io.err(`gateway ${addr} failed (${err.message.split('\n')[0]}); trying the next\n`) }
  try {
    const res = await client.submit(job, { signal, onFailover })
    if (args.flags.has('follow')) {
      // Live output comes from the gateway that took the job (a failover mid-stream is the job's own, see follow.ts).
      if (!args.flags.has('json')) io.err(`job ${res.jobId} on ${res.gateway}\n`)
      const node = connectNode(res.gateway, { maxMessageBytes })
      try {
        return await (await import('./logs.ts')).followToUser(node, res.jobId, args, io)
      } finally {
        node.close()
      }
    }
    if (!args.flags.has('wait')) {
      io.out(args.flags.has('json') ? JSON.stringify({ job_id: res.jobId, state: stateName(res.state), duplicate: res.duplicate, gateway: res.gateway }) + '\n' : `${res.jobId}\n`)
      return 0
    }
    const progress = await jobProgress(io.stderr, res.jobId, containers.length, { quiet: args.flags.has('json') })
    progress.update(res.state, `on ${res.gateway}`)
    let done: Job | null = null
    try {
      for await (const event of client.watch(res.jobId, { signal, onFailover })) {
        progress.update(event.state, `${event.detail}${event.detail !== '' ? ' ' : ''}[${event.gateway}]`)
        if (event.job !== null && event.job !== undefined) done = event.job
      }
    } finally {
      progress.stop(done !== null ? `job ${done.jobId}: ${stateName(done.state)} in ${done.latencyMs} ms` : undefined)
    }
    if (done === null) done = await client.get(res.jobId, { signal })
    return await printJob(done, args, io)
  } catch (err) {
    return reportError(err, gateways, io)
  } finally {
    client.close()
  }
}
