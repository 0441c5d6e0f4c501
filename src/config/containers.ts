import type { ContainerConfig, ContainerProtocol, ContainerResources, IoSchema, OciRuntime } from './types.ts'
import { IO_SCHEMAS } from '../runtime/schema.ts'
import * as C from './constants.ts'
import { parseCidrList, parsePeerList, parseService, parseSource } from './service.ts'
import {
  boolean, describe, formatSize, integer, isMapping, oneOf, positiveNumber, section, size, string, stringList, type Ctx, type Path
} from './fields.ts'

const CONTAINER_KEYS = [
  'id', 'description', 'image', 'digest', 'command', 'env', 'resources', 'timeout_ms', 'max_output_bytes',
  'max_input_bytes', 'input_schema', 'output_schema', 'network', 'runtime', 'user', 'mode', 'service', 'source',
  'external', 'allowed_ips', 'allowed_peers', 'allowed_delegates', 'generates_proofs', 'mesh_only',
  'deterministic', 'protocol'
] as const
const RESOURCE_KEYS = ['cpus', 'memory', 'pids', 'gpu'] as const

// Jobs address containers by id in URLs, CLI arguments and metrics labels: keep ids plain.
/** containers[].id: what jobs name a container by (the gateway refuses any other id with this rule). */
export const CONTAINER_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/
const ID = CONTAINER_ID_PATTERN
const DIGEST = /^sha256:[0-9a-f]{64}$/
const IMAGE = /^[^\s]+$/
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/
/** Far beyond any edge device; catches unit mistakes like giving millicores. */
const MAX_CPUS = 1024
const MAX_PIDS = 1_000_000
/** A week: anything longer is a service, not a job. */
const MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000
const MAX_MEMORY_BYTES = 2 ** 50

export function parseContainers (ctx: Ctx, value: unknown, maxMessageBytes: number): ContainerConfig[] {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) {
    ctx.report('WRONG_TYPE', ['containers'], 'a list of containers', `expected a list of containers, got ${describe(value)}`)
    return []
  }
  const out: ContainerConfig[] = []
  const seen = new Map<string, number>()
  value.forEach((item: unknown, i: number) => {
    const path: Path = ['containers', i]
    if (!isMapping(item)) {
      ctx.report('WRONG_TYPE', path, 'a container mapping (id, image, digest, ...)', `expected a container mapping, got ${describe(item)}`)
      return
    }
    const c = parseContainer(ctx, item, path, maxMessageBytes)
    const first = seen.get(c.id)
    if (first !== undefined && c.id !== '') {
      ctx.report('DUPLICATE', [...path, 'id'], 'a container id not used before', `duplicate container id "${c.id}" (also containers[${first}].id)`)
    } else {
      seen.set(c.id, i)
    }
    out.push(c)
  })
  return out
}

function parseContainer (ctx: Ctx, raw: Record<string, unknown>, path: Path, maxMessageBytes: number): ContainerConfig {
  const o = section(ctx, raw, path, CONTAINER_KEYS)
  const resources = section(ctx, o.resources, [...path, 'resources'], RESOURCE_KEYS)
  const rpath = [...path, 'resources']
  // Inputs and outputs travel inside one gRPC message (SubmitJob / GetJob).
  const maxInline = Math.max(1, maxMessageBytes - C.MESSAGE_OVERHEAD_BYTES)
  const protocol = oneOf<ContainerProtocol>(ctx, o, 'protocol', path, C.DEFAULT_CONTAINER_PROTOCOL, C.CONTAINER_PROTOCOLS)
  const infernet = protocol === 'infernet'
  // An Infernet container is an HTTP server by definition: the protocol alone makes it a service.
  const mode = oneOf(ctx, o, 'mode', path, infernet ? 'service' : C.DEFAULT_CONTAINER_MODE, C.CONTAINER_MODES)
  if (infernet && mode !== 'service') {
    ctx.report('INVALID_VALUE', [...path, 'protocol'], 'protocol only on a service container',
      'protocol: infernet is for warm HTTP services (Infernet containers are servers on /service_output): remove mode: oneshot, or the protocol key')
  }
  const ioDefault = infernet ? C.INFERNET_IO_SCHEMA : C.DEFAULT_IO_SCHEMA
  const network = oneOf(ctx, o, 'network', path, C.DEFAULT_NETWORK, C.NETWORK_MODES)
  if (mode === 'service' && network === 'none' && o.network !== undefined) {
    ctx.report('INVALID_VALUE', [...path, 'network'], 'bridge (or leave it out) for a service container',
      'a service container is reached through a port published on 127.0.0.1, which needs network: bridge')
  }
  const id = string(ctx, o, 'id', path, '', { required: true, pattern: ID, expected: 'an id of lowercase letters, digits, ".", "_" or "-" (e.g. "echo")' })
  const res: ContainerResources = {
    cpus: positiveNumber(ctx, resources, 'cpus', rpath, C.DEFAULT_CONTAINER_CPUS, MAX_CPUS),
    memoryBytes: size(ctx, resources, 'memory', rpath, C.DEFAULT_CONTAINER_MEMORY_BYTES, C.MIN_CONTAINER_MEMORY_BYTES, MAX_MEMORY_BYTES),
    pids: integer(ctx, resources, 'pids', rpath, C.DEFAULT_CONTAINER_PIDS, 1, MAX_PIDS),
    gpu: boolean(ctx, resources, 'gpu', rpath, C.DEFAULT_CONTAINER_GPU)
  }
  return {
    id,
    description: string(ctx, o, 'description', path, '', { allowEmpty: true }),
    image: string(ctx, o, 'image', path, '', { required: true, pattern: IMAGE, expected: 'an image reference like "inframind/echo:1"' }),
    digest: string(ctx, o, 'digest', path, '', { required: true, pattern: DIGEST, expected: 'an image digest "sha256:<64 lowercase hex>"' }),
    command: stringList(ctx, o, 'command', path, [], 'a list of strings like [cat] (empty = the image\'s default)'),
    env: parseEnv(ctx, o.env, [...path, 'env']),
    resources: res,
    timeoutMs: integer(ctx, o, 'timeout_ms', path, C.DEFAULT_CONTAINER_TIMEOUT_MS, 1, MAX_TIMEOUT_MS),
    maxOutputBytes: size(ctx, o, 'max_output_bytes', path, Math.min(C.DEFAULT_MAX_OUTPUT_BYTES, maxInline), 1, maxInline),
    maxInputBytes: size(ctx, o, 'max_input_bytes', path, Math.min(C.DEFAULT_MAX_INPUT_BYTES, maxInline), 1, maxInline),
    inputSchema: oneOf<IoSchema>(ctx, o, 'input_schema', path, ioDefault, IO_SCHEMAS),
    outputSchema: oneOf<IoSchema>(ctx, o, 'output_schema', path, ioDefault, IO_SCHEMAS),
    // Service containers are reached through a port on 127.0.0.1, which needs a bridge network.
    network: mode === 'service' ? 'bridge' : network,
    runtime: parseRuntime(ctx, o, path, id, res),
    user: parseUser(ctx, o, path),
    mode,
    protocol: mode === 'service' ? protocol : C.DEFAULT_CONTAINER_PROTOCOL,
    service: parseService(ctx, o.service, path, mode, protocol),
    source: parseSource(ctx, o.source, path),
    external: boolean(ctx, o, 'external', path, C.DEFAULT_EXTERNAL),
    allowedIps: parseCidrList(ctx, o, 'allowed_ips', path),
    allowedPeers: parsePeerList(ctx, o, 'allowed_peers', path),
    allowedDelegates: parsePeerList(ctx, o, 'allowed_delegates', path),
    generatesProofs: boolean(ctx, o, 'generates_proofs', path, false),
    meshOnly: boolean(ctx, o, 'mesh_only', path, false),
    // Off unless declared: re-execution compares outputs byte for byte, which only a deterministic container can pass.
    deterministic: boolean(ctx, o, 'deterministic', path, false)
  }
}

