import path from 'node:path'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'

const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url))

/**
 * Strict protobuf checking for bytes from the network (gRPC requests, gossip payloads).
 * protobufjs decodes leniently: a truncated length, a wrong wire type for a known field, or a
 * group tag still yields an object. Requests from the network get this strict pass first, so a
 * body that is not a well-formed message of the expected type is refused with the reason.
 */

const WIRE_BY_TYPE: Record<string, number> = {
  double: 1, fixed64: 1, sfixed64: 1,
  float: 5, fixed32: 5, sfixed32: 5,
  int32: 0, int64: 0, uint32: 0, uint64: 0, sint32: 0, sint64: 0, bool: 0,
  string: 2, bytes: 2
}

/** Nesting deeper than this is refused rather than recursed into. */
const MAX_DEPTH = 32

let root: protobuf.Root | undefined

function loadRoot (): protobuf.Root {
  if (root !== undefined) return root
  const r = new protobuf.Root()
  r.resolvePath = (_origin, target) => path.isAbsolute(target) ? target : path.join(PROTO_ROOT, target)
  r.loadSync(['inframind/v1/node.proto', 'inframind/v1/control.proto', 'inframind/v1/mesh.proto', 'inframind/v1/receipt.proto', 'inframind/v1/attestation.proto'], { keepCase: false })
  r.resolveAll()
  root = r
  return r
}

export function messageType (fullName: string): protobuf.Type | undefined {
  try {
    return loadRoot().lookupType(fullName)
  } catch {
    return undefined
  }
}

/**
 * Decodes `bytes` as `fullName` after the strict check; throws MalformedMessageError with the reason.
 * Field names are camelCase, 64-bit integers become numbers, bytes stay Uint8Array.
 */
export function decodeStrict<T> (fullName: string, bytes: Uint8Array): T {
  const type = messageType(fullName)
  if (type === undefined) throw new MalformedMessageError(fullName, 'unknown message type')
  const reason = wireViolation(type, bytes)
  if (reason !== undefined) throw new MalformedMessageError(fullName, reason)
  try {
    const msg = type.decode(bytes)
    return type.toObject(msg, { longs: Number, defaults: true, arrays: true, enums: String }) as T
  } catch (err) {
    throw new MalformedMessageError(fullName, (err as Error).message, { cause: err })
  }
}

export function encodeMessage (fullName: string, value: Record<string, unknown>): Uint8Array {
  const type = messageType(fullName)
  if (type === undefined) throw new Error(`unknown message type ${fullName}`)
  const bytes = type.encode(type.fromObject(value)).finish()
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export class MalformedMessageError extends Error {
  readonly code = 'MALFORMED_MESSAGE'
  readonly messageType: string
  constructor (messageType: string, reason: string, options?: ErrorOptions) {
    super(`not a valid ${messageType}: ${reason}`, options)
    this.name = 'MalformedMessageError'
    this.messageType = messageType
  }
}

/** Why `bytes` is not a well-formed `type` message, or undefined when it is. */
export function wireViolation (type: protobuf.Type, bytes: Uint8Array): string | undefined {
  return check(type, bytes, 0, bytes.length, 0)
}

function check (type: protobuf.Type, buf: Uint8Array, start: number, end: number, depth: number): string | undefined {
  if (depth > MAX_DEPTH) return 'messages nested too deeply'
  let pos = start
  const varint = (): number | undefined => {
    let value = 0
    for (let i = 0; i < 10; i++) {
      if (pos >= end) return undefined
      const b = buf[pos++]
      if (i < 7) value += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) return value
    }
    return undefined
  }
  while (pos < end) {
    const at = pos
    const tag = varint()
    if (tag === undefined) return `truncated field tag at byte ${at}`
    const fieldNo = Math.floor(tag / 8)
    const wire = tag % 8
    if (fieldNo === 0) return `field number 0 at byte ${at}`
    const field = type.fieldsById[fieldNo]
    const expected = field === undefined ? undefined : expectedWire(field)
    if (expected !== undefined && wire !== expected && !(field.repeated && wire === 2 && expected !== 2)) {
      return `field ${field.name} (${field.type}) sent with wire type ${wire} instead of ${expected}`
    }
    switch (wire) {
      case 0:
        if (varint() === undefined) return `truncated varint in field ${fieldNo}`
        break
      case 1:
        pos += 8
        if (pos > end) return `truncated 64-bit value in field ${fieldNo}`
        break
      case 5:
        pos += 4
        if (pos > end) return `truncated 32-bit value in field ${fieldNo}`
        break
      case 2: {
        const len = varint()
        if (len === undefined || pos + len > end) return `field ${field?.name ?? fieldNo} claims more bytes than the message has`
        const nested = field?.resolvedType
        if (nested instanceof protobuf.Type && !field.map) {
          const reason = check(nested, buf, pos, pos + len, depth + 1)
          if (reason !== undefined) return `${field.name}: ${reason}`
        }
        pos += len
        break
      }
      default:
        return `unsupported wire type ${wire} at byte ${at}`
    }
  }
  return undefined
}

function expectedWire (field: protobuf.Field): number | undefined {
  if (field.map) return 2
  const scalar = WIRE_BY_TYPE[field.type]
  if (scalar !== undefined) return scalar
  if (field.resolvedType instanceof protobuf.Enum) return 0
  if (field.resolvedType instanceof protobuf.Type) return 2
  return undefined
}
