/** Tuning of the mesh itself. Protocol ids, topics, payload types and DHT keys live in src/protocol/constants.ts. */

/** A peer silent for this many heartbeat intervals is considered gone. */
export const LIVENESS_INTERVALS = 3
/**
 * How often libp2p's connection monitor pings each connection: its round trip is the latency shown
 * in `infra peers`, and a connection that stops answering is closed.
 */
export const PING_INTERVAL_MS = 10_000
/** Largest fetch response accepted (bigger content is not something the mesh moves). */
export const MAX_FETCH_BYTES = 64 * 1024 * 1024
/** A fetch that has not answered by then fails; callers may pass a shorter signal. */
export const FETCH_TIMEOUT_MS = 30_000
