import { TopicValidatorResult } from '@libp2p/interface'
import type { Message } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { multiaddr } from '@multiformats/multiaddr'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { MeshConfig, Role } from '../config/types.ts'
import { encodeEnvelope, signEnvelope } from '../envelope/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Identity } from '../identity/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Startable } from '../types.ts'
import { containerKey, roleKey, TOPICS, PAYLOAD_TYPES } from './constants.ts'
import { fetchFrom, handleFetch, type ContentSource } from './fetch.ts'
import { createMeshLibp2p, type MeshLibp2p } from './libp2p.ts'
import { encodeHeartbeat, type Heartbeat } from './messages.ts'
import { PeerTable, type PeerView } from './peers.ts'
import { validateGossip, type RejectCode } from './validate.ts'

export * from './constants.ts'
export * from './messages.ts'
export { FetchError, type ContentSource } from './fetch.ts'
export type { PeerView } from './peers.ts'
export { validateGossip, type RejectCode, type Verdict } from './validate.ts'
export type { MeshLibp2p } from './libp2p.ts'

/** A gossip message that passed validation. */
export interface MeshMessage<T> {
  topic: string
  value: T
  envelope: SignedEnvelope
  /** Node id of the signer (= the gossipsub author). */
  from: string
}

export interface Rejection { topic: string, code: RejectCode, reason: string, from: string }

/** The parts of a heartbeat only the rest of the node knows (load, stats, address). */
export type HeartbeatFields = Pick<Heartbeat, 'cpuCores' | 'memoryBytes' | 'gpus' | 'grpcAddress' | 'freeSlots' | 'stats'>

export interface MeshInit {
  config: MeshConfig
  roles: Role[]
  containers: string[]
}

export interface MeshComponents {
  identity: Identity
  logger: Logger
  /** Current heartbeat fields; stats are dropped here when forward_stats is false. */
  heartbeat: () => HeartbeatFields
  /** Bytes this node serves over /inframind/fetch/1.0.0. */
  content: ContentSource
}

export interface Mesh extends Startable {
  readonly nodeId: string
  /** The libp2p node (started only between start() and stop()). */
  libp2p(): MeshLibp2p
  addresses(): string[]
  /** Signs `payload` as `payloadType` and publishes it on a topic. */
  publish(topic: string, payloadType: string, payload: Uint8Array): Promise<void>
  /** Handler for validated messages on one topic; returns an unsubscribe function. */
  subscribe<T>(topic: string, handler: (msg: MeshMessage<T>) => void): () => void
  onRejected(listener: (r: Rejection) => void): () => void
  /** Rejected messages since start, by topic and code. */
  rejections(): Record<string, number>
  peers(): PeerView[]
  /** The latest heartbeat of a live peer (null when unknown or silent). */
  livePeer(nodeId: string): Heartbeat | null
  /** Node ids providing a role or container key (roleKey/containerKey) in the DHT. */
  findProviders(key: string, opts?: { signal?: AbortSignal, limit?: number }): Promise<string[]>
  fetch(peer: string, hash: Uint8Array, signal?: AbortSignal): Promise<Uint8Array>
  /** Publishes one heartbeat now (also runs on its own timer). */
  heartbeatNow(): Promise<void>
}

async function keyCid (key: string): Promise<CID> {
  return CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode(key)))
}

/** How often unreachable bootstrap peers are dialled again. */
const BOOTSTRAP_REDIAL_MS = 5_000
/** Retry delay for provider records while the routing table is still empty. */
const PROVIDE_RETRY_MS = 2_000

