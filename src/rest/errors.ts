/**
 * Failures of the REST adapter itself (the request as sent), and the one table that turns any error
 * (ours, the jobs service's, the Guardian's) into an HTTP status and Infernet's error body
 * `{"error": string, "params": {...}}`. Nothing else in src/rest decides a status code.
 */
import { GuardianRejectedError, type GuardianReason } from '../guardian/errors.ts'
import { CONTAINER_ID_PATTERN } from '../gateway/ids.ts'
import { quote } from '../quote.ts'

/** Infernet's error body: `error` is what went wrong, `params` the details (ours always carry `code`). */
export interface ErrorBody {
  error: string
  params: Record<string, unknown>
}

export interface HttpFailure {
  status: number
  body: ErrorBody
  headers: Record<string, string>
}

/** A request this adapter cannot take as sent: wrong types, missing fields, unknown query values. */
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_REQUEST'
  constructor (message: string) {
    super(message)
    this.name = 'InvalidRequestError'
  }
}

/** The body is not JSON (or is empty). */
export class InvalidJsonError extends Error {
  readonly code = 'INVALID_JSON'
  constructor (reason: string) {
    super(`request body is not valid JSON (${reason}): send a JSON document, e.g. {"containers": ["<container id>"], "data": {...}}`)
    this.name = 'InvalidJsonError'
  }
}

/** The body is over rest.max_body_bytes. */
export class BodyTooLargeError extends Error {
  readonly code = 'BODY_TOO_LARGE'
  readonly limit: number
  constructor (limit: number) {
    super(`request body is over ${limit} bytes (rest.max_body_bytes): send smaller inputs, or fewer jobs per batch`)
    this.name = 'BodyTooLargeError'
    this.limit = limit
  }
}

/**
 * A delegated subscription (Infernet's on-chain `{subscription, signature}` request). This node has no
 * chain, so it answers as an Infernet node with the chain disabled does; our own subscriptions are
 * offered over gRPC (docs/SUBSCRIPTIONS.md).
 */
export class ChainNotEnabledError extends Error {
  readonly code = 'CHAIN_NOT_ENABLED'
  constructor () {
    super('this node has no chain, so it takes no delegated subscriptions; create subscriptions over gRPC (docs/SUBSCRIPTIONS.md) or send a job: {"containers": [...], "data": {...}}')
    this.name = 'ChainNotEnabledError'
  }
}

export class RouteNotFoundError extends Error {
  readonly code = 'ROUTE_NOT_FOUND'
  constructor (method: string, url: string) {
    super(`no route ${method} ${quote(url.split('?')[0])}: this node serves GET /health, /info, /resources, GET and POST /api/jobs, POST /api/jobs/batch and /api/jobs/stream (docs/REST.md)`)
    this.name = 'RouteNotFoundError'
  }
}

export class MethodNotAllowedError extends Error {
  readonly code = 'METHOD_NOT_ALLOWED'
  readonly allowed: readonly string[]
  constructor (method: string, path: string, allowed: readonly string[], why = '') {
    super(`${method} is not allowed on ${path}${allowed.length > 0 ? `; use ${allowed.join(' or ')}` : ''}${why === '' ? '' : ` (${why})`}`)
    this.name = 'MethodNotAllowedError'
    this.allowed = allowed
  }
}

/** Infernet's words for each Guardian refusal (its clients match on them), with Infernet's params. */
const GUARDIAN_TEXT: Record<GuardianReason, (e: GuardianRejectedError) => [string, Record<string, unknown>]> = {
  NO_CONTAINERS: () => ['No containers specified', {}],
  UNKNOWN_CONTAINER: (e) => ['Container not supported', { container: e.containerId }],
  NOT_EXTERNAL: (e) => ['First container must be external', { first_container: e.containerId }],
  IP_NOT_ALLOWED: (e) => ['Container not allowed for address', { container: e.containerId, address: e.origin.ip }],
  PEER_NOT_ALLOWED: (e) => ['Container not allowed for address', { container: e.containerId, address: e.origin.peerId }],
  DELEGATE_NOT_ALLOWED: (e) => ['Container not allowed for address', { container: e.containerId, address: e.origin.delegate }],
  PROOF_UNSUPPORTED: (e) => ['Container does not generate proof', { container: e.containerId }]
}

