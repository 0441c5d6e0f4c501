/**
 * Infernet ↔ the jobs service: what an Infernet job request becomes (a SubmitRequest with the HTTP
 * client as origin) and what a stored job becomes (Infernet's JobResult plus our fields). The byte
 * layouts are in docs/REST.md, "Inputs and outputs".
 */
import { isIPv4 } from 'node:net'
import { envelopeToJson, type SignedEnvelopeJson } from '../envelope/index.ts'
import type { IoSchema } from '../config/types.ts'
import type { SubmitRequest } from '../gateway/types.ts'
import type { JobRecord, StepRecord } from '../store/types.ts'
import { ChainNotEnabledError } from './errors.ts'

/** Infernet's JobRequest as the schema admitted it (schemas.ts JOB_REQUEST). */
export interface JobRequestBody {
  containers?: string[]
  data?: Record<string, unknown> | string
  requires_proof?: boolean | null
  subscription?: Record<string, unknown>
}

export type InfernetStatus = 'running' | 'success' | 'failed'

/** Infernet's ContainerResult: an output or an error, by container. */
export type ContainerResult = { container: string, output: unknown } | { container: string, error: string }

export interface JobResult {
  id: string
  status: InfernetStatus
  result: ContainerResult | null
  /** Present only when asked for (`intermediate=true`), as Infernet does. */
  intermediate_results?: ContainerResult[]
  // Ours (an Infernet client ignores them):
  receipt: SignedEnvelopeJson | null
  certificate: SignedEnvelopeJson | null
  verification: { method: string, validators: number, quorum: number, state: string, reason: string } | null
  error_code: string | null
  latency_ms: number | null
}

const encoder = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The job's input bytes from Infernet's `data`: an object is sent as its JSON text (UTF-8, no
 * whitespace, keys in the order given); a string (our addition) is sent as its UTF-8 bytes.
 */
export function inputOf (data: Record<string, unknown> | string): Uint8Array {
  return encoder.encode(typeof data === 'string' ? data : JSON.stringify(data))
}

/** A job request as the jobs service takes it, from `ip` (the HTTP client; never from the body). */
export function toSubmit (body: JobRequestBody, ip: string): SubmitRequest {
  if (body.subscription !== undefined) throw new ChainNotEnabledError()
  return {
    containers: body.containers ?? [],
    input: inputOf(body.data ?? {}),
    requiresProof: body.requires_proof === true,
    origin: { ip, peerId: '', delegate: '' }
  }
}

/**
 * A container's output as Infernet's `output` value: json and embedding<float> outputs are the JSON
 * value they hold (the runtime checked them against the schema); text is `{"output": "<text>"}` (the
 * shape Infernet stores for a streamed job); bytes are the same when they are UTF-8, else
 * `{"output_base64": "<base64>"}`.
 */
export function outputOf (bytes: Uint8Array, schema: IoSchema): unknown {
  let text: string
  try {
    text = strictUtf8.decode(bytes)
  } catch {
    return { output_base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') }
  }
  if (schema === 'json' || schema === 'embedding<float>') {
    try {
      return JSON.parse(text) as unknown
    } catch {
      // Only a container whose output skipped the schema check (none should) lands here: keep its text.
    }
  }
  return { output: text }
}

const STATUS: Record<JobRecord['state'], InfernetStatus> = { pending: 'running', running: 'running', success: 'success', failed: 'failed' }

/**
 * Infernet's JobResult of a job: `result` is the last container's output or the error that ended the
 * job (null while it runs); `intermediate_results` the containers before it, in order (outputs of a
 * chain that ran on the mesh stay on the worker: null, the receipt has their hashes).
 */
export function toJobResult (job: JobRecord, schemaOf: (containerId: string) => IoSchema, intermediate: boolean): JobResult {
  const results: ContainerResult[] = job.steps.map((step, i) => stepResult(job, step, i, schemaOf))
  if (job.state === 'failed') {
    const error = job.error ?? 'failed'
    const last = results[results.length - 1]
    if (last === undefined || ('output' in last && results.length < job.containers.length)) {
      // Ended before (or between) steps: the error belongs to the container that was next.
      results.push({ container: job.containers[results.length] ?? '', error })
    } else if ('output' in last) {
      // Every step ran, yet the job failed (a disputed or mismatched result): the last output does not stand.
      results[results.length - 1] = { container: last.container, error }
    }
  }
  const finished = job.state === 'success' || job.state === 'failed'
  const out: JobResult = {
    id: job.id,
    status: STATUS[job.state],
    result: finished ? results[results.length - 1] ?? null : null,
    receipt: job.receipt !== undefined ? envelopeToJson(job.receipt) : null,
    certificate: job.verification?.certificate !== undefined ? envelopeToJson(job.verification.certificate) : null,
    verification: job.verification !== undefined
      ? { method: job.verification.method, validators: job.verification.validators, quorum: job.verification.quorum, state: job.verification.state, reason: job.verification.reason }
      : null,
    error_code: job.errorCode ?? null,
    latency_ms: job.latencyMs ?? null
  }
  // While it runs, every finished step is intermediate; once done, all but the one in `result`.
  if (intermediate) out.intermediate_results = finished ? results.slice(0, -1) : results
  return out
}

function stepResult (job: JobRecord, step: StepRecord, i: number, schemaOf: (containerId: string) => IoSchema): ContainerResult {
  if (step.status === 'failed') return { container: step.containerId, error: step.error !== '' ? step.error : job.error ?? 'failed' }
  // The last step's output is the job's (stored once, see StepRecord.output).
  const bytes = step.output ?? (i === job.steps.length - 1 ? job.output : undefined)
  return { container: step.containerId, output: bytes !== undefined ? outputOf(bytes, schemaOf(step.containerId)) : null }
}

/** The client's address as the Guardian and the job's origin see it: an IPv4 client on a dual-stack socket as plain IPv4. */
export function clientIp (remote: string | undefined): string {
  if (remote === undefined) return ''
  const mapped = /^::ffff:(.+)$/i.exec(remote)
  return mapped?.[1] !== undefined && isIPv4(mapped[1]) ? mapped[1] : remote
}

/**
 * Jobs of this client at this node, as Infernet keys them (by the address that submitted them): a job
 * another address submitted, or one this node runs for a scheduler (its id may have crossed the mesh),
 * is not this client's, whatever id it asks for.
 */
export function isClientJob (job: JobRecord, ip: string): boolean {
  return ip !== '' && job.schedulerId === '' && job.origin.ip === ip
}
