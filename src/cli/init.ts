/** `infra init`: create (or show) this node's ed25519 identity. */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig, configPath } from '../config/index.ts'
import {
  DEFAULT_KEY_FILE, IdentityExistsError, expandHome, generateIdentity, loadIdentity, loadOrCreateIdentity
} from '../identity/index.ts'

export interface InitIo {
  out: (s: string) => void
  err: (s: string) => void
  env: NodeJS.ProcessEnv
}

const USAGE = `usage: infra init [--keygen [--force]] [--key FILE] [--config FILE]

  (no flags)   load this node's key, creating it if missing, and print the node id
  --keygen     create a new key; refuses to replace an existing one
  --force      with --keygen: replace an existing key (the node id changes)
  --key FILE   key file (default: identity.key_file of the config, else ${DEFAULT_KEY_FILE})
  --config F   config.yaml to read identity.key_file from (default: INFRAMIND_CONFIG, else ./config.yaml if present)
`

/** Exit codes: 0 done, 1 failed (message on stderr), 2 usage error. */
export async function runInit (argv: string[], io: InitIo): Promise<number> {
  let values: { keygen?: boolean, force?: boolean, key?: string, config?: string, help?: boolean }
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        keygen: { type: 'boolean' },
        force: { type: 'boolean' },
        key: { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    }))
  } catch (err) {
    io.err(`infra init: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    io.out(USAGE)
    return 0
  }
  if (values.force === true && values.keygen !== true) {
    io.err(`infra init: --force only makes sense with --keygen\n\n${USAGE}`)
    return 2
  }

  let keyFile: string
  try {
    keyFile = resolve(expandHome(keyPath(values, io.env), io.env))
  } catch (err) {
    io.err(`infra init: ${(err as Error).message}\n`)
    return 1
  }

  try {
    if (values.keygen === true) {
      const replaced = values.force === true && existsSync(keyFile)
      const identity = generateIdentity(keyFile, { force: values.force === true })
      io.out(`${replaced ? 'replaced the node identity (the old node id is gone)' : 'created a new node identity'}\n` +
        `node id:  ${identity.nodeId}\nkey file: ${identity.keyFile}\n`)
      return 0
    }
    const { identity, created } = loadOrCreateIdentity(keyFile)
    io.out(`${created ? 'created a new node identity' : 'existing node identity'}\n` +
      `node id:  ${identity.nodeId}\nkey file: ${identity.keyFile}\n`)
    return 0
  } catch (err) {
    if (err instanceof IdentityExistsError) {
      io.err(`infra init: a key already exists at ${keyFile}${existingId(keyFile)}; ` +
        'pass --force to replace it (the node id will change), or run "infra init" without --keygen to show it\n')
      return 1
    }
    io.err(`infra init: ${(err as Error).message}\n`)
    return 1
  }
}

/** --key, else identity.key_file of a given or discoverable config, else the default. */
function keyPath (values: { key?: string, config?: string }, env: NodeJS.ProcessEnv): string {
  if (values.key !== undefined) {
    if (values.key === '') throw new Error('--key needs a file path')
    return values.key
  }
  const explicit = values.config ?? (env.INFRAMIND_CONFIG !== undefined && env.INFRAMIND_CONFIG !== '' ? env.INFRAMIND_CONFIG : undefined)
  const path = configPath(explicit, env)
  // Only the implicit ./config.yaml may be absent; a named config that is missing is an error (loadConfig says so).
  if (explicit === undefined && !existsSync(path)) return DEFAULT_KEY_FILE
  return loadConfig(path, env).identity.keyFile
}

function existingId (keyFile: string): string {
  try {
    return ` (node id ${loadIdentity(keyFile).nodeId})`
  } catch {
    return ''
  }
}
