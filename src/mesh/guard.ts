/**
 * Gossipsub stops processing a graylisted peer's messages but keeps its connection (and keeps
 * reading its traffic). This node also closes the connection and refuses the peer (the ban list,
 * through the connection gater) for a cool-down that doubles on each repeat.
 */
import type { Logger } from '../telemetry/logger.ts'
import type { BanList } from './bans.ts'
import type { MeshLibp2p } from './libp2p.ts'

export interface ScoreGuardInit {
  bans: BanList
  /** Gossipsub's graylist threshold: a peer scoring below it is banned. */
  threshold: number
  logger: Logger
  /** Called once per ban (the metric). */
  onBan?: () => void
}

/** Returns the check the score timer runs: every connected peer's score against the threshold. */
export function scoreGuard (init: ScoreGuardInit): (node: MeshLibp2p) => void {
  return (node) => {
    const seen = new Set<string>()
    for (const conn of node.getConnections()) {
      const id = conn.remotePeer.toString()
      if (seen.has(id)) continue
      seen.add(id)
      const score = node.services.pubsub.getScore(id)
      if (!(score < init.threshold)) continue
      const ban = init.bans.ban(id, `gossip score ${score.toFixed(0)} below the graylist threshold (${init.threshold})`)
      init.onBan?.()
      init.logger.warn({ peer: id, score, untilMs: ban.untilMs }, 'peer banned: connections closed, redials refused until the cool-down ends')
      node.hangUp(conn.remotePeer).catch((err: unknown) => init.logger.debug({ peer: id, err }, 'closing a banned peer\'s connections failed'))
    }
  }
}
