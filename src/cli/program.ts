/**
 * Every `infra` command, its arguments and options, declared once with commander: parsing, help,
 * usage errors and shell completion all come from this tree. Each action loads its command's module
 * only when it runs (dynamic import), so `infra --help` loads no gRPC and `infra status` no libp2p.
 */
import { Argument, Command, Help, Option } from 'commander'
import { fromCommand, type ParsedArgs } from './args.ts'
import { MAIN_FOOTER, RECORDS_USAGE, ROSTER_USAGE, SUB_USAGE } from './help.ts'
import type { CliIo } from './io.ts'
import { VERSION } from '../version.ts'

/** What an action returns: the exit status. */
type Run = (args: ParsedArgs, cmd: Command) => Promise<number> | number

/** How the groups read in `infra --help` (the subcommands on one line, as the old usage had them). */
const GROUP_TERMS: Record<string, string> = {
  roster: 'roster init|add|remove|sign|show|push [...]',
  sub: 'sub key|create|sign|cancel|get|ls|watch [...]',
  records: 'records receipt|certificate|ls [...]'
}

const VERIFY_METHODS = ['none', 'signature', 'reexecute']

export interface Built {
  program: Command
  /** The exit status of the action that ran (0 when none did, e.g. help). */
  code: () => number
}

/**
 * The program for one run. `argv` is the whole command line after `infra`: the commands that parse
 * their own arguments (start, init, verify, install) get their part of it unchanged.
 */
