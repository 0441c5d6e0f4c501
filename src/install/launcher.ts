/**
 * The `infra` command of an installed node: a tiny sh script rather than a symlink to bin/infra.js,
 * because that file starts with `#!/usr/bin/env node` and an edge machine's PATH may have no Node,
 * or an old one. It runs the package's CLI with the Node the unit uses, and reads the installed
 * config when the caller can (root, or a member of the service's group).
 */
import { LAUNCHER_MARKER } from './constants.ts'

/** POSIX sh single-quoting. */
export function shQuote (s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export function renderLauncher (opts: { node: string, cli: string, configFile: string }): string {
  const config = shQuote(opts.configFile)
  return [
    '#!/bin/sh',
    LAUNCHER_MARKER,
    '# (src/install/launcher.ts); a re-install rewrites it. The CLI of the installed package, run by its Node.',
    `if [ -z "\${INFRAMIND_CONFIG+x}" ] && [ -r ${config} ]; then`,
    `  INFRAMIND_CONFIG=${config}`,
    '  export INFRAMIND_CONFIG',
    'fi',
    `exec ${shQuote(opts.node)} ${shQuote(opts.cli)} "$@"`,
    ''
  ].join('\n')
}
