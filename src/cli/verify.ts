/**
 * `infra verify`: check a receipt or a certificate offline. A receipt: signature, signer = worker,
 * and optionally the output's hash. A certificate: the scheduler's signature, the receipt inside it,
 * every attestation, distinct chosen validators and the quorum (src/verification/certificate.ts).
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import type { SignedEnvelope } from '../envelope/types.ts'
import { decodeEnvelope, envelopeFromJson } from '../envelope/index.ts'
import { verifyReceipt, type Receipt } from '../receipt/index.ts'
import { PAYLOAD_TYPES } from '../protocol/index.ts'
import { verifyCertificate, type CertificateVerification } from '../verification/index.ts'

export interface VerifyIo {
  out: (s: string) => void
  err: (s: string) => void
  env: NodeJS.ProcessEnv
  /** Reads all of stdin (for `infra verify -`); defaults to process.stdin. */
  stdin?: () => Promise<Uint8Array>
}

const USAGE = `usage: infra verify <file|-> [--output FILE] [--json]

  <file|->       a receipt: the JSON envelope (infra job ID --receipt), a whole job (infra job ID --json),
                 or a binary protobuf SignedEnvelope; or a certificate (infra job ID --certificate);
                 - reads stdin
  --output FILE  also check that sha256(FILE) is the receipt's (for a certificate: the certified) output hash
  --json         print the result as JSON
exit status: 0 valid, 1 invalid, 2 usage or read error
`

type Parsed = { ok: true, env: SignedEnvelope } | { ok: false, reason: string, code: string }

