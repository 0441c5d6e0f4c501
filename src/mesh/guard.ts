/**
 * Gossipsub stops processing a graylisted peer's messages but keeps its connection (and keeps
 * reading its traffic). This node also closes the connection and refuses the peer (the ban list,
 * through the connection gater) for a cool-down that doubles on each repeat: when its gossip score
 * falls below the graylist threshold, and at once when it floods (its own messages far over its
 * rate, which no honest node sends: waiting for the score would let it cost this node a second more).
 */
import type { Logger } from '../telemetry/logger.ts'
import type { BanList } from './bans.ts'
import type { MeshLibp2p } from './libp2p.ts'

export interface PeerGuardInit {
  bans: BanList
  /** Gossipsub's graylist threshold: a peer scoring below it is banned. */
  threshold: number
  logger: Logger
  /** Called once per ban (the metric). */
  onBan?: () => void
}

export interface PeerGuard {
  /** Every connected peer's gossip score against the threshold (the score timer runs it). */
  checkScores(node: MeshLibp2p): void
  /** Bans `nodeId` now unless it is banned already, and closes its connections. */
  ban(node: MeshLibp2p, nodeId: string, reason: string): void
}

export function peerGuard (init: PeerGuardInit): PeerGuard {
  const ban = (node: MeshLibp2p, nodeId: string, reason: string): void => {
    if (init.bans.isBanned(nodeId)) return
    const b = init.bans.ban(nodeId, reason)
    init.onBan?.()
    init.logger.warn({ peer: nodeId, reason, untilMs: b.untilMs }, 'peer banned: connections closed, redials refused until the cool-down ends')
    const peer = node.getConnections().find((c) => c.remotePeer.toString() === nodeId)?.remotePeer
    if (peer === undefined) return
    node.hangUp(peer).catch((err: unknown) => init.logger.debug({ peer: nodeId, err }, 'closing a banned peer\'s connections failed'))
  }
  return {
    ban,
    checkScores (node) {
      const seen = new Set<string>()
      for (const conn of node.getConnections()) {
        const id = conn.remotePeer.toString()
        if (seen.has(id)) continue
        seen.add(id)
        const score = node.services.pubsub.getScore(id)
        if (score < init.threshold) ban(node, id, `gossip score ${score.toFixed(0)} below the graylist threshold (${init.threshold})`)
      }
    }
  }
}
