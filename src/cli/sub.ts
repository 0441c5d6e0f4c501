/**
 * `infra sub ...`: subscriptions signed with the owner's key, through one or several gateways (the
 * client library, src/client, which sends one signed request to every gateway tried).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { generateIdentity, loadIdentity, type Identity } from '../identity/index.ts'
import { decodeEnvelope, envelopeFromJson, envelopeToJson, type SignedEnvelope } from '../envelope/index.ts'
import type { SubscriptionResponse, SubscriptionStatus } from '../protocol/generated.ts'
import { openSubscriptionOutput, openSubscriptionRequest, signSubscriptionRequest, type SubscriptionSpec } from '../client/index.ts'
import { str, UsageError, type ParsedArgs } from './args.ts'
import { parseContainerList } from './client-commands.ts'
import type { CliIo } from './io.ts'
import { whole, withClient } from './gateways.ts'
import { printable, table } from './format.ts'

const SPEC_OPTIONS = ['key', 'container', 'input', 'frequency', 'period', 'redundancy', 'nonce', 'expires-in', 'deadline', 'verify', 'validators', 'quorum']

async function readInputArg (value: string | undefined, io: CliIo): Promise<Uint8Array> {
  if (value === undefined) throw new UsageError('--input TEXT, --input @FILE or --input @- (stdin) is required')
  if (value === '@-') return await io.stdin()
  if (value.startsWith('@')) return new Uint8Array(await readFile(value.slice(1)))
  return new TextEncoder().encode(value)
}

/** A subscription spec from create/sign options (without the key). */
export async function specFromArgs (args: ParsedArgs, io: CliIo, nowMs = Date.now()): Promise<SubscriptionSpec> {
  const method = str(args, 'verify')
  if (method !== undefined && method !== 'none' && method !== 'signature' && method !== 'reexecute') throw new UsageError(`--verify must be none, signature or reexecute, got "${method}"`)
  if (method === undefined && (str(args, 'validators') !== undefined || str(args, 'quorum') !== undefined)) throw new UsageError('--validators and --quorum go with --verify signature|reexecute')
  const expiresIn = str(args, 'expires-in') !== undefined ? whole(args, 'expires-in', 1) : undefined
  return {
    containers: parseContainerList(str(args, 'container')),
    input: await readInputArg(str(args, 'input'), io),
    frequency: whole(args, 'frequency', 1),
    period: whole(args, 'period', 0),
    redundancy: whole(args, 'redundancy', 1),
    nonce: str(args, 'nonce'),
    lazy: args.flags.has('lazy'),
    ...(expiresIn !== undefined ? { expiresAt: Math.floor(nowMs / 1000) + expiresIn } : {}),
    deadlineMs: whole(args, 'deadline', 0, 0),
    ...(method !== undefined ? { verification: { method, validators: whole(args, 'validators', 1, 0), quorum: whole(args, 'quorum', 1, 0) } } : {})
  }
}

function ownerKey (args: ParsedArgs): Identity {
  const file = str(args, 'key')
  if (file === undefined) throw new UsageError('--key FILE (the owner key; create one with `infra sub key --out FILE`) is required')
  try {
    return loadIdentity(file)
  } catch (err) {
    // The identity module's advice is for node keys; an owner key is made another way.
    if ((err as { name?: string }).name === 'IdentityNotFoundError') throw new Error(`no owner key at ${file}: create one with \`infra sub key --out ${file}\``, { cause: err })
    throw err
  }
}

/** A signed request file: the JSON `sub sign` writes, or a binary SignedEnvelope. */
export async function readSignedFile (file: string): Promise<SignedEnvelope> {
  const bytes = await readFile(file)
  const text = bytes.toString('utf8').trimStart()
  const env = text.startsWith('{') ? envelopeFromJson(JSON.parse(text)) : decodeEnvelope(new Uint8Array(bytes))
  // Refused here rather than by the gateway: the file is not a subscription request at all.
  openSubscriptionRequest(env)
  return env
}

const iso = (unixS: number): string | null => unixS > 0 ? new Date(unixS * 1000).toISOString() : null
const isoMs = (ms: number): string | null => ms > 0 ? new Date(ms).toISOString() : null
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** The JSON form of a subscription (`--json` of create, cancel, get; items of ls). */
export function subscriptionToJson (s: SubscriptionStatus): Record<string, unknown> {
  const sub = s.subscription
  let request: Record<string, unknown> | null = null
  if (sub?.request != null) {
    try {
      const { request: r } = openSubscriptionRequest(sub.request)
      request = {
        containers: r.containers,
        input_bytes: r.input.byteLength,
        frequency: r.frequency,
        period: r.period,
        redundancy: r.redundancy,
        verification: r.verification ?? { method: 'none', validators: 0, quorum: 0 },
        lazy: r.lazy,
        nonce: r.nonce,
        expires_at: iso(r.expiresAt),
        deadline_ms: r.deadlineMs
      }
    } catch {
      // A request that does not verify is shown as missing rather than trusted.
    }
  }
  return {
    id: sub?.id ?? '',
    owner: sub?.owner ?? '',
    state: s.state,
    current_interval: s.currentInterval,
    created_at: iso(sub?.createdAt ?? 0),
    active_at: iso(sub?.activeAt ?? 0),
    cancelled_at: iso(sub?.cancelledAt ?? 0),
    accepted_by: sub?.acceptedBy ?? '',
    owner_scheduler: s.ownerScheduler,
    request,
    responses: s.responses.map((r) => responseToJson(r))
  }
}

