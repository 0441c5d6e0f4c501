/** Which recorded images to remove so the unused ones fit the disk budget (pure: no engine calls). */
import type { ImageRecordEntry } from './record.ts'

export interface EvictionInput {
  /** Images this cache brought in, with current sizes. */
  records: ImageRecordEntry[]
  /** Ids pinned by configured containers: never removed. */
  pinned: ReadonlySet<string>
  /** Ids any container (running or stopped) was created from, or otherwise held: never removed. */
  inUse: ReadonlySet<string>
  budgetBytes: number
}

export interface EvictionPlan {
  /** Ids to remove, least recently used first. */
  evict: string[]
  /** Bytes of unused recorded images before and after the plan. */
  unusedBytes: number
  remainingBytes: number
}

export function planEviction (input: EvictionInput): EvictionPlan {
  const unused = input.records
    .filter((r) => !input.pinned.has(r.id) && !input.inUse.has(r.id))
    // Oldest use first; the id breaks ties so the plan does not depend on the record's order.
    .sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.id.localeCompare(b.id))
  const unusedBytes = unused.reduce((sum, r) => sum + Math.max(0, r.sizeBytes), 0)
  let remainingBytes = unusedBytes
  const evict: string[] = []
  for (const r of unused) {
    if (remainingBytes <= input.budgetBytes) break
    evict.push(r.id)
    remainingBytes -= Math.max(0, r.sizeBytes)
  }
  return { evict, unusedBytes, remainingBytes }
}
