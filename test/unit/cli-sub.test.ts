import test, { type ExecutionContext } from 'ava'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { NODE_SERVICE, packageDefinition } from '../../src/protocol/index.ts'
import { decodeStrict, encode } from '../../src/protocol/codec.ts'
import { envelopeFromWire, envelopeToWire } from '../../src/api/convert.ts'
import { envelopeFromJson, encodeEnvelope, verifyEnvelope } from '../../src/envelope/index.ts'
import { generateIdentity, loadIdentity } from '../../src/identity/index.ts'
import { sealTo } from '../../src/seal/index.ts'
import { cli } from '../../src/cli/main.ts'
import { parseArgs } from '../../src/cli/args.ts'
import { resolveGateways, wantsFailover } from '../../src/cli/endpoints.ts'
import { specFromArgs } from '../../src/cli/sub.ts'
import { parseTime } from '../../src/cli/records.ts'
import { openSubscriptionRequest, signSubscriptionRequest, subscriptionIdOf, subscriptionOutputContext, SUBSCRIPTION_REQUEST_PAYLOAD_TYPE } from '../../src/client/index.ts'
import type { CliIo } from '../../src/cli/client-commands.ts'

let dir = ''
test.before(() => { dir = mkdtempSync(join(tmpdir(), 'inframind-cli-sub-')) })
test.after.always(() => { rmSync(dir, { recursive: true, force: true }) })

let n = 0
const file = (name: string): string => join(dir, `${n++}-${name}`)

interface Run { code: number, out: string, err: string }

async function infra (argv: string[], opts: { stdin?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  let out = ''
  let err = ''
  const io: CliIo = {
    out: (s) => { out += s },
    err: (s) => { err += s },
    // No config.yaml in the way: the tests name their gateways.
    env: { INFRAMIND_CONFIG: '', ...opts.env },
    stdin: async () => new TextEncoder().encode(opts.stdin ?? ''),
    stderr: { isTTY: false, write: (s: string) => { err += s; return true } } as unknown as NodeJS.WriteStream
  }
  const code = await cli(argv, io)
  return { code, out, err }
}

type Handlers = Record<string, (call: any, callback?: any) => void>

async function gateway (t: ExecutionContext, handlers: Handlers): Promise<{ address: string, calls: Array<{ method: string, req: any }>, kill: () => void }> {
  const server = new grpc.Server()
  const calls: Array<{ method: string, req: any }> = []
  const recorded: Handlers = {}
  for (const [method, fn] of Object.entries(handlers)) recorded[method] = (call: any, cb?: any) => { calls.push({ method, req: call.request }); fn(call, cb) }
  server.addService(packageDefinition()[NODE_SERVICE] as grpc.ServiceDefinition, recorded)
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => e !== null ? reject(e) : resolve(p)))
  let killed = false
  const kill = (): void => { if (!killed) { killed = true; server.forceShutdown() } }
  t.teardown(kill)
  return { address: `127.0.0.1:${port}`, calls, kill }
}

function ownerFile (): { path: string, nodeId: string } {
  const path = file('owner.key')
  return { path, nodeId: generateIdentity(path).nodeId }
}

const SPEC = ['--container', 'echo,sentiment', '--input', 'hello', '--frequency', '3', '--period', '60', '--redundancy', '2']

test('specFromArgs: every option, and the mistakes a gateway would refuse later', async (t) => {
  const io = { stdin: async () => new TextEncoder().encode('from stdin') } as unknown as CliIo
  const spec = async (argv: string[]): Promise<unknown> => await specFromArgs(parseArgs(argv, ['container', 'input', 'frequency', 'period', 'redundancy', 'nonce', 'expires-in', 'deadline', 'verify', 'validators', 'quorum'], ['lazy']), io, 1_800_000_000_000)
  t.like(await spec([...SPEC, '--nonce', 'n1', '--expires-in', '600', '--lazy', '--verify', 'reexecute', '--validators', '2', '--quorum', '1', '--deadline', '5000']), {
    containers: ['echo', 'sentiment'], frequency: 3, period: 60, redundancy: 2, nonce: 'n1', expiresAt: 1_800_000_600, lazy: true, deadlineMs: 5000,
    verification: { method: 'reexecute', validators: 2, quorum: 1 }
  })
  const input = file('input.txt')
  writeFileSync(input, 'from a file')
  t.is(Buffer.from((await spec([...SPEC.slice(0, 2), '--input', `@${input}`, ...SPEC.slice(4)]) as { input: Uint8Array }).input).toString(), 'from a file')
  t.is(Buffer.from((await spec([...SPEC.slice(0, 2), '--input', '@-', ...SPEC.slice(4)]) as { input: Uint8Array }).input).toString(), 'from stdin')
  for (const bad of [
    ['--frequency', '0'], ['--period', '-1'], ['--redundancy', 'two'], ['--verify', 'maybe'], ['--expires-in', '0']
  ]) {
    const argv = [...SPEC]
    const i = argv.indexOf(bad[0])
    if (i >= 0) argv.splice(i, 2, ...bad)
    else argv.push(...bad)
    await t.throwsAsync(spec(argv), { name: 'UsageError' }, bad.join(' '))
  }
  await t.throwsAsync(spec([...SPEC, '--validators', '2']), { name: 'UsageError' })
  await t.throwsAsync(spec(SPEC.filter((_, i) => i < 2 || i > 3)), { name: 'UsageError' })
})

