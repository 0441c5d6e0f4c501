/**
 * An outsider on the mesh, built from the public libp2p packages only (TCP, Noise, Yamux, identify,
 * gossipsub, and pnet when it holds the mesh key): what anyone could run against a node. Project code
 * is used only to make or read the bytes of messages, never for the node itself.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { gossipsub, type GossipSub } from '@chainsafe/libp2p-gossipsub'
import { preSharedKey } from '@libp2p/pnet'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { randomBytes } from 'node:crypto'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { TOPICS } from '../../src/protocol/index.ts'

export interface Outsider {
  identity: Identity
  node: OutsiderLibp2p
  /** Every gossip message received, on any topic, as raw bytes. */
  received: Array<{ topic: string, data: Uint8Array }>
  dial(addr: string): Promise<void>
  /** Signs `payload` as `payloadType` with the outsider's key and publishes it on `topic`. */
  publish(topic: string, payloadType: string, payload: Uint8Array): Promise<void>
  stop(): Promise<void>
}

export type OutsiderLibp2p = Libp2p<{ pubsub: GossipSub }>

/**
 * A plain libp2p node (TCP, Noise, Yamux, identify, gossipsub) on 127.0.0.1 with the key of `seed`,
 * and the pre-shared key when it holds one; `floodPublish` sends each message to every subscriber it
 * is connected to (what a flooder wants). Not started.
 */
export async function outsiderLibp2p (seed: Uint8Array, opts: { networkKey?: Uint8Array, floodPublish?: boolean } = {}): Promise<OutsiderLibp2p> {
  return await createLibp2p({
    privateKey: await generateKeyPairFromSeed('Ed25519', seed) as never,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(opts.networkKey !== undefined ? { connectionProtector: preSharedKey({ psk: opts.networkKey }) } : {}),
    services: {
      identify: identify(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, floodPublish: opts.floodPublish ?? false }) as never
    },
    start: false
  }) as unknown as OutsiderLibp2p
}

export async function startOutsider (opts: { networkKey?: Uint8Array, topics?: string[] } = {}): Promise<Outsider> {
  const seed = randomBytes(32)
  const identity = identityFromSeed(seed)
  const node = await outsiderLibp2p(seed, { networkKey: opts.networkKey })
  await node.start()
  const received: Outsider['received'] = []
  node.services.pubsub.addEventListener('message', (evt) => { received.push({ topic: evt.detail.topic, data: evt.detail.data }) })
  for (const topic of opts.topics ?? Object.values(TOPICS)) node.services.pubsub.subscribe(topic)
  return {
    identity,
    node,
    received,
    dial: async (addr) => { await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(5_000) }) },
    publish: async (topic, payloadType, payload) => {
      await node.services.pubsub.publish(topic, encodeEnvelope(signEnvelope(identity, payloadType, payload)))
    },
    stop: async () => { await node.stop() }
  }
}
