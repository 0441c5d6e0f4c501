/** Versioned protocol ids, topics and payload types of the mesh: the one place they are named. */

/** Private Kademlia DHT: never the public IPFS one (/ipfs/kad/1.0.0). */
export const DHT_PROTOCOL = '/inframind/kad/1.0.0'
/** Request/response for content by sha256 (inputs and outputs above the inline limit). */
export const FETCH_PROTOCOL = '/inframind/fetch/1.0.0'

export const TOPICS = {
  heartbeats: 'inframind/heartbeats/1',
  assignments: 'inframind/assignments/1',
  acks: 'inframind/acks/1',
  receipts: 'inframind/receipts/1',
  attestations: 'inframind/attestations/1'
} as const

export type TopicName = keyof typeof TOPICS

export const PAYLOAD_TYPES = {
  heartbeat: 'inframind/heartbeat/v1',
  assignment: 'inframind/assignment/v1',
  ack: 'inframind/ack/v1',
  jobResult: 'inframind/job-result/v1'
} as const

/** DHT keys a node provides, one per role and one per container it serves. */
export function roleKey (role: string): string {
  return `inframind/role/${role}`
}

export function containerKey (containerId: string): string {
  return `inframind/container/${containerId}`
}

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
