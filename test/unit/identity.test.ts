import test from 'ava'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import {
  expandHome, generateIdentity, identityFromSeed, loadIdentity, loadOrCreateIdentity, nodeIdFromPublicKey, publicKeyFromNodeId
} from '../../src/identity/index.ts'
import { runInit } from '../../src/cli/init.ts'

const dirs: string[] = []
function tmp (): string {
  const d = mkdtempSync(join(tmpdir(), 'inframind-id-'))
  dirs.push(d)
  return d
}
test.after.always(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

function hasOpenssl (): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

test('generated key file is 0600 in a new 0700 folder, and leaves no temp file behind', (t) => {
  const dir = join(tmp(), 'nested', 'keys')
  const file = join(dir, 'identity.key')
  const id = generateIdentity(file)
  t.is(statSync(file).mode & 0o777, 0o600)
  t.is(statSync(dir).mode & 0o777, 0o700)
  t.deepEqual(readdirSync(dir), ['identity.key'])
  t.regex(id.nodeId, /^12D3KooW/)
  t.is(id.keyFile, file)
  t.is(id.seed.length, 32)
  t.is(id.publicKey.length, 32)
  t.true(readFileSync(file, 'utf8').startsWith('-----BEGIN PRIVATE KEY-----'))
})

test('refuses to overwrite a key without force; force replaces it', (t) => {
  const file = join(tmp(), 'identity.key')
  const first = generateIdentity(file)
  const err = t.throws(() => generateIdentity(file))
  t.is(err?.name, 'IdentityExistsError')
  t.is((err as { code?: string }).code, 'IDENTITY_EXISTS')
  t.is(loadIdentity(file).nodeId, first.nodeId, 'a refused generate must not touch the key')
  const second = generateIdentity(file, { force: true })
  t.not(second.nodeId, first.nodeId)
  t.is(loadIdentity(file).nodeId, second.nodeId)
  t.is(statSync(file).mode & 0o777, 0o600)
  t.deepEqual(readdirSync(join(file, '..')), ['identity.key'])
})

test('same id across loads, and loadOrCreateIdentity creates once', (t) => {
  const file = join(tmp(), 'id', 'identity.key')
  const a = loadOrCreateIdentity(file)
  t.true(a.created)
  const b = loadOrCreateIdentity(file)
  t.false(b.created)
  const c = loadIdentity(file)
  t.is(b.identity.nodeId, a.identity.nodeId)
  t.is(c.nodeId, a.identity.nodeId)
  t.deepEqual(c.seed, a.identity.seed)
  t.deepEqual(c.publicKey, a.identity.publicKey)
})

test('node id equals the libp2p PeerId of the same seed', async (t) => {
  const seeds = [new Uint8Array(32), new Uint8Array(32).fill(0xff), generateIdentity(join(tmp(), 'k')).seed]
  for (let i = 0; i < 5; i++) seeds.push(crypto.getRandomValues(new Uint8Array(32)))
  for (const seed of seeds) {
    const ours = identityFromSeed(seed)
    // @libp2p/peer-id pins its own copy of @libp2p/interface: same shape, distinct declared type.
    const key = await generateKeyPairFromSeed('Ed25519', seed) as unknown as Parameters<typeof peerIdFromPrivateKey>[0]
    const theirs = peerIdFromPrivateKey(key)
    t.is(ours.nodeId, theirs.toString())
    t.deepEqual(ours.publicKey, theirs.publicKey?.raw)
  }
})

test('publicKeyFromNodeId inverts nodeIdFromPublicKey and agrees with libp2p', (t) => {
  const id = identityFromSeed(new Uint8Array(32).fill(3))
  t.deepEqual(publicKeyFromNodeId(id.nodeId), id.publicKey)
  t.deepEqual(peerIdFromString(id.nodeId).publicKey?.raw, publicKeyFromNodeId(id.nodeId))
  t.is(nodeIdFromPublicKey(publicKeyFromNodeId(id.nodeId)), id.nodeId)
})

test('publicKeyFromNodeId rejects anything that is not an Ed25519 PeerId', (t) => {
  const good = identityFromSeed(new Uint8Array(32).fill(9)).nodeId
  const bad = [
    '', 'hello', '0OIl', good.slice(0, -1), good + '1', 'x'.repeat(500),
    // A valid RSA-style (sha256 multihash) PeerId is not an ed25519 key.
    'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
    // Same length, different multihash code (a leading byte other than identity).
    '2' + good.slice(1)
  ]
  for (const id of bad) {
    const err = t.throws(() => publicKeyFromNodeId(id), undefined, id)
    t.is(err?.name, 'InvalidNodeIdError', id)
    t.is((err as { code?: string }).code, 'INVALID_NODE_ID')
  }
})

test('missing, corrupt and insecure key files give distinct errors naming the file', (t) => {
  const dir = tmp()
  const missing = join(dir, 'nope.key')
  const e1 = t.throws(() => loadIdentity(missing))
  t.is(e1?.name, 'IdentityNotFoundError')
  t.is((e1 as { file?: string }).file, missing)

  const corrupt = join(dir, 'corrupt.key')
  writeFileSync(corrupt, 'not a key at all', { mode: 0o600 })
  const e2 = t.throws(() => loadIdentity(corrupt))
  t.is(e2?.name, 'InvalidIdentityError')
  t.is((e2 as { code?: string }).code, 'INVALID_IDENTITY')
  t.is((e2 as { file?: string }).file, corrupt)

  const truncated = join(dir, 'truncated.key')
  writeFileSync(truncated, '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n', { mode: 0o600 })
  t.is(t.throws(() => loadIdentity(truncated))?.name, 'InvalidIdentityError')

  const folder = join(dir, 'folder.key')
  mkdirSync(folder)
  t.is(t.throws(() => loadIdentity(folder))?.name, 'InvalidIdentityError')

  const loose = join(dir, 'loose.key')
  generateIdentity(loose)
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    chmodSync(loose, mode)
    const e3 = t.throws(() => loadIdentity(loose))
    t.is(e3?.name, 'InsecureKeyFileError')
    t.is((e3 as { code?: string }).code, 'INSECURE_KEY_FILE')
  }
  chmodSync(loose, 0o400)
  t.regex(loadIdentity(loose).nodeId, /^12D3KooW/)
})

