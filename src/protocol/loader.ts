/**
 * The one loader of the .proto files. Everything that encodes, decodes or serves protobuf (gRPC,
 * gossip, fetch, envelopes, receipts, the type generator) uses this Root, so no two parts of the
 * node can disagree about a message.
 */
import path from 'node:path'
import protobuf from 'protobufjs'
import * as protoLoader from '@grpc/proto-loader'
import { ProtocolLoadError, UnknownMessageTypeError } from './errors.ts'
import { HEALTH_PROTO, LOADER_OPTIONS, PROTO_ROOT, protoFiles } from './files.ts'

export { PROTO_ROOT, PROTO_DIR, HEALTH_PROTO, LOADER_OPTIONS, protoFiles } from './files.ts'

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