export async function runVerify (argv: string[], io: VerifyIo): Promise<number> {
  let values: { output?: string, json?: boolean, help?: boolean }
  let positionals: string[]
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { output: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true
    }))
  } catch (err) {
    io.err(`infra verify: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    io.out(USAGE)
    return 0
  }
  if (positionals.length !== 1) {
    io.err(`infra verify: expected one receipt file (or -), got ${positionals.length}\n\n${USAGE}`)
    return 2
  }
  const source = positionals[0]
  let input: Uint8Array
  let output: Uint8Array | undefined
  try {
    input = source === '-' ? await (io.stdin ?? readProcessStdin)() : new Uint8Array(await readFile(source))
    if (values.output !== undefined) output = new Uint8Array(await readFile(values.output))
  } catch (err) {
    io.err(`infra verify: cannot read ${(err as NodeJS.ErrnoException).path ?? source}: ${(err as Error).message}\n`)
    return 2
  }

  const parsed = parseReceiptFile(input)
  if (parsed.ok && parsed.env.payloadType === PAYLOAD_TYPES.certificate) {
    return reportCertificate(verifyCertificate(parsed.env, { output }), output !== undefined, values.json === true, io)
  }
  const result = parsed.ok ? verifyReceipt(parsed.env, { output }) : { valid: false as const, reason: parsed.reason, code: parsed.code }
  if (!result.valid) {
    io.out(values.json === true
      ? JSON.stringify({ valid: false, code: result.code, reason: result.reason }, null, 2) + '\n'
      : `invalid: ${result.reason}\n`)
    return 1
  }
  io.out(values.json === true
    ? JSON.stringify({ valid: true, output_checked: output !== undefined, ...receiptJson(result.receipt) }, null, 2) + '\n'
    : summary(result.receipt, output !== undefined))
  return 0
}

/** JSON envelope, a job object with a `receipt` field, or binary protobuf — told apart by the first byte. */
export function parseReceiptFile (bytes: Uint8Array): Parsed {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  if (!text.trimStart().startsWith('{')) {
    try {
      return { ok: true, env: decodeEnvelope(bytes) }
    } catch (err) {
      return { ok: false, code: 'MALFORMED_ENVELOPE', reason: `not a JSON receipt and not a protobuf envelope (${(err as Error).message})` }
    }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return { ok: false, code: 'MALFORMED_ENVELOPE', reason: `not valid JSON (${(err as Error).message})` }
  }
  const obj = value as Record<string, unknown>
  // `infra job --json` prints the job with its receipt inside; a bare envelope has payload_type at the top.
  const holder = obj.payload_type === undefined && obj.payloadType === undefined
    ? (obj.receipt !== undefined ? obj : (obj.job as Record<string, unknown> | undefined))
    : undefined
  if (holder !== undefined && typeof holder === 'object' && holder !== null && 'receipt' in holder && holder.receipt == null) {
    return { ok: false, code: 'MALFORMED_ENVELOPE', reason: 'the job has no receipt (not finished yet?)' }
  }
  try {
    return { ok: true, env: envelopeFromJson(holder?.receipt ?? obj) }
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code ?? 'MALFORMED_ENVELOPE', reason: (err as Error).message }
  }
}

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

function iso (ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null
}

function receiptJson (r: Receipt): Record<string, unknown> {
  return {
    job_id: r.jobId,
    worker_id: r.workerId,
    scheduler_id: r.schedulerId,
    status: r.status,
    exit_code: r.exitCode,
    error: r.error,
    job_hash: hex(r.jobHash),
    input_hash: hex(r.inputHash),
    output_hash: hex(r.outputHash),
    latency_ms: r.latencyMs,
    started_at: iso(r.startedAtMs),
    finished_at: iso(r.finishedAtMs),
    steps: r.steps.map((s) => ({ container_id: s.containerId, image_digest: s.imageDigest, output_hash: hex(s.outputHash), exit_code: s.exitCode }))
  }
}

function summary (r: Receipt, outputChecked: boolean): string {
  const rows: Array<[string, string]> = [
    ['job', r.jobId],
    ['worker', r.workerId],
    ['status', `${r.status} (exit ${r.exitCode})${r.error !== '' ? `: ${r.error}` : ''}`],
    ['containers', r.steps.map((s) => s.imageDigest !== '' ? `${s.containerId} (${s.imageDigest.slice(0, 19)}…)` : s.containerId).join(' → ') || '-'],
    ['output', `sha256:${hex(r.outputHash)}${outputChecked ? ' (matches --output)' : ''}`],
    ['latency', `${r.latencyMs} ms`]
  ]
  if (r.schedulerId !== '') rows.push(['scheduler', r.schedulerId])
  return 'valid\n' + rows.map(([k, v]) => `  ${(k + ':').padEnd(12)}${v}`).join('\n') + '\n'
}

function reportCertificate (result: CertificateVerification, outputChecked: boolean, json: boolean, io: VerifyIo): number {
  if (!result.valid) {
    io.out(json ? JSON.stringify({ valid: false, kind: 'certificate', code: result.code, reason: result.reason }, null, 2) + '\n' : `invalid certificate: ${result.code}: ${result.reason}\n`)
    return 1
  }
  const { certificate: c, receipt: r, attestations } = result
  const policy = c.policy as NonNullable<typeof c.policy>
  if (json) {
    io.out(JSON.stringify({
      valid: true,
      kind: 'certificate',
      output_checked: outputChecked,
      scheduler_id: c.schedulerId,
      policy: { method: policy.method, validators: policy.validators, quorum: policy.quorum },
      chosen: c.chosen,
      attested_by: attestations.map((a) => a.validatorId),
      resolution: c.resolution === '' ? 'worker_output' : c.resolution,
      output_hash: hex(c.outputHash),
      issued_at: iso(c.issuedAtMs),
      receipt: receiptJson(r)
    }, null, 2) + '\n')
    return 0
  }
  const rows: Array<[string, string]> = [
    ['job', r.jobId],
    ['worker', r.workerId],
    ['scheduler', c.schedulerId],
    ['policy', `${policy.method}, ${policy.quorum} of ${policy.validators} validators`],
    ['agreed', attestations.map((a) => a.validatorId).join(', ')],
    ...(c.resolution === 'validators_output'
      ? [['resolution', `the worker's output (sha256:${hex(r.outputHash)}) was disputed; the validators re-ran the job to this output`] as [string, string]]
      : []),
    ['output', `sha256:${hex(c.outputHash)}${outputChecked ? ' (matches --output)' : ''}`]
  ]
  io.out('valid certificate\n' + rows.map(([k, v]) => `  ${(k + ':').padEnd(12)}${v}`).join('\n') + '\n')
  return 0
}

async function readProcessStdin (): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return new Uint8Array(Buffer.concat(chunks))
}