test('an RSA or EC key is refused as InvalidIdentityError', (t) => {
  if (!hasOpenssl()) return t.pass('openssl not installed')
  const file = join(tmp(), 'ec.key')
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file])
  chmodSync(file, 0o600)
  t.is(t.throws(() => loadIdentity(file))?.name, 'InvalidIdentityError')
})

test('key files interoperate with openssl in both directions', (t) => {
  if (!hasOpenssl()) return t.pass('openssl not installed')
  const dir = tmp()
  const ours = generateIdentity(join(dir, 'ours.key'))
  const pubDer = execFileSync('openssl', ['pkey', '-in', ours.keyFile, '-pubout', '-outform', 'DER'])
  t.deepEqual(new Uint8Array(pubDer.subarray(-32)), ours.publicKey)

  const theirs = join(dir, 'theirs.key')
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', theirs])
  chmodSync(theirs, 0o600)
  const loaded = loadIdentity(theirs)
  const theirPub = execFileSync('openssl', ['pkey', '-in', theirs, '-pubout', '-outform', 'DER'])
  t.deepEqual(new Uint8Array(theirPub.subarray(-32)), loaded.publicKey)
})

test('expandHome expands only a leading ~', (t) => {
  const env = { HOME: '/home/op' }
  t.is(expandHome('~/.inframind/identity.key', env), '/home/op/.inframind/identity.key')
  t.is(expandHome('~', env), '/home/op')
  t.is(expandHome('/abs/~/x', env), '/abs/~/x')
  t.is(expandHome('~other/x', env), '~other/x')
  t.is(expandHome('rel/path', env), 'rel/path')
})

// --- infra init ---

function capture (env: NodeJS.ProcessEnv = {}) {
  const io = { out: '', err: '', env }
  return { io: { out: (s: string) => { io.out += s }, err: (s: string) => { io.err += s }, env }, got: io }
}

test('infra init --keygen creates a key, prints its id, and refuses a second time without --force', async (t) => {
  const file = join(tmp(), 'keys', 'node.key')
  const a = capture()
  t.is(await runInit(['--keygen', '--key', file], a.io), 0)
  const id = loadIdentity(file).nodeId
  t.true(a.got.out.includes(id))
  t.true(a.got.out.includes(file))

  const b = capture()
  t.is(await runInit(['--keygen', '--key', file], b.io), 1)
  t.true(b.got.err.includes(file))
  t.is(loadIdentity(file).nodeId, id)

  const c = capture()
  t.is(await runInit(['--keygen', '--force', '--key', file], c.io), 0)
  t.not(loadIdentity(file).nodeId, id)
})

test('infra init takes the key path from --config, and HOME from io.env', async (t) => {
  const dir = tmp()
  const config = join(dir, 'node.yaml')
  writeFileSync(config, 'identity:\n  key_file: ~/custom/id.key\n')
  const { io, got } = capture({ HOME: dir })
  t.is(await runInit(['--config', config], io), 0)
  t.true(got.out.includes(join(dir, 'custom', 'id.key')))
  t.is(statSync(join(dir, 'custom', 'id.key')).mode & 0o777, 0o600)
})

test('infra init exit codes: usage 2, bad config 1, insecure key 1', async (t) => {
  const dir = tmp()
  t.is(await runInit(['--bogus'], capture().io), 2)
  t.is(await runInit(['--force'], capture().io), 2)
  t.is(await runInit(['extra'], capture().io), 2)
  writeFileSync(join(dir, 'bad.yaml'), 'identity:\n  keyfile: x\n')
  t.is(await runInit(['--config', join(dir, 'bad.yaml')], capture().io), 1)
  t.is(await runInit(['--config', join(dir, 'absent.yaml')], capture().io), 1)
  const key = join(dir, 'loose.key')
  generateIdentity(key)
  chmodSync(key, 0o644)
  const c = capture()
  t.is(await runInit(['--key', key], c.io), 1)
  t.true(c.got.err.includes(`chmod 600 ${key}`))
})