export function buildProgram (io: CliIo, argv: string[]): Built {
  let code = 0
  const act = (run: Run) => async (...params: unknown[]): Promise<void> => {
    const cmd = params[params.length - 1] as Command
    code = await run(fromCommand(cmd), cmd)
  }
  const raw = (): string[] => argv.slice(1)

  const program = new Command('infra')
  program
    .usage('<command> [options]')
    .description('the operator\'s command line of an inframind node')
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(infra <command> --help lists its options)')
    .configureHelp({
      subcommandTerm: (cmd) => GROUP_TERMS[cmd.name()] ?? Help.prototype.subcommandTerm.call(new Help(), cmd)
    })
    .addHelpText('after', MAIN_FOOTER)
    .helpCommand('help [command]', 'show the help of infra or of a command')

  program.command('init')
    .description('create (or show) this node\'s ed25519 identity')
    .option('--keygen', 'create a new key; refuses to replace an existing one')
    .option('--force', 'with --keygen: replace an existing key (the node id changes)')
    .option('--key <file>', 'key file (default: identity.key_file of the config)')
    .option('--config <file>', 'config.yaml to read identity.key_file from')
    .action(act(async () => await (await import('./init.ts')).runInit(raw(), io)))

  program.command('start')
    .description('run the node (Ctrl-C or SIGTERM stops it cleanly; a second one forces it)')
    .option('-c, --config <file>', 'config.yaml (default: INFRAMIND_CONFIG, else ./config.yaml)')
    .action(act(async () => await (await import('../../entrypoint.ts')).main(raw(), io.env)))

  nodeOptions(program.command('status')
    .description('node id, jobs, latency, uptime, resources, containers'), { json: true })
    .action(act(async (a) => await (await import('./client-commands.ts')).runStatus(a, io)))

  submitOptions(nodeOptions(program.command('submit')
    .description('submit a job (a comma list of containers runs a chain); --wait for its result'), { json: true }))
    .option('--gateway <list>', 'HOST:PORT,HOST:PORT...: gateways tried in order with one job id, failing over')
    .action(act(async (a) => await (await import('./submit.ts')).submit(a, io)))

  submitOptions(gatewayOptions(program.command('run')
    .description('submit --wait through the client library (fails over between --gateway a,b,c)'), { json: true }))
    .action(act(async (a) => {
      a.flags.set('wait', true)
      return await (await import('./submit.ts')).submit(a, io, { failover: true })
    }))

  nodeOptions(program.command('job')
    .description('one job: state, history, output, receipt, certificate, steps')
    .argument('<id>', 'the job id'), { json: true })
    .option('--receipt', 'print its signed receipt (JSON; check it with infra verify)')
    .option('--certificate', 'print its certificate (a verified job)')
    .option('--steps', 'each container of its chain, with its output')
    .option('--output-file <file>', 'write the output bytes to FILE')
    .action(act(async (a) => await (await import('./client-commands.ts')).runJob(a, io)))

  nodeOptions(program.command('jobs')
    .description('recent jobs, newest first'), { json: true })
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(['pending', 'running', 'success', 'failed']))
    .option('--limit <n>', 'at most N jobs (default 50)')
    .action(act(async (a) => await (await import('./client-commands.ts')).runJobs(a, io)))

  nodeOptions(program.command('logs')
    .description('a job\'s events and output; -f follows them live until it ends')
    .argument('<job>', 'the job id'), { json: true })
    .option('-f, --follow', 'follow the job live: each event and output chunk as it comes')
    .action(act(async (a) => await (await import('./logs.ts')).runLogs(a, io)))

  nodeOptions(program.command('containers')
    .description('the containers this node serves: mode, state, image'), { json: true })
    .option('--wait', 'wait until every image is fetched (showing its download bytes) and every service healthy (exit 1 if not)')
    .option('--wait-timeout <ms>', 'give up waiting after MS (default 600000)')
    .action(act(async (a) => await (await import('./containers.ts')).runContainers(a, io)))

  nodeOptions(program.command('peers')
    .description('mesh peers: roles, containers, latency'), { json: true })
    .option('--all', 'also peers that are gone')
    .action(act(async (a) => await (await import('./client-commands.ts')).runPeers(a, io)))

  nodeOptions(program.command('reputation')
    .description('this node\'s scheduler\'s record of each worker'), { json: true })
    .action(act(async (a) => await (await import('./containers.ts')).runReputation(a, io)))

  program.command('devnet')
    .description('a local private mesh of N node processes on loopback (Ctrl-C stops it)')
    .option('--nodes <n>', 'node processes, 3 to 64 (default 5)')
    .option('--validators <n>', 'validators among them (default 1)')
    .option('--gateways <n>', 'scheduler+gateways among them (default 1)')
    .option('--archives <n>', 'nodes that also keep records (default 1)')
    .option('--dir <dir>', 'data and logs (default .data/devnet)')
    .option('--warm', 'give the first worker the warm service containers')
    .action(act(async (a) => await (await import('./devnet.ts')).runDevnet(a, io)))

  program.command('verify')
    .description('check a receipt or certificate offline (exit 0 valid, 1 invalid)')
    .argument('<file>', 'a receipt or certificate file, or - for stdin')
    .option('--output <file>', 'also check that sha256(FILE) is the output hash it names')
    .option('--json', 'print the result as JSON')
    .action(act(async () => await (await import('./verify.ts')).runVerify(raw(), io)))

  rosterCommands(program, io, act)
  subCommands(program, io, act)
  recordsCommands(program, io, act)

  program.command('install')
    .description('install this node as a service on this machine (infra install --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(act(async () => await (await import('./install.ts')).runInstall(raw(), io)))

  program.command('completion')
    .description('print a shell completion script: eval "$(infra completion bash)"')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action(act(async (a) => {
      io.out((await import('./completion.ts')).completionScript(program, a.positionals[0] as 'bash' | 'zsh'))
      return 0
    }))

  return { program, code: () => code }
}

type Act = (run: Run) => (...params: unknown[]) => Promise<void>

/** Options of the commands that talk to one node. */
function nodeOptions (cmd: Command, opts: { json?: boolean } = {}): Command {
  cmd
    .option('--addr <host:port>', 'the node\'s public gRPC address (default INFRAMIND_ADDR, config.yaml, 127.0.0.1:9000)')
    .option('--control <address>', 'its control listener, HOST:PORT or unix:PATH (default INFRAMIND_CONTROL, config.yaml, 127.0.0.1:9001)')
    .option('--config <file>', 'the node\'s config.yaml, to find its listeners')
    .option('--timeout <ms>', 'per call (default 10000)')
  if (opts.json === true) cmd.option('--json', 'print JSON')
  return cmd
}

