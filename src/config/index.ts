import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, isAbsolute, relative, resolve } from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import type { ContainerConfig, NodeConfig, Role } from './types.ts'
import { expandHome } from '../identity/index.ts'
import * as C from './constants.ts'
import { ConfigError } from './errors.ts'
import { parseContainers } from './containers.ts'
import { parseMesh } from './mesh.ts'
import { parseArchive } from './archive.ts'
import { parseDashboard } from './dashboard.ts'
import { parseRest } from './rest.ts'
import type { VerificationMethod } from '../verification/policy.ts'

/** Verification methods a gateway can be set to use by default. */
const OFFERED_METHODS: VerificationMethod[] = ['none', 'signature', 'reexecute']
import {
  address, boolean, integer, isMapping, oneOf, section, size, string, Ctx, describe, type Path
} from './fields.ts'

export type { NodeConfig }
export * from './types.ts'
export { ConfigError } from './errors.ts'
export type { ConfigErrorCode } from './errors.ts'
export { parseAddress, formatSize } from './fields.ts'
export * as defaults from './constants.ts'

const TOP_KEYS = ['node', 'identity', 'api', 'runtime', 'jobs', 'gateway', 'store', 'telemetry', 'mesh', 'containers', 'archive', 'dashboard', 'rest'] as const

/** The config file to read: the argument, else INFRAMIND_CONFIG, else ./config.yaml. */
export function configPath (path?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (path !== undefined && path !== '') return path
  if (env.INFRAMIND_CONFIG !== undefined && env.INFRAMIND_CONFIG !== '') return env.INFRAMIND_CONFIG
  return C.DEFAULT_CONFIG_FILE
}

/** Reads and validates the node's config; throws one ConfigError listing every problem found. */
export function loadConfig (path?: string, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const given = configPath(path, env)
  const file = resolve(expandHome(given, env))
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
    throw new ConfigError({
      code: missing ? 'NOT_FOUND' : 'READ_ERROR',
      file,
      display: given,
      key: '',
      expected: 'a readable YAML file',
      detail: missing ? 'no such file (pass --config FILE or set INFRAMIND_CONFIG)' : `cannot read: ${(err as Error).message}`
    }, { cause: err })
  }
  return parseConfig(text, file, env)
}

/** Validates config text; `path` names the file in errors and anchors relative paths ('' = working directory). */
export function parseConfig (text: string, path: string, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const file = path === '' ? '' : resolve(path)
  const display = file === '' ? '<config>' : displayName(file)
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true })
  if (doc.errors.length > 0) {
    const errors = doc.errors.map((e) => new ConfigError({
      code: 'YAML_SYNTAX',
      file,
      display,
      key: '',
      expected: 'valid YAML',
      detail: `YAML syntax error: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`,
      line: e.linePos?.[0].line
    }))
    throw ConfigError.aggregate(errors)
  }
  const ctx = new Ctx(file, display, doc, lines)
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: C.MAX_YAML_ALIASES })
  } catch (err) {
    throw new ConfigError({ code: 'YAML_SYNTAX', file, display, key: '', expected: 'valid YAML', detail: (err as Error).message }, { cause: err })
  }
  if (raw !== null && raw !== undefined && !isMapping(raw)) {
    ctx.report('WRONG_TYPE', [], 'a mapping with sections node, api, ...', `the file must be a mapping of sections, got ${describe(raw)}`)
    throw ConfigError.aggregate(ctx.errors)
  }
  const config = build(ctx, section(ctx, raw, [], TOP_KEYS), file === '' ? process.cwd() : dirname(file), env)
  config.path = file
  if (ctx.errors.length > 0) throw ConfigError.aggregate(ctx.errors)
  return config
}

/** The config of an empty file: every default, paths resolved against the working directory. */
export function defaultConfig (): NodeConfig {
  return parseConfig('', '')
}

