import test, { type ExecutionContext } from 'ava'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { stringify } from 'yaml'
import { connectControl } from '../../src/api/client.ts'
import { apiServer, type ApiComponents } from '../../src/api/index.ts'
import { cli } from '../../src/cli/main.ts'
import type { CliIo } from '../../src/cli/client-commands.ts'
import { parseConfig } from '../../src/config/index.ts'
import { envelopeFromJson, signEnvelope, type SignedEnvelope } from '../../src/envelope/index.ts'
import { generateIdentity, identityFromSeed, loadIdentity } from '../../src/identity/index.ts'
import { PAYLOAD_TYPES } from '../../src/protocol/index.ts'
import { openRoster, rosterBook, signRoster, signedRosterText, type RosterBook } from '../../src/roster/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'

// `infra roster` run in-process as main.ts runs it, and push/show --node against a real gRPC control listener.

interface Run { code: number, out: string, err: string }

async function infra (argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let out = ''
  let err = ''
  const io: CliIo = {
    out: (s) => { out += s },
    err: (s) => { err += s },
    env: { INFRAMIND_CONFIG: '', ...env },
    stdin: async () => new Uint8Array(0),
    stderr: process.stderr
  }
  const code = await cli(argv, io)
  return { code, out, err }
}

async function tempDir (t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'inframind-roster-cli-'))
  t.teardown(async () => await rm(d, { recursive: true, force: true }))
  return d
}

const NODE_ID = /12D3KooW[1-9A-HJ-NP-Za-km-z]{44,48}/

