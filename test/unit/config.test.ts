import test from 'ava'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, defaultConfig, defaults, loadConfig, parseConfig, type ConfigErrorCode } from '../../src/config/index.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const FIXTURES = join(ROOT, 'test', 'fixtures', 'config')
const ECHO = `containers:
  - id: echo
    image: inframind/echo:1
    digest: sha256:${'a'.repeat(64)}
`

const dirs: string[] = []
test.after.always(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })
function tmp (): string {
  const d = mkdtempSync(join(tmpdir(), 'inframind-cfg-'))
  dirs.push(d)
  return d
}

function configError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError, nothing was thrown')
}

test("the repo's config.yaml loads with the documented defaults and sample containers", (t) => {
  const cfg = loadConfig(join(ROOT, 'config.yaml'), { HOME: '/home/op' })
  t.is(cfg.path, join(ROOT, 'config.yaml'))
  t.deepEqual(cfg.node.roles, ['worker'])
  t.is(cfg.node.dataDir, join(ROOT, '.data'))
  t.is(cfg.identity.keyFile, '/home/op/.inframind/identity.key')
  t.deepEqual(cfg.api.public, { host: '0.0.0.0', port: 9000 })
  t.deepEqual(cfg.api.control, { host: '127.0.0.1', port: 9001, socket: '' })
  t.is(cfg.api.maxMessageBytes, 4 * 1024 * 1024)
  t.deepEqual(cfg.jobs, { concurrency: 2, queueSize: 64, defaultDeadlineMs: 60000 })
  t.is(cfg.store.path, join(ROOT, '.data', 'store'))
  t.deepEqual(cfg.telemetry, { metrics: { enabled: true, host: '127.0.0.1', port: 9464 }, logLevel: 'info' })
  t.deepEqual(cfg.containers.map((c) => c.id), ['echo', 'sentiment', 'embed', 'sentiment-warm', 'infernet-echo'])
  const warm = cfg.containers[3]
  t.is(warm.mode, 'service')
  t.is(warm.protocol, 'inframind')
  t.is(cfg.containers[4].protocol, 'infernet')
  t.is(warm.network, 'bridge')
  t.is(warm.service?.port, 8080)
  t.is(warm.service?.healthPath, '/health')
  t.true(cfg.mesh.enabled)
  t.deepEqual(cfg.mesh.listen, ['/ip4/0.0.0.0/tcp/4001'])
  t.is(cfg.mesh.heartbeatIntervalMs, 2000)
  t.deepEqual(cfg.mesh.trustedSchedulers, [])
  const echo = cfg.containers[0]
  t.deepEqual(echo.command, ['cat'])
  t.deepEqual(echo.resources, { cpus: 0.5, memoryBytes: 64 * 1024 * 1024, pids: 32, gpu: false })
  t.is(echo.timeoutMs, 10_000)
  t.is(echo.maxOutputBytes, 1024 * 1024)
  t.is(echo.network, 'none')
  t.is(echo.user, '65534:65534')
  t.is(cfg.containers[2].outputSchema, 'embedding<float>')
})

test("config.yaml pins the digests of containers/images.lock.json", (t) => {
  const lockFile = join(ROOT, 'containers', 'images.lock.json')
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as Record<string, string>
  for (const c of loadConfig(join(ROOT, 'config.yaml')).containers) {
    t.is(c.digest, lock[c.image], `${c.id} (${c.image})`)
  }
})

test('an empty file gives the defaults; defaultConfig() equals it', (t) => {
  const dir = tmp()
  writeFileSync(join(dir, 'c.yaml'), '# nothing\n')
  const cfg = loadConfig(join(dir, 'c.yaml'), { HOME: '/h' })
  t.is(cfg.jobs.concurrency, defaults.DEFAULT_CONCURRENCY)
  t.is(cfg.node.dataDir, join(dir, '.data'))
  t.deepEqual(cfg.containers, [])
  const d = defaultConfig()
  t.is(d.path, '')
  t.is(d.node.dataDir, resolve('.data'))
  t.is(d.api.control.host, '127.0.0.1')
})