function build (ctx: Ctx, top: Record<string, unknown>, baseDir: string, env: NodeJS.ProcessEnv): NodeConfig {
  const at = (key: string, known: readonly string[]): Record<string, unknown> => section(ctx, top[key], [key], known)
  const pathIn = (dir: string, p: string): string => resolve(dir, expandHome(p, env))

  const node = at('node', ['name', 'roles', 'data_dir'])
  const dataDir = pathIn(baseDir, string(ctx, node, 'data_dir', ['node'], C.DEFAULT_DATA_DIR, { expected: 'a directory path' }))
  const identity = at('identity', ['key_file'])
  const api = at('api', ['public', 'control', 'control_socket', 'max_message_bytes'])
  const runtime = at('runtime', ['socket', 'engine_timeout_ms', 'pull_timeout_ms', 'start_timeout_ms', 'image_budget', 'prefetch'])
  const jobs = at('jobs', ['concurrency', 'queue_size', 'default_deadline_ms'])
  const gateway = at('gateway', ['max_in_flight', 'queue_size', 'verification'])
  const verification = section(ctx, gateway.verification, ['gateway', 'verification'], ['default_method', 'default_validators', 'max_validators'])
  const store = at('store', ['path', 'max_results'])
  const telemetry = at('telemetry', ['metrics', 'log_level'])
  const metrics = section(ctx, telemetry.metrics, ['telemetry', 'metrics'], ['enabled', 'listen'])

  const maxMessageBytes = size(ctx, api, 'max_message_bytes', ['api'], C.DEFAULT_MAX_MESSAGE_BYTES, 64 * 1024, C.MAX_MESSAGE_BYTES_LIMIT)
  const controlSocket = string(ctx, api, 'control_socket', ['api'], C.DEFAULT_CONTROL_SOCKET, { allowEmpty: true, expected: 'a unix socket path or ""' })
  const runtimeSocket = string(ctx, runtime, 'socket', ['runtime'], C.DEFAULT_RUNTIME_SOCKET, { allowEmpty: true, expected: 'a unix socket path or ""' })
  const config: NodeConfig = {
    path: '',
    node: {
      name: string(ctx, node, 'name', ['node'], C.DEFAULT_NODE_NAME, { allowEmpty: true }) || hostname(),
      roles: roles(ctx, node.roles),
      dataDir
    },
    identity: {
      keyFile: pathIn(baseDir, string(ctx, identity, 'key_file', ['identity'], C.DEFAULT_KEY_FILE, { expected: 'a key file path' }))
    },
    api: {
      public: address(ctx, api, 'public', ['api'], { host: C.DEFAULT_PUBLIC_HOST, port: C.DEFAULT_PUBLIC_PORT }),
      control: {
        ...address(ctx, api, 'control', ['api'], { host: C.DEFAULT_CONTROL_HOST, port: C.DEFAULT_CONTROL_PORT }),
        socket: controlSocket === '' ? '' : pathIn(baseDir, controlSocket)
      },
      maxMessageBytes
    },
    runtime: {
      socket: runtimeSocket === '' ? '' : pathIn(baseDir, runtimeSocket),
      engineTimeoutMs: integer(ctx, runtime, 'engine_timeout_ms', ['runtime'], C.DEFAULT_ENGINE_TIMEOUT_MS, 100, 3_600_000),
      pullTimeoutMs: integer(ctx, runtime, 'pull_timeout_ms', ['runtime'], C.DEFAULT_PULL_TIMEOUT_MS, 100, 24 * 3_600_000),
      startTimeoutMs: integer(ctx, runtime, 'start_timeout_ms', ['runtime'], C.DEFAULT_START_TIMEOUT_MS, 100, 3_600_000),
      imageBudgetBytes: size(ctx, runtime, 'image_budget', ['runtime'], C.DEFAULT_IMAGE_BUDGET_BYTES, 0, 2 ** 53),
      prefetch: boolean(ctx, runtime, 'prefetch', ['runtime'], C.DEFAULT_PREFETCH)
    },
    jobs: {
      concurrency: integer(ctx, jobs, 'concurrency', ['jobs'], C.DEFAULT_CONCURRENCY, 1, 1024),
      queueSize: integer(ctx, jobs, 'queue_size', ['jobs'], C.DEFAULT_QUEUE_SIZE, 0, 1_000_000),
      defaultDeadlineMs: integer(ctx, jobs, 'default_deadline_ms', ['jobs'], C.DEFAULT_DEADLINE_MS, 1, 7 * 24 * 3_600_000)
    },
    gateway: {
      maxInFlight: integer(ctx, gateway, 'max_in_flight', ['gateway'], C.DEFAULT_GATEWAY_MAX_IN_FLIGHT, 1, 100_000),
      queueSize: integer(ctx, gateway, 'queue_size', ['gateway'], C.DEFAULT_GATEWAY_QUEUE_SIZE, 0, 1_000_000),
      verification: {
        defaultMethod: oneOf(ctx, verification, 'default_method', ['gateway', 'verification'], C.DEFAULT_VERIFICATION_METHOD, OFFERED_METHODS),
        defaultValidators: integer(ctx, verification, 'default_validators', ['gateway', 'verification'], C.DEFAULT_VERIFICATION_VALIDATORS, 1, C.MAX_VERIFICATION_VALIDATORS),
        maxValidators: integer(ctx, verification, 'max_validators', ['gateway', 'verification'], C.DEFAULT_MAX_VERIFICATION_VALIDATORS, 1, C.MAX_VERIFICATION_VALIDATORS)
      }
    },
    store: {
      // The store lives inside data_dir unless given an absolute path.
      path: pathIn(dataDir, string(ctx, store, 'path', ['store'], C.DEFAULT_STORE_PATH, { expected: 'a directory path' })),
      maxResults: integer(ctx, store, 'max_results', ['store'], C.DEFAULT_MAX_RESULTS, 1, 100_000_000)
    },
    telemetry: {
      metrics: {
        enabled: boolean(ctx, metrics, 'enabled', ['telemetry', 'metrics'], C.DEFAULT_METRICS_ENABLED),
        ...address(ctx, metrics, 'listen', ['telemetry', 'metrics'], { host: C.DEFAULT_METRICS_HOST, port: C.DEFAULT_METRICS_PORT })
      },
      logLevel: oneOf(ctx, telemetry, 'log_level', ['telemetry'], C.DEFAULT_LOG_LEVEL, C.LOG_LEVELS)
    },
    mesh: parseMesh(ctx, top.mesh, (p) => pathIn(dataDir, p)),
    containers: parseContainers(ctx, top.containers, maxMessageBytes),
    archive: parseArchive(ctx, top.archive),
    dashboard: parseDashboard(ctx, top.dashboard),
    rest: parseRest(ctx, top.rest)
  }
  checkListeners(ctx, config)
  return config
}

