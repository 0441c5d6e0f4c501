import type { Message, PeerId, TopicValidatorResult } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { MeshConfig, Role } from '../config/types.ts'
import { encodeEnvelope, signEnvelope } from '../envelope/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Identity } from '../identity/types.ts'
import { containerKey, roleKey, TOPICS, type Topic, type TopicName } from '../protocol/constants.ts'
import type { Heartbeat } from '../protocol/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Startable } from '../types.ts'
import { fetchFrom, handleFetch, type ContentSource } from './fetch.ts'
import { grpcTarget } from './address.ts'
import { BanList, banGater, type BannedPeer } from './bans.ts'
import { SCORE_CHECK_INTERVAL_MS, KEEP_CONNECTED_INTERVAL_MS } from './constants.ts'
import { keepDialer } from './dialer.ts'
import { peerGuard } from './guard.ts'
import { GossipLimiter } from './limits.ts'
import { peerScoreThresholds } from './scoring.ts'
import { notAccepted, TOPIC_VALIDATOR_RESULT, type GossipContext, type GossipVerdict, type IgnoreCode, type PayloadOf, type RejectCode } from './gossip.ts'
import { TypedEmitter } from '../events.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { HeartbeatFields } from '../telemetry/heartbeat.ts'
import { GOSSIP_RULES } from './gossip-rules.ts'
import { createMeshLibp2p, type MeshLibp2p } from './libp2p.ts'
import { PeerTable, type PeerView } from './peers.ts'
import { payloadTypeOf, screenGossip, validateGossip, type Authorize } from './validate.ts'

export { LIVENESS_INTERVALS, PING_INTERVAL_MS, MAX_FETCH_BYTES, FETCH_TIMEOUT_MS } from './constants.ts'
export { FetchError, FETCH_RATE_LIMITED, type ContentSource } from './fetch.ts'
export { BanList, banGater, type BannedPeer } from './bans.ts'
export { GOSSIP_LIMITS, GossipLimiter, KeyedRateLimiter, type RateOutcome, type RateSpec, type TopicLimit } from './limits.ts'
export { grpcTarget } from './address.ts'
export type { PeerView } from './peers.ts'
export {
  GossipAction, GOSSIP_CODES, TOPIC_VALIDATOR_RESULT,
  type GossipCode, type GossipContext, type GossipRule, type GossipRules, type GossipVerdict, type IgnoreCode, type PayloadOf, type RejectCode
} from './gossip.ts'
export { GOSSIP_RULES } from './gossip-rules.ts'
export { payloadTypeOf, screenGossip, validateEnvelope, validateGossip, type Authorize } from './validate.ts'
export type { MeshLibp2p } from './libp2p.ts'

/** The mesh was used before start() or after stop(). */
export class MeshNotStartedError extends Error {
  readonly code = 'MESH_NOT_STARTED'
  constructor () {
    super('the mesh is not started (the node is starting or stopping; retry shortly)')
    this.name = 'MeshNotStartedError'
  }
}

/** A gossip message that passed validation. */
export interface MeshMessage<T> {
  topic: Topic
  value: T
  envelope: SignedEnvelope
  /** Node id of the signer (= the gossipsub author). */
  from: string
}

/** A message dropped as invalid; the peer that sent it was scored down. */
export interface Rejection { topic: Topic, code: RejectCode, reason: string, from: string }
/** A valid message this node did not want (late, early, already superseded); nobody was scored down. */
export interface Ignored { topic: Topic, code: IgnoreCode, reason: string, from: string }

type TopicMessages = { [K in TopicName]: MeshMessage<PayloadOf<K>> }
interface VerdictEvents { rejected: Rejection, ignored: Ignored }

export type { HeartbeatFields }

