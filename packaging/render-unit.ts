// Writes packaging/inframind-node.service: the unit `infra install` writes with its default options
// (src/install/unit.ts is the source; test/unit/install-unit.test.ts fails when this copy is stale).
// For packagers and readers; `infra install` never reads this file.
//
// Usage: node packaging/render-unit.ts [--check]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { buildPlan, parseInstallArgs } from '../src/install/index.ts'

const OUT = new URL('./inframind-node.service', import.meta.url)

/** The unit text for the default layout (planned against an empty staging root: nothing is written). */
export function defaultUnit (): string {
  const root = mkdtempSync(join(tmpdir(), 'inframind-unit-'))
  try {
    const step = buildPlan(parseInstallArgs(['--root', root])).steps.find((s) => s.id === 'unit')
    if (step?.kind !== 'file') throw new Error('the plan has no unit step')
    return step.content
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const text = defaultUnit()
  if (process.argv.includes('--check')) {
    const same = readFileSync(OUT, 'utf8') === text
    process.stdout.write(same ? 'packaging/inframind-node.service is up to date\n' : 'packaging/inframind-node.service is stale: run node packaging/render-unit.ts\n')
    process.exitCode = same ? 0 : 1
  } else {
    writeFileSync(OUT, text)
    process.stdout.write('wrote packaging/inframind-node.service\n')
  }
}
