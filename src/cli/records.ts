/** `infra records ...`: receipts, certificates and other records kept by archive nodes. */
import { writeFile } from 'node:fs/promises'
import { decodeEnvelope, envelopeToJson } from '../envelope/index.ts'
import type { RecordReply } from '../protocol/generated.ts'
import { str, UsageError, type ParsedArgs } from './args.ts'
import { reportRpcError } from './client-commands.ts'
import type { CliIo } from './io.ts'
import { printable, table } from './format.ts'
import { withClient } from './gateways.ts'
import { errorCode } from '../client/index.ts'

export const RECORD_KINDS = ['receipt', 'attestation', 'certificate', 'dispute', 'output', 'subscription-event']

/** `--since 2026-12-01T10:00:00Z` or `--since 1764583200000`. */
export function parseTime (name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value)
  if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`--${name} must be an ISO time (2026-12-01T10:00:00Z) or unix milliseconds, got "${value}"`)
  return ms
}

const isoMs = (ms: number): string | null => ms > 0 ? new Date(ms).toISOString() : null

/** The JSON form of a record: its index fields, and its envelope (or, for outputs, its bytes). */
export function recordToJson (r: RecordReply): Record<string, unknown> {
  const rec = r.record
  const base = { hash: r.hash, archive_id: r.archiveId, kind: rec?.kind ?? '', stored_at: isoMs(rec?.storedAtMs ?? 0), job_id: rec?.jobId ?? '', node_ids: rec?.nodeIds ?? [] }
  if (rec === null) return base
  if (rec.kind === 'output') {
    const text = printable(rec.data)
    return { ...base, ...(text !== undefined ? { output: text } : {}), output_base64: Buffer.from(rec.data).toString('base64') }
  }
  try {
    return { ...base, envelope: envelopeToJson(decodeEnvelope(rec.data)) }
  } catch {
    return { ...base, envelope: null, data_base64: Buffer.from(rec.data).toString('base64') }
  }
}

function report (err: unknown, gateways: string[], io: CliIo): number {
  const name = (err as { name?: string }).name
  if (name === 'GatewaysUnavailableError' || name === 'ClientDeadlineError' || name === 'RecordHashMismatchError') {
    io.err(`${(err as Error).message}\n`)
    return 1
  }
  const code = (err as { code?: unknown }).code
  if (code === 5) {
    io.err(`not found on ${gateways.join(', ')}: ${(err as { details?: string }).details ?? ''}\n`)
    return 1
  }
  // Every node asked said it keeps no records (not an archive, or a version without the archive API).
  if (code === 12 || errorCode(err) === 'NOT_AN_ARCHIVE') {
    io.err(`no archive among ${gateways.join(', ')}: give an archive node's public address with --gateway\n`)
    return 1
  }
  return reportRpcError(err, gateways.join(','), io)
}

export async function runRecord (kind: 'receipt' | 'certificate', args: ParsedArgs, io: CliIo): Promise<number> {
  const ref = args.positionals[0]
  if (ref === undefined) throw new UsageError(`usage: infra records ${kind} JOB_ID|HASH [--json] [--out FILE]`)
  return await withClient(args, io, async (client) => {
    const reply = kind === 'receipt' ? await client.getReceipt(ref) : await client.getCertificate(ref)
    const json = recordToJson(reply)
    if (!args.flags.has('json') && (json.envelope === undefined || json.envelope === null)) {
      io.err(`the ${kind} record ${reply.hash} is not a signed envelope (use --json to see its bytes)\n`)
      return 1
    }
    // By default exactly what `infra job --receipt|--certificate` prints, so `infra verify` takes it.
    const text = JSON.stringify(args.flags.has('json') ? json : json.envelope, null, 2) + '\n'
    const out = str(args, 'out')
    if (out !== undefined) {
      await writeFile(out, text)
      io.out(`${kind} ${reply.hash} from archive ${reply.archiveId} written to ${out}\n`)
    } else io.out(text)
    return 0
  }, report)
}

export async function runRecordList (args: ParsedArgs, io: CliIo): Promise<number> {
  const kind = str(args, 'kind')
  if (kind !== undefined && !RECORD_KINDS.includes(kind)) throw new UsageError(`--kind must be one of ${RECORD_KINDS.join(', ')}`)
  const sizeText = str(args, 'page-size')
  const pageSize = sizeText === undefined ? undefined : Number(sizeText)
  if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000)) throw new UsageError(`--page-size must be a whole number from 1 to 1000, got "${sizeText}"`)
  const filter = {
    jobId: str(args, 'job'),
    nodeId: str(args, 'node'),
    since: parseTime('since', str(args, 'since')),
    until: parseTime('until', str(args, 'until')),
    kind,
    pageSize,
    pageToken: str(args, 'page-token')
  }
  return await withClient(args, io, async (client) => {
    const page = await client.listRecords(filter)
    if (args.flags.has('json')) {
      io.out(JSON.stringify({ records: page.records.map(recordToJson), next_page_token: page.nextPageToken }, null, 2) + '\n')
      return 0
    }
    if (page.records.length === 0) io.out('no records\n')
    else {
      io.out(table(['HASH', 'KIND', 'JOB', 'NODES', 'STORED', 'ARCHIVE'], page.records.map((r) => [
        r.hash.slice(0, 16), r.record?.kind ?? '', r.record?.jobId ?? '', (r.record?.nodeIds ?? []).join(',') || '-',
        isoMs(r.record?.storedAtMs ?? 0) ?? '-', r.archiveId
      ])))
    }
    if (page.nextPageToken !== '') io.out(`more: add --page-token ${page.nextPageToken}\n`)
    return 0
  }, report)
}
