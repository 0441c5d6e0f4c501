/**
 * Boots one inframind node from config.yaml and runs it until SIGINT/SIGTERM.
 * Config path: --config FILE, else INFRAMIND_CONFIG, else ./config.yaml.
 */
import { pathToFileURL } from 'node:url'
import { loadConfig } from './src/config/index.ts'
import { createNode, type InframindNode } from './src/node.ts'
import { forcedExitCode, onStopRequests } from './src/cli/stop.ts'

/** Exit codes: 0 clean stop (also after SIGINT/SIGTERM), 1 runtime failure, 2 bad config or usage, 128+N forced by a second signal N (130, 143). */
export async function main (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let configPath: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--config' || arg === '-c') configPath = argv[++i]
    else if (arg.startsWith('--config=')) configPath = arg.slice('--config='.length)
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: infra start [--config FILE]\n  Runs the node until Ctrl-C or SIGTERM (exit 0 once stopped cleanly; a second one forces: exit 130/143). Config: --config, else $INFRAMIND_CONFIG, else ./config.yaml\n')
      return 0
    } else {
      process.stderr.write(`unknown argument "${arg}" (usage: infra start [--config FILE])\n`)
      return 2
    }
  }
  if (configPath === undefined && argv.includes('--config')) {
    process.stderr.write('--config needs a file path\n')
    return 2
  }

  let node: InframindNode
  try {
    const config = loadConfig(configPath, env)
    node = await createNode({ config })
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    return (err as { name?: string }).name === 'ConfigError' ? 2 : 1
  }

  try {
    await node.start()
  } catch (err) {
    node.logger.fatal({ err }, 'node failed to start')
    process.stderr.write(`node failed to start: ${(err as Error).message}\n`)
    return 1
  }

  // A stop request (signal, or the launcher's forwarded one) stops the node cleanly and exits 0; a
  // repeated one exits at once with 128 + the signal's number, leaving service containers behind.
  return await new Promise<number>((resolve) => {
    const dispose = onStopRequests((kind, signal) => {
      if (kind === 'force') {
        node.logger.warn({ signal }, 'second stop request: exiting without a clean stop')
        process.exit(forcedExitCode(signal))
      }
      node.logger.info({ signal }, 'stopping')
      node.stop().then(() => { dispose(); resolve(0) }, (err: unknown) => {
        node.logger.error({ err }, 'stop failed')
        dispose()
        resolve(1)
      })
    })
  })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => { process.exit(code) }, (err: unknown) => {
    process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  })
}