test('relative paths resolve against the config folder, ~ against HOME, store against data_dir', (t) => {
  const dir = tmp()
  const file = join(dir, 'node.yaml')
  writeFileSync(file, 'node:\n  data_dir: state\nidentity:\n  key_file: ~/k/id.key\nstore:\n  path: db\napi:\n  control_socket: ctl.sock\n')
  const cfg = loadConfig(file, { HOME: '/home/op' })
  t.is(cfg.node.dataDir, join(dir, 'state'))
  t.is(cfg.identity.keyFile, '/home/op/k/id.key')
  t.is(cfg.store.path, join(dir, 'state', 'db'))
  t.is(cfg.api.control.socket, join(dir, 'ctl.sock'))
  writeFileSync(file, 'store:\n  path: /var/lib/inframind\n')
  t.is(loadConfig(file).store.path, '/var/lib/inframind')
})

test('the file comes from the argument, else INFRAMIND_CONFIG; a missing one is NOT_FOUND', (t) => {
  const dir = tmp()
  const file = join(dir, 'env.yaml')
  writeFileSync(file, 'jobs:\n  concurrency: 7\n')
  t.is(loadConfig(undefined, { INFRAMIND_CONFIG: file }).jobs.concurrency, 7)
  const err = configError(() => loadConfig(join(dir, 'absent.yaml')))
  t.is(err.code, 'NOT_FOUND')
  t.is(err.file, join(dir, 'absent.yaml'))
})

test('sizes accept bytes and Docker-style units', (t) => {
  const sizes: Array<[string, number]> = [['64m', 64 * 2 ** 20], ['1g', 2 ** 30], ['"512MiB"', 512 * 2 ** 20], ['10485760', 10485760], ['"7 MB"', 7 * 2 ** 20]]
  for (const [text, bytes] of sizes) {
    const cfg = parseConfig(`${ECHO}    resources:\n      memory: ${text}\n`, '')
    t.is(cfg.containers[0].resources.memoryBytes, bytes, text)
  }
  t.is(parseConfig('api:\n  public: "[::]:9100"\n', '').api.public.host, '::')
})

// Each fixture holds exactly one mistake: the error must name it, and nothing else.
const BAD: Array<[string, ConfigErrorCode, string]> = [
  ['unknown-key.yaml', 'UNKNOWN_KEY', 'node.rolse'],
  ['unknown-section.yaml', 'UNKNOWN_KEY', 'netwrok'],
  ['wrong-type.yaml', 'WRONG_TYPE', 'jobs.concurrency'],
  ['wrong-type-memory.yaml', 'WRONG_TYPE', 'containers[1].resources.memory'],
  ['missing-image.yaml', 'MISSING', 'containers[0].image'],
  ['bad-digest.yaml', 'INVALID_VALUE', 'containers[0].digest'],
  ['root-user.yaml', 'INVALID_VALUE', 'containers[0].user'],
  ['root-uid.yaml', 'INVALID_VALUE', 'containers[0].user'],
  ['public-control.yaml', 'INVALID_VALUE', 'api.control'],
  ['yaml-syntax.yaml', 'YAML_SYNTAX', ''],
  ['zero-cpus.yaml', 'OUT_OF_RANGE', 'containers[0].resources.cpus'],
  ['bad-schema.yaml', 'INVALID_VALUE', 'containers[0].input_schema'],
  ['bad-network.yaml', 'INVALID_VALUE', 'containers[0].network'],
  ['duplicate-id.yaml', 'DUPLICATE', 'containers[1].id'],
  ['bad-role.yaml', 'INVALID_VALUE', 'node.roles[1]'],
  ['bad-memory.yaml', 'INVALID_VALUE', 'containers[0].resources.memory'],
  ['tiny-memory.yaml', 'OUT_OF_RANGE', 'containers[0].resources.memory'],
  ['output-over-message.yaml', 'OUT_OF_RANGE', 'containers[0].max_output_bytes'],
  ['port-clash.yaml', 'DUPLICATE', 'telemetry.metrics.listen'],
  ['not-a-mapping.yaml', 'WRONG_TYPE', ''],
  ['bad-address.yaml', 'INVALID_VALUE', 'api.public'],
  ['bad-log-level.yaml', 'INVALID_VALUE', 'telemetry.log_level'],
  ['zero-concurrency.yaml', 'OUT_OF_RANGE', 'jobs.concurrency']
]