function roles (ctx: Ctx, value: unknown): Role[] {
  const path: Path = ['node', 'roles']
  const expected = `a non-empty list of roles (${C.ROLES.join(', ')})`
  if (value === undefined || value === null) return [...C.DEFAULT_ROLES]
  if (!Array.isArray(value)) {
    ctx.report('WRONG_TYPE', path, expected, `expected ${expected}, got ${describe(value)}`)
    return [...C.DEFAULT_ROLES]
  }
  if (value.length === 0) ctx.report('INVALID_VALUE', path, expected, 'a node needs at least one role')
  const out: Role[] = []
  value.forEach((r: unknown, i: number) => {
    if (typeof r !== 'string' || !(C.ROLES as readonly string[]).includes(r)) {
      ctx.report(typeof r === 'string' ? 'INVALID_VALUE' : 'WRONG_TYPE', [...path, i], `one of ${C.ROLES.join(', ')}`, `expected one of ${C.ROLES.join(', ')}, got ${describe(r)}`)
    } else if (out.includes(r as Role)) {
      ctx.report('DUPLICATE', [...path, i], 'each role once', `role "${r}" is listed twice`)
    } else {
      out.push(r as Role)
    }
  })
  return out
}

function checkListeners (ctx: Ctx, config: NodeConfig): void {
  const { control, public: pub } = config.api
  if (!C.LOOPBACK_HOSTS.includes(control.host)) {
    ctx.report('INVALID_VALUE', ['api', 'control'], `a loopback address (${C.LOOPBACK_HOSTS.join(', ')})`,
      `the control listener changes the node, so it must be loopback only (127.0.0.1, ::1 or localhost), got "${control.host}"`)
  }
  // Two listeners on one port fail at start with EADDRINUSE; say so now, with the keys to change.
  const listeners: Array<[Path, { host: string, port: number }]> = [[['api', 'public'], pub]]
  if (control.socket === '') listeners.push([['api', 'control'], control])
  if (config.telemetry.metrics.enabled) listeners.push([['telemetry', 'metrics', 'listen'], config.telemetry.metrics])
  if (config.dashboard.enabled) listeners.push([['dashboard', 'listen'], config.dashboard])
  if (config.rest.enabled) listeners.push([['rest', 'listen'], config.rest])
  for (let i = 1; i < listeners.length; i++) {
    for (let j = 0; j < i; j++) {
      const [path, a] = listeners[i]
      const b = listeners[j][1]
      if (a.port !== 0 && a.port === b.port && (a.host === b.host || WILDCARDS.has(a.host) || WILDCARDS.has(b.host))) {
        ctx.report('DUPLICATE', path, 'a port no other listener uses', `port ${a.port} is also used by ${listeners[j][0].join('.')}`)
      }
    }
  }
}

const WILDCARDS: ReadonlySet<string> = new Set(['0.0.0.0', '::', ''])

function displayName (file: string): string {
  const rel = relative(process.cwd(), file)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file
}

/** A container config built in code (tests, tools): every field not given takes its config.yaml default. */
export function containerConfig (fields: Pick<ContainerConfig, 'id' | 'image' | 'digest'> & Partial<ContainerConfig>): ContainerConfig {
  return {
    description: '',
    command: [],
    env: {},
    resources: { cpus: C.DEFAULT_CONTAINER_CPUS, memoryBytes: C.DEFAULT_CONTAINER_MEMORY_BYTES, pids: C.DEFAULT_CONTAINER_PIDS, gpu: C.DEFAULT_CONTAINER_GPU },
    timeoutMs: C.DEFAULT_CONTAINER_TIMEOUT_MS,
    maxOutputBytes: C.DEFAULT_MAX_OUTPUT_BYTES,
    maxInputBytes: C.DEFAULT_MAX_INPUT_BYTES,
    inputSchema: C.DEFAULT_IO_SCHEMA,
    outputSchema: C.DEFAULT_IO_SCHEMA,
    network: C.DEFAULT_NETWORK,
    runtime: C.DEFAULT_OCI_RUNTIME,
    user: C.DEFAULT_CONTAINER_USER,
    mode: C.DEFAULT_CONTAINER_MODE,
    protocol: C.DEFAULT_CONTAINER_PROTOCOL,
    source: { url: '', sha256: '', pull: false, username: '', password: '' },
    external: C.DEFAULT_EXTERNAL,
    allowedIps: [],
    allowedPeers: [],
    allowedDelegates: [],
    generatesProofs: false,
    meshOnly: false,
    deterministic: false,
    ...fields
  }
}
