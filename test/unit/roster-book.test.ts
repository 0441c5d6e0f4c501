import test, { type ExecutionContext } from 'ava'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { envelopeFromJson, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { encodeRoster, PAYLOAD_TYPES, type Roster } from '../../src/protocol/index.ts'
import { rosterBook, signRoster, signedRosterText, type RosterBook, type RosterChange } from '../../src/roster/index.ts'
import { createLogger, silentLogger } from '../../src/telemetry/logger.ts'
import { createMetrics } from '../../src/telemetry/metrics.ts'

const operator = identityFromSeed(new Uint8Array(32).fill(9))
const stranger = identityFromSeed(new Uint8Array(32).fill(8))
const worker = identityFromSeed(new Uint8Array(32).fill(1))
const scheduler = identityFromSeed(new Uint8Array(32).fill(2))

function roster (version: number, overrides: Partial<Roster> = {}): Roster {
  return {
    mesh: 'edge',
    version,
    issuedAtMs: Date.now(),
    expiresAtMs: 0,
    members: [{ nodeId: worker.nodeId, roles: ['worker'], name: 'w' }, { nodeId: scheduler.nodeId, roles: ['scheduler'], name: 's' }],
    ...overrides
  }
}

async function tempFile (t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-roster-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  return path.join(dir, 'data', 'roster.json')
}

/** A book whose warnings are collected as parsed pino lines. */
async function startBook (t: ExecutionContext, file: string, opts: { operators?: string[] } = {}): Promise<{ book: RosterBook, logs: Array<Record<string, unknown>> }> {
  const logs: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write (chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') logs.push(JSON.parse(line))
      done()
    }
  })
  const book = rosterBook({ meshName: 'edge', operators: opts.operators ?? [operator.nodeId], file })({ logger: createLogger({ level: 'debug', destination }) })
  await book.start()
  t.teardown(async () => await book.stop())
  return { book, logs }
}

const warnings = (logs: Array<Record<string, unknown>>): unknown[] => logs.filter((l) => l.level === 40).map((l) => l.code)

test('apply before start is refused; without a file the book starts empty', async (t) => {
  const file = await tempFile(t)
  const book = rosterBook({ meshName: 'edge', operators: [operator.nodeId], file })({ logger: silentLogger() })
  await t.throwsAsync(book.apply(signRoster(operator, roster(1)), 'control'), { code: 'ROSTER_NOT_STARTED' })
  await book.start()
  await book.start()
  t.is(book.version(), 0)
  t.is(book.current(), undefined)
  t.deepEqual(book.rolesOf(worker.nodeId), [])
  t.false(book.isMember(worker.nodeId))
  await book.stop()
  await book.stop()
  await t.throwsAsync(book.apply(signRoster(operator, roster(1)), 'control'), { code: 'ROSTER_NOT_STARTED' })
})

test('an applied roster is held, written 0600 as a JSON envelope, announced, and loaded by the next book', async (t) => {
  const file = await tempFile(t)
  const { book } = await startBook(t, file)
  const changes: RosterChange[] = []
  book.on('changed', (c) => changes.push(c))
  const env = signRoster(operator, roster(4))
  const held = await book.apply(env, 'control')
  t.is(held.roster.version, 4)
  t.is(held.signer, operator.nodeId)
  t.is(book.version(), 4)
  t.deepEqual(book.rolesOf(scheduler.nodeId), ['scheduler'])
  t.deepEqual(book.rolesOf(stranger.nodeId), [])
  t.true(book.isMember(worker.nodeId))
  t.deepEqual(changes.map((c) => [c.source, c.previousVersion, c.roster.version]), [['control', 0, 4]])

  t.is((await stat(file)).mode & 0o777, 0o600)
  const onDisk = envelopeFromJson(JSON.parse(await readFile(file, 'utf8')))
  t.deepEqual(onDisk, env)
  t.deepEqual((await readdirNames(path.dirname(file))), ['roster.json'], 'no temp file left behind')

  const { book: next } = await startBook(t, file)
  t.is(next.version(), 4)
  t.deepEqual(next.rolesOf(worker.nodeId), ['worker'])
  t.is(next.current()?.hash, held.hash)
})

test('a refused roster changes nothing: no state, no file, no event', async (t) => {
  const file = await tempFile(t)
  const { book } = await startBook(t, file)
  await book.apply(signRoster(operator, roster(5)), 'control')
  const before = await readFile(file, 'utf8')
  const changes: RosterChange[] = []
  book.on('changed', (c) => changes.push(c))
  const refused: Array<[string, ReturnType<typeof signRoster>]> = [
    ['ROSTER_STALE', signRoster(operator, roster(5, { members: [] }))],
    ['ROSTER_STALE', signRoster(operator, roster(4))],
    ['ROSTER_UNKNOWN_OPERATOR', signRoster(stranger, roster(9, { members: [{ nodeId: stranger.nodeId, roles: ['scheduler'], name: '' }] }))],
    ['ROSTER_WRONG_MESH', signRoster(operator, roster(9, { mesh: 'other' }))],
    ['ROSTER_EXPIRED', signRoster(operator, roster(9, { expiresAtMs: Date.now() - 1 }))],
    ['ROSTER_MALFORMED', signEnvelope(operator, PAYLOAD_TYPES.roster, encodeRoster(roster(9, { members: [{ nodeId: 'x', roles: [], name: '' }] })))],
    ['ROSTER_UNSIGNED', { ...signRoster(operator, roster(9)), payload: encodeRoster(roster(10)) }]
  ]
  for (const [code, env] of refused) await t.throwsAsync(book.apply(env, 'gossip'), { code }, code)
  t.is(book.version(), 5)
  t.deepEqual(book.rolesOf(scheduler.nodeId), ['scheduler'])
  t.false(book.isMember(stranger.nodeId))
  t.is(await readFile(file, 'utf8'), before)
  t.deepEqual(changes, [])
})