test('init creates the operator key, the mesh key and a draft; add, sign and show make a roster nodes accept', async (t) => {
  const dir = await tempDir(t)
  const f = (name: string): string => path.join(dir, name)
  const files = ['--draft', f('draft.json'), '--operator-key', f('keys/operator.key')]

  const init = await infra(['roster', 'init', ...files, '--mesh-key', f('mesh.key'), '--mesh', 'edge'])
  t.is(init.code, 0, init.err)
  const operatorId = init.out.match(/operator id:\s+(\S+)/)?.[1] ?? ''
  t.regex(operatorId, NODE_ID)
  t.is(loadIdentity(f('keys/operator.key')).nodeId, operatorId)
  t.is((await stat(f('keys/operator.key'))).mode & 0o777, 0o600)
  t.is((await stat(f('mesh.key'))).mode & 0o777, 0o600)
  t.regex(await readFile(f('mesh.key'), 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n?$/)
  t.deepEqual(JSON.parse(await readFile(f('draft.json'), 'utf8')), { mesh: 'edge', version: 0, members: [] })
  t.true(init.out.includes(`operators: [${operatorId}]`), 'says what to put in mesh.admission.operators')

  // A second init keeps everything: the same operator, the same mesh key.
  const meshKey = await readFile(f('mesh.key'))
  const again = await infra(['roster', 'init', ...files, '--mesh-key', f('mesh.key')])
  t.is(again.code, 0, again.err)
  t.is(again.out.match(/operator id:\s+(\S+)/)?.[1], operatorId)
  t.deepEqual(await readFile(f('mesh.key')), meshKey)

  const worker = generateIdentity(f('w.key'))
  const scheduler = generateIdentity(f('s.key'))
  t.is((await infra(['roster', 'add', worker.nodeId, '--roles', 'worker', '--name', 'box-1', '--draft', f('draft.json')])).code, 0)
  t.is((await infra(['roster', 'add', scheduler.nodeId, '--roles', 'scheduler,gateway', '--draft', f('draft.json')])).code, 0)
  t.is((await infra(['roster', 'add', worker.nodeId, '--roles', 'worker,validator', '--draft', f('draft.json')])).code, 0, 'replaces the roles')
  t.is((await infra(['roster', 'add', 'not-an-id', '--roles', 'worker', '--draft', f('draft.json')])).code, 2)
  t.is((await infra(['roster', 'add', worker.nodeId, '--roles', 'king', '--draft', f('draft.json')])).code, 2)
  t.is((await infra(['roster', 'add', worker.nodeId, '--draft', f('draft.json')])).code, 2, '--roles is required')
  const draftShow = await infra(['roster', 'show', f('draft.json')])
  t.is(draftShow.code, 0, draftShow.err)
  t.true(draftShow.out.includes(worker.nodeId) && draftShow.out.includes('worker,validator'))

  const sign = await infra(['roster', 'sign', ...files, '--out', f('roster.json'), '--expires', '30d'])
  t.is(sign.code, 0, sign.err)
  t.is(JSON.parse(await readFile(f('draft.json'), 'utf8')).version, 1, 'the signed version is written back to the draft')
  const env = envelopeFromJson(JSON.parse(await readFile(f('roster.json'), 'utf8')))
  const opened = openRoster(env)
  t.is(opened.signer, operatorId)
  t.is(opened.roster.mesh, 'edge')
  t.is(opened.roster.version, 1)
  t.deepEqual(opened.roster.members.map((m) => [m.nodeId, m.roles, m.name]), [[worker.nodeId, ['worker', 'validator'], 'box-1'], [scheduler.nodeId, ['scheduler', 'gateway'], '']])
  const days = (opened.roster.expiresAtMs - opened.roster.issuedAtMs) / 86_400_000
  t.is(days, 30)

  const show = await infra(['roster', 'show', f('roster.json'), '--operators', operatorId, '--json'])
  t.is(show.code, 0, show.err)
  const shown = JSON.parse(show.out)
  t.like(shown, { valid: true, signer: operatorId, signer_is_operator: true, expired: false, mesh: 'edge', version: 1 })
  const notOperator = await infra(['roster', 'show', f('roster.json'), '--operators', worker.nodeId])
  t.is(notOperator.code, 1)

  // A second signing issues the next version; removing a member drops it.
  t.is((await infra(['roster', 'remove', scheduler.nodeId, '--draft', f('draft.json')])).code, 0)
  t.is((await infra(['roster', 'remove', scheduler.nodeId, '--draft', f('draft.json')])).code, 1, 'not a member any more')
  t.is((await infra(['roster', 'sign', ...files, '--out', f('roster2.json')])).code, 0)
  const second = openRoster(envelopeFromJson(JSON.parse(await readFile(f('roster2.json'), 'utf8'))))
  t.is(second.roster.version, 2)
  t.is(second.roster.expiresAtMs, 0)
  t.deepEqual(second.roster.members.map((m) => m.nodeId), [worker.nodeId])

  // A signed file whose payload was edited does not show as valid.
  const doc = JSON.parse(await readFile(f('roster.json'), 'utf8'))
  doc.payload = Buffer.from(signRoster(identityFromSeed(new Uint8Array(32).fill(3)), second.roster).payload).toString('base64')
  await writeFile(f('edited.json'), JSON.stringify(doc))
  const edited = await infra(['roster', 'show', f('edited.json'), '--json'])
  t.is(edited.code, 1)
  t.is(JSON.parse(edited.out).code, 'ROSTER_UNSIGNED')

  t.is((await infra(['roster', 'sign', ...files, '--expires', 'soon'])).code, 2)
  t.is((await infra(['roster', 'frobnicate'])).code, 2)
  t.is((await infra(['roster', 'sign', '--draft', f('missing.json'), '--operator-key', f('keys/operator.key')])).code, 1)
})

interface ControlNode { address: string, book: RosterBook, published: SignedEnvelope[] }

/** The control listener of a node with a roster: the real API server and roster book, no jobs. */
async function startControl (t: ExecutionContext, operators: string[], opts: { withRoster?: boolean } = {}): Promise<ControlNode> {
  const dir = await tempDir(t)
  const config = parseConfig(stringify({
    node: { data_dir: dir },
    api: { public: '127.0.0.1:0', control: '127.0.0.1:0' },
    mesh: { admission: { mode: 'private', mesh_name: 'edge', operators } }
  }), path.join(dir, 'config.yaml'))
  const logger = silentLogger()
  const book = rosterBook({ meshName: 'edge', operators, file: config.mesh.admission.rosterFile })({ logger })
  await book.start()
  const published: SignedEnvelope[] = []
  const components = {
    config,
    identity: identityFromSeed(new Uint8Array(32).fill(5)),
    logger,
    ...(opts.withRoster === false ? {} : { roster: { book, sync: { publish: async (env: SignedEnvelope) => { published.push(env) } } } })
  } as unknown as ApiComponents
  const api = apiServer()(components)
  await api.start()
  t.teardown(async () => { await api.stop(); await book.stop() })
  return { address: api.controlAddress(), book, published }
}

test('push applies a signed roster on a node, which passes it on; show --node reads it; refusals say why', async (t) => {
  const dir = await tempDir(t)
  const f = (name: string): string => path.join(dir, name)
  const operator = generateIdentity(f('operator.key'))
  const stranger = identityFromSeed(new Uint8Array(32).fill(7))
  const node = await startControl(t, [operator.nodeId])
  const member = identityFromSeed(new Uint8Array(32).fill(1))
  const roster = { mesh: 'edge', version: 1, issuedAtMs: Date.now(), expiresAtMs: 0, members: [{ nodeId: member.nodeId, roles: ['worker'], name: '' }] }
  await writeFile(f('roster.json'), signedRosterText(signRoster(operator, roster)))

  const before = await infra(['roster', 'show', '--node', '--control', node.address, '--json'])
  t.is(before.code, 0, before.err)
  t.like(JSON.parse(before.out), { mode: 'private', version: 0, roster: null, operators: [operator.nodeId] })

  const pushed = await infra(['roster', 'push', f('roster.json'), '--control', node.address])
  t.is(pushed.code, 0, pushed.err)
  t.regex(pushed.out, /version 1/)
  t.is(node.book.version(), 1)
  t.is(node.published.length, 1, 'passed on to the mesh')
  t.deepEqual(node.published[0], node.book.current()?.envelope)

  const after = await infra(['roster', 'show', '--node', '--control', node.address, '--json'])
  t.like(JSON.parse(after.out), { mode: 'private', version: 1, signer: operator.nodeId })

  const stale = await infra(['roster', 'push', f('roster.json'), '--control', node.address])
  t.is(stale.code, 1)
  t.regex(stale.err, /^refused: /)

  await writeFile(f('forged.json'), signedRosterText(signRoster(stranger, { ...roster, version: 5 })))
  const forged = await infra(['roster', 'push', f('forged.json'), '--control', node.address])
  t.is(forged.code, 1)
  t.true(forged.err.includes(stranger.nodeId), 'names the key that signed it')
  t.is(node.book.version(), 1)
  t.is(node.published.length, 1)
})

test('UpdateRoster answers each refusal with its status and code; GetRoster works without a roster', async (t) => {
  const operator = identityFromSeed(new Uint8Array(32).fill(9))
  const node = await startControl(t, [operator.nodeId])
  const client = connectControl(node.address)
  t.teardown(() => client.close())
  const roster = (version: number, extra: Record<string, unknown> = {}): any => ({ mesh: 'edge', version, issuedAtMs: Date.now(), expiresAtMs: 0, members: [], ...extra })
  const status = await client.updateRoster(signRoster(operator, roster(3)))
  t.is(status.version, 3)
  t.is(openRoster(status.roster!).roster.version, 3)
  t.deepEqual((await client.getRoster()).roster, status.roster)

  const refusal = async (env: SignedEnvelope): Promise<[string, string]> => {
    try {
      await client.updateRoster(env)
      return ['accepted', '']
    } catch (err) {
      const e = err as grpc.ServiceError
      return [grpc.status[e.code], String(e.metadata.get('inframind-error-code')[0])]
    }
  }
  const stranger = identityFromSeed(new Uint8Array(32).fill(8))
  t.deepEqual(await refusal(signRoster(operator, roster(3))), ['FAILED_PRECONDITION', 'ROSTER_STALE'])
  t.deepEqual(await refusal(signRoster(stranger, roster(4))), ['FAILED_PRECONDITION', 'ROSTER_UNKNOWN_OPERATOR'])
  t.deepEqual(await refusal(signRoster(operator, roster(4, { mesh: 'other' }))), ['FAILED_PRECONDITION', 'ROSTER_WRONG_MESH'])
  t.deepEqual(await refusal(signRoster(operator, roster(4, { expiresAtMs: 1 }))), ['FAILED_PRECONDITION', 'ROSTER_EXPIRED'])
  t.deepEqual(await refusal({ ...signRoster(operator, roster(4)), signature: new Uint8Array(64) }), ['FAILED_PRECONDITION', 'ROSTER_UNSIGNED'])
  t.deepEqual(await refusal(signEnvelope(operator, PAYLOAD_TYPES.roster, Uint8Array.from([0xff]))), ['INVALID_ARGUMENT', 'ROSTER_MALFORMED'])
  t.is(node.book.version(), 3)

  const bare = await startControl(t, [operator.nodeId], { withRoster: false })
  const bareClient = connectControl(bare.address)
  t.teardown(() => bareClient.close())
  t.like(await bareClient.getRoster(), { mode: 'private', version: 0, roster: null, operators: [operator.nodeId] })
  const err = await t.throwsAsync(bareClient.updateRoster(signRoster(operator, roster(1))))
  t.is(grpc.status[(err as grpc.ServiceError).code], 'FAILED_PRECONDITION')
})
