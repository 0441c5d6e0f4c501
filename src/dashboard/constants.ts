/** Defaults of the dashboard, each with why it is what it is. */

/** Jobs in the first list a page gets: a screenful and then some; the live stream adds the rest. */
export const DEFAULT_JOB_LIMIT = 100
/** The most a page may ask for at once: the list is read from LevelDB and sent whole. */
export const MAX_JOB_LIMIT = 500
/** How often connected pages get counters, containers, peers and reputation: live, yet cheap (one status read per tick, whatever the number of pages). */
export const SNAPSHOT_INTERVAL_MS = 2_000
/** Width of one point of the throughput and latency charts. */
export const BUCKET_MS = 5_000
/** Points kept: 15 minutes at 5 s, "the last minutes" an operator looks back on. */
export const BUCKETS_KEPT = 180
/** Latencies kept per point for its percentiles; past it a point samples (reservoir), so memory stays flat under load. */
export const LATENCY_SAMPLES_PER_BUCKET = 512
/** Guardian refusals listed; the counts by rule cover all of them. */
export const REFUSALS_KEPT = 100
/** Pages connected at once: each holds a socket and a buffer; a local script opening more is refused. */
export const MAX_STREAM_CLIENTS = 32
/** A page that reads slower than events come is cut off past this much unsent data (it reconnects and reloads its state). */
export const MAX_STREAM_BUFFER_BYTES = 512 * 1024
/** How long a page waits before reconnecting a dropped event stream (SSE `retry:`). */
export const STREAM_RETRY_MS = 2_000
/** Longest error text shown for a job or a step: enough to explain, bounded in the page. */
export const MAX_ERROR_CHARS = 300