/** Options of the commands that go through the client library and fail over between gateways. */
function gatewayOptions (cmd: Command, opts: { json?: boolean } = {}): Command {
  cmd
    .option('--gateway <list>', 'HOST:PORT[,HOST:PORT...] tried in order, failing over (default --addr, INFRAMIND_ADDR or config.yaml)')
    .option('--addr <host:port>', 'a gateway (a comma list too)')
    .option('--config <file>', 'a node\'s config.yaml, to find its public listener')
    .option('--timeout <ms>', 'per call (default 10000)')
  if (opts.json === true) cmd.option('--json', 'print JSON')
  return cmd
}

function submitOptions (cmd: Command): Command {
  return cmd
    .option('--container <ids>', 'ID, or ID,ID,... a chain (the output of each feeds the next)')
    .option('--input <text>', 'the input')
    .option('--input-file <file>', 'the input from FILE (- for stdin)')
    .option('--wait', 'wait for the result and print it')
    .option('-f, --follow', 'print the output live as the job produces it, then wait for the end')
    .option('--deadline <ms>', 'fail the job if it has not finished within MS')
    .option('--job-id <id>', 'your id for the job (a retry with the same id never runs it twice)')
    .option('--requires-proof', 'ask for a proof (containers that generate proofs)')
    .option('--delegate <id>', 'run it on this worker')
    .option('--allow-probation', 'an open mesh may run it on a worker not in the roster (result unverified)')
    .option('--output-file <file>', 'write the output bytes to FILE')
    .addOption(new Option('--verify <method>', 'none, signature (validators check the receipt) or reexecute (they re-run it)').choices(VERIFY_METHODS))
    .option('--validators <n>', 'with --verify: how many validators')
    .option('--quorum <n>', 'with --verify: how many must agree')
}

function rosterCommands (program: Command, io: CliIo, act: Act): void {
  const roster = program.command('roster').description('a private mesh\'s operator-signed roster (infra roster help)')
  const mod = async (): Promise<typeof import('./roster.ts')> => await import('./roster.ts')
  roster.command('init')
    .description('create the operator key and the mesh key (each only if missing) and an empty draft')
    .option('--draft <file>', 'the draft').option('--operator-key <file>', 'the operator key')
    .option('--mesh-key <file>', 'the mesh key').option('--mesh <name>', 'the mesh name')
    .action(act(async (a) => await (await mod()).rosterInit(a, io)))
  roster.command('add')
    .description('list a node in the draft (a listed node gets the new roles)')
    .argument('<node-id>', 'the id `infra init` prints on that node')
    .option('--roles <roles>', 'ROLE[,ROLE...]').option('--name <name>', 'a name for it').option('--draft <file>', 'the draft')
    .action(act(async (a) => await (await mod()).rosterAdd(a, io)))
  roster.command('remove')
    .description('take a node out of the draft')
    .argument('<node-id>', 'its id').option('--draft <file>', 'the draft')
    .action(act(async (a) => await (await mod()).rosterRemove(a, io)))
  roster.command('sign')
    .description('sign the draft as its next version')
    .option('--operator-key <file>', 'the operator key').option('--draft <file>', 'the draft').option('--out <file>', 'the signed roster')
    .option('--expires <duration>', '30d, 12h, 90m, or 0 = never (default)')
    .action(act(async (a) => await (await mod()).rosterSign(a, io)))
  roster.command('show')
    .description('a draft or a signed roster (its signature checked); --node: the roster a running node holds')
    .argument('[file]', 'the draft or signed roster')
    .option('--operators <ids>', 'ID,...: check the signer is one of them').option('--node', 'ask a running node')
    .option('--control <address>', 'the node\'s control listener').option('--addr <host:port>', 'the node\'s public address')
    .option('--config <file>', 'the node\'s config.yaml').option('--timeout <ms>', 'per call').option('--json', 'print JSON')
    .action(act(async (a) => await (await mod()).rosterShow(a, io)))
  roster.command('push')
    .description('apply a signed roster on a node; the mesh passes it on')
    .argument('<file>', 'the signed roster')
    .option('--control <address>', 'the node\'s control listener').option('--addr <host:port>', 'the node\'s public address')
    .option('--config <file>', 'the node\'s config.yaml').option('--timeout <ms>', 'per call')
    .action(act(async (a) => await (await mod()).rosterPush(a, io)))
  roster.configureHelp({ formatHelp: () => ROSTER_USAGE })
}

