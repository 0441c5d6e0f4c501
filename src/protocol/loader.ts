/**
 * The one loader of the .proto files. Everything that encodes, decodes or serves protobuf (gRPC,
 * gossip, fetch, envelopes, receipts, the type generator) uses this Root, so no two parts of the
 * node can disagree about a message.
 */
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import * as protoLoader from '@grpc/proto-loader'
import { ProtocolLoadError, UnknownMessageTypeError } from './errors.ts'

/** proto/ at the repo root, found from this file so the node works from any working directory. */
export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url))
/** Our package's folder under PROTO_ROOT; every .proto in it is loaded, so a new file needs no code change. */
export const PROTO_DIR = 'inframind/v1'

const require = createRequire(import.meta.url)
/** grpc.health.v1 ships with grpc-health-check; loaded with ours so reflection can describe the health service too. */
export const HEALTH_PROTO: string = require('grpc-health-check').protoPath

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

let root: protobuf.Root | undefined

/** Every message, enum and service, loaded once; field names camelCased, .proto comments kept (the generator reads them). */
export function protoRoot (): protobuf.Root {
  if (root !== undefined) return root
  const r = new protobuf.Root()
  r.resolvePath = (_origin, target) => path.isAbsolute(target) ? target : path.join(PROTO_ROOT, target)
  try {
    r.loadSync([...protoFiles(), HEALTH_PROTO], { keepCase: false, alternateCommentMode: true })
    r.resolveAll()
  } catch (err) {
    throw new ProtocolLoadError(`cannot load the .proto files under ${PROTO_ROOT}: ${(err as Error).message}`, { cause: err })
  }
  root = r
  return r
}

const types = new Map<string, protobuf.Type>()

/** The message type named `fullName` (e.g. inframind.v1.Heartbeat); throws UnknownMessageTypeError. */
export function messageType (fullName: string): protobuf.Type {
  let type = types.get(fullName)
  if (type !== undefined) return type
  const found = protoRoot().lookup(fullName)
  if (!(found instanceof protobuf.Type)) throw new UnknownMessageTypeError(fullName)
  type = found
  types.set(fullName, type)
  return type
}

/** The service named `fullName` (e.g. inframind.v1.Node); throws UnknownMessageTypeError. */
export function serviceType (fullName: string): protobuf.Service {
  const found = protoRoot().lookup(fullName)
  if (!(found instanceof protobuf.Service)) throw new UnknownMessageTypeError(fullName)
  return found
}

let definition: protoLoader.PackageDefinition | undefined

/**
 * gRPC package definition of every service, derived from the same Root rather than loaded a second
 * time. Its file descriptors are what server reflection hands out.
 */
export function packageDefinition (): protoLoader.PackageDefinition {
  definition ??= protoLoader.fromJSON(protoRoot().toJSON(), LOADER_OPTIONS)
  return definition
}
