import type { Heartbeat } from '../protocol/index.ts'
import { LIVENESS_INTERVALS } from './constants.ts'

export interface PeerView {
  nodeId: string
  roles: string[]
  containers: string[]
  addresses: string[]
  /** Last ping round trip, ms (-1 when not measured yet). */
  latencyMs: number
  /** When the last heartbeat arrived (0 = never). */
  lastSeenMs: number
  connected: boolean
  /** Heartbeats still arriving within LIVENESS_INTERVALS of their interval. */
  alive: boolean
  heartbeat: Heartbeat | null
}

interface Entry {
  heartbeat: Heartbeat | null
  lastSeenMs: number
  latencyMs: number
}

/** What this node knows of other nodes: heartbeats (capabilities, load) and ping latency. */
export class PeerTable {
  readonly #entries = new Map<string, Entry>()

  onHeartbeat (hb: Heartbeat, now: number): void {
    const e = this.#entry(hb.nodeId)
    e.heartbeat = hb
    e.lastSeenMs = now
  }

  onLatency (nodeId: string, ms: number): void {
    this.#entry(nodeId).latencyMs = ms
  }

  forget (nodeId: string): void {
    this.#entries.delete(nodeId)
  }

  isAlive (nodeId: string, now: number): boolean {
    const e = this.#entries.get(nodeId)
    if (e?.heartbeat == null) return false
    return now - e.lastSeenMs <= LIVENESS_INTERVALS * Math.max(1000, e.heartbeat.intervalMs)
  }

  heartbeat (nodeId: string): Heartbeat | null {
    return this.#entries.get(nodeId)?.heartbeat ?? null
  }

  /** Every known peer, heartbeat or connection, with `connected` and `addresses` from libp2p. */
  list (now: number, connections: Map<string, string[]>): PeerView[] {
    const ids = new Set([...this.#entries.keys(), ...connections.keys()])
    return [...ids].sort().map((nodeId) => {
      const e = this.#entries.get(nodeId)
      const hb = e?.heartbeat ?? null
      return {
        nodeId,
        roles: hb?.roles ?? [],
        containers: hb?.containers ?? [],
        addresses: connections.get(nodeId) ?? [],
        latencyMs: e?.latencyMs ?? -1,
        lastSeenMs: e?.lastSeenMs ?? 0,
        connected: connections.has(nodeId),
        alive: this.isAlive(nodeId, now),
        heartbeat: hb
      }
    })
  }

  #entry (nodeId: string): Entry {
    let e = this.#entries.get(nodeId)
    if (e === undefined) {
      e = { heartbeat: null, lastSeenMs: 0, latencyMs: -1 }
      this.#entries.set(nodeId, e)
    }
    return e
  }
}