for (const [fixture, code, key] of BAD) {
  test(`bad config ${fixture}: ${code} at "${key}"`, (t) => {
    const file = join(FIXTURES, fixture)
    const err = configError(() => loadConfig(file))
    t.is(err.name, 'ConfigError')
    t.deepEqual(err.errors.map((e) => [e.code, e.key]), [[code, key]])
    t.is(err.code, code)
    t.is(err.key, key)
    t.is(err.file, file)
    t.true(err.expected.length > 0)
    t.true(typeof err.line === 'number' && err.line > 1, 'points at a line (fixtures start with a line of their own)')
  })
}

test('every problem of a file is reported at once, each with its key', (t) => {
  const err = configError(() => loadConfig(join(FIXTURES, 'many-errors.yaml')))
  t.deepEqual(err.errors.map((e) => [e.code, e.key]).sort(), [
    ['INVALID_VALUE', 'containers[0].env.bad-name'],
    ['OUT_OF_RANGE', 'jobs.queue_size'],
    ['WRONG_TYPE', 'containers[0].command'],
    ['WRONG_TYPE', 'node.name'],
    ['WRONG_TYPE', 'node.roles']
  ])
  t.true(err.errors.every((e) => e instanceof ConfigError && e.file === err.file))
})

test('error lines point at the offending key', (t) => {
  const err = configError(() => parseConfig('node:\n  name: x\njobs:\n  concurrency: 0\n', 'c.yaml'))
  t.is(err.key, 'jobs.concurrency')
  t.is(err.line, 4)
})

test('explicit null means the default; a required key set to null is MISSING', (t) => {
  t.is(parseConfig('jobs:\n  concurrency:\n', '').jobs.concurrency, defaults.DEFAULT_CONCURRENCY)
  const err = configError(() => parseConfig(`${ECHO.replace(/image: .*/, 'image:')}`, ''))
  t.deepEqual(err.errors.map((e) => [e.code, e.key]), [['MISSING', 'containers[0].image']])
})

test('runtime: runc by default, runsc when asked; anything else names the container and the allowed runtimes', (t) => {
  t.is(parseConfig(ECHO, '').containers[0].runtime, 'runc')
  const runsc = parseConfig(`${ECHO}    runtime: runsc\n    resources:\n      pids: 128\n      memory: 64m\n`, '')
  t.is(runsc.containers[0].runtime, 'runsc')
  const bads: Array<[string, ConfigErrorCode]> = [['kata', 'INVALID_VALUE'], ['gvisor', 'INVALID_VALUE'], ['"RUNSC"', 'INVALID_VALUE'], ['1', 'WRONG_TYPE'], ['true', 'WRONG_TYPE']]
  for (const [bad, code] of bads) {
    const err = configError(() => parseConfig(`${ECHO}    runtime: ${bad}\n`, 'c.yaml'))
    t.deepEqual(err.errors.map((e) => [e.code, e.key]), [[code, 'containers[0].runtime']], bad)
    t.is(err.expected, 'one of runc, runsc')
    t.is(err.line, 5)
    t.regex(err.message, /container "echo"/)
  }
})

