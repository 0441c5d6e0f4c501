/** The node's code: the package copied into the prefix (src/install/package-copy.ts). */
import { listPackage, type PackageListing } from '../package-files.ts'
import { copyPackage, packageAction } from '../package-copy.ts'
import type { Step } from '../types.ts'
import type { Handler, StepContext } from './context.ts'

type Pkg = Extract<Step, { kind: 'package' }>

function listing (source: string, ctx: StepContext): PackageListing {
  let l = ctx.listings.get(source)
  if (l === undefined) {
    l = listPackage(source)
    ctx.listings.set(source, l)
  }
  return l
}

const mib = (l: PackageListing): string => `${l.entries.length} files, ${(l.entries.reduce((n, e) => n + e.size, 0) / 1048576).toFixed(0)} MiB`

export const pkg: Handler<Pkg> = {
  preview (step, ctx) {
    const l = listing(step.source, ctx)
    const action = packageAction(step.source, step.target, l)
    const what = `${step.source} (version ${l.version || '?'}; ${mib(l)}, without dev dependencies)`
    if (action === 'keep') return { action, notes: [`same files as ${what}`] }
    return { action, notes: [`copy ${what}`, 'root-owned, read-only to the service; swapped in whole'] }
  },
  async apply (step, ctx) {
    const outcome = pkg.preview(step, ctx)
    if (outcome.action !== 'keep') copyPackage(step.source, step.target, listing(step.source, ctx))
    return outcome
  }
}