export interface MeshInit {
  config: MeshConfig
  roles: Role[]
  containers: string[]
  /**
   * The mesh's pre-shared key: the bytes of a libp2p swarm key file ("/key/swarm/psk/1.0.0/\n/base16/\n<64 hex>").
   * Only peers holding it can open a connection at all. Undefined: an open mesh.
   */
  networkKey?: Uint8Array
  /**
   * Subscribe to heartbeats: only nodes that choose workers (scheduler, gateway) need them, and
   * every other subscriber would learn every node's load and forward every heartbeat. Non-subscribers
   * still publish theirs (gossipsub fanout to subscribed peers, kept connected: keepConnected).
   * Default true (every node hears every heartbeat, as before).
   */
  hearsHeartbeats?: boolean
  /**
   * Subscribe to attestations and dispute records: only schedulers, gateways and archives use them.
   * A worker or validator that subscribed would receive and forward every verified job's
   * attestations for nothing (measured: 13-16 ms of CPU per verified job on each uninvolved worker
   * of a 10-node devnet). Validators still publish theirs (fanout). Default true.
   */
  hearsVerification?: boolean
}

export interface MeshComponents {
  identity: Identity
  logger: Logger
  /** Current heartbeat fields; stats are dropped here when forward_stats is false. */
  heartbeat: () => HeartbeatFields
  /** Bytes this node serves over /inframind/fetch/1.0.0. */
  content: ContentSource
  /** Where the mesh registers its metrics (gossip messages rejected and ignored, by topic and code; peers banned). */
  metrics?: Metrics
  /**
   * Node ids this node keeps a direct connection to (the roster's schedulers and gateways), redialled
   * every KEEP_CONNECTED_INTERVAL_MS when not connected, through the DHT when their address is unknown.
   */
  keepConnected?: () => string[]
  /**
   * Whether gossipsub's author of a message may act on its topic, asked before the message is
   * decoded; false: IGNOREd as NOT_ADMITTED. Undefined: every author is.
   */
  authorize?: Authorize
}

export interface Mesh extends Startable {
  readonly nodeId: string
  /** The libp2p node (started only between start() and stop()). */
  libp2p(): MeshLibp2p
  addresses(): string[]
  /** Encodes `value` with the topic's codec, signs it as the topic's payload type and publishes it. */
  publish<K extends TopicName>(topic: K, value: PayloadOf<K>): Promise<void>
  /** Handler for validated messages on one topic; returns an unsubscribe function. */
  subscribe<K extends TopicName>(topic: K, handler: (msg: MeshMessage<PayloadOf<K>>) => void): () => void
  /** Every REJECTed message; returns an unsubscribe function. */
  onRejected(listener: (r: Rejection) => void): () => void
  /** Every IGNOREd message; returns an unsubscribe function. */
  onIgnored(listener: (i: Ignored) => void): () => void
  /** Rejected messages since start, by `${topic}:${code}`. */
  rejections(): Record<string, number>
  /** Ignored messages since start, by `${topic}:${code}`. */
  ignored(): Record<string, number>
  peers(): PeerView[]
  /** The latest heartbeat of a live peer (null when unknown or silent). */
  livePeer(nodeId: string): Heartbeat | null
  /** Where to call a live peer's gRPC ('' when it advertises none, is silent, or is unknown). */
  grpcAddressOf(nodeId: string): string
  /** Node ids providing a role or container key (roleKey/containerKey) in the DHT. */
  findProviders(key: string, opts?: { signal?: AbortSignal, limit?: number }): Promise<string[]>
  fetch(peer: string, hash: Uint8Array, signal?: AbortSignal): Promise<Uint8Array>
  /** Publishes one heartbeat now (also runs on its own timer). */
  heartbeatNow(): Promise<void>
  /** Peers refused now (they flooded, or their gossip score fell below the graylist threshold), until when and why. */
  banned(): BannedPeer[]
  /**
   * Cuts this node off from `nodeId` for `durationMs`: its connections close and it may not connect
   * again until then (an operator's block; tests make partitions with it on both sides).
   */
  block(nodeId: string, durationMs: number, reason: string): Promise<BannedPeer>
  /** Lifts a block or ban at once; the node may connect again (the kept connections are redialled). */
  unblock(nodeId: string): boolean
}

async function keyCid (key: string): Promise<CID> {
  return CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode(key)))
}

/** Retry delay for provider records while the routing table is still empty. */
const PROVIDE_RETRY_MS = 2_000

