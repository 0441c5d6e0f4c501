import type { ContainerMode, ContainerProtocol, ImageSource, ServiceConfig } from './types.ts'
import * as C from './constants.ts'
import { boolean, integer, section, string, stringList, type Ctx, type Path } from './fields.ts'
import { parseCidr } from '../guardian/cidr.ts'

const SERVICE_KEYS = [
  'port', 'path', 'health_path', 'startup_timeout_ms', 'health_interval_ms', 'health_timeout_ms',
  'unhealthy_threshold', 'max_restarts', 'restart_backoff_ms', 'restart_backoff_max_ms'
] as const
const SOURCE_KEYS = ['url', 'sha256', 'pull', 'username', 'password'] as const
const HOUR_MS = 3_600_000
const HEX64 = /^[0-9a-f]{64}$/
const URL_PATTERN = /^https?:\/\/\S+$/
const HTTP_PATH = /^\/[^\s]*$/
// libp2p PeerIds in base58btc (12D3KooW..., Qm...).
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,100}$/

/**
 * The `service:` block of a container; required (with a port) when mode is service, refused otherwise.
 * An Infernet container may leave it out: its port, path and health path follow Infernet's conventions.
 */
export function parseService (ctx: Ctx, raw: unknown, path: Path, mode: ContainerMode, protocol: ContainerProtocol): ServiceConfig | undefined {
  const spath = [...path, 'service']
  if (mode !== 'service') {
    if (raw !== undefined && raw !== null) {
      ctx.report('INVALID_VALUE', spath, 'no service block (mode is oneshot)', 'a service block only applies to containers with mode: service')
    }
    return undefined
  }
  const infernet = protocol === 'infernet'
  if ((raw === undefined || raw === null) && !infernet) {
    ctx.report('MISSING', spath, 'a service block with at least `port`', 'mode: service needs a service block with the port the server listens on')
  }
  const o = section(ctx, raw, spath, SERVICE_KEYS)
  const backoff = integer(ctx, o, 'restart_backoff_ms', spath, C.DEFAULT_RESTART_BACKOFF_MS, 1, HOUR_MS)
  return {
    port: integer(ctx, o, 'port', spath, infernet ? C.INFERNET_SERVICE_PORT : 0, 1, 65535),
    path: string(ctx, o, 'path', spath, infernet ? C.INFERNET_SERVICE_PATH : C.DEFAULT_SERVICE_PATH, { pattern: HTTP_PATH, expected: 'an HTTP path like "/"' }),
    healthPath: string(ctx, o, 'health_path', spath, infernet ? C.INFERNET_HEALTH_PATH : C.DEFAULT_HEALTH_PATH, { pattern: HTTP_PATH, expected: 'an HTTP path like "/health"' }),
    startupTimeoutMs: integer(ctx, o, 'startup_timeout_ms', spath, C.DEFAULT_STARTUP_TIMEOUT_MS, 100, HOUR_MS),
    healthIntervalMs: integer(ctx, o, 'health_interval_ms', spath, C.DEFAULT_HEALTH_INTERVAL_MS, 100, HOUR_MS),
    healthTimeoutMs: integer(ctx, o, 'health_timeout_ms', spath, C.DEFAULT_HEALTH_TIMEOUT_MS, 10, HOUR_MS),
    unhealthyThreshold: integer(ctx, o, 'unhealthy_threshold', spath, C.DEFAULT_UNHEALTHY_THRESHOLD, 1, 1000),
    maxRestarts: integer(ctx, o, 'max_restarts', spath, C.DEFAULT_MAX_RESTARTS, 0, 1_000_000),
    restartBackoffMs: backoff,
    restartBackoffMaxMs: integer(ctx, o, 'restart_backoff_max_ms', spath, Math.max(backoff, C.DEFAULT_RESTART_BACKOFF_MAX_MS), backoff, HOUR_MS)
  }
}

/** Where a missing image is fetched from. */
export function parseSource (ctx: Ctx, raw: unknown, path: Path): ImageSource {
  const spath = [...path, 'source']
  const o = section(ctx, raw, spath, SOURCE_KEYS)
  const url = string(ctx, o, 'url', spath, '', { allowEmpty: true, pattern: URL_PATTERN, expected: 'an http:// or https:// URL of an image tar' })
  const sha256 = string(ctx, o, 'sha256', spath, '', { allowEmpty: true, pattern: HEX64, expected: 'the tar file\'s sha256 as 64 lowercase hex digits' })
  if (url !== '' && sha256 === '') {
    ctx.report('MISSING', [...spath, 'sha256'], 'the sha256 of the tar at url', 'an image tar URL needs its sha256: nothing is loaded unverified')
  }
  return {
    url,
    sha256,
    pull: boolean(ctx, o, 'pull', spath, false),
    username: string(ctx, o, 'username', spath, '', { allowEmpty: true }),
    password: string(ctx, o, 'password', spath, '', { allowEmpty: true })
  }
}

export function parseCidrList (ctx: Ctx, obj: Record<string, unknown>, key: string, path: Path): string[] {
  const list = stringList(ctx, obj, key, path, [], 'a list of CIDRs like ["127.0.0.0/8", "10.1.0.0/16"] (empty = any)')
  list.forEach((text, i) => {
    if (parseCidr(text) === undefined) {
      ctx.report('INVALID_VALUE', [...path, key, i], 'a CIDR like "10.0.0.0/8" or an address', `"${text}" is not a CIDR or IP address`)
    }
  })
  return list
}

export function parsePeerList (ctx: Ctx, obj: Record<string, unknown>, key: string, path: Path): string[] {
  const list = stringList(ctx, obj, key, path, [], 'a list of node ids like "12D3KooW..." (empty = any)')
  list.forEach((text, i) => {
    if (!PEER_ID.test(text)) ctx.report('INVALID_VALUE', [...path, key, i], 'a node id like "12D3KooW..."', `"${text}" is not a node id`)
  })
  return list
}
