/**
 * JSON schemas of every body and query the REST API takes (fastify validates them before a handler
 * runs; a mismatch is a 400 naming the field, see validation.ts). Types are never coerced: `"true"`
 * is not a boolean and `"echo"` is not a list, so a client hears about its mistake instead of
 * getting a guess. Unknown body fields are ignored, as Infernet ignores them.
 */
import { MAX_CHAIN_LENGTH } from '../gateway/index.ts'

/** Longest container id or job id looked at; longer ones could never name anything (ids are ≤ 128 characters). */
const MAX_ID_CHARS = 256
/** Ids in one GET /api/jobs: more than a URL of the node's 16 KiB header limit can hold. */
export const MAX_IDS_PER_QUERY = 1000

const CONTAINER_ID = { type: 'string', minLength: 1, maxLength: MAX_ID_CHARS } as const

/**
 * One job as Infernet's JobRequest: `containers` (the chain), `data` (the first container's input),
 * optional `requires_proof`. `data` may also be a string (our addition: raw text input). A request
 * with `subscription` is Infernet's delegated subscription, answered "Chain not enabled".
 */
export const JOB_REQUEST = {
  type: 'object',
  properties: {
    containers: { type: 'array', maxItems: MAX_CHAIN_LENGTH, items: CONTAINER_ID },
    data: { type: ['object', 'string'] },
    requires_proof: { type: ['boolean', 'null'] },
    subscription: { type: 'object' },
    signature: { type: 'object' }
  },
  if: { required: ['subscription'] },
  then: {},
  else: { required: ['containers', 'data'] }
} as const

export function batchSchema (maxBatch: number): Record<string, unknown> {
  return { type: 'array', maxItems: maxBatch, items: JOB_REQUEST }
}

const BOOLEAN_TEXT = { type: 'string', enum: ['true', 'false'] } as const

/** GET /api/jobs: `id` repeated (results) or absent (this client's job ids, `pending` filters). */
export const JOBS_QUERY = {
  type: 'object',
  properties: {
    // A single ?id= arrives as a string; the route's preValidation hook makes it a one-item list.
    id: { type: 'array', maxItems: MAX_IDS_PER_QUERY, items: { type: 'string', maxLength: MAX_ID_CHARS } },
    intermediate: BOOLEAN_TEXT,
    pending: BOOLEAN_TEXT
  }
} as const

export const RESOURCES_QUERY = {
  type: 'object',
  properties: { model_id: { type: 'string', maxLength: 1024 } }
} as const

/** What a job request looks like, for error messages. */
export const JOB_REQUEST_HINT = 'send {"containers": ["<container id>", ...], "data": {...}, "requires_proof": false}'
