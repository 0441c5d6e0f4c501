/**
 * `<dataDir>/images.json`: the images this cache brought into the engine (loaded from a tar or
 * pulled) and when each was last used. Only these are ever evicted: the engine is shared, and an
 * image the cache did not bring in belongs to someone else.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { RECORD_VERSION } from './constants.ts'

export type FetchSource = 'tar' | 'registry'

export interface ImageRecordEntry {
  /** Image id (sha256:...). */
  id: string
  /** The reference it was fetched as (tag). */
  ref: string
  source: FetchSource
  sizeBytes: number
  fetchedAtMs: number
  lastUsedMs: number
}

interface RecordFile {
  version: number
  images: ImageRecordEntry[]
}

/** Reads the record; a missing file is an empty record, an unreadable one is reported to the caller. */
export async function readRecord (path: string): Promise<ImageRecordEntry[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return parseRecord(text)
}

/** Parses the file's text; throws on anything that is not a record of this version. */
export function parseRecord (text: string): ImageRecordEntry[] {
  const data = JSON.parse(text) as Partial<RecordFile>
  if (data?.version !== RECORD_VERSION || !Array.isArray(data.images)) {
    throw new Error(`not an image record of version ${RECORD_VERSION}`)
  }
  return data.images.filter(isEntry).map((e) => ({
    id: e.id, ref: e.ref, source: e.source, sizeBytes: e.sizeBytes, fetchedAtMs: e.fetchedAtMs, lastUsedMs: e.lastUsedMs
  }))
}

export function serialiseRecord (entries: Iterable<ImageRecordEntry>): string {
  const images = [...entries].sort((a, b) => a.id.localeCompare(b.id))
  return JSON.stringify({ version: RECORD_VERSION, images } satisfies RecordFile, null, 2) + '\n'
}

/** Write to a temp file, fsync, rename: a crash leaves the old record or the new one, never half of one. */
export async function writeRecord (path: string, entries: Iterable<ImageRecordEntry>): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const handle = await open(tmp, 'w', 0o600)
    try {
      await handle.writeFile(serialiseRecord(entries))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

function isEntry (value: unknown): value is ImageRecordEntry {
  const e = value as Partial<ImageRecordEntry> | null
  return typeof e?.id === 'string' && /^sha256:[0-9a-f]{64}$/.test(e.id) && typeof e.ref === 'string' &&
    (e.source === 'tar' || e.source === 'registry') && Number.isFinite(e.sizeBytes) &&
    Number.isFinite(e.fetchedAtMs) && Number.isFinite(e.lastUsedMs)
}
