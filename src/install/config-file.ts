/**
 * config.yaml of an installed node: the package's documented defaults (comments kept) with the
 * installed paths filled in, and the reading of an existing one (which is never replaced).
 */
import { readFileSync } from 'node:fs'
import { parseDocument } from 'yaml'
import { ConfigError, parseConfig, type NodeConfig } from '../config/index.ts'
import { InstallError } from './errors.ts'

const HEADER = [
  '# Written by `infra install` from the package\'s config.yaml, with the installed paths. Edit freely:',
  '# re-running the install never replaces this file (it writes config.yaml.dist when the defaults differ).',
  '# After an edit: systemctl restart inframind-node',
  ''
].join('\n')

export interface InstalledPaths {
  dataDir: string
  keyFile: string
}

/** The defaults with node.data_dir and identity.key_file set to the installed (absolute) paths. */
export function renderConfig (defaultsText: string, paths: InstalledPaths): string {
  const doc = parseDocument(defaultsText)
  if (doc.errors.length > 0) throw new InstallError('CONFIG_INVALID', `the package's config.yaml is not valid YAML: ${doc.errors[0].message}`)
  doc.setIn(['node', 'data_dir'], paths.dataDir)
  doc.setIn(['identity', 'key_file'], paths.keyFile)
  return HEADER + doc.toString({ lineWidth: 0, flowCollectionPadding: false })
}

/**
 * Validates config text as the installed node will read it: `finalPath` anchors relative paths and
 * HOME is the service user's home, so `~/` and relative paths resolve as they will at run time.
 */
export function checkConfig (text: string, finalPath: string, home: string, what: string): NodeConfig {
  try {
    return parseConfig(text, finalPath, { HOME: home })
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new InstallError('CONFIG_INVALID', `${what} does not validate; fix it and re-run:\n${err.message}`, { cause: err })
    }
    throw err
  }
}

/** The text of the file, or undefined when there is none. */
export function readIfExists (path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new InstallError('CONFIG_INVALID', `cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
}
