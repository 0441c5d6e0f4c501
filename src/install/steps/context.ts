/** What every step handler gets, and the shape of a handler: a read-only preview and the real thing. */
import type { PackageListing } from '../package-files.ts'
import type { Outcome, Plan, Step, StepKind } from '../types.ts'

export interface StepContext {
  plan: Plan
  /** Progress for the operator (command output, notes). */
  log: (s: string) => void
  env: NodeJS.ProcessEnv
  /** Ids of the steps that changed (or, in a dry run, would change) something: the service step restarts on them. */
  changed: Set<string>
  /** The package listing, computed once per run. */
  listings: Map<string, PackageListing>
}

export interface Handler<S extends Step> {
  /** What apply would do; reads only. Throws an InstallError when apply would fail for sure. */
  preview: (step: S, ctx: StepContext) => Outcome
  apply: (step: S, ctx: StepContext) => Promise<Outcome>
}

/** One handler per step kind: a kind without one does not compile. */
export type Handlers = { [K in StepKind]: Handler<Extract<Step, { kind: K }>> }
