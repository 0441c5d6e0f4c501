import test from 'ava'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseRecord, readRecord, serialiseRecord, writeRecord } from '../../src/images/index.ts'
import type { ImageRecordEntry } from '../../src/images/index.ts'

const entries: ImageRecordEntry[] = [
  { id: `sha256:${'b'.repeat(64)}`, ref: 'inframind/b:1', source: 'registry', sizeBytes: 2048, fetchedAtMs: 10, lastUsedMs: 30 },
  { id: `sha256:${'a'.repeat(64)}`, ref: 'inframind/a:1', source: 'tar', sizeBytes: 1024, fetchedAtMs: 5, lastUsedMs: 20 }
]

let dir: string
test.beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'inframind-record-')) })
test.afterEach.always(async () => { await rm(dir, { recursive: true, force: true }) })

test.serial('round trip: what is written is read back (sorted by id), 0600, no temp file left', async (t) => {
  const path = join(dir, 'sub', 'images.json')
  await writeRecord(path, entries)
  t.deepEqual(await readRecord(path), [...entries].reverse())
  t.is((await stat(path)).mode & 0o777, 0o600)
  t.deepEqual(await readdir(join(dir, 'sub')), ['images.json'])
  await writeRecord(path, entries.slice(0, 1))
  t.deepEqual(await readRecord(path), entries.slice(0, 1))
})

test.serial('a missing file is an empty record; a broken or foreign one throws', async (t) => {
  t.deepEqual(await readRecord(join(dir, 'absent.json')), [])
  const path = join(dir, 'images.json')
  await writeFile(path, '{"version": 1, "images": [')
  await t.throwsAsync(readRecord(path))
  await writeFile(path, JSON.stringify({ version: 2, images: [] }))
  await t.throwsAsync(readRecord(path))
})

test('entries that are not well formed are dropped, the rest kept', (t) => {
  const text = JSON.stringify({
    version: 1,
    images: [entries[0], { ...entries[1], id: 'sha256:short' }, { ...entries[1], source: 'peer' }, { ...entries[1], sizeBytes: 'big' }, null]
  })
  t.deepEqual(parseRecord(text), [entries[0]])
})

test('serialised form: versioned, stable, newline-terminated', (t) => {
  const text = serialiseRecord(entries)
  t.true(text.endsWith('\n'))
  t.is(text, serialiseRecord([...entries].reverse()))
  t.is((JSON.parse(text) as { version: number }).version, 1)
})

test.serial('the write is atomic: the file is replaced whole, never left half written', async (t) => {
  const path = join(dir, 'images.json')
  await writeRecord(path, entries)
  const before = await readFile(path, 'utf8')
  await Promise.all([1, 2, 3, 4, 5].map(async () => { await writeRecord(path, entries) }))
  t.is(await readFile(path, 'utf8'), before)
  t.deepEqual(await readdir(dir), ['images.json'])
})