/** The JSON form of one accepted response; `output` when it was opened with the owner's key. */
export function responseToJson (r: SubscriptionResponse, output?: Uint8Array): Record<string, unknown> {
  const text = output !== undefined ? printable(output) : undefined
  return {
    subscription_id: r.subscriptionId,
    interval: r.interval,
    index: r.index,
    node_id: r.nodeId,
    job_id: r.jobId,
    output_hash: hex(r.outputHash),
    sealed_output: r.sealedOutput.byteLength > 0,
    accepted_at: isoMs(r.acceptedAtMs),
    scheduler_id: r.schedulerId,
    receipt: r.receipt !== null ? envelopeToJson(r.receipt) : null,
    certificate: r.certificate !== null ? envelopeToJson(r.certificate) : null,
    ...(text !== undefined ? { output: text } : {}),
    ...(output !== undefined ? { output_base64: Buffer.from(output).toString('base64') } : {})
  }
}

function printStatus (s: SubscriptionStatus, io: CliIo): void {
  const j = subscriptionToJson(s)
  const r = j.request as Record<string, any> | null
  const rows: Array<[string, string]> = [
    ['Subscription', String(j.id)],
    ['Owner', String(j.owner)],
    ['State', `${s.state}${s.currentInterval > 0 ? `, interval ${s.currentInterval}` : ''}`]
  ]
  if (r !== null) {
    rows.push([r.containers.length > 1 ? 'Chain' : 'Container', r.containers.join(' → ')])
    rows.push(['Schedule', `${r.frequency} interval${r.frequency === 1 ? '' : 's'}${r.period > 0 ? `, every ${r.period} s` : ' (one-time)'}, ${r.redundancy} node${r.redundancy === 1 ? '' : 's'} each`])
    if (r.verification.method !== 'none') rows.push(['Verified', `${r.verification.method}, ${r.verification.quorum} of ${r.verification.validators} validators`])
    if (r.lazy === true) rows.push(['Outputs', 'lazy (kept by hash in archives)'])
  }
  if (j.active_at !== null) rows.push(['Active at', String(j.active_at)])
  if (j.cancelled_at !== null) rows.push(['Cancelled', String(j.cancelled_at)])
  if (s.ownerScheduler !== '') rows.push(['Coordinator', s.ownerScheduler])
  rows.push(['Responses', String(s.responses.length)])
  io.out(rows.map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n') + '\n')
  if (s.responses.length > 0) {
    io.out(table(['INTERVAL', 'INDEX', 'NODE', 'JOB', 'OUTPUT SHA256'], s.responses.map((x) => [
      String(x.interval), String(x.index), x.nodeId, x.jobId, hex(x.outputHash)
    ])))
  }
}

export async function runCreate (args: ParsedArgs, io: CliIo): Promise<number> {
  const signedFile = str(args, 'signed')
  let request: SignedEnvelope
  if (signedFile !== undefined) {
    const extra = SPEC_OPTIONS.filter((o) => str(args, o) !== undefined)
    if (extra.length > 0 || args.flags.has('lazy')) throw new UsageError(`--signed FILE is a request signed earlier: it takes none of --${[...extra, ...(args.flags.has('lazy') ? ['lazy'] : [])].join(', --')}`)
    request = await readSignedFile(signedFile)
  } else {
    request = signSubscriptionRequest(ownerKey(args), await specFromArgs(args, io))
  }
  return await withClient(args, io, async (client) => {
    const status = await client.createSignedSubscription(request)
    if (args.flags.has('json')) io.out(JSON.stringify(subscriptionToJson(status), null, 2) + '\n')
    else printStatus(status, io)
    return 0
  })
}

export async function runSign (args: ParsedArgs, io: CliIo): Promise<number> {
  const out = str(args, 'out')
  if (out === undefined) throw new UsageError('--out FILE is required (where the signed request is written)')
  const owner = ownerKey(args)
  const env = signSubscriptionRequest(owner, await specFromArgs(args, io))
  const { id, request } = openSubscriptionRequest(env)
  // The input travels in it in clear: readable by the owner only, like the key.
  await writeFile(out, JSON.stringify(envelopeToJson(env), null, 2) + '\n', { mode: 0o600, flag: args.flags.has('force') ? 'w' : 'wx' })
    .catch((err: NodeJS.ErrnoException) => { throw err.code === 'EEXIST' ? new UsageError(`${out} exists (use --force to replace it)`) : err })
  io.out(`subscription ${id}\nsigned by ${owner.nodeId} (nonce ${request.nonce}, expires ${iso(request.expiresAt) ?? ''}), written to ${out}\n` +
    `anyone can submit it: infra sub create --signed ${out} [--gateway HOST:PORT]\n`)
  return 0
}

export async function runCancel (args: ParsedArgs, io: CliIo): Promise<number> {
  const id = args.positionals[0]
  if (id === undefined) throw new UsageError('usage: infra sub cancel --key FILE ID')
  const owner = ownerKey(args)
  return await withClient(args, io, async (client) => {
    const status = await client.cancelSubscription(owner, id)
    if (args.flags.has('json')) io.out(JSON.stringify(subscriptionToJson(status), null, 2) + '\n')
    else io.out(`subscription ${id}: ${status.state}\n`)
    return 0
  })
}

export async function runGet (args: ParsedArgs, io: CliIo): Promise<number> {
  const id = args.positionals[0]
  if (id === undefined) throw new UsageError('usage: infra sub get ID [--json]')
  return await withClient(args, io, async (client) => {
    const status = await client.getSubscription(id)
    if (args.flags.has('json')) io.out(JSON.stringify(subscriptionToJson(status), null, 2) + '\n')
    else printStatus(status, io)
    return 0
  })
}

const STATES = ['pending', 'active', 'completed', 'cancelled']

export async function runList (args: ParsedArgs, io: CliIo): Promise<number> {
  const state = str(args, 'state')
  if (state !== undefined && !STATES.includes(state)) throw new UsageError(`--state must be one of ${STATES.join(', ')}`)
  return await withClient(args, io, async (client) => {
    const subs = await client.listSubscriptions({ owner: str(args, 'owner'), state })
    if (args.flags.has('json')) { io.out(JSON.stringify(subs.map(subscriptionToJson), null, 2) + '\n'); return 0 }
    if (subs.length === 0) { io.out('no subscriptions\n'); return 0 }
    io.out(table(['ID', 'OWNER', 'STATE', 'INTERVAL', 'CONTAINERS', 'SCHEDULE', 'RESPONSES'], subs.map((s) => {
      const j = subscriptionToJson(s)
      const r = j.request as Record<string, any> | null
      return [
        String(j.id), String(j.owner), s.state, s.currentInterval > 0 ? String(s.currentInterval) : '-',
        r !== null ? r.containers.join(',') : '?',
        r !== null ? `${r.frequency}x${r.period > 0 ? ` every ${r.period}s` : ' once'}, r=${r.redundancy}` : '?',
        String(s.responses.length)
      ]
    })))
    return 0
  })
}

export async function runWatch (args: ParsedArgs, io: CliIo, signal?: AbortSignal): Promise<number> {
  const id = args.positionals[0]
  if (id === undefined) throw new UsageError('usage: infra sub watch ID [--from N] [--key FILE] [--json]')
  const from = whole(args, 'from', 0, 0)
  let owner = str(args, 'key') !== undefined ? ownerKey(args) : undefined
  const json = args.flags.has('json')
  return await withClient(args, io, async (client) => {
    if (owner !== undefined) {
      const status = await client.getSubscription(id)
      if (status.subscription !== null && status.subscription.owner !== owner.nodeId) {
        io.err(`--key is ${owner.nodeId}, not the owner ${status.subscription.owner}: outputs stay sealed\n`)
        owner = undefined
      }
    }
    for await (const r of client.watchSubscription(id, from, { signal, onFailover: (addr, err) => io.err(`gateway ${addr} failed (${err.message.split('\n')[0]}); trying the next\n`) })) {
      let output: Uint8Array | undefined
      let why = ''
      if (owner !== undefined) {
        try {
          output = openSubscriptionOutput(owner, r)
        } catch (err) {
          why = (err as { code?: string }).code === 'NO_SEALED_OUTPUT' ? 'lazy: the output is kept by hash in archives' : `cannot open the output: ${(err as Error).message}`
        }
      }
      if (json) { io.out(JSON.stringify(responseToJson(r, output)) + '\n'); continue }
      io.out(`interval ${r.interval}  #${r.index}  node ${r.nodeId}  job ${r.jobId}  output sha256 ${hex(r.outputHash)}\n`)
      if (output !== undefined) {
        const text = printable(output)
        io.out(text !== undefined ? text.replace(/\n$/, '').split('\n').map((l) => `  | ${l}`).join('\n') + '\n' : `  (${output.byteLength} bytes of binary output; use --json)\n`)
      } else if (why !== '') io.out(`  (${why})\n`)
    }
    if (!json) io.out(`subscription ${id}: no more responses (completed or cancelled)\n`)
    return 0
  })
}

export function runKey (args: ParsedArgs, io: CliIo): number {
  const out = str(args, 'out')
  if (out === undefined) throw new UsageError('usage: infra sub key --out FILE [--force]')
  try {
    const identity = generateIdentity(out, { force: args.flags.has('force') })
    io.out(`owner key written to ${identity.keyFile} (mode 0600)\nowner id ${identity.nodeId}\n`)
    return 0
  } catch (err) {
    if ((err as { name?: string }).name === 'IdentityExistsError') throw new UsageError(`${out} exists (use --force to replace it: the subscriptions of the old key could no longer be cancelled)`)
    throw err
  }
}
