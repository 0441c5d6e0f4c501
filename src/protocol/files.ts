/**
 * Where the protocol's .proto files are and how they are presented: shared by the node's loader
 * (src/protocol/loader.ts) and the CLI bundle's light one (src/cli/proto-light.ts), and light itself
 * (no protobuf parsing, no gRPC package run), so both can start from it.
 */
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type * as protoLoader from '@grpc/proto-loader'
import { ProtocolLoadError } from './errors.ts'

/** proto/ at the repo root, found from this file so the node works from any working directory. */
export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url))
/** Our package's folder under PROTO_ROOT; every .proto in it is loaded, so a new file needs no code change. */
export const PROTO_DIR = 'inframind/v1'

/**
 * grpc.health.v1 ships with grpc-health-check; loaded with ours so reflection can describe the health
 * service too. Found next to the package's entry rather than by running it (it parses the file on load).
 */
export const HEALTH_PROTO: string = path.resolve(path.dirname(createRequire(import.meta.url).resolve('grpc-health-check')), '../../proto/health/v1/health.proto')

/**
 * How @grpc/proto-loader presents messages to handlers and clients: camelCase fields, enums as
 * value names, 64-bit ints as numbers (every uint64 we carry is a time, size or count far below
 * 2^53), bytes as Buffer, defaults filled in.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true
}

/** Our .proto files, relative to PROTO_ROOT, in a stable order. */
export function protoFiles (): string[] {
  const dir = path.join(PROTO_ROOT, PROTO_DIR)
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    throw new ProtocolLoadError(`cannot list ${dir}: ${(err as Error).message}`, { cause: err })
  }
  return names.filter((n) => n.endsWith('.proto')).sort().map((n) => `${PROTO_DIR}/${n}`)
}
