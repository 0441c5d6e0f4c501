/**
 * One job on a warm service container: HTTP POST of {job_id, input, origin} to 127.0.0.1, JSON
 * {output} back (docs/CONTAINERS.md). On the hot path: no engine call, one JSON encode, one parse.
 */
import { request } from 'node:http'
import type { Agent, ClientRequest, IncomingMessage } from 'node:http'
import type { ContainerConfig } from '../config/types.ts'
import type { RunRequest, RunResult } from './types.ts'
import { SERVICE_BODY_OVERHEAD_BYTES, SERVICE_BODY_OVERHEAD_FACTOR, SERVICE_ERROR_BODY_BYTES } from './constants.ts'
import {
  ContainerTimeoutError, InputSchemaError, OutputSchemaError, OutputTooLargeError, RunAbortedError, ServiceCallError,
  ServiceHttpError, ServiceResponseError
} from './errors.ts'
import type { RuntimeError } from './errors.ts'
import { decodeInfernetAnswer, encodeInfernetRequest, infernetHttpError } from './infernet.ts'
import { SERVICE_HOST_IP } from './sandbox.ts'
import { schemaViolation, valueViolation } from './schema.ts'

export interface ServiceEndpoint {
  agent: Agent
  /** Host port published on 127.0.0.1. */
  port: number
  imageId: string
}

/** Error bodies are only read this far: enough for any structured error, bounded in memory. */
const ERROR_BODY_MAX_BYTES = 64 * 1024
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** The request body: input as text (text schema), as the JSON value (json, embedding), or {"base64"} (bytes). */
export function encodeServiceRequest (req: RunRequest): string {
  const { container } = req
  const bytes = Buffer.from(req.input.buffer, req.input.byteOffset, req.input.byteLength)
  let input: string
  if (container.inputSchema === 'bytes') {
    input = `{"base64":"${bytes.toString('base64')}"}`
  } else if (container.inputSchema === 'text') {
    input = JSON.stringify(bytes.toString('utf8'))
  } else {
    // Spliced in as is once it parses: no re-serialisation. Parsing it also means nothing but one
    // JSON value can be spliced in (no extra fields smuggled into the body).
    input = bytes.toString('utf8')
    const violation = schemaViolation(container.inputSchema, bytes)
    if (violation !== undefined) throw new InputSchemaError(container.id, violation)
  }
  const origin = req.origin
  return `{"job_id":${JSON.stringify(req.jobId)},"input":${input},"origin":{"ip":${JSON.stringify(origin?.ip ?? '')},` +
    `"peer_id":${JSON.stringify(origin?.peerId ?? '')},"delegate":${JSON.stringify(origin?.delegate ?? '')}}}`
}

/** Calls the service; `signal` is the run's abort (caller or runtime stop). */
export async function callService (endpoint: ServiceEndpoint, req: RunRequest, signal: AbortSignal, startedAtMs: number): Promise<RunResult> {
  const { container } = req
  const service = container.service
  if (service === undefined) throw new TypeError(`container ${container.id} has no service block`)
  // protocol: infernet takes and gives Infernet's shapes (infernet.ts): one JSON answer, never streamed.
  const infernet = container.protocol === 'infernet'
  const body = infernet ? encodeInfernetRequest(req) : encodeServiceRequest(req)
  const details = { imageDigest: endpoint.imageId }
  if (signal.aborted) throw new RunAbortedError(String(signal.reason), details)

  const answer = await post(endpoint, container, service.path, body, signal, infernet ? undefined : req.onOutput)
  const { status, payload } = answer
  const streamed = answer.streamed && !infernet
  const finishedAtMs = Date.now()
  if (status < 200 || status > 299) {
    throw infernet ? infernetHttpError(container.id, status, payload, endpoint.imageId) : httpError(container.id, status, payload, endpoint.imageId)
  }
  const output = infernet
    ? decodeInfernetAnswer(container, payload, endpoint.imageId)
    : streamed ? streamedOutput(container, payload, endpoint.imageId) : decodeOutput(container, payload, endpoint.imageId)
  // A JSON answer is not streamed: its output exists only once the whole body is parsed, and the job
  // ends with it at once (its readers get it then).
  return { output, exitCode: 0, imageDigest: endpoint.imageId, stderrTail: '', startedAtMs, finishedAtMs }
}

/** `streamed`: a 2xx body that is the output itself (see isStreamedBody), not JSON. */
interface Answer { status: number, payload: Buffer, streamed: boolean }

/**
 * A 2xx answer of type text/plain or application/octet-stream is the output itself, read as it
 * arrives (docs/CONTAINERS.md, "Streamed response"); any other type is the JSON {"output"} answer.
 */
export function isStreamedBody (contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  return type === 'text/plain' || type === 'application/octet-stream'
}

/** A streamed body as the output: within max_output_bytes (already capped while reading) and fitting output_schema. */
function streamedOutput (container: ContainerConfig, payload: Buffer, imageId: string): Uint8Array {
  const violation = schemaViolation(container.outputSchema, payload)
  if (violation !== undefined) throw new OutputSchemaError(container.id, violation, { imageDigest: imageId })
  return payload
}

