/**
 * Rendezvous (highest random weight) hashing: every node that knows the same candidates picks the
 * same ones for a key, with no coordination, and when one candidate goes away only the keys it held
 * move. Used to place a keyed job on a worker, a subscription on a scheduler, a record on archives.
 *
 * weight(key, candidate) = sha256(utf8(key) || 0x00 || utf8(candidate)), compared as bytes;
 * candidates in descending weight order.
 */
import { createHash } from 'node:crypto'

export function rendezvousWeight (key: string, candidate: string): Buffer {
  return createHash('sha256').update(key).update(SEPARATOR).update(candidate).digest()
}

const SEPARATOR = Buffer.from([0])

/**
 * Distinct candidates by descending `weight` (compared as bytes): the ranking every rendezvous
 * placement shares; each caller documents the weight it uses.
 */
export function rankByWeight (candidates: readonly string[], weight: (candidate: string) => Uint8Array): string[] {
  const weighted = [...new Set(candidates)].map((c) => ({ c, w: weight(c) }))
  weighted.sort((a, b) => Buffer.compare(b.w, a.w))
  return weighted.map((x) => x.c)
}

/** The candidates in rendezvous order of `key` (highest weight first); ties cannot occur between distinct ids. */
export function rendezvousOrder (key: string, candidates: readonly string[]): string[] {
  return rankByWeight(candidates, (c) => rendezvousWeight(key, c))
}

/** The first `k` of rendezvousOrder. */
export function rendezvous (key: string, candidates: readonly string[], k: number): string[] {
  return rendezvousOrder(key, candidates).slice(0, Math.max(0, k))
}
