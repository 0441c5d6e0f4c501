/**
 * The Infernet container contract (`protocol: infernet`, docs/CONTAINERS.md): how a job step becomes
 * Ritual Infernet's `POST /service_output` body and how the container's JSON answer becomes the step's
 * output bytes. The HTTP exchange itself (keep-alive, timeout, abort, body cap) is service-call.ts's.
 *
 * Facts from the Infernet node (ritual-net/infernet-node, orchestrator.py and shared/job.py): the body
 * is `{source, destination, data, requires_proof}` with JobLocation 0 = onchain, 1 = offchain,
 * 2 = stream; in a chain the first container gets the job's source, the last the job's destination,
 * every hop in between offchain, and each container's parsed JSON answer is the next one's `data`.
 */
import type { ContainerConfig } from '../config/types.ts'
import type { RunRequest } from './types.ts'
import { SERVICE_ERROR_BODY_BYTES } from './constants.ts'
import { InputSchemaError, OutputSchemaError, OutputTooLargeError, RuntimeError, ServiceHttpError, ServiceResponseError } from './errors.ts'
import type { RuntimeErrorDetails } from './errors.ts'
import { schemaViolation, valueViolation } from './schema.ts'

/** Infernet's JobLocation enum, as its wire values. */
export const JOB_LOCATION = Object.freeze({ onchain: 0, offchain: 1, stream: 2 })

/**
 * Every job this node runs arrives off-chain (gRPC, the mesh, a subscription of the mesh) and its
 * result goes back off-chain, so Infernet's chaining rule (job source to the first step, job
 * destination to the last, offchain between) gives offchain on both sides at every position.
 */
const SOURCE = JOB_LOCATION.offchain
const DESTINATION = JOB_LOCATION.offchain

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A 2xx answer that is not UTF-8 JSON text: Infernet's node fails such a step too (it parses the body as JSON). */
export class InfernetResponseError extends RuntimeError {
  static readonly code = ServiceResponseError.code
  constructor (containerId: string, reason: string, details?: RuntimeErrorDetails) {
    super('InfernetResponseError', InfernetResponseError.code,
      `Infernet container ${containerId} answered 2xx but ${reason} (an Infernet container answers POST /service_output with a JSON body; see docs/CONTAINERS.md, "Infernet containers")`,
      details)
  }
}

/**
 * The request body: `{"source":1,"destination":1,"data":<data>,"requires_proof":<bool>}`, keys in
 * Infernet's order. `data` is the step's input, by the container's input_schema:
 *   json, embedding<float>  the JSON value itself (spliced as sent, so numbers keep every digit)
 *   text                    the text as a JSON string
 *   bytes                   the JSON value when the bytes are UTF-8 JSON text, else the text as a
 *                           string when they are UTF-8, else {"base64": "<standard base64>"}
 */
export function encodeInfernetRequest (req: RunRequest): string {
  const { container } = req
  const bytes = Buffer.from(req.input.buffer, req.input.byteOffset, req.input.byteLength)
  let data: string
  if (container.inputSchema === 'text') {
    data = JSON.stringify(bytes.toString('utf8'))
  } else if (container.inputSchema === 'bytes') {
    data = sniffData(bytes)
  } else {
    // Parsing it first also means nothing but one JSON value can be spliced into the body.
    const violation = schemaViolation(container.inputSchema, bytes)
    if (violation !== undefined) throw new InputSchemaError(container.id, violation)
    data = bytes.toString('utf8')
  }
  return `{"source":${SOURCE},"destination":${DESTINATION},"data":${data},"requires_proof":${req.requiresProof === true}}`
}

function sniffData (bytes: Buffer): string {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return `{"base64":"${bytes.toString('base64')}"}`
  }
  try {
    JSON.parse(text)
    return text
  } catch {
    return JSON.stringify(text)
  }
}

/**
 * The step's output: the answer's JSON text as sent, without the whitespace around it (servers end
 * bodies with a newline or not; the value is the same). Not re-serialised, so large integers and
 * number spellings survive byte for byte. It must fit output_schema and max_output_bytes.
 */
export function decodeInfernetAnswer (container: ContainerConfig, payload: Uint8Array, imageId: string): Uint8Array {
  const details = { imageDigest: imageId }
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(payload))
  } catch (err) {
    const why = payload.byteLength === 0
      ? 'the body is empty'
      : `the body is not ${err instanceof SyntaxError ? 'JSON' : 'UTF-8 text'} (it starts with ${JSON.stringify(preview(payload))})`
    throw new InfernetResponseError(container.id, why, details)
  }
  const output = trimJsonWhitespace(payload)
  if (output.byteLength > container.maxOutputBytes) throw new OutputTooLargeError(container.id, container.maxOutputBytes, details)
  const violation = valueViolation(container.outputSchema, value)
  if (violation !== undefined) throw new OutputSchemaError(container.id, violation, details)
  return output
}

/**
 * A non-2xx answer as a job error. Infernet containers report errors in several shapes: Ritual's
 * ML services `{"code", "name", "description"}` (werkzeug's), the Infernet node's own API
 * `{"error": "..."}`, ours `{"error": {"code", "message"}}`, frameworks' `{"message"}` / `{"detail"}`,
 * or an HTML page. The message is the first of these found, at most 512 characters.
 */
export function infernetHttpError (containerId: string, status: number, payload: Uint8Array, imageId: string): ServiceHttpError {
  const { code, message } = errorOf(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength))
  return new ServiceHttpError(containerId, status, code, message.slice(0, SERVICE_ERROR_BODY_BYTES), { imageDigest: imageId })
}

function errorOf (payload: Buffer): { code: string, message: string } {
  const text = payload.subarray(0, 64 * 1024).toString('utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return { code: '', message: plain(text) }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { code: '', message: plain(text) }
  const o = parsed as Record<string, unknown>
  const error = o.error
  if (error !== null && typeof error === 'object') {
    const e = error as Record<string, unknown>
    const found = { code: typeof e.code === 'string' ? e.code : '', message: typeof e.message === 'string' ? e.message : '' }
    if (found.code !== '' || found.message !== '') return found
  }
  if (typeof error === 'string') return { code: '', message: error }
  if (typeof o.description === 'string') return { code: '', message: typeof o.name === 'string' ? `${o.name}: ${o.description}` : o.description }
  for (const key of ['message', 'detail']) {
    if (typeof o[key] === 'string') return { code: '', message: o[key] }
  }
  return { code: '', message: plain(text) }
}

/** An error page's words: tags dropped (Flask and gunicorn answer errors in HTML), whitespace collapsed. */
function plain (text: string): string {
  const stripped = text.trimStart().startsWith('<') ? text.replace(/<[^>]*>/g, ' ') : text
  return stripped.replace(/\s+/g, ' ').trim().slice(0, SERVICE_ERROR_BODY_BYTES)
}

function preview (payload: Uint8Array): string {
  return Buffer.from(payload.buffer, payload.byteOffset, Math.min(payload.byteLength, 40)).toString('utf8')
}

function trimJsonWhitespace (payload: Uint8Array): Uint8Array {
  let start = 0
  let end = payload.byteLength
  while (start < end && isJsonSpace(payload[start] as number)) start++
  while (end > start && isJsonSpace(payload[end - 1] as number)) end--
  return start === 0 && end === payload.byteLength ? payload : payload.subarray(start, end)
}

function isJsonSpace (byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}