export function mesh (init: MeshInit) {
  return (components: MeshComponents): Mesh => {
    const logger = components.logger.child({ component: 'mesh' })
    const { config } = init
    const peers = new PeerTable()
    const messages = new TypedEmitter<TopicMessages>(logger)
    const verdicts = new TypedEmitter<VerdictEvents>(logger)
    const rejectedTotal = components.metrics?.counter({ name: 'inframind_gossip_rejected_total', help: 'Mesh messages rejected as invalid (the sender scored down), by topic and reason', labelNames: ['topic', 'code'] })
    const ignoredTotal = components.metrics?.counter({ name: 'inframind_gossip_ignored_total', help: 'Valid mesh messages this node did not want (late, early, superseded; nobody scored down), by topic and reason', labelNames: ['topic', 'code'] })
    const bannedTotal = components.metrics?.counter({ name: 'inframind_peers_banned_total', help: 'Peers disconnected and refused for a cool-down: they flooded, or their gossip score fell below the graylist threshold' })
    const hearsHeartbeats = init.hearsHeartbeats ?? true
    const hearsVerification = init.hearsVerification ?? true
    const hears = (name: TopicName): boolean => name === 'heartbeats'
      ? hearsHeartbeats
      : name === 'attestations' || name === 'disputes' ? hearsVerification : true
    const bans = new BanList()
    const guard = peerGuard({ bans, threshold: peerScoreThresholds().graylistThreshold, logger, onBan: () => bannedTotal?.inc() })
    const limiter = new GossipLimiter({ heartbeatIntervalOf: (nodeId) => peers.heartbeat(nodeId)?.intervalMs })
    const redial = keepDialer({
      bootstrap: [...config.bootstrap, ...(config.behindNat ? config.relays : [])],
      keep: () => components.keepConnected?.() ?? [],
      refused: (nodeId) => bans.isBanned(nodeId),
      logger
    })
    const rejected: Record<string, number> = {}
    const ignored: Record<string, number> = {}
    let node: MeshLibp2p | undefined
    let timers: NodeJS.Timeout[] = []
    let provideTimer: NodeJS.Timeout | undefined
    let stopping = false

    const context = (): GossipContext => ({
      now: Date.now(),
      maxBytes: config.maxGossipBytes,
      maxSkewMs: config.maxClockSkewMs,
      lastHeartbeatAt: (nodeId) => peers.heartbeat(nodeId)?.atMs
    })

    // Recorded when accepted, not when delivered: gossipsub awaits between the two and validates the
    // messages of one RPC concurrently, so a replay validated in that gap must already see this one.
    const onAccept: { [K in TopicName]?: (value: PayloadOf<K>) => void } = {
      heartbeats: (hb) => { peers.onHeartbeat(hb, Date.now()) }
    }

    /** The one place a verdict becomes a count, a log line, an event and gossipsub's result. */
    const settle = (name: TopicName, verdict: GossipVerdict<unknown>, from: string): TopicValidatorResult => {
      if (verdict.action !== 'ACCEPT') {
        const topic = TOPICS[name]
        const key = `${topic}:${verdict.code}`
        logger.debug({ topic, action: verdict.action, code: verdict.code, from, reason: verdict.reason }, 'gossip message not accepted')
        if (verdict.action === 'REJECT') {
          rejected[key] = (rejected[key] ?? 0) + 1
          rejectedTotal?.inc({ topic, code: verdict.code })
          verdicts.emit('rejected', { topic, code: verdict.code, reason: verdict.reason, from })
        } else {
          ignored[key] = (ignored[key] ?? 0) + 1
          ignoredTotal?.inc({ topic, code: verdict.code })
          verdicts.emit('ignored', { topic, code: verdict.code, reason: verdict.reason, from })
        }
      }
      return TOPIC_VALIDATOR_RESULT[verdict.action]
    }

    // Validation already decoded the message; the delivery handler picks the result up by identity.
    const accepted = new WeakMap<Uint8Array, () => void>()

    const validator = <K extends TopicName>(name: K) => (source: PeerId, msg: Message): TopicValidatorResult => {
      // Gossipsub's StrictSign already refuses these; kept so an unsigned message can never pass.
      if (msg.type !== 'signed') return settle(name, notAccepted('BAD_SIGNATURE', 'unsigned gossip message'), '')
      const from = msg.from.toString()
      const screened = screenGossip(name, from, source.equals(msg.from), limiter, components.authorize)
      if (screened !== undefined) {
        // Only the author itself can be FLOODING (source = author): no honest node does it.
        if (screened.code === 'FLOODING' && node !== undefined) guard.ban(node, from, `flooding: its own ${name} far over its rate`)
        return settle(name, screened, from)
      }
      const verdict = validateGossip(name, msg.data, from, context())
      if (verdict.action === 'ACCEPT') {
        onAccept[name]?.(verdict.value)
        const m: MeshMessage<PayloadOf<K>> = { topic: TOPICS[name], value: verdict.value, envelope: verdict.envelope, from: verdict.signer }
        // TS widens TopicMessages[K] to the intersection of every topic's message; for this K they are the same.
        accepted.set(msg.data, () => { messages.emit(name, m as TopicMessages[K]) })
      }
      return settle(name, verdict, from)
    }

    const deliver = (evt: CustomEvent<Message>): void => {
      accepted.get(evt.detail.data)?.()
    }

    const heartbeat = async (): Promise<void> => {
      if (node === undefined) return
      const fields = components.heartbeat()
      const hb: Heartbeat = {
        ...fields,
        stats: config.forwardStats ? fields.stats : null,
        nodeId: components.identity.nodeId,
        atMs: Date.now(),
        roles: init.roles,
        containers: init.containers,
        intervalMs: config.heartbeatIntervalMs
      }
      await publish('heartbeats', hb)
    }

    const publishSigned = async (topic: Topic, payloadType: string, payload: Uint8Array): Promise<void> => {
      if (node === undefined) throw new MeshNotStartedError()
      const env = signEnvelope(components.identity, payloadType, payload)
      await node.services.pubsub.publish(topic, encodeEnvelope(env))
    }

    const publish = async <K extends TopicName>(name: K, value: PayloadOf<K>): Promise<void> => {
      await publishSigned(TOPICS[name], payloadTypeOf(name), GOSSIP_RULES[name].encode(value as never))
    }

    const subscribe = <K extends TopicName>(name: K, handler: (msg: MeshMessage<PayloadOf<K>>) => void): () => void =>
      messages.on(name, handler as (msg: TopicMessages[K]) => void)

    const provideAll = async (): Promise<void> => {
      if (node === undefined || stopping) return
      const n = node
      const keys = [...init.roles.map(roleKey), ...init.containers.map(containerKey)]
      let ok = true
      for (const key of keys) {
        if (stopping) return
        try {
          await n.contentRouting.provide(await keyCid(key), { signal: AbortSignal.timeout(30_000) })
        } catch (err) {
          ok = false
          logger.debug({ key, err: (err as Error).message }, 'provide failed; will retry')
        }
      }
      if (stopping) return
      provideTimer = setTimeout(() => { void provideAll() }, ok ? config.provideIntervalMs : PROVIDE_RETRY_MS)
      if (ok) logger.debug({ keys }, 'provider records announced')
    }

    // Bootstrap and kept peers are dialled directly (and redialled while unreachable), not left to
    // discovery events: a node must reach the mesh, and its schedulers, even when the connection
    // manager would not dial.
    const dialKept = async (): Promise<void> => {
      if (node === undefined || stopping) return
      await redial(node)
    }

    const enforceScores = (): void => {
      if (node !== undefined) guard.checkScores(node)
    }

    // The first latency of a new peer is measured at once; after that the connection monitor's
    // pings (every PING_INTERVAL_MS) keep it current.
    const onConnect = (evt: CustomEvent<{ remotePeer: { toString: () => string } }>): void => {
      const peer = evt.detail.remotePeer
      setTimeout(() => {
        node?.services.ping.ping(peer as never, { signal: AbortSignal.timeout(5_000) })
          .then((rtt) => peers.onLatency(peer.toString(), rtt), () => {})
      }, 200)
    }

    const connections = (): Map<string, string[]> => {
      const out = new Map<string, string[]>()
      for (const conn of node?.getConnections() ?? []) {
        const id = conn.remotePeer.toString()
        out.set(id, [...(out.get(id) ?? []), conn.remoteAddr.toString()])
        if (conn.rtt !== undefined) peers.onLatency(id, conn.rtt)
      }
      return out
    }

    return {
      nodeId: components.identity.nodeId,
      libp2p: () => {
        if (node === undefined) throw new MeshNotStartedError()
        return node
      },
      addresses: () => node?.getMultiaddrs().map(String) ?? [],
      publish,
      subscribe,
      onRejected: (listener) => verdicts.on('rejected', listener),
      onIgnored: (listener) => verdicts.on('ignored', listener),
      rejections: () => ({ ...rejected }),
      ignored: () => ({ ...ignored }),
      peers: () => peers.list(Date.now(), connections()),
      livePeer: (nodeId) => peers.isAlive(nodeId, Date.now()) ? peers.heartbeat(nodeId) : null,
      grpcAddressOf: (nodeId) => {
        const advertised = peers.isAlive(nodeId, Date.now()) ? peers.heartbeat(nodeId)?.grpcAddress ?? '' : ''
        if (advertised === '') return ''
        let from: string[] = []
        try {
          from = (node?.getConnections(peerIdFromString(nodeId)) ?? []).map((conn) => conn.remoteAddr.toString())
        } catch {
          // Not a peer id (heartbeats are verified, so only a caller's typo gets here): no connection to use.
        }
        return grpcTarget(advertised, from)
      },
      async findProviders (key, opts = {}) {
        if (node === undefined) throw new MeshNotStartedError()
        const out: string[] = []
        const signal = opts.signal ?? AbortSignal.timeout(10_000)
        try {
          for await (const p of node.contentRouting.findProviders(await keyCid(key), { signal })) {
            const id = p.id.toString()
            if (!out.includes(id)) out.push(id)
            if (opts.limit !== undefined && out.length >= opts.limit) break
          }
        } catch (err) {
          if (out.length === 0 && !signal.aborted) throw err
        }
        return out
      },
      fetch: async (peer, hash, signal) => {
        if (node === undefined) throw new MeshNotStartedError()
        return await fetchFrom(node, peer, hash, signal)
      },
      heartbeatNow: heartbeat,
      banned: () => bans.list(),
      async block (nodeId, durationMs, reason) {
        const entry = bans.block(nodeId, Date.now() + Math.max(0, durationMs), reason)
        if (node !== undefined) await node.hangUp(peerIdFromString(nodeId)).catch(() => {})
        return entry
      },
      unblock: (nodeId) => bans.unblock(nodeId),
      async start () {
        if (node !== undefined) return
        stopping = false
        const n = await createMeshLibp2p(config, components.identity, init.roles, {
          networkKey: init.networkKey,
          connectionGater: banGater((nodeId) => bans.isBanned(nodeId))
        })
        for (const name of Object.keys(TOPICS) as TopicName[]) n.services.pubsub.topicValidators.set(TOPICS[name], validator(name))
        n.services.pubsub.addEventListener('message', deliver)
        n.addEventListener('connection:open', onConnect as never)
        await n.start()
        for (const name of Object.keys(TOPICS) as TopicName[]) {
          if (hears(name)) n.services.pubsub.subscribe(TOPICS[name])
        }
        await handleFetch(n, components.content, logger)
        node = n
        timers = [
          setInterval(() => { heartbeat().catch((err: unknown) => logger.debug({ err }, 'heartbeat publish failed')) }, config.heartbeatIntervalMs),
          setInterval(() => { void dialKept() }, KEEP_CONNECTED_INTERVAL_MS),
          setInterval(enforceScores, SCORE_CHECK_INTERVAL_MS)
        ]
        void dialKept()
        void provideAll()
        void heartbeat().catch(() => {})
        logger.info({ addresses: n.getMultiaddrs().map(String), bootstrap: config.bootstrap.length }, 'joined the mesh')
      },
      async stop () {
        const n = node
        if (n === undefined) return
        stopping = true
        node = undefined
        for (const t of timers) clearInterval(t)
        timers = []
        clearTimeout(provideTimer)
        n.services.pubsub.removeEventListener('message', deliver)
        n.removeEventListener('connection:open', onConnect as never)
        await n.stop()
        logger.info('left the mesh')
      }
    }
  }
}
