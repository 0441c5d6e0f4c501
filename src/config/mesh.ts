import { multiaddr } from '@multiformats/multiaddr'
import type { AdmissionConfig, AdmissionMode, MeshConfig } from './types.ts'
import * as C from './constants.ts'
import { boolean, integer, oneOf, section, size, string, stringList, type Ctx, type Path } from './fields.ts'
import { parsePeerList } from './service.ts'

const MESH_KEYS = [
  'enabled', 'listen', 'announce', 'bootstrap', 'max_connections', 'heartbeat_interval_ms', 'forward_stats',
  'trusted_schedulers', 'max_gossip_bytes', 'max_clock_skew_ms', 'provide_interval_ms', 'inline_bytes',
  'behind_nat', 'relays', 'assign_via', 'ack_timeout_ms', 'admission'
] as const
const ADMISSION_KEYS = ['mode', 'mesh_name', 'network_key_file', 'operators', 'roster_file'] as const
const MESH_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/
const HOUR_MS = 3_600_000

/** `pathIn(p)`: a path resolved against node.data_dir. */
export function parseMesh (ctx: Ctx, raw: unknown, pathIn: (p: string) => string): MeshConfig {
  const path: Path = ['mesh']
  const o = section(ctx, raw, path, MESH_KEYS)
  const addrs = (key: string, def: readonly string[], needPeer: boolean): string[] => {
    const list = stringList(ctx, o, key, path, [...def], needPeer ? 'a list of multiaddrs ending in /p2p/<node id>' : 'a list of multiaddrs like "/ip4/0.0.0.0/tcp/4001"')
    list.forEach((text, i) => {
      try {
        const ma = multiaddr(text)
        if (needPeer && ma.getPeerId() === null) {
          ctx.report('INVALID_VALUE', [...path, key, i], 'a multiaddr ending in /p2p/<node id>', `"${text}" does not name a peer (add /p2p/<node id>)`)
        }
      } catch {
        ctx.report('INVALID_VALUE', [...path, key, i], 'a multiaddr like "/ip4/127.0.0.1/tcp/4001"', `"${text}" is not a multiaddr`)
      }
    })
    return list
  }
  const behindNat = boolean(ctx, o, 'behind_nat', path, false)
  const relays = addrs('relays', [], true)
  if (behindNat && relays.length === 0) {
    ctx.report('MISSING', [...path, 'relays'], 'at least one relay multiaddr', 'behind_nat: true needs relays to reach the mesh through')
  }
  return {
    enabled: boolean(ctx, o, 'enabled', path, C.DEFAULT_MESH_ENABLED),
    listen: addrs('listen', C.DEFAULT_MESH_LISTEN, false),
    announce: addrs('announce', [], false),
    bootstrap: addrs('bootstrap', [], true),
    maxConnections: integer(ctx, o, 'max_connections', path, C.DEFAULT_MAX_CONNECTIONS, 1, 100_000),
    heartbeatIntervalMs: integer(ctx, o, 'heartbeat_interval_ms', path, C.DEFAULT_HEARTBEAT_INTERVAL_MS, 1_000, 5_000),
    forwardStats: boolean(ctx, o, 'forward_stats', path, C.DEFAULT_FORWARD_STATS),
    trustedSchedulers: parsePeerList(ctx, o, 'trusted_schedulers', path),
    maxGossipBytes: size(ctx, o, 'max_gossip_bytes', path, C.DEFAULT_MAX_GOSSIP_BYTES, 1024, 4 * 1024 * 1024),
    maxClockSkewMs: integer(ctx, o, 'max_clock_skew_ms', path, C.DEFAULT_MAX_CLOCK_SKEW_MS, 100, HOUR_MS),
    provideIntervalMs: integer(ctx, o, 'provide_interval_ms', path, C.DEFAULT_PROVIDE_INTERVAL_MS, 1_000, 24 * HOUR_MS),
    inlineBytes: size(ctx, o, 'inline_bytes', path, C.DEFAULT_INLINE_BYTES, 0, 1024 * 1024),
    behindNat,
    relays,
    assignVia: oneOf<'grpc' | 'gossip'>(ctx, o, 'assign_via', path, C.DEFAULT_ASSIGN_VIA, ['grpc', 'gossip'] as const),
    ackTimeoutMs: integer(ctx, o, 'ack_timeout_ms', path, C.DEFAULT_ACK_TIMEOUT_MS, 100, 120_000),
    admission: parseAdmission(ctx, o.admission, pathIn)
  }
}

function parseAdmission (ctx: Ctx, raw: unknown, pathIn: (p: string) => string): AdmissionConfig {
  const path: Path = ['mesh', 'admission']
  const o = section(ctx, raw, path, ADMISSION_KEYS)
  const meshName = string(ctx, o, 'mesh_name', path, C.DEFAULT_MESH_NAME, { expected: 'a mesh name (lowercase letters, digits, . _ -; up to 64)' })
  if (!MESH_NAME.test(meshName)) {
    ctx.report('INVALID_VALUE', [...path, 'mesh_name'], 'a mesh name (lowercase letters, digits, . _ -; up to 64)', `"${meshName.slice(0, 80)}" is not a mesh name`)
  }
  return {
    mode: oneOf<AdmissionMode>(ctx, o, 'mode', path, C.DEFAULT_ADMISSION_MODE, ['private', 'open'] as const),
    meshName,
    networkKeyFile: pathIn(string(ctx, o, 'network_key_file', path, C.DEFAULT_NETWORK_KEY_FILE, { expected: 'a key file path' })),
    operators: parsePeerList(ctx, o, 'operators', path),
    rosterFile: pathIn(string(ctx, o, 'roster_file', path, C.DEFAULT_ROSTER_FILE, { expected: 'a file path' }))
  }
}
