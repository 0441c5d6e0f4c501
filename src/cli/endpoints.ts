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
    public: opts.addr ?? env.INFRAMIND_ADDR ?? fromConfig?.public ?? DEFAULT_PUBLIC,
    control: opts.control ?? env.INFRAMIND_CONTROL ?? fromConfig?.control ?? DEFAULT_CONTROL,
    maxMessageBytes: fromConfig?.maxMessageBytes
  }
}