/**
 * runtime: runc or runsc, nothing else (a typo must not quietly mean the weaker runtime). Under runsc
 * the gVisor sandbox itself lives inside the container's limits, so they must leave it room to start.
 */
function parseRuntime (ctx: Ctx, o: Record<string, unknown>, path: Path, id: string, res: ContainerResources): OciRuntime {
  const value = o.runtime
  if (value === undefined || value === null) return C.DEFAULT_OCI_RUNTIME
  const expected = `one of ${C.OCI_RUNTIMES.join(', ')}`
  const known = C.OCI_RUNTIMES.find((r) => r === value)
  if (known === undefined) {
    ctx.report(typeof value === 'string' ? 'INVALID_VALUE' : 'WRONG_TYPE', [...path, 'runtime'], expected,
      `container "${id}" asks for runtime ${describe(value)}; the allowed runtimes are runc (the engine's default) and runsc (gVisor)`)
    return C.DEFAULT_OCI_RUNTIME
  }
  if (known === 'runsc') {
    const rpath = [...path, 'resources']
    if (res.pids < C.MIN_RUNSC_PIDS) {
      ctx.report('OUT_OF_RANGE', [...rpath, 'pids'], `at least ${C.MIN_RUNSC_PIDS} with runtime runsc`,
        `container "${id}" runs under runsc, whose gVisor sandbox threads count against this limit: set resources.pids to at least ${C.MIN_RUNSC_PIDS}, got ${res.pids}`)
    }
    if (res.memoryBytes < C.MIN_RUNSC_MEMORY_BYTES) {
      ctx.report('OUT_OF_RANGE', [...rpath, 'memory'], `at least ${formatSize(C.MIN_RUNSC_MEMORY_BYTES)} with runtime runsc`,
        `container "${id}" runs under runsc, whose gVisor sandbox memory counts against this limit: set resources.memory to at least ${formatSize(C.MIN_RUNSC_MEMORY_BYTES)}, got ${formatSize(res.memoryBytes)}`)
    }
  }
  return known
}

function parseEnv (ctx: Ctx, value: unknown, path: Path): Record<string, string> {
  if (value === undefined || value === null) return {}
  if (!isMapping(value)) {
    ctx.report('WRONG_TYPE', path, 'a mapping of NAME: value', `expected a mapping of NAME: value, got ${describe(value)}`)
    return {}
  }
  const env: Record<string, string> = {}
  for (const [name, v] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) {
      ctx.report('INVALID_VALUE', [...path, name], 'a variable name of letters, digits and _', `"${name}" is not a valid environment variable name`)
    } else if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) {
      env[name] = String(v)
    } else {
      ctx.report('WRONG_TYPE', [...path, name], 'a string', `expected a string, got ${describe(v)}`)
    }
  }
  return env
}

function parseUser (ctx: Ctx, o: Record<string, unknown>, path: Path): string {
  const user = string(ctx, o, 'user', path, C.DEFAULT_CONTAINER_USER, { pattern: USER, expected: 'a non-root "uid:gid" like "65534:65534"' })
  const uid = user.split(':')[0]
  // Any spelling of uid 0 ("0", "00", "root") is root, whatever the group.
  if (uid === 'root' || /^0+$/.test(uid)) {
    ctx.report('INVALID_VALUE', [...path, 'user'], 'a non-root "uid:gid" like "65534:65534"', `containers never run as root, got ${describe(user)}`)
    return C.DEFAULT_CONTAINER_USER
  }
  return user
}
