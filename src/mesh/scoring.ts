import { createPeerScoreParams, createPeerScoreThresholds, createTopicScoreParams, type PeerScoreParams, type PeerScoreThresholds } from '@chainsafe/libp2p-gossipsub/score'
import { TOPICS, type TopicName } from '../protocol/constants.ts'

/**
 * Weight of each topic's score; every topic needs one, since gossipsub scores invalid messages only
 * on topics it has parameters for. Assignments, acks, receipts and attestations matter more than
 * heartbeats: invalid ones there weigh more.
 */
const TOPIC_WEIGHTS: { [K in TopicName]: number } = {
  heartbeats: 0.5,
  assignments: 1,
  acks: 1,
  receipts: 1,
  attestations: 1,
  roster: 1,
  disputes: 1
}

/**
 * Gossipsub peer scoring, set on purpose. The mesh carries few, small, signed messages, so the one
 * behaviour that must cost a peer dearly is sending invalid ones (bad signature, wrong payload type,
 * oversized, malformed, invalid content): the messages our validator REJECTs. IGNOREd ones (stale,
 * from the future, superseded heartbeats) cost nothing, since an honest peer may forward them.
 * Delivery-rate rewards stay small: a quiet node is not a bad node.
 */
export function peerScoreParams (): PeerScoreParams {
  const topic = (weight: number) => createTopicScoreParams({
    topicWeight: weight,
    // A small reward for staying in the mesh, capped so age never outweighs one invalid message.
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1_000,
    timeInMeshCap: 300,
    // Forwarding new messages first earns a little, capped and decaying over about a minute.
    firstMessageDeliveriesWeight: 0.5,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 20,
    // No penalty for under-delivery: traffic is bursty (jobs), so a delivery quota would punish honest idle peers.
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 0,
    meshMessageDeliveriesThreshold: 0,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5_000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    // The point of scoring here: each invalid message costs -100 x weight (squared counter), decaying slowly
    // (0.99 per decay interval ≈ a few minutes), so a handful of forgeries graylists the sender.
    invalidMessageDeliveriesWeight: -100,
    invalidMessageDeliveriesDecay: 0.99
  })
  const names = Object.keys(TOPIC_WEIGHTS) as TopicName[]
  return createPeerScoreParams({
    topics: Object.fromEntries(names.map((name) => [TOPICS[name], topic(TOPIC_WEIGHTS[name])])),
    // Bounds how much positive score topics can add up to, so rewards never mask misbehaviour.
    topicScoreCap: 50,
    // No application-specific scoring yet (reputation comes with the full scheduler).
    appSpecificScore: () => 0,
    appSpecificWeight: 1,
    // Many devnet nodes share 127.0.0.1, and edge sites share NAT addresses: do not punish co-location.
    IPColocationFactorWeight: 0,
    IPColocationFactorThreshold: 100,
    // Protocol misbehaviour (broken promises, GRAFT spam) is penalised as gossipsub recommends.
    behaviourPenaltyWeight: -10,
    behaviourPenaltyThreshold: 6,
    behaviourPenaltyDecay: 0.99,
    // Scores decay every second; counters below 0.01 reset to zero.
    decayInterval: 1_000,
    decayToZero: 0.01,
    // A peer that disconnects keeps its (bad) score for 10 minutes: reconnecting does not launder it.
    retainScore: 600_000
  })
}

/** Thresholds: two invalid messages already stop gossip to/from a peer; a few more graylist it. */
export function peerScoreThresholds (): PeerScoreThresholds {
  return createPeerScoreThresholds({
    gossipThreshold: -100,
    publishThreshold: -200,
    graylistThreshold: -400,
    // Peer exchange only from peers with a clearly good record.
    acceptPXThreshold: 10,
    opportunisticGraftThreshold: 5
  })
}