async function post (endpoint: ServiceEndpoint, container: ContainerConfig, path: string, body: string, signal: AbortSignal,
  onOutput?: (chunk: Uint8Array) => void): Promise<Answer> {
  const details = { imageDigest: endpoint.imageId }
  const bodyCap = container.maxOutputBytes * SERVICE_BODY_OVERHEAD_FACTOR + SERVICE_BODY_OVERHEAD_BYTES
  return await new Promise<Answer>((resolve, reject) => {
    let current: ClientRequest | undefined
    let settled = false
    const finish = (err: RuntimeError | undefined, answer?: Answer): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      if (err !== undefined) {
        current?.destroy()
        reject(err)
      } else if (answer !== undefined) {
        resolve(answer)
      }
    }
    const timer = setTimeout(() => { finish(new ContainerTimeoutError(container.id, container.timeoutMs, details)) }, container.timeoutMs)
    const onAbort = (): void => { finish(new RunAbortedError(String(signal.reason), details)) }
    signal.addEventListener('abort', onAbort, { once: true })

    const send = (retry: boolean): void => {
      const req = request({
        host: SERVICE_HOST_IP,
        port: endpoint.port,
        path,
        method: 'POST',
        agent: endpoint.agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
      })
      current = req
      req.once('response', (res) => { readAnswer(res, bodyCap, container, details, finish, onOutput) })
      req.once('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed while idle fails at once, before the request was
        // read: sending it again on a fresh connection is what Node's http docs recommend.
        if (retry && req.reusedSocket && err.code === 'ECONNRESET' && !settled) {
          send(false)
          return
        }
        finish(new ServiceCallError(container.id, { ...details, cause: err }))
      })
      req.end(body)
    }
    send(true)
  })
}

function readAnswer (res: IncomingMessage, bodyCap: number, container: ContainerConfig, details: { imageDigest: string },
  finish: (err: RuntimeError | undefined, answer?: Answer) => void, onOutput?: (chunk: Uint8Array) => void): void {
  const status = res.statusCode ?? 0
  const ok = status >= 200 && status <= 299
  const streamed = ok && isStreamedBody(res.headers['content-type'])
  // A streamed body is the output: no room for JSON escaping, the output cap itself.
  const cap = streamed ? container.maxOutputBytes : ok ? bodyCap : ERROR_BODY_MAX_BYTES
  const chunks: Buffer[] = []
  let length = 0
  res.on('data', (chunk: Buffer) => {
    if (length + chunk.length > cap) {
      if (ok) {
        finish(new OutputTooLargeError(container.id, container.maxOutputBytes, details))
      } else {
        // An error body only needs its start: keep what fits and answer with it.
        chunks.push(chunk.subarray(0, cap - length))
        length = cap
        finish(undefined, { status, payload: Buffer.concat(chunks, length), streamed })
      }
      res.destroy()
      return
    }
    chunks.push(chunk)
    length += chunk.length
    if (streamed && chunk.length > 0 && onOutput !== undefined) {
      try {
        onOutput(chunk)
      } catch {
        // A listener's failure is its own: the job's output is still read whole.
      }
    }
  })
  res.once('end', () => { finish(undefined, { status, payload: chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, length), streamed }) })
  res.once('error', (err) => { finish(new ServiceCallError(container.id, { ...details, cause: err })) })
}

/** The service's error: `{"error": {"code", "message"}}` when it sent one, else the start of the body. */
function httpError (containerId: string, status: number, payload: Buffer, imageId: string): ServiceHttpError {
  let code = ''
  let message = ''
  try {
    const parsed = JSON.parse(payload.toString('utf8')) as { error?: { code?: unknown, message?: unknown } }
    if (typeof parsed.error?.code === 'string') code = parsed.error.code
    if (typeof parsed.error?.message === 'string') message = parsed.error.message.slice(0, SERVICE_ERROR_BODY_BYTES)
  } catch {
    // Not JSON: the text says more than nothing.
  }
  if (code === '' && message === '') message = payload.subarray(0, SERVICE_ERROR_BODY_BYTES).toString('utf8').trim()
  return new ServiceHttpError(containerId, status, code, message, { imageDigest: imageId })
}

/** Output bytes from `{"output": value}`: a string as UTF-8, bytes from {"base64"}, anything else as JSON. */
export function decodeOutput (container: ContainerConfig, payload: Buffer, imageId: string): Uint8Array {
  const details = { imageDigest: imageId }
  let parsed: unknown
  try {
    parsed = JSON.parse(payload.toString('utf8'))
  } catch {
    throw new ServiceResponseError(container.id, 'the body is not JSON', details)
  }
  if (parsed === null || typeof parsed !== 'object' || !('output' in parsed)) {
    throw new ServiceResponseError(container.id, 'the body has no "output" field', details)
  }
  const value: unknown = parsed.output
  let output: Buffer
  let violation: string | undefined
  if (container.outputSchema === 'bytes') {
    const base64 = (value as { base64?: unknown } | null)?.base64
    if (typeof base64 !== 'string' || !BASE64.test(base64)) {
      throw new OutputSchemaError(container.id, 'expected bytes as {"base64": "<standard base64>"}', details)
    }
    output = Buffer.from(base64, 'base64')
  } else if (typeof value === 'string') {
    output = Buffer.from(value, 'utf8')
    violation = container.outputSchema === 'text' ? undefined : schemaViolation(container.outputSchema, output)
  } else {
    output = Buffer.from(JSON.stringify(value), 'utf8')
    violation = valueViolation(container.outputSchema, value)
  }
  if (output.byteLength > container.maxOutputBytes) throw new OutputTooLargeError(container.id, container.maxOutputBytes, details)
  if (violation !== undefined) throw new OutputSchemaError(container.id, violation, details)
  return output
}
