/** `infra`: the operator's command line. The only place that writes to the console for users. */
import { pathToFileURL } from 'node:url'
import { UsageError } from './args.ts'
import { wantsFailover } from './endpoints.ts'
import { runJob, runJobs, runPeers, runStatus, runSubmit, type CliIo } from './client-commands.ts'
import { runInit } from './init.ts'
import { runRoster } from './roster.ts'
import { runVerify } from './verify.ts'

const USAGE = `usage: infra <command> [options]

commands:
  init --keygen [--force] [--key FILE] [--config FILE]   create this node's ed25519 identity
  start [--config FILE]                                  run the node (Ctrl-C stops it)
  status [--json]                                        node id, jobs, latency, uptime, resources, containers
  submit --container ID[,ID...] (--input TEXT | --input-file F|-) [--wait] [--json] [--deadline MS] [--job-id ID]
         [--requires-proof] [--delegate ID] [--allow-probation] [--output-file F]
         [--verify none|signature|reexecute [--validators V] [--quorum Q]]
                                                         a comma list runs a chain; --allow-probation: an open mesh may
                                                         run it on a worker not in the roster (result unverified);
                                                         --verify reexecute: Q of V validators re-run it (a certificate);
                                                         signature: they check the receipt without re-running it
         [--gateway HOST:PORT,HOST:PORT...]              several gateways: tried in order with one job id, failing over
                                                         (also when --addr or INFRAMIND_ADDR is a comma list)
  run <the options of submit>                            submit --wait through the client library (failover as above)
  job ID [--json | --receipt | --certificate | --steps] [--output-file F]
                                                         one job: state, history, output, receipt, certificate, steps
  peers [--all] [--json]                                 mesh peers: roles, containers, latency
  devnet [--nodes N] [--validators V] [--gateways G] [--archives A] [--dir DIR] [--warm]
                                                         a local private mesh of N processes on loopback, V of them
                                                         validators (default 5 and 1; Ctrl-C stops it)
  jobs [--state S] [--limit N] [--json]                  recent jobs, newest first
  verify <file|-> [--output FILE] [--json]               check a receipt or certificate offline (exit 0 valid, 1 invalid)
  roster init|add|remove|sign|show|push [...]            a private mesh's operator-signed roster (infra roster help)
  sub key|create|sign|cancel|get|ls|watch [...]          subscriptions signed with an owner key (infra sub help)
  records receipt|certificate|ls [...]                   receipts, certificates and records from archive nodes (infra records help)

start and devnet stop cleanly on Ctrl-C or SIGTERM (exit 0); a second one forces it (exit 130/143).

client options: --addr HOST:PORT (public gRPC, default from config.yaml or 127.0.0.1:9000),
                --control HOST:PORT|unix:PATH (default from config.yaml or 127.0.0.1:9001),
                --config FILE, --timeout MS
`

async function readStdin (): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return new Uint8Array(Buffer.concat(chunks))
}

export async function cli (argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'init': return await runInit(rest, io)
      case 'start': {
        const { main } = await import('../../entrypoint.ts')
        return await main(rest, io.env)
      }
      case 'status': return await runStatus(rest, io)
      case 'submit': {
        // Several gateways: through the failover client (loaded only then, so the one-node path stays as light).
        if (!wantsFailover(rest, io.env)) return await runSubmit(rest, io)
        return await (await import('./gateways.ts')).runSubmitFailover(rest, io)
      }
      case 'run': return await (await import('./gateways.ts')).runSubmitFailover([...rest, '--wait'], io)
      case 'sub': return await (await import('./sub.ts')).runSub(rest, io)
      case 'records': return await (await import('./records.ts')).runRecords(rest, io)
      case 'job': return await runJob(rest, io)
      case 'jobs': return await runJobs(rest, io)
      case 'peers': return await runPeers(rest, io)
      case 'devnet': {
        const { runDevnet } = await import('./devnet.ts')
        return await runDevnet(rest, io)
      }
      case 'verify': return await runVerify(rest, io)
      case 'roster': return await runRoster(rest, io)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE)
        return command === undefined ? 2 : 0
      default:
        io.err(`unknown command "${command}"\n\n${USAGE}`)
        return 2
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { name?: string }).name === 'ConfigError') {
      io.err(`${(err as Error).message}\n`)
      return 2
    }
    io.err(`error: ${(err as Error).message ?? String(err)}\n`)
    return 1
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const io: CliIo = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    stdin: readStdin,
    stderr: process.stderr
  }
  cli(process.argv.slice(2), io).then((code) => {
    // `start` exits from its own signal handler; client commands exit once output is flushed.
    process.exitCode = code
    if (process.argv[2] !== 'start') setImmediate(() => process.exit(code))
  }, (err: unknown) => {
    process.stderr.write(`fatal: ${String(err)}\n`)
    process.exit(1)
  })
}
