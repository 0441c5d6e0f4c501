/** Defaults of the archive role, each with why it is what it is. */

/** Each record on two archives: one may die or lose a disk without losing a proof. */
export const DEFAULT_REPLICAS = 2
/** How often an archive catches up from each other live archive: a restarted one is whole again within seconds. */
export const DEFAULT_SYNC_INTERVAL_MS = 5_000
/** The archive's record log: its section of the node's LevelDB and its metric label. */
export const ARCHIVE_LOG_NAME = 'archive'
/** How often the DHT is asked for archives this node is not connected to (a lookup costs a few round trips). */
export const DISCOVER_INTERVAL_MS = 30_000
/** Deadline of one DHT lookup plus the dials it leads to. */
export const DISCOVER_TIMEOUT_MS = 10_000
/** Gossip records are stored in batches this often (one LevelDB batch instead of one write per message). */
export const KEEP_FLUSH_MS = 20
/** A gossip batch is written at once when it reaches this many records. */
export const KEEP_BATCH = 500
/** Records waiting to be written before gossip ones are dropped (the archive is far behind its disk). */
export const MAX_KEEP_QUEUE = 20_000

/** The sink sends what it was given this often, in one request per holder. */
export const SINK_FLUSH_MS = 100
/** Records per push request of the sink. */
export const SINK_BATCH = 500
/** How long a stopping sink tries to send what is queued: a node's shutdown never waits on an archive for long. */
export const SINK_STOP_GRACE_MS = 2_000
/** Records the sink holds for sending; beyond it new ones are dropped and counted (a job never waits on an archive). */
export const MAX_SINK_QUEUE = 10_000
/** Verify threads at most: beyond a few, the disk and the network limit a catch-up, not signatures. */
export const MAX_VERIFY_THREADS = 4
