import { existsSync } from 'node:fs'
import { loadConfig } from '../config/index.ts'

/** Client defaults when no config is found: the node's documented default listeners. */
const DEFAULT_PUBLIC = '127.0.0.1:9000'
const DEFAULT_CONTROL = '127.0.0.1:9001'

export interface Endpoints { public: string, control: string, maxMessageBytes?: number }

/**
 * Where the CLI finds the node: --addr/--control, else INFRAMIND_ADDR/INFRAMIND_CONTROL, else the
 * listeners in the node's config (a wildcard public host is reached on loopback), else the defaults.
 */
export function resolveEndpoints (opts: { addr?: string, control?: string, config?: string }, env: NodeJS.ProcessEnv): Endpoints {
  let fromConfig: Endpoints | undefined
  const fromEnv = env.INFRAMIND_CONFIG === '' ? undefined : env.INFRAMIND_CONFIG
  const path = opts.config ?? fromEnv ?? (existsSync('config.yaml') ? 'config.yaml' : undefined)
  if (path !== undefined) {
    const cfg = loadConfig(path, env)
    const host = ['0.0.0.0', '::', ''].includes(cfg.api.public.host) ? '127.0.0.1' : cfg.api.public.host
    const ctl = cfg.api.control
    fromConfig = {
      public: `${host.includes(':') ? `[${host}]` : host}:${cfg.api.public.port}`,
      control: ctl.socket !== '' ? `unix:${ctl.socket}` : `${ctl.host.includes(':') ? `[${ctl.host}]` : ctl.host}:${ctl.port}`,
      maxMessageBytes: cfg.api.maxMessageBytes
    }
  }
  return {
    // A list (for the commands that fail over between gateways) means its first entry to the others.
    public: firstAddress(opts.addr) ?? firstAddress(env.INFRAMIND_ADDR) ?? fromConfig?.public ?? DEFAULT_PUBLIC,
    control: opts.control ?? env.INFRAMIND_CONTROL ?? fromConfig?.control ?? DEFAULT_CONTROL,
    maxMessageBytes: fromConfig?.maxMessageBytes
  }
}

/** "a:1, b:2,,c:3" -> ["a:1", "b:2", "c:3"]. */
export function splitAddresses (value: string | undefined): string[] {
  return (value ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '')
}

function firstAddress (value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : splitAddresses(value)[0]
}

/**
 * The gateways a failover command tries, in order: --gateway a,b,c, else --addr or INFRAMIND_ADDR
 * (either may be a comma list), else the one node resolveEndpoints finds.
 */
export function resolveGateways (opts: { gateway?: string, addr?: string, config?: string }, env: NodeJS.ProcessEnv): string[] {
  for (const list of [opts.gateway, opts.addr, env.INFRAMIND_ADDR]) {
    const addrs = splitAddresses(list)
    if (addrs.length > 0) return addrs
  }
  return [resolveEndpoints({ config: opts.config }, env).public]
}

/** True when `infra submit` was given several gateways (then it goes through the failover client). */
export function wantsFailover (argv: string[], env: NodeJS.ProcessEnv): boolean {
  if (argv.some((a) => a === '--gateway' || a.startsWith('--gateway='))) return true
  const i = argv.findIndex((a) => a === '--addr' || a.startsWith('--addr='))
  const addr = i === -1 ? env.INFRAMIND_ADDR : (argv[i].includes('=') ? argv[i].slice(argv[i].indexOf('=') + 1) : argv[i + 1])
  return (addr ?? '').includes(',')
}
