import test from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import { cli } from '../../src/cli/main.ts'
import { buildProgram } from '../../src/cli/program.ts'
import { commandSpecs } from '../../src/cli/completion.ts'
import { fromCommand, type ParsedArgs } from '../../src/cli/args.ts'
import type { CliIo } from '../../src/cli/io.ts'

// The commander tree of `infra`: help, exit codes, what reaches a command, and the completion
// scripts generated from it, run in a real bash (and zsh when installed).

interface Run { code: number, out: string, err: string }

async function infra (argv: string[]): Promise<Run> {
  let out = ''
  let err = ''
  const io: CliIo = {
    out: (s) => { out += s },
    err: (s) => { err += s },
    env: { INFRAMIND_CONFIG: '' },
    stdin: async () => new Uint8Array(0),
    stderr: { isTTY: false, write: (s: string) => { err += s; return true } } as unknown as NodeJS.WriteStream
  }
  return { code: await cli(argv, io), out, err }
}

const silentIo = { out: () => {}, err: () => {}, env: {}, stdin: async () => new Uint8Array(0), stderr: process.stderr } as CliIo

function leaves (cmd: Command, path: string[] = []): string[][] {
  if (cmd.commands.length === 0) return [path]
  return cmd.commands.flatMap((c) => leaves(c, [...path, c.name()]))
}

test('infra --help lists every command; every command has its own --help (exit 0)', async (t) => {
  const main = await infra(['--help'])
  t.is(main.code, 0)
  const { program } = buildProgram(silentIo, [])
  for (const c of program.commands) t.true(main.out.includes(`  ${c.name()}`), c.name())
  for (const word of ['logs', 'containers', 'completion', 'install', 'reputation', 'every listing command takes --json']) t.true(main.out.includes(word), word)
  for (const path of leaves(program)) {
    if (path[0] === 'install') continue // its own parser prints its usage (src/install)
    const r = await infra([...path, '--help'])
    t.is(r.code, 0, path.join(' '))
    t.true(r.out.length > 0, path.join(' '))
  }
  t.regex((await infra(['--version'])).out, /^\d+\.\d+\.\d+/)
})

test('usage errors exit 2 and say what is wrong; no command at all prints the usage (exit 2)', async (t) => {
  const none = await infra([])
  t.is(none.code, 2)
  t.regex(none.out, /Usage: infra/)
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['status', '--bogus'], /unknown option '--bogus'/],
    [['status', 'extra'], /too many arguments/],
    [['job'], /missing required argument 'id'/],
    [['jobs', '--state', 'sleeping'], /Allowed choices are pending, running, success, failed/],
    [['jobs', '--limit', 'many'], /--limit must be a whole number/],
    [['submit', '--container', 'echo', '--input', 'x', '--verify', 'maybe'], /Allowed choices are none, signature, reexecute/],
    [['submit', '--input', 'x'], /--container/],
    [['submit', '--container'], /argument missing/],
    [['containers', '--wait-timeout', '-5'], /--wait-timeout must be a positive number/],
    [['completion', 'fish'], /Allowed choices are bash, zsh/],
    [['sub'], /usage: infra sub/],
    [['records', 'nope'], /unknown command 'nope'/]
  ]
  for (const [argv, message] of cases) {
    const r = await infra(argv)
    t.is(r.code, 2, argv.join(' '))
    t.regex(r.err, message, argv.join(' '))
  }
})

test('options reach the command under their long names (fromCommand), --name=value too; booleans are true', async (t) => {
  let parsed: ParsedArgs | undefined
  const { program } = buildProgram(silentIo, [])
  const job = program.commands.find((c) => c.name() === 'job') as Command
  job.action((...params: unknown[]) => { parsed = fromCommand(params[params.length - 1] as Command) })
  await program.parseAsync(['job', 'j-1', '--output-file=out.bin', '--steps', '--timeout', '500'], { from: 'user' })
  t.deepEqual(parsed?.positionals, ['j-1'])
  t.deepEqual(Object.fromEntries(parsed?.flags ?? []), { 'output-file': 'out.bin', steps: true, timeout: '500' })
})

