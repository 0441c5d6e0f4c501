/**
 * How fast `infra` answers: wall time of `infra --help`, `infra status` against a running node, and
 * `infra submit --wait` of a warm job, each a fresh process as a user starts it (`node bin/infra.js`,
 * the bundled CLI), against the bare start of the same Node (`node -e 0`) in the same rounds.
 * The same commands from the TypeScript source (INFRAMIND_CLI_BUNDLE=0) show what the bundle saves,
 * and `npx infra --help` what npm adds on top.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { summarise, type Summary } from './stats.ts'
import { warmEcho, WARM_ECHO_ID } from './warm-echo.ts'
import { startStandalone, waitHealthy } from './standalone.ts'
import type { BenchContext } from './run.ts'

/** The issue's targets, in seconds of wall time. */
export const CLI_HELP_TARGET_S = 0.3
export const CLI_STATUS_TARGET_S = 0.6

export interface CliBenchResult {
  rounds: number
  node: string
  /** Wall ms per command, bundled CLI. */
  baseline: Summary
  help: Summary
  status: Summary
  submitWait: Summary
  /** The same from the TypeScript source, and `npx infra --help` (fewer rounds: they are slow). */
  source: { help: Summary, status: Summary }
  npxHelp: Summary
  failures: number
}

interface Timed { ms: number, code: number | null, err: string }

async function timed (args: string[], opts: { cwd: string, env: NodeJS.ProcessEnv, command?: string }): Promise<Timed> {
  const started = performance.now()
  return await new Promise((resolve) => {
    const child = spawn(opts.command ?? process.execPath, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('error', (e) => resolve({ ms: performance.now() - started, code: -1, err: e.message }))
    child.on('close', (code) => resolve({ ms: performance.now() - started, code, err }))
  })
}

export async function benchCli (ctx: BenchContext, opts: { rounds: number }): Promise<CliBenchResult> {
  const node = await startStandalone(ctx, 'cli', { containers: [await warmEcho(ctx.root)] })
  const infra = path.join(ctx.root, 'bin', 'infra.js')
  // A folder without config.yaml, as the tests run the CLI; the node named by the environment.
  const env = { ...process.env, INFRAMIND_CONFIG: '', INFRAMIND_ADDR: node.api.publicAddress(), INFRAMIND_CONTROL: node.api.controlAddress() }
  const run = { cwd: ctx.tmp, env }
  const fromSource = { cwd: ctx.tmp, env: { ...env, INFRAMIND_CLI_BUNDLE: '0' } }
  const submit = [infra, 'submit', '--container', WARM_ECHO_ID, '--input', 'a warm job from the cli', '--wait']
  const samples = { baseline: [] as number[], help: [] as number[], status: [] as number[], submitWait: [] as number[], sourceHelp: [] as number[], sourceStatus: [] as number[], npx: [] as number[] }
  let failures = 0
  const keep = (into: number[], t: Timed): void => {
    if (t.code === 0) into.push(t.ms)
    else { failures++; process.stderr.write(`bench cli: exit ${t.code}: ${t.err.split('\n')[0]}\n`) }
  }
  try {
    await waitHealthy(node, WARM_ECHO_ID)
    // Untimed: brings the bundle up to date with the source and fills Node's compile cache, as any earlier use would.
    for (const args of [[infra, '--version'], [infra, 'status'], submit]) await timed(args, run)
    for (let round = 0; round < opts.rounds; round++) {
      keep(samples.baseline, await timed(['-e', '0'], run))
      keep(samples.help, await timed([infra, '--help'], run))
      keep(samples.status, await timed([infra, 'status'], run))
      keep(samples.submitWait, await timed(submit, run))
      if (round % 3 === 0) {
        keep(samples.sourceHelp, await timed([infra, '--help'], fromSource))
        keep(samples.sourceStatus, await timed([infra, 'status'], fromSource))
        keep(samples.npx, await timed(['--no-install', 'infra', '--help'], { ...run, cwd: ctx.root, command: 'npx' }))
      }
    }
  } finally {
    await node.stop()
  }
  return {
    rounds: opts.rounds,
    node: process.version,
    baseline: summarise(samples.baseline),
    help: summarise(samples.help),
    status: summarise(samples.status),
    submitWait: summarise(samples.submitWait),
    source: { help: summarise(samples.sourceHelp), status: summarise(samples.sourceStatus) },
    npxHelp: summarise(samples.npx),
    failures
  }
}

export function cliMet (r: CliBenchResult): { help: boolean, status: boolean } {
  return { help: r.failures === 0 && r.help.p50 <= CLI_HELP_TARGET_S * 1000, status: r.failures === 0 && r.status.p50 <= CLI_STATUS_TARGET_S * 1000 }
}

export function renderCli (r: CliBenchResult): string {
  const ms = (v: number): string => `${v.toFixed(0)} ms`
  const row = (label: string, s: Summary, target: string): string =>
    `| \`${label}\`, median of ${s.n}${r.failures > 0 ? ` (${r.failures} runs FAILED)` : ''} | ${ms(s.p50)} (p90 ${ms(s.p90)}) | \`node -e 0\`: ${ms(r.baseline.p50)} | ${(s.p50 / r.baseline.p50).toFixed(2)}x, +${ms(s.p50 - r.baseline.p50)} | ${target} |`
  const met = cliMet(r)
  return [
    row('infra --help', r.help, `<= ${CLI_HELP_TARGET_S * 1000} ms ${met.help ? 'met' : 'NOT met'}`),
    row('infra status', r.status, `<= ${CLI_STATUS_TARGET_S * 1000} ms ${met.status ? 'met' : 'NOT met'}`),
    row('infra submit --wait (warm job)', r.submitWait, '')
  ].join('\n')
}

export function cliNote (r: CliBenchResult): string {
  const ms = (v: number): string => `${v.toFixed(0)} ms`
  return `CLI: each command is a fresh \`node bin/infra.js ...\` (Node ${r.node}) run the way a shell runs it, timed from spawn to exit, in ${r.rounds} rounds that also time the bare \`node -e 0\`; the node is local with a warm echo service. ` +
    `The bundled CLI (.build/cli, src/cli/bundle.ts) runs in the launcher's own process; from the TypeScript source instead (INFRAMIND_CLI_BUNDLE=0): --help ${ms(r.source.help.p50)}, status ${ms(r.source.status.p50)} (median of ${r.source.status.n}). ` +
    `\`npx infra --help\`: ${ms(r.npxHelp.p50)} (npm's own start is most of it).`
}