export function mesh (init: MeshInit) {
  return (components: MeshComponents): Mesh => {
    const logger = components.logger.child({ component: 'mesh' })
    const { config } = init
    const peers = new PeerTable()
    const handlers = new Map<string, Set<(msg: MeshMessage<unknown>) => void>>()
    const rejectListeners = new Set<(r: Rejection) => void>()
    const rejected: Record<string, number> = {}
    let node: MeshLibp2p | undefined
    let timers: NodeJS.Timeout[] = []
    let provideTimer: NodeJS.Timeout | undefined
    let stopping = false

    const emitRejected = (r: Rejection): void => {
      const k = `${r.topic}:${r.code}`
      rejected[k] = (rejected[k] ?? 0) + 1
      logger.debug({ topic: r.topic, code: r.code, from: r.from, reason: r.reason }, 'gossip message rejected')
      for (const l of rejectListeners) {
        try { l(r) } catch (err) { logger.error({ err }, 'rejection listener failed') }
      }
    }

    const validator = (topic: string) => (_source: unknown, msg: Message): TopicValidatorResult => {
      if (msg.type !== 'signed') {
        emitRejected({ topic, code: 'BAD_SIGNATURE', reason: 'unsigned gossip message', from: '' })
        return TopicValidatorResult.Reject
      }
      const from = msg.from.toString()
      const verdict = validateGossip<unknown>(topic, msg.data, from, { maxBytes: config.maxGossipBytes, maxSkewMs: config.maxClockSkewMs, now: Date.now() })
      if (!verdict.ok) {
        emitRejected({ topic, code: verdict.code, reason: verdict.reason, from })
        return TopicValidatorResult.Reject
      }
      accepted.set(msg.data, { topic, value: verdict.value, envelope: verdict.envelope, from: verdict.signer })
      return TopicValidatorResult.Accept
    }
    // Validation already decoded the message; the delivery handler picks the result up by identity.
    const accepted = new WeakMap<Uint8Array, MeshMessage<unknown>>()

    const deliver = (evt: CustomEvent<Message>): void => {
      const msg = evt.detail
      const m = accepted.get(msg.data)
      if (m === undefined) return
      if (m.topic === TOPICS.heartbeats) peers.onHeartbeat(m.value as Heartbeat, Date.now())
      for (const h of handlers.get(m.topic) ?? []) {
        try { h(m) } catch (err) { logger.error({ err, topic: m.topic }, 'mesh message handler failed') }
      }
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
      await publish(TOPICS.heartbeats, PAYLOAD_TYPES.heartbeat, encodeHeartbeat(hb))
    }

    const publish = async (topic: string, payloadType: string, payload: Uint8Array): Promise<void> => {
      if (node === undefined) throw new Error('mesh is not started')
      const env = signEnvelope(components.identity, payloadType, payload)
      await node.services.pubsub.publish(topic, encodeEnvelope(env))
    }

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

    // Bootstrap peers are dialled directly (and redialled while unreachable), not left to discovery
    // events: a node must reach the mesh through them even when the connection manager would not dial.
    const dialBootstrap = async (): Promise<void> => {
      const n = node
      if (n === undefined || stopping) return
      const connected = new Set(n.getConnections().map((c) => c.remotePeer.toString()))
      const missing = [...config.bootstrap, ...(config.behindNat ? config.relays : [])]
        .filter((a) => !connected.has(multiaddr(a).getPeerId() ?? ''))
      await Promise.all(missing.map(async (a) => {
        try {
          await n.dial(multiaddr(a), { signal: AbortSignal.timeout(5_000) })
        } catch (err) {
          logger.debug({ peer: a, err: (err as Error).message }, 'bootstrap peer not reachable yet')
        }
      }))
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
        if (node === undefined) throw new Error('mesh is not started')
        return node
      },
      addresses: () => node?.getMultiaddrs().map(String) ?? [],
      publish,
      subscribe<T>(topic: string, handler: (msg: MeshMessage<T>) => void) {
        let set = handlers.get(topic)
        if (set === undefined) { set = new Set(); handlers.set(topic, set) }
        const h = handler as (msg: MeshMessage<unknown>) => void
        set.add(h)
        return () => { set.delete(h) }
      },
      onRejected (listener) {
        rejectListeners.add(listener)
        return () => { rejectListeners.delete(listener) }
      },
      rejections: () => ({ ...rejected }),
      peers: () => peers.list(Date.now(), connections()),
      livePeer: (nodeId) => peers.isAlive(nodeId, Date.now()) ? peers.heartbeat(nodeId) : null,
      async findProviders (key, opts = {}) {
        if (node === undefined) throw new Error('mesh is not started')
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
        if (node === undefined) throw new Error('mesh is not started')
        return await fetchFrom(node, peer, hash, signal)
      },
      heartbeatNow: heartbeat,
      async start () {
        if (node !== undefined) return
        stopping = false
        const n = await createMeshLibp2p(config, components.identity, init.roles)
        for (const topic of Object.values(TOPICS)) n.services.pubsub.topicValidators.set(topic, validator(topic))
        n.services.pubsub.addEventListener('message', deliver)
        n.addEventListener('connection:open', onConnect as never)
        await n.start()
        for (const topic of Object.values(TOPICS)) n.services.pubsub.subscribe(topic)
        await handleFetch(n, components.content, logger)
        node = n
        timers = [
          setInterval(() => { heartbeat().catch((err: unknown) => logger.debug({ err }, 'heartbeat publish failed')) }, config.heartbeatIntervalMs),
          setInterval(() => { void dialBootstrap() }, BOOTSTRAP_REDIAL_MS)
        ]
        void dialBootstrap()
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
