/** Limits and defaults of the roster and its propagation, each with why it has this value. */

/**
 * Largest Roster payload accepted: ~10,000 members at ~100 bytes each. A roster that must spread by
 * gossip is further bounded by mesh.max_gossip_bytes; the catch-up protocol takes up to this.
 */
export const MAX_ROSTER_BYTES = 1024 * 1024
/** An envelope adds its type, key and signature (<400 bytes) around the payload. */
export const MAX_ROSTER_ENVELOPE_BYTES = MAX_ROSTER_BYTES + 1024
/** The JSON file is base64 (4/3) plus field names: anything larger is not a roster file and is not read whole. */
export const MAX_ROSTER_FILE_BYTES = 2 * MAX_ROSTER_ENVELOPE_BYTES

/** A catch-up request holds at most a uvarint version (10 bytes); the rest of the room is for future fields. */
export const MAX_ROSTER_REQUEST_BYTES = 64
/** One peer is asked at most once a minute, however often its connections drop and come back. */
export const CATCH_UP_INTERVAL_MS = 60_000
/** A roster of 1 MiB crosses a slow edge link in a few seconds; a peer silent this long is skipped. */
export const CATCH_UP_TIMEOUT_MS = 10_000
/** Catch-up requests under way at once: a node joining through many peers needs only one answer. */
export const MAX_CATCH_UP_IN_FLIGHT = 4
/** Peers remembered for the once-a-minute rule; the oldest is forgotten first (at worst it is asked again). */
export const MAX_TRACKED_PEERS = 1024

/** Where the CLI keeps the operator's key unless told otherwise: per-user, outside any checkout. */
export const DEFAULT_OPERATOR_KEY_FILE = '~/.inframind/operator.key'
/** The operator's working copy of the roster (unsigned); `infra roster sign` turns it into roster.json. */
export const DEFAULT_DRAFT_FILE = 'roster.draft.json'
export const DEFAULT_SIGNED_FILE = 'roster.json'
/** The file name nodes expect (mesh.admission.network_key_file defaults to mesh.key in data_dir). */
export const DEFAULT_MESH_KEY_FILE = 'mesh.key'
