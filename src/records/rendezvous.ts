import { createHash } from 'node:crypto'
import { rankByWeight } from '../rendezvous.ts'

/**
 * Rendezvous (highest random weight) hashing: the k candidates that should hold `key`, best first.
 * Each candidate scores sha256(key ‖ utf8(candidate)), `key` as given when bytes, its UTF-8 when a
 * string; scores compare as 32-byte big-endian numbers, highest first (equal scores, only for
 * duplicate candidates, which are dropped). Every node that knows the same candidates computes the
 * same answer, and when one candidate goes away only the keys it held move, each to the next in rank.
 */
export function rendezvous (key: string | Uint8Array, candidates: readonly string[], k: number): string[] {
  const keyBytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
  return rankByWeight(candidates, (candidate) => createHash('sha256').update(keyBytes).update(candidate, 'utf8').digest())
    .slice(0, Math.max(0, Math.trunc(k)))
}