test('runtime runsc: pids and memory must leave the gVisor sandbox room to start', (t) => {
  const err = configError(() => parseConfig(`${ECHO}    runtime: runsc\n    resources:\n      pids: 64\n      memory: 16m\n`, ''))
  t.deepEqual(err.errors.map((e) => [e.code, e.key]), [
    ['OUT_OF_RANGE', 'containers[0].resources.pids'],
    ['OUT_OF_RANGE', 'containers[0].resources.memory']
  ])
  // The defaults (64 pids) are too few for runsc: the error says so even when resources are not written.
  t.deepEqual(configError(() => parseConfig(`${ECHO}    runtime: runsc\n`, '')).errors.map((e) => e.key), ['containers[0].resources.pids'])
  t.notThrows(() => parseConfig(`${ECHO}    runtime: runc\n    resources:\n      pids: 8\n      memory: 16m\n`, ''))
})

test('protocol: inframind by default; infernet makes a service with Infernet\'s port, path and JSON schemas', (t) => {
  const ours = parseConfig(`${ECHO}    mode: service\n    service:\n      port: 8080\n`, '').containers[0]
  t.is(ours.protocol, 'inframind')
  t.is(ours.service?.path, '/')
  t.is(parseConfig(ECHO, '').containers[0].protocol, 'inframind', 'one-shot containers speak no HTTP protocol but read as inframind')
  // No mode and no service block: the protocol alone says it is an Infernet server on 3000.
  const infernet = parseConfig(`${ECHO}    protocol: infernet\n`, '').containers[0]
  t.is(infernet.mode, 'service')
  t.is(infernet.network, 'bridge')
  t.deepEqual([infernet.service?.port, infernet.service?.path, infernet.service?.healthPath], [3000, '/service_output', '/'])
  t.deepEqual([infernet.inputSchema, infernet.outputSchema], ['json', 'json'])
  // Every default can still be set.
  const custom = parseConfig(`${ECHO}    protocol: infernet\n    mode: service\n    input_schema: text\n    service:\n      port: 8000\n      health_path: /health\n`, '').containers[0]
  t.deepEqual([custom.service?.port, custom.service?.path, custom.service?.healthPath, custom.inputSchema, custom.outputSchema], [8000, '/service_output', '/health', 'text', 'json'])
})

test('protocol: a bad value or an Infernet one-shot is refused with the key and what to write', (t) => {
  const bads: Array<[string, ConfigErrorCode]> = [['infernit', 'INVALID_VALUE'], ['"Infernet"', 'INVALID_VALUE'], ['grpc', 'INVALID_VALUE'], ['1', 'WRONG_TYPE'], ['[infernet]', 'WRONG_TYPE']]
  for (const [bad, code] of bads) {
    const err = configError(() => parseConfig(`${ECHO}    protocol: ${bad}\n`, 'c.yaml'))
    t.deepEqual(err.errors.map((e) => [e.code, e.key]), [[code, 'containers[0].protocol']], bad)
    t.is(err.expected, 'one of inframind, infernet')
    t.is(err.line, 5)
  }
  const oneshot = configError(() => parseConfig(`${ECHO}    protocol: infernet\n    mode: oneshot\n`, 'c.yaml'))
  t.deepEqual(oneshot.errors.map((e) => [e.code, e.key]), [['INVALID_VALUE', 'containers[0].protocol']])
  t.regex(oneshot.message, /remove mode: oneshot/)
  // Our own protocol still needs the port of its server.
  const missing = configError(() => parseConfig(`${ECHO}    protocol: inframind\n    mode: service\n`, ''))
  t.deepEqual(missing.errors.map((e) => [e.code, e.key]), [['MISSING', 'containers[0].service']])
})

test('loopback control hosts are accepted, a unix socket too', (t) => {
  for (const host of ['127.0.0.1:9001', 'localhost:9001', '"[::1]:9001"']) {
    t.notThrows(() => parseConfig(`api:\n  control: ${host}\n`, ''), host)
  }
  for (const host of ['10.0.0.5:9001', '"[::]:9001"', 'example.com:9001']) {
    const err = configError(() => parseConfig(`api:\n  control: ${host}\n`, ''))
    t.deepEqual(err.errors.map((e) => [e.code, e.key]), [['INVALID_VALUE', 'api.control']], host)
  }
})

