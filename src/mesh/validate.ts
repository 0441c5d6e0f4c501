import { decodeEnvelope, verifyEnvelope } from '../envelope/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { PAYLOAD_TYPES, TOPIC_PAYLOAD, type TopicName } from '../protocol/constants.ts'
import { nodeIdOf, notAccepted, type GossipContext, type GossipRule, type GossipVerdict, type NotAccepted, type PayloadOf } from './gossip.ts'
import { GOSSIP_RULES } from './gossip-rules.ts'
import type { GossipLimiter } from './limits.ts'

/** The payload type an envelope on this topic must carry (the first input of its signature). */
export function payloadTypeOf (topic: TopicName): string {
  return PAYLOAD_TYPES[TOPIC_PAYLOAD[topic]]
}

/** Who may act on a topic: false for an author the roster does not admit there. */
export type Authorize = (topic: TopicName, author: string) => boolean

/**
 * The checks before a gossip message is even decoded, on gossipsub's author (`author`, proven by
 * gossipsub's own signature check): its rate on this topic first (so a flood is cut, and scored, at
 * the cost of a map lookup), then whether it is admitted. undefined: go on to validateGossip.
 * `fromAuthor`: the peer that delivered the message is its author.
 */
export function screenGossip (topic: TopicName, author: string, fromAuthor: boolean, limiter: GossipLimiter, authorize: Authorize | undefined, now = Date.now()): NotAccepted | undefined {
  const rate = limiter.check(topic, author, fromAuthor, now)
  if (rate === 'FLOODING') return notAccepted('FLOODING', `${author} sent far more ${topic} messages than its rate allows`)
  if (rate === 'RATE_LIMITED') return notAccepted('RATE_LIMITED', `over ${author}'s rate on ${topic}`)
  if (authorize === undefined) return undefined
  let admitted: boolean
  try {
    admitted = authorize(topic, author)
  } catch (err) {
    return notAccepted('NOT_ADMITTED', `admission check failed for ${author} on ${topic}: ${(err as Error).message}`)
  }
  return admitted ? undefined : notAccepted('NOT_ADMITTED', `${author} is not admitted on ${topic}`)
}

/**
 * Every message from the mesh passes here before use, cheapest and most certain checks first:
 * size, envelope shape, payload type for the topic, ed25519 signature, signer = gossipsub author =
 * the node the payload names, strict payload decoding, freshness, then the topic's own checks.
 * Never throws: the outcome of every failure is fixed by its code (GOSSIP_CODES).
 */
export function validateGossip<K extends TopicName> (topic: K, data: Uint8Array, from: string, ctx: GossipContext): GossipVerdict<PayloadOf<K>> {
  if (data.byteLength > ctx.maxBytes) return notAccepted('OVERSIZED', `${data.byteLength} bytes > ${ctx.maxBytes}`)
  let envelope: SignedEnvelope
  try {
    envelope = decodeEnvelope(data)
  } catch (err) {
    return notAccepted('MALFORMED_ENVELOPE', (err as Error).message)
  }
  return validateEnvelope(topic, envelope, from, ctx)
}

/**
 * The same checks for an envelope already decoded (one that came point to point, over gRPC, whose
 * size the transport has limited): payload type, signature, signer = `from` = the node the payload
 * names, strict payload decoding, freshness, the topic's own checks.
 */
export function validateEnvelope<K extends TopicName> (topic: K, envelope: SignedEnvelope, from: string, ctx: GossipContext): GossipVerdict<PayloadOf<K>> {
  const rule: GossipRule<PayloadOf<K>> = GOSSIP_RULES[topic]
  const payloadType = payloadTypeOf(topic)
  if (envelope.payloadType !== payloadType) {
    return notAccepted('WRONG_PAYLOAD_TYPE', `expected ${payloadType} on ${topic}, got ${envelope.payloadType.slice(0, 64)}`)
  }
  try {
    verifyEnvelope(envelope, { payloadType })
  } catch (err) {
    return notAccepted('BAD_SIGNATURE', (err as Error).message)
  }
  const signer = nodeIdOf(envelope.publicKey)
  if (signer === '' || signer !== from) {
    return notAccepted('SIGNER_MISMATCH', `signed by ${signer || 'an invalid key'} but published by ${from}`)
  }
  let value: PayloadOf<K>
  try {
    value = rule.decode(envelope.payload)
  } catch (err) {
    return notAccepted('MALFORMED_PAYLOAD', (err as Error).message)
  }
  const author = rule.author(value)
  if (author !== signer) {
    return notAccepted('SIGNER_MISMATCH', `payload names ${author.slice(0, 64)} but was signed by ${signer}`)
  }
  const at = rule.at(value)
  if (!(ctx.now - at <= ctx.maxSkewMs)) {
    return notAccepted('STALE', `stamped ${Math.round((ctx.now - at) / 1000)} s ago (limit ${ctx.maxSkewMs / 1000} s)`)
  }
  if (!(at - ctx.now <= ctx.maxSkewMs)) {
    return notAccepted('FUTURE', `stamped ${Math.round((at - ctx.now) / 1000)} s ahead of our clock (limit ${ctx.maxSkewMs / 1000} s)`)
  }
  const problem = rule.check?.(value, signer, ctx)
  if (problem !== undefined) return notAccepted(problem.code, problem.reason)
  return { action: 'ACCEPT', value, envelope, signer }
}
