/** `infra install` flags → InstallOptions (validated: every problem is a USAGE error that says what to pass). */
import { dirname, isAbsolute, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as C from './constants.ts'
import { unsafePath } from './layout.ts'
import { InstallError } from './errors.ts'
import type { InstallOptions } from './types.ts'

/** The package this code belongs to: what a plain `infra install` installs. */
export const THIS_PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

export const INSTALL_USAGE = `usage: infra install [--dry-run] [--root DIR] [options]

Installs this node as a systemd service on a Debian/Ubuntu machine (run as root):
the container engine, the package in ${C.DEFAULT_PREFIX}, the \`infra\` command in ${C.DEFAULT_BIN_DIR},
a system user, the identity, ${C.DEFAULT_CONFIG_DIR}/${C.CONFIG_FILE_NAME}, data in ${C.DEFAULT_DATA_DIR}, and the
${C.UNIT_NAME} unit. Safe to re-run: an existing identity or config is never replaced.

  -n, --dry-run        print every step and what it would change; change nothing
  --root DIR           write every path under DIR (a staging root or a test); skips apt, the user,
                       chown, image builds and systemctl. File contents name the final paths.
  --prefix DIR         where the package goes (default ${C.DEFAULT_PREFIX})
  --config-dir DIR     config folder (default ${C.DEFAULT_CONFIG_DIR})
  --data-dir DIR       the node's data and identity (default ${C.DEFAULT_DATA_DIR})
  --bin-dir DIR        where the \`infra\` launcher goes (default ${C.DEFAULT_BIN_DIR})
  --unit-dir DIR       where the unit goes (default ${C.DEFAULT_UNIT_DIR})
  --user NAME          system user of the service (default ${C.DEFAULT_USER}; root = run as root)
  --docker-group NAME  group owning the engine's socket, given to the service (default ${C.DEFAULT_DOCKER_GROUP};
                       "" = none, e.g. with --user root or a rootless engine)
  --source DIR         package to install (default: the one this command runs from)
  --node PATH          Node >= ${C.MIN_NODE.join('.')} for the service (default: the package's bundled Node, else this one)
  --gpu, --no-gpu      let the service see NVIDIA devices (default: when /dev/nvidiactl exists)
  --no-engine          do not check or install the container engine
  --no-images          do not build the sample images the default config uses
  --no-start           install and enable nothing in systemd beyond writing the unit
`

const NAME = /^[a-z_][a-z0-9_-]{0,31}$/

export function parseInstallArgs (argv: string[], cwd: string = process.cwd()): InstallOptions & { help: boolean } {
  let values: Record<string, string | boolean | undefined>
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'dry-run': { type: 'boolean', short: 'n' },
        root: { type: 'string' },
        prefix: { type: 'string' },
        'config-dir': { type: 'string' },
        'data-dir': { type: 'string' },
        'bin-dir': { type: 'string' },
        'unit-dir': { type: 'string' },
        user: { type: 'string' },
        'docker-group': { type: 'string' },
        source: { type: 'string' },
        node: { type: 'string' },
        gpu: { type: 'boolean' },
        'no-gpu': { type: 'boolean' },
        'no-engine': { type: 'boolean' },
        'no-images': { type: 'boolean' },
        'no-start': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    }))
  } catch (err) {
    throw new InstallError('USAGE', (err as Error).message, { cause: err })
  }
  if (values.gpu === true && values['no-gpu'] === true) throw new InstallError('USAGE', 'pass --gpu or --no-gpu, not both')

  const finalPath = (flag: string, fallback: string): string => {
    const v = values[flag]
    if (v === undefined) return fallback
    if (typeof v !== 'string' || !isAbsolute(v)) throw new InstallError('USAGE', `--${flag} needs an absolute path (as the installed system sees it), got "${String(v)}"`)
    const why = unsafePath(resolve(v))
    if (why !== undefined) throw new InstallError('USAGE', `--${flag}: ${why}`)
    return resolve(v)
  }
  const localPath = (flag: string, fallback: string): string => {
    const v = values[flag]
    if (v === undefined) return fallback
    if (typeof v !== 'string' || v === '') throw new InstallError('USAGE', `--${flag} needs a folder path`)
    return resolve(cwd, v)
  }
  const name = (flag: string, fallback: string, allowEmpty: boolean): string => {
    const v = values[flag]
    if (v === undefined) return fallback
    if (typeof v !== 'string' || (v === '' ? !allowEmpty : !NAME.test(v))) {
      throw new InstallError('USAGE', `--${flag} needs a user or group name (lowercase letters, digits, _ and -; at most 32)${allowEmpty ? ' or ""' : ''}, got "${String(v)}"`)
    }
    return v
  }

  const root = localPath('root', '')
  if (root === '/') throw new InstallError('USAGE', '--root / is the machine itself: leave --root out for a real install')
  const node = values.node
  if (node !== undefined && (typeof node !== 'string' || !isAbsolute(node))) {
    throw new InstallError('USAGE', `--node needs the absolute path of a Node binary, got "${String(node)}"`)
  }
  const nodeWhy = typeof node === 'string' ? unsafePath(resolve(node)) : undefined
  if (nodeWhy !== undefined) throw new InstallError('USAGE', `--node: ${nodeWhy}`)
  const user = name('user', C.DEFAULT_USER, false)
  return {
    help: values.help === true,
    dryRun: values['dry-run'] === true,
    root,
    prefix: finalPath('prefix', C.DEFAULT_PREFIX),
    configDir: finalPath('config-dir', C.DEFAULT_CONFIG_DIR),
    dataDir: finalPath('data-dir', C.DEFAULT_DATA_DIR),
    binDir: finalPath('bin-dir', C.DEFAULT_BIN_DIR),
    unitDir: finalPath('unit-dir', C.DEFAULT_UNIT_DIR),
    user,
    // Root reaches the socket as its owner; a group would only widen what the service holds.
    dockerGroup: name('docker-group', user === 'root' ? '' : C.DEFAULT_DOCKER_GROUP, true),
    source: localPath('source', THIS_PACKAGE),
    node: typeof node === 'string' ? resolve(node) : '',
    engine: values['no-engine'] !== true,
    images: values['no-images'] !== true,
    start: values['no-start'] !== true,
    gpu: values.gpu === true ? true : values['no-gpu'] === true ? false : undefined
  }
}
