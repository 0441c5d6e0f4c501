import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub, type GossipSub } from '@chainsafe/libp2p-gossipsub'
import { kadDHT, type KadDHT } from '@libp2p/kad-dht'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type PingService } from '@libp2p/ping'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { preSharedKey } from '@libp2p/pnet'
import type { ConnectionGater } from '@libp2p/interface'
import type { MeshConfig, Role } from '../config/types.ts'
import type { Identity } from '../identity/types.ts'
import { DHT_PROTOCOL } from '../protocol/constants.ts'
import { INBOUND_CONNECTIONS_PER_HOST_PER_S, PING_INTERVAL_MS, PNET_HANDSHAKE_TIMEOUT_MS, RELAY_RESERVATION_TIMEOUT_MS } from './constants.ts'
import { peerScoreParams, peerScoreThresholds } from './scoring.ts'

export interface MeshServices {
  identify: Identify
  ping: PingService
  dht: KadDHT
  pubsub: GossipSub
  [key: string]: unknown
}

export type MeshLibp2p = Libp2p<MeshServices>

/**
 * Mesh degree, set for an edge mesh of tens to hundreds of nodes carrying small messages, where
 * every redundant copy costs CPU on small devices (measured on 10 nodes, 600-byte messages:
 * ~1.2 ms of CPU per message per node with the library defaults, ~0.8 ms with these):
 * - D 4 (default 6), kept between 3 and 8: each message still reaches every node along several
 *   paths, and the lazy gossip below repairs the rest.
 * - Dout 2 (< Dlo, <= D/2): outbound mesh links a peer cannot fake, against eclipse attempts.
 * - Dscore 2: best-scoring peers kept when the mesh is pruned.
 * - Dlazy 4: peers told "I have" each heartbeat, the repair path for anything the mesh missed.
 * - IDONTWANT only from 16 KiB: for messages of a few hundred bytes the notice costs as much as
 *   the copy it saves.
 */
export const MESH_DEGREE = { D: 4, Dlo: 3, Dhi: 8, Dout: 2, Dscore: 2, Dlazy: 4, idontwantMinDataSize: 16 * 1024 }

/** Author + sequence number: gossipsub's message id for signed messages, without the signature check. */
export function fastMessageId (msg: { from?: Uint8Array, seqno?: Uint8Array }): string {
  return `${Buffer.from(msg.from ?? []).toString('base64')}/${Buffer.from(msg.seqno ?? []).toString('base64')}`
}

export interface MeshLibp2pOptions {
  /**
   * The mesh's pre-shared key, a libp2p swarm key file's bytes ("/key/swarm/psk/1.0.0/\n/base16/\n<64 hex>"):
   * every connection is then wrapped in XSalsa20 under it before anything else is said, so a peer
   * without the key cannot complete a connection at all. Undefined: an open mesh.
   */
  networkKey?: Uint8Array
  /** Who may connect or be dialled (the mesh's bans). */
  connectionGater?: ConnectionGater
}

/**
 * The libp2p node of an inframind node: its key is the node's identity key, so PeerId = node id.
 * TCP + Noise + Yamux (inside a pre-shared-key layer when the mesh has a key), identify, ping, the
 * private DHT, gossipsub with strict signing and scoring; circuit relay v2 server for the relay
 * role, relay transport for nodes behind NAT.
 */
export async function createMeshLibp2p (config: MeshConfig, identity: Identity, roles: readonly Role[], opts: MeshLibp2pOptions = {}): Promise<MeshLibp2p> {
  const privateKey = await generateKeyPairFromSeed('Ed25519', identity.seed)
  const services: Record<string, unknown> = {
    identify: identify(),
    // Two outbound pings per connection: the first-latency ping on connect may overlap the connection
    // monitor's, and with the default of one the monitor's fails and it closes a healthy connection.
    ping: ping({ maxOutboundStreams: 2 }),
    // Server mode always: every node answers DHT queries, so a small mesh needs no public DHT peers.
    dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: false, peerInfoMapper: (peer) => peer }),
    pubsub: gossipsub({
      // Our own messages are handled locally, not echoed back through the mesh.
      emitSelf: false,
      // Publishing before the mesh forms (or to an empty topic) must not throw: heartbeats start at boot.
      allowPublishToZeroTopicPeers: true,
      // Validation is synchronous (signature check ~0.2 ms), so gossipsub's own validator path is enough.
      asyncValidation: false,
      scoreParams: peerScoreParams(),
      scoreThresholds: peerScoreThresholds(),
      // Frames up to 1 MiB (or 4x the gossip limit) still reach our validator, so an oversized
      // message is rejected and its sender scored down rather than silently dropped by the decoder.
      maxInboundDataLength: Math.max(4 * config.maxGossipBytes, 1024 * 1024),
      // A node's own messages go to its mesh peers (D) and spread from there, not to every peer it is
      // connected to: flooding sends each heartbeat n-1 times and, at 25 nodes on two cores, that alone
      // kept the machine saturated; within the mesh a receipt still reaches its scheduler in a hop or two.
      floodPublish: false,
      ...MESH_DEGREE,
      // Each message arrives once per mesh peer. Without a fast id gossipsub checks the libp2p
      // signature of every copy before finding it was seen; author + seqno is exactly its message id
      // under StrictSign, so copies are dropped unverified (only a verified message enters the cache).
      fastMsgIdFn: fastMessageId
    })
  }
  if (roles.includes('relay')) services.relay = circuitRelayServer()
  // Every node can dial peers through relays; only nodes behind NAT listen through them.
  const transports = [tcp(), circuitRelayTransport({ reservationCompletionTimeout: RELAY_RESERVATION_TIMEOUT_MS }) as unknown as ReturnType<typeof tcp>]
  const listen = [...config.listen]
  if (config.behindNat) {
    // Reserve a slot on each relay so peers can reach us through it.
    for (const relay of config.relays) listen.push(`${relay}/p2p-circuit`)
  }
  const bootList = [...config.bootstrap, ...(config.behindNat ? config.relays : [])]
  return await createLibp2p({
    privateKey: privateKey as never,
    addresses: { listen, announce: config.announce },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(opts.networkKey !== undefined ? { connectionProtector: preSharedKey({ psk: opts.networkKey, timeout: PNET_HANDSHAKE_TIMEOUT_MS }) } : {}),
    ...(opts.connectionGater !== undefined ? { connectionGater: opts.connectionGater } : {}),
    connectionManager: {
      maxConnections: config.maxConnections,
      // Why this rate suits both a devnet on one host and a flood from one: constants.ts.
      inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_HOST_PER_S,
      maxIncomingPendingConnections: config.maxConnections
    },
    peerDiscovery: bootList.length > 0 ? [bootstrap({ list: bootList })] : [],
    // The one periodic ping per connection (its round trip is the latency peers show). A connection
    // whose ping fails is closed; the timeout adapts to measured round trips but never drops below
    // 10 s, so a busy small device is not mistaken for a dead link (closing would only add a reconnect).
    connectionMonitor: { pingInterval: PING_INTERVAL_MS, pingTimeout: { minTimeout: 10_000 } },
    services: services as never,
    start: false
  }) as MeshLibp2p
}
