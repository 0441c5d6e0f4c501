/**
 * What a scheduler has seen of each worker, kept across restarts: successes, failures, timeouts,
 * refusals, disputes lost (its own and, from verifiable dispute records, other schedulers'), and ack
 * latency. One number comes out of it (the score, 0..1) and one rule: a worker that loses a dispute,
 * or whose score falls below the threshold, gets no assignments for a cool-down that doubles with
 * each repeat.
 */

import type { NodeReputation } from '../protocol/index.ts'
import type { Standing } from './pick.ts'

/**
 * One worker's record, as Control.GetReputation shows it (control.proto NodeReputation, less the id
 * and the score computed from it): ack latency is an exponentially weighted mean, exclusions count
 * how many times it was excluded (each lasts twice the last), times are epoch ms.
 */
export type NodeRecord = Omit<NodeReputation, 'nodeId' | 'score'>

export type Outcome = 'success' | 'failure' | 'timeout' | 'refusal' | 'dispute'

/** Where records are kept (the scheduler's LevelDB store). */
export interface ReputationStore {
  loadReputation(): Promise<Map<string, string>>
  saveReputation(nodeId: string, record: string): Promise<void>
}

/** A dispute weighs this many failures: a wrong result is worse than no result. */
export const DISPUTE_WEIGHT = 25
/** Below this score a worker is excluded. */
export const SCORE_THRESHOLD = 0.5
/**
 * A low score excludes a worker only once this many outcomes are recorded: one missed ack of a new
 * worker on a busy machine (score 1/3) is the ack cool-down's business, not a 10-minute exclusion.
 * A lost dispute excludes at once, whatever the count.
 */
export const SCORE_MIN_OUTCOMES = 10
/** First exclusion; doubles with each repeat up to EXCLUSION_MAX_MS. */
export const EXCLUSION_BASE_MS = 10 * 60_000
export const EXCLUSION_MAX_MS = 7 * 24 * 3_600_000
/** At most this many nodes are remembered (the least recently changed forgotten first). */
export const MAX_NODES = 10_000

const EMPTY: NodeRecord = { successes: 0, failures: 0, timeouts: 0, refusals: 0, disputesLost: 0, ackLatencyMs: 0, excludedUntilMs: 0, exclusions: 0, updatedAtMs: 0 }

/**
 * score = (successes + 1) / (successes + 1 + failures + 2·timeouts + 0.5·refusals + 25·disputes lost):
 * 1 for a node never seen to fail, falling fast with disputes.
 */
export function score (r: NodeRecord): number {
  const bad = r.failures + 2 * r.timeouts + 0.5 * r.refusals + DISPUTE_WEIGHT * r.disputesLost
  return (r.successes + 1) / (r.successes + 1 + bad)
}

export function exclusionMs (exclusions: number): number {
  return Math.min(EXCLUSION_MAX_MS, EXCLUSION_BASE_MS * 2 ** Math.max(0, Math.min(exclusions - 1, 30)))
}

export class Reputation {
  readonly #store: ReputationStore | undefined
  readonly #records = new Map<string, NodeRecord>()
  #writes: Promise<void> = Promise.resolve()

  constructor (store?: ReputationStore) {
    this.#store = store
  }

  /** Loads what earlier runs recorded; a damaged record is dropped (the node starts afresh). */
  async load (): Promise<void> {
    if (this.#store === undefined) return
    for (const [id, text] of await this.#store.loadReputation()) {
      const r = parse(text)
      if (r !== undefined) this.#records.set(id, r)
    }
  }

  get (nodeId: string): NodeRecord {
    return this.#records.get(nodeId) ?? EMPTY
  }

  score (nodeId: string): number {
    return score(this.get(nodeId))
  }

  /** What worker choice weighs (pickWorker's `standing`); undefined for a node never recorded. */
  standing (nodeId: string): Standing | undefined {
    const r = this.#records.get(nodeId)
    return r === undefined ? undefined : { score: score(r), ackLatencyMs: r.ackLatencyMs, updatedAtMs: r.updatedAtMs }
  }

  /** True while the node sits out an exclusion. */
  excluded (nodeId: string, now = Date.now()): boolean {
    return this.get(nodeId).excludedUntilMs > now
  }

  all (): Array<[string, NodeRecord]> {
    return [...this.#records]
  }

  /**
   * Counts one outcome; a lost dispute, or a score under the threshold after SCORE_MIN_OUTCOMES,
   * starts an exclusion. `retractSuccess`: a dispute about a result already counted as a success
   * (it arrived before it was checked) takes that success back.
   */
  record (nodeId: string, outcome: Outcome, opts: { ackLatencyMs?: number, now?: number, retractSuccess?: boolean } = {}): NodeRecord {
    const now = opts.now ?? Date.now()
    const r = { ...this.get(nodeId), updatedAtMs: now }
    if (opts.retractSuccess === true && outcome === 'dispute' && r.successes > 0) r.successes -= 1
    if (outcome === 'success') r.successes += 1
    else if (outcome === 'failure') r.failures += 1
    else if (outcome === 'timeout') r.timeouts += 1
    else if (outcome === 'refusal') r.refusals += 1
    else r.disputesLost += 1
    if (opts.ackLatencyMs !== undefined) r.ackLatencyMs = r.ackLatencyMs === 0 ? opts.ackLatencyMs : 0.8 * r.ackLatencyMs + 0.2 * opts.ackLatencyMs
    const outcomes = r.successes + r.failures + r.timeouts + r.refusals + r.disputesLost
    if (r.excludedUntilMs <= now && (outcome === 'dispute' || (outcomes >= SCORE_MIN_OUTCOMES && score(r) < SCORE_THRESHOLD))) {
      r.exclusions += 1
      r.excludedUntilMs = now + exclusionMs(r.exclusions)
    }
    this.#records.delete(nodeId)
    this.#records.set(nodeId, r)
    while (this.#records.size > MAX_NODES) this.#records.delete(this.#records.keys().next().value as string)
    this.#persist(nodeId, r)
    return r
  }

  /** Resolves once every change so far is written. */
  async flushed (): Promise<void> {
    await this.#writes
  }

  #persist (nodeId: string, r: NodeRecord): void {
    const store = this.#store
    if (store === undefined) return
    const text = JSON.stringify(r)
    this.#writes = this.#writes.then(async () => { await store.saveReputation(nodeId, text) }).catch(() => {})
  }
}

function parse (text: string): NodeRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<NodeRecord>
    const keys = Object.keys(EMPTY) as Array<keyof NodeRecord>
    if (keys.every((k) => typeof v[k] === 'number' && Number.isFinite(v[k]) && (v[k] as number) >= 0)) return v as NodeRecord
  } catch {}
  return undefined
}