test('with no operator configured every roster is refused', async (t) => {
  const file = await tempFile(t)
  const { book } = await startBook(t, file, { operators: [] })
  await t.throwsAsync(book.apply(signRoster(operator, roster(1)), 'control'), { code: 'ROSTER_UNKNOWN_OPERATOR' })
  t.is(book.version(), 0)
})

test('a roster file that fails verification at start is not used (warned with its code) and the node runs without one', async (t) => {
  const cases: Array<[string, string]> = [
    ['ROSTER_EXPIRED', signedRosterText(signRoster(operator, roster(3, { expiresAtMs: Date.now() - 1000 })))],
    ['ROSTER_UNKNOWN_OPERATOR', signedRosterText(signRoster(stranger, roster(3)))],
    ['ROSTER_WRONG_MESH', signedRosterText(signRoster(operator, roster(3, { mesh: 'other' })))],
    ['ROSTER_MALFORMED', '{"payload_type": "inframind/roster/v1", "payload": "!!"}'],
    ['ROSTER_MALFORMED', 'not json at all']
  ]
  for (const [code, text] of cases) {
    const file = await tempFile(t)
    await writeFileIn(file, text)
    const { book, logs } = await startBook(t, file)
    t.is(book.version(), 0, code)
    t.deepEqual(book.rolesOf(worker.nodeId), [], code)
    t.deepEqual(warnings(logs), [code])
    // Still usable: a valid roster applies and replaces the bad file.
    await book.apply(signRoster(operator, roster(1)), 'control')
    t.is(book.version(), 1)
  }
})

test('concurrent applies settle on the newest version, in memory and on disk', async (t) => {
  const file = await tempFile(t)
  const { book } = await startBook(t, file)
  const results = await Promise.allSettled([
    book.apply(signRoster(operator, roster(2)), 'gossip'),
    book.apply(signRoster(operator, roster(3)), 'gossip'),
    book.apply(signRoster(operator, roster(1)), 'gossip')
  ])
  t.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected'])
  t.is(book.version(), 3)
  const { book: next } = await startBook(t, file)
  t.is(next.version(), 3)
})

test('once the held roster expires it grants no role, and an older roster still cannot replace it', async (t) => {
  const file = await tempFile(t)
  const { book, logs } = await startBook(t, file)
  const expiresAtMs = Date.now() + 200
  await book.apply(signRoster(operator, roster(6, { expiresAtMs })), 'control')
  t.deepEqual(book.rolesOf(worker.nodeId), ['worker'])
  while (Date.now() <= expiresAtMs) await new Promise((resolve) => setTimeout(resolve, 20))
  t.deepEqual(book.rolesOf(worker.nodeId), [])
  t.false(book.isMember(worker.nodeId))
  t.is(book.version(), 6)
  t.is(logs.filter((l) => l.level === 40).length, 1, 'the expiry is warned about once')
  t.deepEqual(book.rolesOf(worker.nodeId), [])
  t.is(logs.filter((l) => l.level === 40).length, 1)
  await t.throwsAsync(book.apply(signRoster(operator, roster(5)), 'gossip'), { code: 'ROSTER_STALE' })
  await book.apply(signRoster(operator, roster(7)), 'control')
  t.deepEqual(book.rolesOf(worker.nodeId), ['worker'])
})

test('metrics count offers by source and result, and report the version held', async (t) => {
  const file = await tempFile(t)
  const metrics = createMetrics()
  const book = rosterBook({ meshName: 'edge', operators: [operator.nodeId], file })({ logger: silentLogger(), metrics })
  await book.start()
  t.teardown(async () => await book.stop())
  await book.apply(signRoster(operator, roster(2)), 'control')
  await t.throwsAsync(book.apply(signRoster(operator, roster(2)), 'gossip'))
  const text = await metrics.registry.metrics()
  t.regex(text, /inframind_roster_updates_total\{source="control",result="applied"\} 1/)
  t.regex(text, /inframind_roster_updates_total\{source="gossip",result="ROSTER_STALE"\} 1/)
  t.regex(text, /inframind_roster_version 2/)
})

async function writeFileIn (file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, text)
}

async function readdirNames (dir: string): Promise<string[]> {
  return (await readdir(dir)).sort()
}