test('gateway lists: --gateway, else --addr or INFRAMIND_ADDR as comma lists; submit fails over only when given several', async (t) => {
  t.deepEqual(await resolveGateways({ gateway: 'a:1, b:2,,c:3' }, {}), ['a:1', 'b:2', 'c:3'])
  t.deepEqual(await resolveGateways({ addr: 'x:1,y:2' }, { INFRAMIND_ADDR: 'z:3' }), ['x:1', 'y:2'])
  t.deepEqual(await resolveGateways({}, { INFRAMIND_ADDR: 'z:3,w:4', INFRAMIND_CONFIG: '' }), ['z:3', 'w:4'])
  t.true(wantsFailover({ gateway: 'a:1' }, {}))
  t.true(wantsFailover({ addr: 'a:1,b:2' }, {}))
  t.true(wantsFailover({}, { INFRAMIND_ADDR: 'a:1,b:2' }))
  t.false(wantsFailover({ addr: 'a:1' }, { INFRAMIND_ADDR: 'a:1,b:2' }))
  t.false(wantsFailover({}, { INFRAMIND_ADDR: 'a:1' }))
})

test('sub key: a 0600 PKCS#8 key; a second one over it is refused without --force', async (t) => {
  const path = file('k.key')
  const made = await infra(['sub', 'key', '--out', path])
  t.is(made.code, 0, made.err)
  t.is(statSync(path).mode & 0o777, 0o600)
  t.true(readFileSync(path, 'utf8').includes('BEGIN PRIVATE KEY'))
  t.true(made.out.includes(loadIdentity(path).nodeId))
  const again = await infra(['sub', 'key', '--out', path])
  t.is(again.code, 2)
  t.is((await infra(['sub', 'key', '--out', path, '--force'])).code, 0)
})

test('sub sign: signed off-line into a 0600 file that verifies, names its subscription id, and is refused when it exists', async (t) => {
  const owner = ownerFile()
  const out = file('signed.json')
  const res = await infra(['sub', 'sign', '--key', owner.path, ...SPEC, '--nonce', 'off-line-1', '--expires-in', '86400', '--out', out])
  t.is(res.code, 0, res.err)
  t.is(statSync(out).mode & 0o777, 0o600)
  const env = envelopeFromJson(JSON.parse(readFileSync(out, 'utf8')))
  verifyEnvelope(env, { payloadType: SUBSCRIPTION_REQUEST_PAYLOAD_TYPE })
  const { owner: signer, request } = openSubscriptionRequest(env)
  t.is(signer, owner.nodeId)
  t.like(request, { frequency: 3, period: 60, redundancy: 2, nonce: 'off-line-1' })
  t.true(request.expiresAt > Date.now() / 1000 + 86000)
  t.true(res.out.includes(subscriptionIdOf(env.publicKey, 'off-line-1')))
  t.is((await infra(['sub', 'sign', '--key', owner.path, ...SPEC, '--out', out])).code, 2)
})

function status (env: any, state = 'active'): Record<string, unknown> {
  const opened = openSubscriptionRequest(envelopeFromWire(env))
  return { subscription: { id: opened.id, owner: opened.owner, request: env, createdAt: 1_800_000_000, activeAt: 1_800_000_060, acceptedBy: 'gw-1' }, state, currentInterval: 0, responses: [], ownerScheduler: 'gw-1' }
}

