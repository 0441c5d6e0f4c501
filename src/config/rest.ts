import type { RestConfig } from './types.ts'
import * as C from './constants.ts'
import { address, integer, section, size, type Ctx, type Path } from './fields.ts'

const REST_KEYS = ['listen', 'max_body_bytes', 'max_batch'] as const

/**
 * `rest: { listen: "127.0.0.1:4000" }`: the Infernet-compatible REST API (docs/REST.md). Off unless
 * `listen` names an address: it is a second public intake, and an operator opens it knowingly. Like
 * the public gRPC listener it takes jobs and answers read-only questions, nothing that changes the
 * node, so any host is accepted.
 */
export function parseRest (ctx: Ctx, raw: unknown): RestConfig {
  const path: Path = ['rest']
  const o = section(ctx, raw, path, REST_KEYS)
  const limits = {
    // At least 1 KiB (an empty job request is ~40 bytes); at most what a gRPC message may carry.
    maxBodyBytes: size(ctx, o, 'max_body_bytes', path, C.DEFAULT_REST_MAX_BODY_BYTES, 1024, C.MAX_MESSAGE_BYTES_LIMIT),
    maxBatch: integer(ctx, o, 'max_batch', path, C.DEFAULT_REST_MAX_BATCH, 1, C.MAX_REST_BATCH)
  }
  if (o.listen === undefined || o.listen === null || o.listen === C.DEFAULT_REST_LISTEN) return { enabled: false, host: '', port: 0, ...limits }
  // The default only stands in when `listen` is malformed (the error is reported); it is never used.
  const listen = address(ctx, o, 'listen', path, { host: '127.0.0.1', port: 0 })
  return { enabled: true, ...listen, ...limits }
}
