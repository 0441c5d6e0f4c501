/** Defaults of the record log and its sync protocol, each with why it is what it is. */

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const DAY_MS = 24 * 3_600_000

/**
 * Largest record accepted (its data). Receipts, attestations and certificates are a few KiB; outputs
 * are bounded by a container's max_output_bytes (1 MiB by default). Two of the largest fit in one frame.
 */
export const MAX_RECORD_BYTES = 4 * MiB
/** Records kept before the oldest are evicted: generous, an archive's disk is its whole purpose. */
export const DEFAULT_MAX_BYTES = 16 * GiB
/** Proofs are kept two years unless configured otherwise (disputes and audits come late). */
export const DEFAULT_MAX_AGE_MS = 730 * DAY_MS
/** How often age-based eviction runs: records expire on a scale of days, not seconds. */
export const RETENTION_INTERVAL_MS = 60_000
/** Records evicted per LevelDB batch, so one eviction never builds a huge batch in memory. */
export const EVICT_BATCH = 512

/** list() entries per call when no limit is given, and the most one list request may ask for. */
export const DEFAULT_LIST_LIMIT = 1_000
export const MAX_LIST_LIMIT = 5_000
/** query() page size when none is given (ListRecords: 0 = 100), and the largest allowed. */
export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 1_000
/** Index entries one query page looks at before it returns what it has (filters that match little stay bounded). */
export const MAX_QUERY_SCAN = 20_000

/** Smallest put handed to a batch verifier: below it a thread round trip costs more than it saves. */
export const VERIFY_BATCH_MIN = 32

/** Width of the zero-padded millisecond timestamps in index keys (ms until the year 33658). */
export const TIME_KEY_WIDTH = 15

// ---- sync protocol ----

/** Records asked for or pushed in one request (a catch-up's batch). Large batches amortise a stream and a LevelDB batch. */
export const DEFAULT_SYNC_BATCH = 500
/** Most hashes in one fetch request and most records in one store request: bounds the work one request costs. */
export const MAX_SYNC_BATCH = 2_000
/** Largest request frame: a store request with a full batch of receipts, or two of the largest records. */
export const MAX_SYNC_REQUEST_BYTES = 2 * MAX_RECORD_BYTES + 64 * KiB
/** Largest response frame; a fetch response stops adding records before it (the asker asks again for the rest). */
export const MAX_SYNC_RESPONSE_BYTES = 2 * MAX_RECORD_BYTES + 64 * KiB
/** Deadline of one request, asked or served: a batch of records moves in well under a second on a LAN. */
export const SYNC_TIMEOUT_MS = 30_000
/**
 * Requests per second per peer, and the burst after a quiet spell: a catch-up of 5,000 receipts/s
 * needs ~15 requests/s at the default batch; the rest is headroom for several logs and pushes.
 */
export const SYNC_PER_PEER_PER_SECOND = 100
export const SYNC_PER_PEER_BURST = 200
/** Peers tracked by the rate limiter (the least recently seen is forgotten first). */
export const MAX_SYNC_TRACKED_PEERS = 1_024
/** Streams of the protocol open at once per connection (a catch-up keeps a few fetches in flight). */
export const SYNC_MAX_INBOUND_STREAMS = 16
/** Fetch requests one catch-up keeps in flight, so listing, fetching and storing overlap. */
export const CATCH_UP_FETCHES_IN_FLIGHT = 3
/**
 * A saved catch-up position is stepped back by this much, so records a peer stored in the same
 * millisecond as the last one seen, or with a clock stepped back a little, are not missed (the
 * overlap is listed again; what this node already holds is not fetched again).
 */
export const CATCH_UP_OVERLAP_MS = 5_000