function specOptions (cmd: Command): Command {
  return cmd
    .option('--key <file>', 'the owner key')
    .option('--container <ids>', 'ID or a chain ID,ID,...')
    .option('--input <input>', 'TEXT, @FILE or @- (stdin)')
    .option('--frequency <n>', 'intervals').option('--period <s>', 'seconds between intervals (0 = once)')
    .option('--redundancy <r>', 'distinct nodes answering each interval')
    .option('--nonce <x>', 'the same owner and nonce again is the same subscription')
    .option('--expires-in <s>', 'no gateway accepts the request after S seconds (default 3600)')
    .option('--lazy', 'keep outputs by hash in archives')
    .option('--deadline <ms>', 'each job\'s deadline')
    .addOption(new Option('--verify <method>', 'none, signature or reexecute').choices(VERIFY_METHODS))
    .option('--validators <n>', 'with --verify').option('--quorum <n>', 'with --verify')
}

function subCommands (program: Command, io: CliIo, act: Act): void {
  const sub = program.command('sub').description('subscriptions signed with an owner key (infra sub help)')
  const mod = async (): Promise<typeof import('./sub.ts')> => await import('./sub.ts')
  sub.command('key').description('create an owner key').option('--out <file>', 'where').option('--force', 'replace an existing one')
    .action(act(async (a) => (await mod()).runKey(a, io)))
  specOptions(gatewayOptions(sub.command('create').description('sign a subscription with the owner\'s key and create it'), { json: true }))
    .option('--signed <file>', 'create one signed earlier with `sub sign`')
    .action(act(async (a) => await (await mod()).runCreate(a, io)))
  specOptions(sub.command('sign').description('sign off-line; write the signed request to --out'))
    .option('--out <file>', 'where').option('--force', 'replace an existing file')
    .action(act(async (a) => await (await mod()).runSign(a, io)))
  gatewayOptions(sub.command('cancel').description('cancel (the owner\'s key only)').argument('<id>', 'the subscription id'), { json: true })
    .option('--key <file>', 'the owner key')
    .action(act(async (a) => await (await mod()).runCancel(a, io)))
  gatewayOptions(sub.command('get').description('one subscription: state, interval, request, responses').argument('<id>', 'the subscription id'), { json: true })
    .action(act(async (a) => await (await mod()).runGet(a, io)))
  gatewayOptions(sub.command('ls').alias('list').description('subscriptions the gateway\'s coordinators hold'), { json: true })
    .option('--owner <id>', 'only this owner\'s')
    .addOption(new Option('--state <state>', 'only in this state').choices(['pending', 'active', 'completed', 'cancelled']))
    .action(act(async (a) => await (await mod()).runList(a, io)))
  gatewayOptions(sub.command('watch').description('each accepted response as it comes').argument('<id>', 'the subscription id'), { json: true })
    .option('--from <n>', 'replay from interval N').option('--key <file>', 'the owner key, to open the outputs')
    .action(act(async (a) => await (await mod()).runWatch(a, io)))
  sub.configureHelp({ formatHelp: () => SUB_USAGE })
}

function recordsCommands (program: Command, io: CliIo, act: Act): void {
  const records = program.command('records').description('receipts, certificates and records from archive nodes (infra records help)')
  const mod = async (): Promise<typeof import('./records.ts')> => await import('./records.ts')
  for (const kind of ['receipt', 'certificate'] as const) {
    gatewayOptions(records.command(kind).description(`a job's newest ${kind}, as infra verify takes it`).argument('<ref>', 'JOB_ID or the record\'s sha256'), { json: true })
      .option('--out <file>', 'write it to FILE')
      .action(act(async (a) => await (await mod()).runRecord(kind, a, io)))
  }
  gatewayOptions(records.command('ls').alias('list').description('records in the order the archive stored them'), { json: true })
    .option('--job <id>', 'of this job').option('--node <id>', 'naming this node')
    .option('--since <t>', 'ISO time or unix ms').option('--until <t>', 'ISO time or unix ms')
    .option('--kind <kind>', 'receipt, attestation, certificate, dispute, output, subscription-event')
    .option('--page-size <n>', '1 to 1000 (default 100)').option('--page-token <t>', 'the next page')
    .action(act(async (a) => await (await mod()).runRecordList(a, io)))
  records.configureHelp({ formatHelp: () => RECORDS_USAGE })
}