test('sub create --signed: the file\'s bytes go to the gateway unchanged (through a failover); --json shape', async (t) => {
  const owner = ownerFile()
  const signedPath = file('req.json')
  t.is((await infra(['sub', 'sign', '--key', owner.path, ...SPEC, '--nonce', 'n2', '--out', signedPath])).code, 0)
  const down = await gateway(t, { CreateSubscription: (_c, cb) => cb({ code: grpc.status.UNAVAILABLE, details: 'stopping' }) })
  const up = await gateway(t, { CreateSubscription: (c, cb) => cb(null, status(c.request, 'pending')) })
  const res = await infra(['sub', 'create', '--signed', signedPath, '--gateway', `${down.address},${up.address}`, '--json'])
  t.is(res.code, 0, res.err)
  const fromFile = envelopeFromJson(JSON.parse(readFileSync(signedPath, 'utf8')))
  t.deepEqual(encodeEnvelope(envelopeFromWire(up.calls[0].req)), encodeEnvelope(fromFile))
  t.deepEqual(encodeEnvelope(envelopeFromWire(down.calls[0].req)), encodeEnvelope(fromFile))
  const json = JSON.parse(res.out)
  t.deepEqual(Object.keys(json).sort(), ['accepted_by', 'active_at', 'cancelled_at', 'created_at', 'current_interval', 'id', 'owner', 'owner_scheduler', 'request', 'responses', 'state'])
  t.like(json, { id: subscriptionIdOf(fromFile.publicKey, 'n2'), owner: owner.nodeId, state: 'pending', active_at: new Date(1_800_000_060_000).toISOString() })
  t.like(json.request, { containers: ['echo', 'sentiment'], input_bytes: 5, frequency: 3, period: 60, redundancy: 2, lazy: false, nonce: 'n2' })
  // A signed request takes no terms of its own.
  t.is((await infra(['sub', 'create', '--signed', signedPath, '--frequency', '9', '--gateway', up.address])).code, 2)
})

test('sub create --key: signs and creates; human output names the subscription', async (t) => {
  const owner = ownerFile()
  const g = await gateway(t, { CreateSubscription: (c, cb) => cb(null, status(c.request)) })
  const res = await infra(['sub', 'create', '--key', owner.path, ...SPEC, '--gateway', g.address])
  t.is(res.code, 0, res.err)
  const env = envelopeFromWire(g.calls[0].req)
  t.is(openSubscriptionRequest(env).owner, owner.nodeId)
  t.true(res.out.includes(openSubscriptionRequest(env).id))
  t.regex(res.out, /3 intervals, every 60 s, 2 nodes each/)
  // A missing key file is an error that says how to make one.
  const missing = await infra(['sub', 'create', '--key', file('none.key'), ...SPEC, '--gateway', g.address])
  t.is(missing.code, 1)
  t.regex(missing.err, /no owner key at .*infra sub key --out/)
})

test('sub ls --json and sub get --json: the same object per subscription; a bad --state is a usage error', async (t) => {
  const owner = ownerFile()
  const env = envelopeToWire(signSubscriptionRequest(loadIdentity(owner.path), { containers: ['echo'], input: 'x', frequency: 1, period: 0, redundancy: 1, nonce: 'ls' }))
  const g = await gateway(t, {
    ListSubscriptions: (_c, cb) => cb(null, { subscriptions: [status(env), status(env, 'completed')] }),
    GetSubscription: (_c, cb) => cb(null, status(env))
  })
  const ls = await infra(['sub', 'ls', '--owner', owner.nodeId, '--state', 'active', '--json', '--gateway', g.address])
  t.is(ls.code, 0, ls.err)
  const list = JSON.parse(ls.out)
  t.is(list.length, 2)
  t.deepEqual(g.calls[0].req, { owner: owner.nodeId, state: 'active' })
  const get = await infra(['sub', 'get', list[0].id, '--json', '--gateway', g.address])
  t.deepEqual(JSON.parse(get.out), list[0])
  const table = await infra(['sub', 'ls', '--gateway', g.address])
  t.regex(table.out, /^ID\s+OWNER\s+STATE/)
  t.is((await infra(['sub', 'ls', '--state', 'sleeping', '--gateway', g.address])).code, 2)
})

