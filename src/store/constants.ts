/** Sublevel names; each is its own keyspace in the one LevelDB. */
export const SUBLEVELS = {
  /** id → record of pending/running jobs; small, scanned at start to resume. */
  active: 'active',
  /** id → record of finished jobs; bounded by maxResults. */
  completed: 'completed',
  /** zero-padded access seq → created-index key of a completed job; oldest seq = least recently used. */
  lru: 'lru',
  /** id → access seq, so a get() can find and move its lru entry without a scan. */
  lruById: 'lruid',
  /** zero-padded createdAtMs + '!' + id → state; lets list() go newest first without reading records. */
  created: 'created',
  /** Single-key bookkeeping (finished-job counters). */
  meta: 'meta',
  /** node id → a scheduler's record of that worker (successes, failures, disputes, exclusion). */
  reputation: 'rep',
  /** zero-padded atMs + '!' + sha256 hex → a signed dispute record (JSON envelope); the oldest go past MAX_DISPUTES. */
  disputes: 'disputes'
} as const

/** Dispute records kept; disputes are rare, and each is also in every other scheduler's store and in archives. */
export const MAX_DISPUTES = 10_000

/** Record encoding version written with every record, so a later format can still read old ones. */
export const RECORD_VERSION = 2

/** Versions decodeRecord still reads: 1 = single-container jobs (no containers/steps/origin fields). */
export const READABLE_RECORD_VERSIONS: ReadonlySet<unknown> = new Set([1, 2])

/** list() without a limit returns this many jobs (matches ListOptions' documented default). */
export const DEFAULT_LIST_LIMIT = 100

/** Width of zero-padded numeric keys: Number.MAX_SAFE_INTEGER has 16 digits, so lexical order = numeric order. */
export const NUMERIC_KEY_WIDTH = 16

export const COUNTERS_KEY = 'counters'
