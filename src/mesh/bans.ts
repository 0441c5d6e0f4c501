/**
 * Peers refused for a while: those whose gossipsub score fell below the graylist threshold. The
 * connection gater consults the list on every dial and every inbound connection, so it is a plain
 * synchronous lookup; its size is bounded.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import { BAN_BASE_MS, BAN_MAX_MS, BAN_MEMORY_MS, MAX_BAN_RECORDS } from './constants.ts'

/** A peer this node refuses until `untilMs` (ms since epoch), and why. */
export interface BannedPeer { nodeId: string, untilMs: number, reason: string }

interface BanRecord { bans: number, untilMs: number, reason: string }

export interface BanListInit {
  baseMs?: number
  maxMs?: number
  /** How long after a ban ends it still counts towards the next one's length. */
  memoryMs?: number
  maxRecords?: number
}

export class BanList {
  readonly #baseMs: number
  readonly #maxMs: number
  readonly #memoryMs: number
  readonly #maxRecords: number
  // Insertion order = order of the last ban, so the first entry is the one banned longest ago.
  readonly #records = new Map<string, BanRecord>()

  constructor (init: BanListInit = {}) {
    this.#baseMs = init.baseMs ?? BAN_BASE_MS
    this.#maxMs = init.maxMs ?? BAN_MAX_MS
    this.#memoryMs = init.memoryMs ?? BAN_MEMORY_MS
    this.#maxRecords = init.maxRecords ?? MAX_BAN_RECORDS
  }

  /** Records kept, active or remembered (never more than maxRecords). */
  get size (): number {
    return this.#records.size
  }

  /**
   * Bans `nodeId` from `now`: BAN_BASE_MS the first time, twice as long as the previous ban each
   * time it is banned again while remembered, at most BAN_MAX_MS.
   */
  ban (nodeId: string, reason: string, now = Date.now()): BannedPeer {
    const previous = this.#records.get(nodeId)
    const remembered = previous !== undefined && now <= previous.untilMs + this.#memoryMs
    const bans = remembered ? previous.bans + 1 : 1
    const untilMs = now + Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(bans - 1, 32))
    this.#records.delete(nodeId)
    this.#records.set(nodeId, { bans, untilMs, reason })
    this.#trim(now)
    return { nodeId, untilMs, reason }
  }

  /**
   * Refuses `nodeId` until `untilMs` because an operator (or a test making a partition) said so: the
   * length is the one given, and it does not count towards the doubling of score bans.
   */
  block (nodeId: string, untilMs: number, reason: string, now = Date.now()): BannedPeer {
    const previous = this.#records.get(nodeId)
    this.#records.delete(nodeId)
    this.#records.set(nodeId, { bans: previous?.bans ?? 0, untilMs, reason })
    this.#trim(now)
    return { nodeId, untilMs, reason }
  }

  /** Lifts a ban or block now (its record still counts towards the next score ban's length). */
  unblock (nodeId: string, now = Date.now()): boolean {
    const r = this.#records.get(nodeId)
    if (r === undefined || now >= r.untilMs) return false
    r.untilMs = now
    return true
  }

  isBanned (nodeId: string, now = Date.now()): boolean {
    const r = this.#records.get(nodeId)
    return r !== undefined && now < r.untilMs
  }

  /** Peers banned at `now`, the latest ban last. */
  list (now = Date.now()): BannedPeer[] {
    return [...this.#records].filter(([, r]) => now < r.untilMs).map(([nodeId, r]) => ({ nodeId, untilMs: r.untilMs, reason: r.reason }))
  }

  #trim (now: number): void {
    if (this.#records.size <= this.#maxRecords) return
    for (const [id, r] of this.#records) {
      if (now > r.untilMs + this.#memoryMs) this.#records.delete(id)
    }
    // Still full (a Sybil of banned keys): the longest-ago bans go first.
    for (const id of this.#records.keys()) {
      if (this.#records.size <= this.#maxRecords) break
      this.#records.delete(id)
    }
  }
}

/**
 * libp2p's connection gater over a ban predicate: no dial to a banned peer, and an inbound
 * connection from one is dropped as soon as its peer id is known (after the encryption handshake).
 */
export function banGater (isBanned: (nodeId: string) => boolean): ConnectionGater {
  const banned = (peer: PeerId): boolean => isBanned(peer.toString())
  return {
    denyDialPeer: banned,
    denyInboundEncryptedConnection: banned,
    denyOutboundEncryptedConnection: banned,
    denyInboundUpgradedConnection: banned,
    denyOutboundUpgradedConnection: banned
  }
}