test('completion specs come from the tree: every command, alias and choice', (t) => {
  const { program } = buildProgram(silentIo, [])
  const specs = new Map(commandSpecs(program).map((s) => [s.path, s]))
  for (const path of ['/status', '/submit', '/logs', '/sub/ls', '/sub/list', '/records/receipt', '/roster/show', '/completion']) t.true(specs.has(path), path)
  t.true(specs.get('')?.subcommands.includes('containers'))
  const state = specs.get('/jobs')?.options.find((o) => o.names.includes('--state'))
  t.deepEqual(state?.value, ['pending', 'running', 'success', 'failed'])
  t.is(specs.get('/verify')?.options.find((o) => o.names.includes('--output'))?.value, 'file')
  t.true(specs.get('/verify')?.fileArgument)
  t.deepEqual(specs.get('/completion')?.argChoices, ['bash', 'zsh'])
  t.true(specs.get('/logs')?.options.some((o) => o.names.includes('-f')))
})

async function script (shell: 'bash' | 'zsh'): Promise<string> {
  const r = await infra(['completion', shell])
  if (r.code !== 0) throw new Error(r.err)
  return r.out
}

test('bash completion: commands, subcommands, options, choices and files, in a real bash', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inframind-completion-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'infra.bash'), await script('bash'))
  writeFileSync(join(dir, 'receipt.json'), '{}')
  const complete = (words: string[]): string[] => execFileSync('bash', ['-c', `source infra.bash
COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _infra; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', ...words], { cwd: dir, encoding: 'utf8' }).split('\n').filter((l) => l !== '')
  t.deepEqual(complete(['infra', 'su']).sort(), ['sub', 'submit'])
  t.deepEqual(complete(['infra', 'sub', 'c']).sort(), ['cancel', 'create'])
  t.deepEqual(complete(['infra', 'jobs', '--st']), ['--state'])
  t.deepEqual(complete(['infra', 'jobs', '--state', '']), ['pending', 'running', 'success', 'failed'])
  t.deepEqual(complete(['infra', 'submit', '--container', 'echo', '--verify', 're']), ['reexecute'])
  t.deepEqual(complete(['infra', 'logs', '-']).sort(), ['--addr', '--config', '--control', '--follow', '--help', '--json', '--timeout', '-f'].sort())
  t.deepEqual(complete(['infra', 'verify', 'rec']), ['receipt.json'], 'file names where a file goes')
  t.deepEqual(complete(['infra', 'completion', '']), ['bash', 'zsh'])
  t.deepEqual(complete(['infra', 'records', 'ls', '--js']), ['--json'])
})

const zsh = existsSync('/usr/bin/zsh') || existsSync('/bin/zsh')
;(zsh ? test : test.skip)('zsh completion: the same candidates, through compadd (zsh installed)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inframind-completion-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, '_infra'), await script('zsh'))
  // compadd and _files are the completion system's; outside it they are stubs that print their candidates.
  const complete = (words: string[]): string[] => execFileSync('zsh', ['-c', `compdef() { : }
compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@" }
_files() { print -r -- '<files>' }
source ./_infra
words=("$@"); CURRENT=$#words; _infra`, 'zsh', ...words], { cwd: dir, encoding: 'utf8' }).split('\n').filter((l) => l !== '')
  t.true(complete(['infra', '']).includes('containers'))
  t.deepEqual(complete(['infra', 'sub', '']).sort(), ['cancel', 'create', 'get', 'help', 'key', 'list', 'ls', 'sign', 'watch'])
  t.deepEqual(complete(['infra', 'jobs', '--state', '']), ['pending', 'running', 'success', 'failed'])
  t.deepEqual(complete(['infra', 'verify', '--output', '']), ['<files>'])
  t.true(complete(['infra', 'peers', '-']).includes('--all'))
})
