import test from 'ava'
import { parseInstallArgs, THIS_PACKAGE, defaults, InstallError } from '../../src/install/index.ts'
import { runInstall } from '../../src/cli/install.ts'
import type { CliIo } from '../../src/cli/io.ts'

function captureIo (): CliIo & { printed: () => string, complained: () => string } {
  let out = ''
  let err = ''
  return {
    out: (s) => { out += s },
    err: (s) => { err += s },
    env: {},
    stdin: async () => new Uint8Array(),
    stderr: process.stderr,
    printed: () => out,
    complained: () => err
  }
}

test('defaults: the documented layout, this package, every step on', (t) => {
  const o = parseInstallArgs([])
  t.like(o, {
    dryRun: false,
    root: '',
    prefix: defaults.DEFAULT_PREFIX,
    configDir: '/etc/inframind',
    dataDir: '/var/lib/inframind',
    binDir: '/usr/local/bin',
    unitDir: '/etc/systemd/system',
    user: 'inframind',
    dockerGroup: 'docker',
    source: THIS_PACKAGE,
    node: '',
    engine: true,
    images: true,
    start: true,
    gpu: undefined
  })
})

test('--root and --source resolve against the working directory; final paths stay as given', (t) => {
  const o = parseInstallArgs(['--root', 'stage', '--source', '../pkg', '--prefix', '/srv/im', '-n', '--no-engine', '--no-images', '--no-start', '--gpu'], '/home/op/work')
  t.like(o, { root: '/home/op/work/stage', source: '/home/op/pkg', prefix: '/srv/im', dryRun: true, engine: false, images: false, start: false, gpu: true })
})

test('--user root drops the docker group (root owns the socket); --docker-group "" means none', (t) => {
  t.is(parseInstallArgs(['--user', 'root']).dockerGroup, '')
  t.is(parseInstallArgs(['--docker-group', '']).dockerGroup, '')
  t.is(parseInstallArgs(['--docker-group', 'podman']).dockerGroup, 'podman')
})

const bad: Array<[string, string[], RegExp]> = [
  ['a relative final path', ['--prefix', 'opt/im'], /--prefix needs an absolute path/],
  ['an unknown flag', ['--frobnicate'], /Unknown option '--frobnicate'/],
  ['--gpu with --no-gpu', ['--gpu', '--no-gpu'], /--gpu or --no-gpu, not both/],
  ['--root /', ['--root', '/'], /leave --root out/],
  ['a user name with spaces', ['--user', 'in fra'], /--user needs a user or group name/],
  ['an empty user', ['--user', ''], /--user needs a user or group name/],
  ['a relative --node', ['--node', 'node'], /--node needs the absolute path/],
  ['a path the unit file cannot carry as is', ['--data-dir', '/var/lib/my node'], /--data-dir: "\/var\/lib\/my node" must be absolute and use only/],
  ['a node path with a $', ['--node', '/opt/$HOME/node'], /--node: .* must be absolute and use only/],
  ['a positional argument', ['now'], /positional/]
]
for (const [what, argv, message] of bad) {
  test(`usage error: ${what}`, (t) => {
    const err = t.throws(() => parseInstallArgs(argv), { instanceOf: InstallError })
    t.is(err?.code, 'USAGE')
    t.regex(err?.message ?? '', message)
  })
}

test('runInstall: a usage error exits 2 with the message and the usage; --help exits 0', async (t) => {
  const io = captureIo()
  t.is(await runInstall(['--prefix', 'relative'], io), 2)
  t.regex(io.complained(), /--prefix needs an absolute path/)
  t.regex(io.complained(), /usage: infra install/)
  t.is(io.printed(), '')
  const help = captureIo()
  t.is(await runInstall(['--help'], help), 0)
  t.regex(help.printed(), /--dry-run/)
})
