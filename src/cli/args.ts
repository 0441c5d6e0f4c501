/**
 * Parsed arguments as the command bodies read them: `--name value` options and boolean flags by their
 * long name, and the positionals. The CLI parses with commander (src/cli/program.ts) and hands each
 * command a ParsedArgs built by `fromCommand`; `parseArgs` is the small parser the scripts and
 * benches use for their own few options.
 */
import type { Command } from 'commander'

export interface ParsedArgs {
  flags: Map<string, string | true>
  positionals: string[]
}

export class UsageError extends Error {
  readonly code = 'USAGE'
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** What commander parsed for `cmd`, keyed by each option's long name without the dashes. */
export function fromCommand (cmd: Command): ParsedArgs {
  const flags = new Map<string, string | true>()
  for (const option of cmd.options) {
    const value: unknown = cmd.getOptionValue(option.attributeName())
    const name = (option.long ?? '').replace(/^--/, '')
    if (value === true) flags.set(name, true)
    else if (typeof value === 'string') flags.set(name, value)
  }
  return { flags, positionals: [...cmd.args] }
}

/** For scripts: `valued` names the options that take a value; every other --option is a boolean flag. */
export function parseArgs (argv: string[], valued: string[], booleans: string[]): ParsedArgs {
  const flags = new Map<string, string | true>()
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-') { positionals.push(arg); continue }
    if (!arg.startsWith('-')) { positionals.push(arg); continue }
    const eq = arg.indexOf('=')
    const name = (eq === -1 ? arg : arg.slice(0, eq)).replace(/^--?/, '')
    if (valued.includes(name)) {
      const value = eq !== -1 ? arg.slice(eq + 1) : argv[++i]
      if (value === undefined) throw new UsageError(`--${name} needs a value`)
      flags.set(name, value)
    } else if (booleans.includes(name)) {
      flags.set(name, true)
    } else {
      throw new UsageError(`unknown option --${name}`)
    }
  }
  return { flags, positionals }
}

export function str (args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name)
  return typeof v === 'string' ? v : undefined
}
