/**
 * Every protocol id, gossip topic and signed payload type of inframind, named once. Versioned: a
 * change to a message's meaning gets a new name, never a silent reinterpretation of the old one.
 */
import type { MessageName } from './generated.ts'

/** Private Kademlia DHT: never the public IPFS one (/ipfs/kad/1.0.0). */
export const DHT_PROTOCOL = '/inframind/kad/1.0.0'
/** Request/response for content by sha256 (inputs and outputs above the inline limit). */
export const FETCH_PROTOCOL = '/inframind/fetch/1.0.0'
/** Request/response: the operator-signed roster a peer holds (how a node that missed an update catches up). */
export const ROSTER_PROTOCOL = '/inframind/roster/1.0.0'

/**
 * Gossipsub topics; the mesh has a rule for each (compiler-checked). Heartbeats are heard only by
 * the nodes that choose workers (scheduler, gateway); every node subscribes to the others.
 */
export const TOPICS = {
  heartbeats: 'inframind/heartbeats/1',
  assignments: 'inframind/assignments/1',
  acks: 'inframind/acks/1',
  receipts: 'inframind/receipts/1',
  attestations: 'inframind/attestations/1',
  roster: 'inframind/roster/1',
  disputes: 'inframind/disputes/1'
} as const

export type TopicName = keyof typeof TOPICS
export type Topic = typeof TOPICS[TopicName]

/** payload_type of every signed envelope (the first input of its signature). */
export const PAYLOAD_TYPES = {
  heartbeat: 'inframind/heartbeat/v1',
  // v2: the client's data is sealed to the recipient (v1 carried it in clear).
  assignment: 'inframind/assignment/v2',
  ack: 'inframind/ack/v1',
  jobResult: 'inframind/job-result/v2',
  // A running job's output, worker to scheduler over gRPC ReportOutput only (never a gossip topic).
  outputChunk: 'inframind/output-chunk/v1',
  receipt: 'inframind/receipt/v1',
  attestation: 'inframind/attestation/v1',
  roster: 'inframind/roster/v1',
  rosterNotice: 'inframind/roster-notice/v1',
  certificate: 'inframind/certificate/v1',
  dispute: 'inframind/dispute/v1',
  // Subscriptions (docs/SUBSCRIPTIONS.md): the owner signs requests and cancels, a coordinator its events.
  subscriptionRequest: 'inframind/subscription-request/v1',
  subscriptionCancel: 'inframind/subscription-cancel/v1',
  subscriptionEvent: 'inframind/subscription-event/v1'
} as const

export type PayloadTypeName = keyof typeof PAYLOAD_TYPES

/** The one payload type each topic carries; anything else on the topic is rejected. */
export const TOPIC_PAYLOAD = {
  heartbeats: 'heartbeat',
  assignments: 'assignment',
  acks: 'ack',
  receipts: 'jobResult',
  attestations: 'attestation',
  roster: 'rosterNotice',
  disputes: 'dispute'
} as const satisfies Record<TopicName, PayloadTypeName>

/** DHT keys a node provides, one per role and one per container it serves. */
export function roleKey (role: string): string {
  return `inframind/role/${role}`
}

export function containerKey (containerId: string): string {
  return `inframind/container/${containerId}`
}

/** The protobuf package of every inframind message and service (proto/inframind/v1/). */
export const PROTO_PACKAGE = 'inframind.v1'

/** gRPC services by full name, as reflection lists them. */
export const NODE_SERVICE = 'inframind.v1.Node'
export const CONTROL_SERVICE = 'inframind.v1.Control'
export const HEALTH_SERVICE = 'grpc.health.v1.Health'

/** The protobuf message inside each payload type's envelope. */
export const PAYLOAD_MESSAGES = {
  heartbeat: 'inframind.v1.Heartbeat',
  assignment: 'inframind.v1.Assignment',
  ack: 'inframind.v1.AssignmentAck',
  jobResult: 'inframind.v1.JobResultNotice',
  outputChunk: 'inframind.v1.OutputChunkNotice',
  receipt: 'inframind.v1.Receipt',
  attestation: 'inframind.v1.Attestation',
  roster: 'inframind.v1.Roster',
  rosterNotice: 'inframind.v1.RosterNotice',
  certificate: 'inframind.v1.Certificate',
  dispute: 'inframind.v1.DisputeRecord',
  subscriptionRequest: 'inframind.v1.SubscriptionRequest',
  subscriptionCancel: 'inframind.v1.SubscriptionCancel',
  subscriptionEvent: 'inframind.v1.SubscriptionEvent'
} as const satisfies Record<PayloadTypeName, MessageName>

/** Request/response: an archive's content-addressed records (list, fetch, store); docs/ARCHIVE.md. */
export const ARCHIVE_SYNC_PROTOCOL = '/inframind/archive-sync/1.0.0'
/** The same record sync protocol, between coordinators, for subscription events. */
export const SUBSCRIPTION_SYNC_PROTOCOL = '/inframind/subscription-sync/1.0.0'
