/**
 * `infra install`: builds the plan, prints it (--dry-run) or carries it out. Also runnable on its own
 * (`node src/cli/install.ts ...`, what scripts/install.sh does), so it needs nothing of the CLI but CliIo.
 */
import { pathToFileURL } from 'node:url'
import { processIo, type CliIo } from './io.ts'
import { buildPlan, footer, header, INSTALL_USAGE, InstallError, parseInstallArgs, runPlan } from '../install/index.ts'
import { isRoot } from '../install/system.ts'

/** Exit codes: 0 installed (or the dry run found nothing wrong), 1 a step failed or would fail, 2 usage. */
export async function runInstall (argv: string[], io: CliIo): Promise<number> {
  try {
    const opts = parseInstallArgs(argv)
    if (opts.help) {
      io.out(INSTALL_USAGE)
      return 0
    }
    if (!opts.dryRun && opts.root === '' && !isRoot()) {
      throw new InstallError('NOT_ROOT', 'a real install writes /opt, /etc and /var and creates a user: run it as root (sudo), ' +
        'or look first with --dry-run, or install into a staging folder with --root DIR')
    }
    const plan = buildPlan(opts)
    io.out(header(plan))
    const result = await runPlan(plan, io)
    io.out(footer(plan, result))
    return result.ok ? 0 : 1
  } catch (err) {
    if (err instanceof InstallError) {
      io.err(`infra install: ${err.message}\n${err.code === 'USAGE' ? `\n${INSTALL_USAGE}` : ''}`)
      return err.code === 'USAGE' ? 2 : 1
    }
    io.err(`infra install: ${(err as Error).stack ?? String(err)}\n`)
    return 1
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runInstall(process.argv.slice(2), processIo()).then((code) => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`fatal: ${String(err)}\n`)
    process.exitCode = 1
  })
}
