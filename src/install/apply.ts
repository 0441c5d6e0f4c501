/** Carries out a plan (or, in a dry run, previews each step), printing one line per step with its notes. */
import { InstallError } from './errors.ts'
import type { Handlers, StepContext } from './steps/context.ts'
import { config, dir, file } from './steps/files.ts'
import { identity } from './steps/identity.ts'
import { pkg } from './steps/package.ts'
import { engine, images, service, skip, user } from './steps/system.ts'
import type { Action, Outcome, Plan, Step } from './types.ts'

const HANDLERS: Handlers = { engine, user, package: pkg, dir, file, config, identity, images, service, skip }

const DRY: Record<Action, string> = { create: 'would create', update: 'would update', keep: 'keep', run: 'would run', skip: 'skip' }
const DONE: Record<Action, string> = { create: 'created', update: 'updated', keep: 'kept', run: 'ran', skip: 'skipped' }

export interface StepResult { step: Step, outcome?: Outcome, error?: Error }

export interface RunResult {
  ok: boolean
  results: StepResult[]
}

function handle<S extends Step> (step: S): { preview: (s: S, c: StepContext) => Outcome, apply: (s: S, c: StepContext) => Promise<Outcome> } {
  return HANDLERS[step.kind] as unknown as { preview: (s: S, c: StepContext) => Outcome, apply: (s: S, c: StepContext) => Promise<Outcome> }
}

function line (n: number, verb: string, step: Step, notes: string[]): string {
  return `${String(n).padStart(3)}. ${verb.padEnd(13)} ${step.title}\n` + notes.map((x) => `${' '.repeat(19)}${x}\n`).join('')
}

/**
 * Dry run: every step is previewed (one failing does not hide the rest). Real run: steps run in
 * order and the first failure stops it (later steps may depend on it); a re-run resumes safely.
 */
export async function runPlan (plan: Plan, io: { out: (s: string) => void, err: (s: string) => void, env: NodeJS.ProcessEnv }): Promise<RunResult> {
  const dry = plan.options.dryRun
  const ctx: StepContext = { plan, log: io.err, env: io.env, changed: new Set(), listings: new Map() }
  const results: StepResult[] = []
  for (const [i, step] of plan.steps.entries()) {
    try {
      const outcome = dry ? handle(step).preview(step, ctx) : await handle(step).apply(step, ctx)
      if (outcome.action === 'create' || outcome.action === 'update') ctx.changed.add(step.id)
      results.push({ step, outcome })
      io.out(line(i + 1, (dry ? DRY : DONE)[outcome.action], step, outcome.notes))
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err))
      results.push({ step, error: e })
      io.out(line(i + 1, dry ? 'would fail' : 'FAILED', step, e.message.split('\n')))
      if (!dry) {
        if (!(e instanceof InstallError)) io.err(`${e.stack ?? e.message}\n`)
        return { ok: false, results }
      }
    }
  }
  return { ok: results.every((r) => r.error === undefined), results }
}
