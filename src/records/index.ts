/**
 * Content-addressed record logs and their sync protocol: archives keep proofs in one, coordinators
 * keep subscription events in another (docs/ARCHIVE.md).
 */
export * from './errors.ts'
export * from './constants.ts'
export { recordLog, recordKey, refusalOf, sha256Hex } from './log.ts'
export type {
  RecordLog, RecordLogInit, RecordLogComponents, RecordLogEvents, RecordIndex, VerifyRecord, VerifyBatch, VerifyOutcome, RecordInput, LoggedRecord, Refusal,
  PutResult, LogEntry, ListOptions, ListResult, QueryOptions, QueryResult, ReadResult, SyncCursor, Corruption, RetentionInit
} from './log.ts'
export { recordSync } from './sync.ts'
export type { RecordSync, RecordSyncInit, RecordSyncComponents, CatchUpOptions, CatchUpResult } from './sync.ts'
export { listFrom, fetchFrom, pushTo, formatRefusal, parseRefusal } from './client.ts'
export type { SyncPage, PushResult, FetchedRecord } from './client.ts'
export { rendezvous } from './rendezvous.ts'
