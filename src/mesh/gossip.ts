/**
 * The vocabulary of gossip validation: what a rule is, the three outcomes, and which outcome each
 * failure code leads to. The rules themselves are in gossip-rules.ts, the pipeline in validate.ts.
 */
import { TopicValidatorResult } from '@libp2p/interface'
import type { SignedEnvelope } from '../envelope/types.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import type { TOPIC_PAYLOAD, TopicName } from '../protocol/constants.ts'
import type { Assignment, AssignmentAck, Attestation, DisputeRecord, Heartbeat, JobResultNotice, RosterNotice } from '../protocol/index.ts'

/**
 * ACCEPT: deliver and forward. IGNORE: drop without forwarding, and without blaming the peer that
 * sent it (it may be honest: skewed clock, late copy, reordered path). REJECT: drop and score the
 * sending peer down: only for messages no honest peer would have forwarded.
 */
export const GossipAction = { ACCEPT: 'ACCEPT', IGNORE: 'IGNORE', REJECT: 'REJECT' } as const
export type GossipAction = typeof GossipAction[keyof typeof GossipAction]

/**
 * Every reason a message is not accepted, and the outcome it always leads to. Rules name a code,
 * never an outcome, so one failure cannot be punished in one place and forgiven in another.
 */
export const GOSSIP_CODES = {
  OVERSIZED: 'REJECT',
  MALFORMED_ENVELOPE: 'REJECT',
  WRONG_PAYLOAD_TYPE: 'REJECT',
  BAD_SIGNATURE: 'REJECT',
  SIGNER_MISMATCH: 'REJECT',
  MALFORMED_PAYLOAD: 'REJECT',
  INVALID_CONTENT: 'REJECT',
  // Timestamps are judged by our clock; a peer with a skewed clock, or one forwarding late, is honest.
  STALE: 'IGNORE',
  FUTURE: 'IGNORE',
  // Depends on what this node has already seen, which the forwarding peer cannot know.
  DUPLICATE: 'IGNORE',
  // The author is not (or no longer, or not yet) admitted to act on this topic: a roster update this
  // node has seen and the forwarder has not is no malice, and floods are the rate limits' business.
  NOT_ADMITTED: 'IGNORE',
  // Over the author's rate (constants.ts): a reordered burst or a forwarder's late copies cost nothing.
  RATE_LIMITED: 'IGNORE',
  // Far over its rate, sent by the author itself: no honest node does that, so it is scored down (and banned).
  FLOODING: 'REJECT'
} as const satisfies Record<string, typeof GossipAction.IGNORE | typeof GossipAction.REJECT>

export type GossipCode = keyof typeof GOSSIP_CODES
export type RejectCode = { [C in GossipCode]: typeof GOSSIP_CODES[C] extends 'REJECT' ? C : never }[GossipCode]
export type IgnoreCode = { [C in GossipCode]: typeof GOSSIP_CODES[C] extends 'IGNORE' ? C : never }[GossipCode]

/** The one translation of our outcomes into gossipsub's (which scores only Reject). */
export const TOPIC_VALIDATOR_RESULT: { [A in GossipAction]: TopicValidatorResult } = {
  ACCEPT: TopicValidatorResult.Accept,
  IGNORE: TopicValidatorResult.Ignore,
  REJECT: TopicValidatorResult.Reject
}

interface Payloads {
  heartbeat: Heartbeat
  assignment: Assignment
  ack: AssignmentAck
  jobResult: JobResultNotice
  attestation: Attestation
  rosterNotice: RosterNotice
  dispute: DisputeRecord
}

/** The decoded payload a topic carries; a topic whose payload type has no entry here does not compile. */
export type PayloadOf<K extends TopicName> = Payloads[typeof TOPIC_PAYLOAD[K]]

export interface GossipProblem { code: GossipCode, reason: string }

/** What a rule may consult beyond the message itself. */
export interface GossipContext {
  now: number
  maxBytes: number
  maxSkewMs: number
  /** atMs of the last heartbeat accepted from a node; undefined when none was. */
  lastHeartbeatAt: (nodeId: string) => number | undefined
}

/** How to read, write and judge the payload of one topic (its payload type comes from TOPIC_PAYLOAD). */
export interface GossipRule<T> {
  encode: (value: T) => Uint8Array
  decode: (bytes: Uint8Array) => T
  /** The node the payload claims to come from: must be the envelope's signer. */
  author: (value: T) => string
  /** When the payload was stamped by its author (ms since epoch). */
  at: (value: T) => number
  /** Further checks on a well-formed, fresh payload signed by its author. */
  check?: (value: T, signer: string, ctx: GossipContext) => GossipProblem | undefined
}

export type GossipRules = { [K in TopicName]: GossipRule<PayloadOf<K>> }

export interface Accepted<T> { action: 'ACCEPT', value: T, envelope: SignedEnvelope, signer: string }
export type NotAccepted =
  | { action: 'REJECT', code: RejectCode, reason: string }
  | { action: 'IGNORE', code: IgnoreCode, reason: string }
export type GossipVerdict<T> = Accepted<T> | NotAccepted

export function notAccepted (code: GossipCode, reason: string): NotAccepted {
  return { action: GOSSIP_CODES[code], code, reason } as NotAccepted
}

/** The node id of an envelope's key; '' for a key that is not a valid ed25519 key. */
export function nodeIdOf (publicKey: Uint8Array): string {
  try {
    return nodeIdFromPublicKey(publicKey)
  } catch {
    return ''
  }
}