test('YAML bombs and duplicate keys are refused', (t) => {
  const bomb = 'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n'
  t.is(configError(() => parseConfig(bomb, '')).code, 'YAML_SYNTAX')
  t.is(configError(() => parseConfig('jobs: {}\njobs: {}\n', '')).code, 'YAML_SYNTAX')
})

test('verification: none by default, 2 of at most 5 validators; deterministic only when declared', (t) => {
  const cfg = parseConfig(ECHO, '')
  t.deepEqual(cfg.gateway.verification, { defaultMethod: 'none', defaultValidators: 2, maxValidators: 5 })
  t.false(cfg.containers[0].deterministic)
  t.true(parseConfig(`${ECHO}    deterministic: true\n`, '').containers[0].deterministic)
  const set = parseConfig('gateway:\n  verification:\n    default_method: reexecute\n    default_validators: 3\n    max_validators: 7\n', '')
  t.deepEqual(set.gateway.verification, { defaultMethod: 'reexecute', defaultValidators: 3, maxValidators: 7 })
  t.is(parseConfig('gateway:\n  verification:\n    default_method: signature\n', '').gateway.verification.defaultMethod, 'signature')
  const err = configError(() => parseConfig('gateway:\n  verification:\n    default_method: proof\n    max_validators: 17\n    quorum: 2\n', 'c.yaml'))
  t.deepEqual(err.errors.map((e) => [e.code, e.key]).sort(), [
    ['INVALID_VALUE', 'gateway.verification.default_method'], ['OUT_OF_RANGE', 'gateway.verification.max_validators'], ['UNKNOWN_KEY', 'gateway.verification.quorum']
  ].sort())
})

test('archive: 2 replicas, a 5 s sync, 16 GiB and 730 days kept by default; config.yaml documents the same', (t) => {
  const expected = { replicas: 2, syncIntervalMs: 5_000, retention: { maxBytes: 16 * 1024 ** 3, maxAgeMs: 730 * 86_400_000 } }
  t.deepEqual(defaultConfig().archive, expected)
  t.deepEqual(loadConfig(join(ROOT, 'config.yaml'), { HOME: '/home/op' }).archive, expected)
  t.is(defaults.DEFAULT_ARCHIVE_REPLICAS, 2)
  const set = parseConfig('archive:\n  replicas: 3\n  sync_interval_ms: 2000\n  retention:\n    max_bytes: 10g\n    max_age_days: 30\n', '')
  t.deepEqual(set.archive, { replicas: 3, syncIntervalMs: 2_000, retention: { maxBytes: 10 * 1024 ** 3, maxAgeMs: 30 * 86_400_000 } })
  // Only the keys given change.
  t.deepEqual(parseConfig('archive:\n  retention:\n    max_age_days: 1\n', '').archive, { ...expected, retention: { ...expected.retention, maxAgeMs: 86_400_000 } })
})

test('archive: bad values are reported with the file and the key', (t) => {
  const err = configError(() => parseConfig('archive:\n  replicas: 0\n  sync_interval_ms: fast\n  retention:\n    max_bytes: 1k\n    max_age_days: 0\n    keep: all\n  mirror: true\n', 'c.yaml'))
  t.deepEqual(err.errors.map((e) => [e.code, e.key]).sort(), [
    ['OUT_OF_RANGE', 'archive.replicas'],
    ['OUT_OF_RANGE', 'archive.retention.max_age_days'],
    ['OUT_OF_RANGE', 'archive.retention.max_bytes'],
    ['UNKNOWN_KEY', 'archive.mirror'],
    ['UNKNOWN_KEY', 'archive.retention.keep'],
    ['WRONG_TYPE', 'archive.sync_interval_ms']
  ])
  t.true(err.errors.every((e) => e.file.endsWith('c.yaml')))
  t.is(configError(() => parseConfig('archive: [1]\n', 'c.yaml')).key, 'archive')
  t.is(configError(() => parseConfig('archive:\n  replicas: 17\n', 'c.yaml')).key, 'archive.replicas')
})
