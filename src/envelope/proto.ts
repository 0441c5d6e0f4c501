import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import protobuf from 'protobufjs'

/** proto/ at the repo root, found from this file so the node works from any working directory. */
const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url))
const FILES = ['inframind/v1/envelope.proto', 'inframind/v1/receipt.proto']

let root: protobuf.Root | undefined

/** A message type from the .proto files (loaded once, on first use; field names camelCased). */
export function protoType (name: string): protobuf.Type {
  if (root === undefined) {
    const r = new protobuf.Root()
    r.resolvePath = (_origin: string, target: string) => join(PROTO_ROOT, target)
    r.loadSync(FILES)
    root = r
  }
  return root.lookupType(name)
}
