/** Archive lookups: receipts and certificates by job id or record hash, and listings by index field. */
import { createHash } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import type { ListRecordsRequest, RecordReply } from '../protocol/generated.ts'
import { RecordHashMismatchError } from './errors.ts'

/** A record reference: a job id (its newest record of the kind) or a record hash (64 hex). */
export type RecordRef = string | { jobId: string } | { hash: string }

const HASH = /^[0-9a-f]{64}$/i

/** A bare string is a hash when it is 64 hex characters, else a job id; give `{ jobId }` for a job id that looks like a hash. */
export function recordRef (ref: RecordRef): { jobId?: string, hash?: string } {
  if (typeof ref !== 'string') return ref
  return HASH.test(ref) ? { hash: ref.toLowerCase() } : { jobId: ref }
}

/** What listRecords filters on (ListRecordsRequest; unset = any). */
export interface RecordFilter {
  jobId?: string
  nodeId?: string
  /** Unix ms or a Date: stored at or after. */
  since?: number | Date
  /** Unix ms or a Date: stored before. */
  until?: number | Date
  kind?: string
  /** At most 1000 (unset = the archive's 100). */
  pageSize?: number
  pageToken?: string
}

export function listRequest (f: RecordFilter): Partial<ListRecordsRequest> {
  const ms = (v: number | Date | undefined): number => v === undefined ? 0 : (v instanceof Date ? v.getTime() : v)
  return { jobId: f.jobId, nodeId: f.nodeId, sinceMs: ms(f.since), untilMs: ms(f.until), kind: f.kind, pageSize: f.pageSize, pageToken: f.pageToken }
}

/** The archive checked the record before serving it; the client checks that the bytes are the ones the hash names. */
export function checkRecord (reply: RecordReply, archive: string): RecordReply {
  if (reply.record === null) return reply
  const hash = createHash('sha256').update(reply.record.data).digest('hex')
  if (hash !== reply.hash.toLowerCase()) throw new RecordHashMismatchError(reply.archiveId !== '' ? reply.archiveId : archive, reply.hash)
  return reply
}

/** A node without the archive role (or without the record) is not the last word: ask the next. */
export function archiveVerdict (err: unknown): 'skip' | undefined {
  const code = (err as { code?: unknown }).code
  return code === grpc.status.NOT_FOUND || code === grpc.status.FAILED_PRECONDITION || code === grpc.status.UNIMPLEMENTED ? 'skip' : undefined
}
