/**
 * `infra`: the operator's command line. The only place that writes to the console for users.
 * Commands are declared in program.ts; this file runs one command line and turns every way it can
 * end into an exit status: 0 done, 1 failed, 2 usage error.
 */
import { pathToFileURL } from 'node:url'
import { CommanderError } from 'commander'
import { UsageError } from './args.ts'
import { processIo, type CliIo } from './io.ts'
import { buildProgram } from './program.ts'

export type { CliIo } from './io.ts'

export async function cli (argv: string[], io: CliIo): Promise<number> {
  const { program, code } = buildProgram(io, argv)
  try {
    if (argv.length === 0) {
      io.out(program.helpInformation())
      return 2
    }
    await program.parseAsync(argv, { from: 'user' })
    return code()
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help asked for, or --version: done. A missing command, an unknown option...: a usage error.
      const shown = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || (err.code === 'commander.help' && err.exitCode === 0)
      return shown ? 0 : 2
    }
    if (err instanceof UsageError || (err as { name?: string }).name === 'ConfigError') {
      io.err(`${(err as Error).message}\n`)
      return 2
    }
    io.err(`error: ${(err as Error).message ?? String(err)}\n`)
    return 1
  }
}

/**
 * Runs `infra` in this process and exits when the command is done (client commands leave gRPC
 * channels and timers behind them). `start` exits from its own signal handler instead.
 */
export function run (argv: string[] = process.argv.slice(2)): void {
  cli(argv, processIo()).then((code) => {
    process.exitCode = code
    if (argv[0] !== 'start') setImmediate(() => process.exit(code))
  }, (err: unknown) => {
    process.stderr.write(`fatal: ${String(err)}\n`)
    process.exit(1)
  })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) run()