/**
 * Error code → HTTP status. Infernet answers every refusal of a job by its Guardian with 405, so
 * refusals about what this node will run (its containers, its hardware, its policy) are 405 too; a
 * request that is malformed is 400; a full queue or a node not ready is 503 (retry shortly).
 */
const STATUS_BY_CODE: Record<string, number> = {
  INVALID_REQUEST: 400,
  INVALID_JSON: 400,
  INVALID_ARGUMENT: 400,
  INVALID_INPUT: 400,
  INVALID_JOB_ID: 400,
  INVALID_CHAIN: 400,
  INVALID_DEADLINE: 400,
  INVALID_POLICY: 400,
  BODY_TOO_LARGE: 413,
  INPUT_TOO_LARGE: 413,
  ROUTE_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CHAIN_NOT_ENABLED: 405,
  INVALID_CONTAINER_ID: 405,
  NOT_FOUND: 405,
  PERMISSION_DENIED: 405,
  FAILED_PRECONDITION: 405,
  NON_DETERMINISTIC: 405,
  NO_VALIDATORS: 405,
  INSUFFICIENT_RESOURCES: 405,
  GPU_UNAVAILABLE: 405,
  NO_EXECUTOR: 405,
  OCI_RUNTIME_UNAVAILABLE: 405,
  QUEUE_FULL: 503,
  GATEWAY_FULL: 503,
  NOT_STARTED: 503,
  NO_WORKER: 503,
  STOPPING: 503,
  SERVICE_UNAVAILABLE: 503,
  ENGINE_UNAVAILABLE: 503
}

/** A 503 asks the client to come back: the queue drains or the node finishes starting within about a second. */
const RETRY_AFTER_S = '1'

/**
 * The HTTP answer for `err`. `containers` is the chain the request named, so a container id no node
 * could have is reported as Infernet reports an unknown container. Undefined for an error the table
 * does not know: the caller logs it and answers 500.
 */
export function toFailure (err: unknown, containers: readonly unknown[] = []): HttpFailure | undefined {
  const code = typeof (err as { code?: unknown } | null)?.code === 'string' ? (err as { code: string }).code : ''
  const status = STATUS_BY_CODE[code]
  if (status === undefined) return undefined
  const message = (err as Error).message
  const headers: Record<string, string> = status === 503 ? { 'retry-after': RETRY_AFTER_S } : {}
  if (err instanceof GuardianRejectedError) {
    // Infernet answers every Guardian refusal 405, an empty container list included.
    const [error, params] = GUARDIAN_TEXT[err.reason](err)
    return { status: 405, headers, body: { error, params: { ...params, code: err.reason, detail: message } } }
  }
  if (code === 'INVALID_CONTAINER_ID') {
    const bad = containers.find((c) => typeof c !== 'string' || !CONTAINER_ID_PATTERN.test(c))
    return { status, headers, body: { error: 'Container not supported', params: { container: bad ?? '', code, detail: message } } }
  }
  if (err instanceof ChainNotEnabledError) return { status, headers, body: { error: 'Chain not enabled', params: { code, detail: message } } }
  if (err instanceof MethodNotAllowedError) headers.allow = err.allowed.join(', ')
  const params: Record<string, unknown> = { code }
  if (err instanceof BodyTooLargeError) params.limit = err.limit
  return { status, headers, body: { error: message, params } }
}

/** The answer when nothing better is known: the details stay in the node's log. */
export function internalFailure (err: unknown): HttpFailure {
  const name = err instanceof Error ? err.name : typeof err
  return { status: 500, headers: {}, body: { error: `internal error (${name}); the node logged the details`, params: { code: 'INTERNAL' } } }
}
