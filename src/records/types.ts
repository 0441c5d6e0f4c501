/** The record log's types: what goes in, what comes out, its events and its options. */
import type { JobStore } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Startable } from '../types.ts'

/** What a record is indexed by; only ever derived from the record by `verify`. */
export interface RecordIndex {
  /** The job the record is about ('' = none). */
  jobId: string
  /** Nodes the record names (its signer first, then others it involves). */
  nodeIds: string[]
}

/**
 * Checks a record of `kind` and returns its index fields; throws (InvalidRecordError, with a reason
 * from a closed set) when the record must not be kept. Called before every store and every read.
 */
export type VerifyRecord = (kind: string, data: Uint8Array) => RecordIndex

/** What a batch verifier says of one record: its index, or why it is refused (Refusal's code and reason). */
export type VerifyOutcome = { index: RecordIndex } | { error: { code: string, reason: string } }

/**
 * The same checks as `verify`, for many records at once, off this thread (the archive runs them on
 * worker threads): put() hands it batches of at least VERIFY_BATCH_MIN records, so signature checks
 * of a catch-up run beside the event loop instead of on it.
 */
export type VerifyBatch = (records: RecordInput[]) => Promise<VerifyOutcome[]>

export interface RecordInput {
  kind: string
  data: Uint8Array
}

export interface LoggedRecord extends RecordIndex {
  /** sha256 of data, lowercase hex. */
  hash: string
  kind: string
  data: Uint8Array
  /** When this node first stored it (unix ms). */
  storedAtMs: number
}

export interface Refusal {
  hash: string
  /** The error's code, and for INVALID_RECORD the check that failed (e.g. INVALID_RECORD:SIGNER_MISMATCH). */
  code: string
  reason: string
}

export interface PutResult {
  /** How many were new (now stored). */
  stored: number
  /** Hashes of the new ones. */
  hashes: string[]
  /** How many this log held already. */
  duplicate: number
  refused: Refusal[]
}

export interface LogEntry {
  hash: string
  storedAtMs: number
  kind: string
}

export interface ListOptions {
  /** Entries stored at or after this (unix ms; default 0). */
  sinceMs?: number
  /** Resume after this hash among entries stored exactly at sinceMs ('' = from the first). */
  afterHash?: string
  /** Default DEFAULT_LIST_LIMIT, at most MAX_LIST_LIMIT. */
  limit?: number
}

export interface ListResult {
  /** In (storedAtMs, hash) order. */
  entries: LogEntry[]
  /** Further entries follow the last one. */
  more: boolean
}

export interface QueryOptions {
  jobId?: string
  nodeId?: string
  /** stored_at range: inclusive start, exclusive end (0 or absent = open). */
  sinceMs?: number
  untilMs?: number
  kind?: string
  /** Default DEFAULT_PAGE_SIZE, at most MAX_PAGE_SIZE. */
  pageSize?: number
  /** '' or absent = the first page. */
  pageToken?: string
}

export interface QueryResult {
  /** Verified records, oldest stored first. */
  records: LoggedRecord[]
  /** '' when this was the last page. */
  nextPageToken: string
  /** Hashes found corrupt while reading this page (reported and dropped; a caller may fetch them again elsewhere). */
  corrupt: string[]
}

export type ReadResult =
  | { status: 'ok', record: LoggedRecord }
  | { status: 'missing' }
  | { status: 'corrupt', reason: string }

/** Where a catch-up from one peer resumes: that peer's list position. */
export interface SyncCursor {
  sinceMs: number
  afterHash: string
}

export interface Corruption {
  log: string
  hash: string
  reason: string
}

export interface RecordLogEvents {
  /** New records were stored (by put, a push or a catch-up), in store order. */
  stored: { log: string, records: LoggedRecord[] }
  /** A stored record failed verification when read; it was deleted from the log. */
  corrupt: Corruption
  /** Records were evicted by retention. */
  evicted: { log: string, count: number }
}

export interface RetentionInit {
  /** Bytes of stored records kept before the oldest are evicted (default DEFAULT_MAX_BYTES). */
  maxBytes?: number
  /** Records stored longer ago are evicted (default DEFAULT_MAX_AGE_MS). */
  maxAgeMs?: number
}

export interface RecordLogInit {
  /** The store section (and metric label) of this log: letters, digits, '-'. */
  name: string
  verify: VerifyRecord
  /** Optional: verifies batches elsewhere (reads always use `verify`). */
  verifyBatch?: VerifyBatch
  retention?: RetentionInit
}

export interface RecordLogComponents {
  store: Pick<JobStore, 'section'>
  logger: Logger
  metrics?: Metrics
}

export interface RecordLog extends Startable {
  readonly name: string
  /** Verifies each record, then stores the new ones (by sha256 of data) in one batch; never throws for a bad record. */
  put(records: RecordInput[]): Promise<PutResult>
  /** The record, verified again now; undefined when not held, or when it failed (then reported and deleted). */
  get(hash: string): Promise<LoggedRecord | undefined>
  /**
   * get(), telling a record not held from one that was corrupt. `check: 'hash'` checks only that the
   * data still hash to the key (every bit of disk corruption shows there) and skips the kind's
   * verification (signatures): for serving peers, who verify whatever they receive anyway.
   */
  read(hash: string, opts?: { check?: 'full' | 'hash' }): Promise<ReadResult>
  /** read() of each hash, in order, with one read of the store for all. */
  readMany(hashes: string[], opts?: { check?: 'full' | 'hash' }): Promise<ReadResult[]>
  has(hash: string): Promise<boolean>
  /** has() of each hash, in order, with one read of the store for all. */
  hasMany(hashes: string[]): Promise<boolean[]>
  list(opts?: ListOptions): Promise<ListResult>
  query(opts?: QueryOptions): Promise<QueryResult>
  count(): number
  /** Bytes of stored records (their StoredRecord encoding, as on disk). */
  bytes(): number
  /** Applies retention now; resolves with how many records were evicted. */
  evict(): Promise<number>
  cursor(peer: string): Promise<SyncCursor | undefined>
  saveCursor(peer: string, cursor: SyncCursor | undefined): Promise<void>
  on<K extends keyof RecordLogEvents>(name: K, listener: (value: RecordLogEvents[K]) => void): () => void
}
