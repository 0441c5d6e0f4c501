/**
 * Connections this node keeps open on purpose: to its bootstrap peers (its way into the mesh) and
 * to the nodes it must reach directly (schedulers and gateways: a node that does not hear
 * heartbeats does not forward them, so a worker's heartbeat reaches a scheduler only over a direct
 * connection, as gossipsub fanout).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../telemetry/logger.ts'
import { KEEP_DIAL_TIMEOUT_MS, KEEP_FIND_PEER_TIMEOUT_MS } from './constants.ts'
import type { MeshLibp2p } from './libp2p.ts'

export interface KeepDialerInit {
  /** Bootstrap (and, behind NAT, relay) multiaddrs ending in /p2p/<node id>. */
  bootstrap: string[]
  /** Node ids to stay connected to. */
  keep: () => string[]
  /** Peers never dialled (this node's bans). */
  refused: (nodeId: string) => boolean
  logger: Logger
}

/**
 * Returns the function the redial timer calls: dials every missing bootstrap address and every
 * missing kept peer (known addresses first, then a DHT lookup), each with a bounded timeout, and
 * never two dials to the same peer at once.
 */
export function keepDialer (init: KeepDialerInit): (node: MeshLibp2p) => Promise<void> {
  const dialling = new Set<string>()
  const once = async (key: string, dial: () => Promise<void>): Promise<void> => {
    if (dialling.has(key)) return
    dialling.add(key)
    try {
      await dial()
    } finally {
      dialling.delete(key)
    }
  }

  return async (node) => {
    const self = node.peerId.toString()
    const connected = new Set(node.getConnections().map((c) => c.remotePeer.toString()))
    const missing = (id: string): boolean => id !== '' && id !== self && !connected.has(id) && !init.refused(id)
    const boot = init.bootstrap.filter((a) => missing(multiaddr(a).getPeerId() ?? ''))
    let kept: string[] = []
    try {
      kept = [...new Set(init.keep())].filter(missing)
    } catch (err) {
      init.logger.warn({ err }, 'keepConnected threw; only bootstrap peers are redialled this time')
    }
    await Promise.all([
      ...boot.map(async (a) => await once(a, async () => {
        try {
          await node.dial(multiaddr(a), { signal: AbortSignal.timeout(KEEP_DIAL_TIMEOUT_MS) })
        } catch (err) {
          init.logger.debug({ peer: a, err: (err as Error).message }, 'bootstrap peer not reachable yet')
        }
      })),
      ...kept.map(async (id) => await once(id, async () => {
        let peer
        try {
          peer = peerIdFromString(id)
        } catch {
          init.logger.warn({ peer: id.slice(0, 64) }, 'asked to keep a connection to something that is not a node id')
          return
        }
        try {
          // Known addresses first (libp2p looks the peer up in the DHT itself only when it has none).
          await node.dial(peer, { signal: AbortSignal.timeout(KEEP_DIAL_TIMEOUT_MS) })
        } catch (first) {
          try {
            const info = await node.peerRouting.findPeer(peer, { signal: AbortSignal.timeout(KEEP_FIND_PEER_TIMEOUT_MS) })
            // Into the peer store and dialled by id, so the connection must be to that peer.
            await node.peerStore.merge(peer, { multiaddrs: info.multiaddrs })
            await node.dial(peer, { signal: AbortSignal.timeout(KEEP_DIAL_TIMEOUT_MS) })
          } catch (err) {
            init.logger.debug({ peer: id, err: (err as Error).message, first: (first as Error).message }, 'kept peer not reachable yet')
          }
        }
      }))
    ])
  }
}
