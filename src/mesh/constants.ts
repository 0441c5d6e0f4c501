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

// --- Per-peer limits (issue 9). Each bounds what one peer can make this node do; each is sized so
// an honest node never meets it. docs/ (mesh limits table) lists them.

/**
 * Heartbeat bucket: refilled at one token per half of the author's interval (its last accepted
 * heartbeat's interval_ms, clamped to 1–5 s; 1 s before any). An honest node sends one per interval
 * (plus one at start), half the refill, so its bucket stays full; the burst of 8 lets through what
 * may honestly arrive at once: a restart's extra heartbeat, and the few seconds of heartbeats a
 * healed path delivers together (gossipsub's IHAVE/IWANT repair). Each extra token costs a
 * signature check, ~0.1 ms: the flood threshold below, not the burst, is what cuts a flood.
 */
export const HEARTBEAT_BURST = 8
export const HEARTBEAT_REFILLS_PER_INTERVAL = 2
/** The interval assumed for an author none of whose heartbeats was accepted yet (the fastest allowed). */
export const HEARTBEAT_MIN_INTERVAL_MS = 1_000
/** The slowest interval a heartbeat may claim (config allows 1–5 s); a longer claim does not slow the bucket further. */
export const HEARTBEAT_MAX_INTERVAL_MS = 5_000

/**
 * Job traffic (assignments, acks, receipts, attestations) per author: 500 messages/s with a burst of
 * 1,000. Each is one per job from one node; the whole mesh moved ~110 jobs/s through one gateway
 * on a 2-core box (bench/results), and one node's warm ceiling is ~1,200 jobs/s spread over several
 * topics, so an honest scheduler or worker stays several times under; the burst covers a queue
 * drained after a reconnect.
 */
export const JOB_TOPIC_PER_SECOND = 500
export const JOB_TOPIC_BURST = 1_000
/** Roster notices: sent when a node applies an operator's update (or answers one that missed it): a handful per second at most. */
export const ROSTER_TOPIC_PER_SECOND = 5
export const ROSTER_TOPIC_BURST = 20

/**
 * Over-rate messages an author may send itself within FLOOD_WINDOW_MS before they count as a
 * flood: REJECTed (gossipsub scores it down) and the author banned at once. Only a node's own
 * messages count: an honest forwarder passes on only what it accepted, so forwarding is never
 * punished. Heartbeats: 10 beyond a full burst of 8 is 18 heartbeats in seconds from a node that
 * sends one per second at most; no clock, restart or reordering makes an honest node do that.
 */
export const FLOOD_WINDOW_MS = 10_000
export const HEARTBEAT_FLOOD_EXCESS = 10
/** Job topics: a whole extra burst over the rate within the window. */
export const JOB_TOPIC_FLOOD_EXCESS = JOB_TOPIC_BURST
export const ROSTER_TOPIC_FLOOD_EXCESS = 40
/** Dispute records: one per disputed job from a scheduler, rare by nature: 10/s, burst 50, flood past 100 more. */
export const DISPUTE_TOPIC_PER_SECOND = 10
export const DISPUTE_TOPIC_BURST = 50
export const DISPUTE_TOPIC_FLOOD_EXCESS = 100

/**
 * Authors whose rate state is kept (least recently seen evicted first): a mesh of hundreds of nodes
 * fits many times over, and a Sybil cycling keys cannot grow memory past ~1 MiB. Eviction only
 * forgives (a returning author starts with a full bucket); bans, kept apart, are not forgotten that way.
 */
export const MAX_RATE_TRACKED_AUTHORS = 4_096

/** How often gossipsub scores of connected peers are checked against the graylist threshold. */
export const SCORE_CHECK_INTERVAL_MS = 1_000
/** First ban of a peer (graylisted, or flooding); each further ban doubles it, up to BAN_MAX_MS. */
export const BAN_BASE_MS = 60_000
export const BAN_MAX_MS = 3_600_000
/**
 * A peer's ban count is remembered this long after its last ban ends, so a repeat offender's
 * cool-down keeps doubling, while one graylisted once long ago starts again at BAN_BASE_MS.
 */
export const BAN_MEMORY_MS = 24 * 3_600_000
/** Ban records kept (expired ones dropped first): bounded against a Sybil of banned keys. */
export const MAX_BAN_RECORDS = 4_096

/**
 * Inbound connections accepted per remote host per second (libp2p's inboundConnectionThreshold;
 * its default is 5). A devnet runs up to 64 nodes on 127.0.0.1 and a site may put many behind one
 * NAT address; they start one after another and each dials a given node once or twice while it
 * joins (bootstrap, then DHT walks), so 20/s holds them, and a refused dial is retried by the
 * bootstrap redial and the DHT. Above it one host costs a node only rejected TCP accepts.
 */
export const INBOUND_CONNECTIONS_PER_HOST_PER_S = 20

/** Redial of peers this node keeps connected (schedulers, gateways), and of bootstrap peers. */
export const KEEP_CONNECTED_INTERVAL_MS = 5_000
/** One dial attempt; a DHT lookup of a peer's addresses gets the second bound. */
export const KEEP_DIAL_TIMEOUT_MS = 5_000
export const KEEP_FIND_PEER_TIMEOUT_MS = 10_000

/** The pre-shared key handshake (nonce exchange) must complete within this; pnet's 1 s default is tight on a busy small box. */
export const PNET_HANDSHAKE_TIMEOUT_MS = 5_000

/**
 * Concurrent inbound fetch streams per connection: a worker fetches a job's input, a scheduler a
 * job's output, a few jobs at a time; more is a peer opening streams for their own sake
 * (libp2p resets the extra streams).
 */
export const FETCH_MAX_INBOUND_STREAMS = 8
/**
 * Fetch requests per peer: 200/s, burst 400. A fetch moves one job's input or output above the
 * inline limit, so honest peers need a few per second per running job; over it the peer gets an
 * ERROR response saying RATE_LIMITED at once (not a hang).
 */
export const FETCH_PER_PEER_PER_SECOND = 200
export const FETCH_PER_PEER_BURST = 400
/** Peers whose fetch rate is tracked (least recently seen evicted). */
export const MAX_FETCH_TRACKED_PEERS = 1_024
/**
 * A node behind NAT starts only once its relay reservations are made (they are its only addresses):
 * each may take this long. libp2p's 10 s default failed node starts on a busy 2-core machine; an edge
 * node on a slow link is no faster.
 */
export const RELAY_RESERVATION_TIMEOUT_MS = 30_000
