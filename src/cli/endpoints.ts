import { existsSync } from 'node:fs'

/** Client defaults when no config is found: the node's documented default listeners. */
const DEFAULT_PUBLIC = '127.0.0.1:9000'
const DEFAULT_CONTROL = '127.0.0.1:9001'

export interface Endpoints { public: string, control: string, maxMessageBytes?: number }

export interface EndpointOptions {
  addr?: string
  control?: string
  config?: string
  /**
   * 'control': the command talks only to the control listener (small answers), so a config.yaml
   * is not read when --control or INFRAMIND_CONTROL already says where it is.
   */
  needs?: 'control' | 'both'
}

/**
 * Where the CLI finds the node: --addr/--control, else INFRAMIND_ADDR/INFRAMIND_CONTROL, else the
 * listeners in the node's config (a wildcard public host is reached on loopback), else the defaults.
 * The config (and the YAML parser) is loaded only when there is one to read.
 */
export async function resolveEndpoints (opts: EndpointOptions, env: NodeJS.ProcessEnv): Promise<Endpoints> {
  let fromConfig: Endpoints | undefined
  const fromEnv = env.INFRAMIND_CONFIG === '' ? undefined : env.INFRAMIND_CONFIG
  const path = opts.config ?? fromEnv ?? (existsSync('config.yaml') ? 'config.yaml' : undefined)
  const known = opts.needs === 'control' && (opts.control ?? env.INFRAMIND_CONTROL) !== undefined && opts.config === undefined
  if (path !== undefined && !known) {
    const { loadConfig } = await import('../config/index.ts')
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
export async function resolveGateways (opts: { gateway?: string, addr?: string, config?: string }, env: NodeJS.ProcessEnv): Promise<string[]> {
  for (const list of [opts.gateway, opts.addr, env.INFRAMIND_ADDR]) {
    const addrs = splitAddresses(list)
    if (addrs.length > 0) return addrs
  }
  return [(await resolveEndpoints({ config: opts.config }, env)).public]
}

/** True when `infra submit` was given several gateways (then it goes through the failover client). */
export function wantsFailover (opts: { gateway?: string, addr?: string }, env: NodeJS.ProcessEnv): boolean {
  return opts.gateway !== undefined || (opts.addr ?? env.INFRAMIND_ADDR ?? '').includes(',')
}