test('sub watch --key --json: one JSON line per response, the output opened with the owner\'s key; without the key it stays sealed', async (t) => {
  const owner = ownerFile()
  const env = envelopeToWire(signSubscriptionRequest(loadIdentity(owner.path), { containers: ['echo'], input: 'x', frequency: 2, period: 1, redundancy: 1, nonce: 'w' }))
  const id = status(env).subscription as { id: string }
  const resp = (interval: number, output: string): Record<string, unknown> => {
    const jobId = `s:${interval}`
    return {
      subscriptionId: id.id, interval, index: 1, nodeId: 'w1', jobId, acceptedAtMs: 1_800_000_000_000, schedulerId: 'gw-1',
      outputHash: createHash('sha256').update(output).digest(), sealedOutput: Buffer.from(sealTo(owner.nodeId, new TextEncoder().encode(output), subscriptionOutputContext({ subscriptionId: id.id, jobId })))
    }
  }
  const g = await gateway(t, {
    GetSubscription: (_c, cb) => cb(null, status(env, 'completed')),
    WatchSubscription: (call) => { call.write(resp(1, 'first')); call.write(resp(2, 'second')); call.end() }
  })
  const res = await infra(['sub', 'watch', id.id, '--from', '1', '--key', owner.path, '--json', '--gateway', g.address])
  t.is(res.code, 0, res.err)
  const lines = res.out.trim().split('\n').map((l) => JSON.parse(l))
  t.deepEqual(lines.map((l) => [l.interval, l.index, l.node_id, l.job_id, l.output]), [[1, 1, 'w1', 's:1', 'first'], [2, 1, 'w1', 's:2', 'second']])
  t.is(lines[0].output_hash, createHash('sha256').update('first').digest('hex'))
  t.is(g.calls.find((c) => c.method === 'WatchSubscription')?.req.fromInterval, 1)
  const human = await infra(['sub', 'watch', id.id, '--gateway', g.address])
  t.regex(human.out, /interval 1 {2}#1 {2}node w1 {2}job s:1 {2}output sha256 [0-9a-f]{64}/)
  t.false(human.out.includes('first'))
  const otherKey = ownerFile()
  const notOwner = await infra(['sub', 'watch', id.id, '--key', otherKey.path, '--gateway', g.address])
  t.regex(notOwner.err, /not the owner/)
  t.false(notOwner.out.includes('first'))
})

test('sub cancel: signed with --key; the gateway\'s refusal is reported with exit 1', async (t) => {
  const owner = ownerFile()
  const g = await gateway(t, {
    CancelSubscription: (_c, cb) => cb({ code: grpc.status.PERMISSION_DENIED, details: 'not the owner of the subscription' })
  })
  const res = await infra(['sub', 'cancel', '--key', owner.path, 'a'.repeat(64), '--gateway', g.address])
  t.is(res.code, 1)
  t.regex(res.err, /PERMISSION_DENIED/)
  const sent = decodeStrict('inframind.v1.SubscriptionCancel', envelopeFromWire(g.calls[0].req).payload)
  t.is(sent.subscriptionId, 'a'.repeat(64))
  t.is((await infra(['sub', 'cancel', '--key', owner.path, '--gateway', g.address])).code, 2)
})

test('submit --gateway a,b --wait --json: the same job id on both gateways, the finished job printed once', async (t) => {
  const a = await gateway(t, { SubmitJob: (_c, cb) => cb({ code: grpc.status.UNAVAILABLE, details: 'connection refused' }) })
  const b = await gateway(t, {
    SubmitJob: (c, cb) => cb(null, { jobId: c.request.jobId, state: 'JOB_STATE_PENDING' }),
    WatchJob: (call) => {
      call.write({ jobId: call.request.jobId, state: 'JOB_STATE_SUCCESS', job: { jobId: call.request.jobId, containerId: 'echo', containers: ['echo'], state: 'JOB_STATE_SUCCESS', output: Buffer.from('echoed') } })
      call.end()
    }
  })
  const res = await infra(['submit', '--container', 'echo', '--input', 'x', '--wait', '--json', '--gateway', `${a.address},${b.address}`])
  t.is(res.code, 0, res.err)
  const job = JSON.parse(res.out)
  t.like(job, { state: 'success', output: 'echoed' })
  t.is(a.calls[0].req.jobId, job.job_id)
  t.is(b.calls[0].req.jobId, job.job_id)
  t.regex(res.err, new RegExp(`gateway ${a.address} failed`))
  const plain = await infra(['submit', '--container', 'echo', '--input', 'x', '--job-id', 'mine-1'], { env: { INFRAMIND_ADDR: `${a.address},${b.address}` } })
  t.is(plain.out, 'mine-1\n')
})

test('records receipt: the envelope as `infra job --receipt` prints it; --json adds the index fields; ls --json and its filters', async (t) => {
  const owner = loadIdentity(ownerFile().path)
  const data = encode('inframind.v1.SignedEnvelope', signSubscriptionRequest(owner, { containers: ['echo'], input: 'x', frequency: 1, period: 0, redundancy: 1 }))
  const reply = { record: { kind: 'receipt', data: Buffer.from(data), storedAtMs: 1_800_000_000_000, jobId: 'job-1', nodeIds: ['w1'] }, hash: createHash('sha256').update(data).digest('hex'), archiveId: 'arch-1' }
  const g = await gateway(t, {
    GetReceipt: (_c, cb) => cb(null, reply),
    GetCertificate: (_c, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'no certificate for job-1' }),
    ListRecords: (_c, cb) => cb(null, { records: [reply], nextPageToken: 'p2' })
  })
  const plain = await infra(['records', 'receipt', 'job-1', '--gateway', g.address])
  t.is(plain.code, 0, plain.err)
  t.deepEqual(encodeEnvelope(envelopeFromJson(JSON.parse(plain.out))), data)
  const json = JSON.parse((await infra(['records', 'receipt', 'job-1', '--json', '--gateway', g.address])).out)
  t.like(json, { hash: reply.hash, archive_id: 'arch-1', kind: 'receipt', job_id: 'job-1', node_ids: ['w1'], stored_at: new Date(1_800_000_000_000).toISOString() })
  const missing = await infra(['records', 'certificate', 'job-1', '--gateway', g.address])
  t.is(missing.code, 1)
  t.regex(missing.err, /not found/)
  const ls = await infra(['records', 'ls', '--job', 'job-1', '--node', 'w1', '--since', '2027-01-15T08:00:00Z', '--until', '1800000000000', '--kind', 'receipt', '--page-size', '50', '--page-token', 'p1', '--json', '--gateway', g.address])
  t.is(ls.code, 0, ls.err)
  const page = JSON.parse(ls.out)
  t.is(page.next_page_token, 'p2')
  t.is(page.records[0].hash, reply.hash)
  t.like(g.calls.find((c) => c.method === 'ListRecords')?.req, { jobId: 'job-1', nodeId: 'w1', sinceMs: Date.parse('2027-01-15T08:00:00Z'), untilMs: 1_800_000_000_000, kind: 'receipt', pageSize: 50, pageToken: 'p1' })
  const human = await infra(['records', 'ls', '--gateway', g.address])
  t.regex(human.out, /more: add --page-token p2/)
  t.is((await infra(['records', 'ls', '--kind', 'nonsense', '--gateway', g.address])).code, 2)
  // Nodes that keep no records (UNIMPLEMENTED here) are skipped; when none does, the user is told to name an archive.
  const plain2 = await gateway(t, {})
  const none = await infra(['records', 'receipt', 'job-1', '--gateway', plain2.address])
  t.is(none.code, 1)
  t.regex(none.err, /no archive among/)
  t.is((await infra(['records', 'receipt', 'job-1', '--gateway', `${plain2.address},${g.address}`])).code, 0)
  t.is((await infra(['records', 'ls', '--page-size', '5000', '--gateway', g.address])).code, 2)
})

test('parseTime: ISO or unix ms; anything else is a usage error', (t) => {
  t.is(parseTime('since', '1800000000000'), 1_800_000_000_000)
  t.is(parseTime('since', '2027-01-15T08:00:00Z'), Date.parse('2027-01-15T08:00:00Z'))
  t.is(parseTime('since', undefined), undefined)
  t.throws(() => parseTime('since', 'yesterday'), { name: 'UsageError' })
})

test('help: infra sub and infra records describe every command; the main usage lists them', async (t) => {
  const sub = await infra(['sub', 'help'])
  for (const c of ['key', 'create', 'sign', 'cancel', 'get', 'ls', 'watch', '--signed', '--gateway']) t.true(sub.out.includes(c), c)
  const rec = await infra(['records', 'help'])
  for (const c of ['receipt', 'certificate', 'ls', '--page-token', '--since']) t.true(rec.out.includes(c), c)
  const main = await infra(['help'])
  t.regex(main.out, /sub key\|create/)
  t.regex(main.out, /records receipt/)
  t.is((await infra(['sub', 'nope'])).code, 2)
})
