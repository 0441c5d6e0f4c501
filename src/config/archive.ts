import type { ArchiveConfig } from './types.ts'
import * as C from './constants.ts'
import { integer, section, size, type Ctx, type Path } from './fields.ts'

const ARCHIVE_KEYS = ['replicas', 'sync_interval_ms', 'retention'] as const
const RETENTION_KEYS = ['max_bytes', 'max_age_days'] as const
const DAY_MS = 24 * 3_600_000

/** `archive:` (read on every node; used only by one with the archive role). */
export function parseArchive (ctx: Ctx, raw: unknown): ArchiveConfig {
  const path: Path = ['archive']
  const o = section(ctx, raw, path, ARCHIVE_KEYS)
  const retentionPath: Path = ['archive', 'retention']
  const retention = section(ctx, o.retention, retentionPath, RETENTION_KEYS)
  return {
    replicas: integer(ctx, o, 'replicas', path, C.DEFAULT_ARCHIVE_REPLICAS, 1, C.MAX_ARCHIVE_REPLICAS),
    // At least a second: a round lists every other archive; at most a day, or replication stops meaning much.
    syncIntervalMs: integer(ctx, o, 'sync_interval_ms', path, C.DEFAULT_ARCHIVE_SYNC_INTERVAL_MS, 1_000, DAY_MS),
    retention: {
      // At least 1 MiB: below it not even one large record fits.
      maxBytes: size(ctx, retention, 'max_bytes', retentionPath, C.DEFAULT_ARCHIVE_MAX_BYTES, 1024 * 1024, 2 ** 53),
      maxAgeMs: integer(ctx, retention, 'max_age_days', retentionPath, C.DEFAULT_ARCHIVE_MAX_AGE_DAYS, 1, 100 * 365) * DAY_MS
    }
  }
}
