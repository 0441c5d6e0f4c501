/**
 * Typed encode and strict decode of every message in proto/inframind/v1. The types come from
 * generated.ts (derived from the .proto files), the schema from the one loader.
 */
import protobuf from 'protobufjs'
import type { MessageName, MessageTypes } from './generated.ts'
import { messageType } from './loader.ts'
import { findViolation } from './strict.ts'
import { MalformedMessageError } from './errors.ts'

/** The decoded shape generated.ts describes; the same as LOADER_OPTIONS gives gRPC handlers. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true }

/** Protobuf bytes of `value`. Encoding our own typed values cannot fail short of a programming error. */
export function encode<N extends MessageName> (name: N, value: MessageTypes[N]): Uint8Array {
  const type = messageType(name)
  const bytes = type.encode(type.fromObject(value as unknown as Record<string, unknown>)).finish()
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * Decodes bytes from outside the process: the strict wire check first, then protobufjs. Anything
 * wrong is a MalformedMessageError naming the message type and the field. Bytes fields are plain
 * Uint8Arrays over a private copy of the input, so a caller reusing its buffer cannot change a
 * decoded (possibly signed) value afterwards.
 */
export function decodeStrict<N extends MessageName> (name: N, bytes: Uint8Array): MessageTypes[N] {
  const type = messageType(name)
  if (!(bytes instanceof Uint8Array)) throw new MalformedMessageError(name, 'expected bytes')
  assertWellFormed(name, bytes)
  let value: Record<string, unknown>
  try {
    value = type.toObject(type.decode(new Uint8Array(bytes)), TO_OBJECT)
  } catch (err) {
    // The strict check should leave nothing for the decoder to refuse; keep the type of error regardless.
    throw new MalformedMessageError(name, (err as Error).message, { cause: err })
  }
  plainBytes(type, value)
  return value as unknown as MessageTypes[N]
}

/**
 * protobufjs hands empty bytes (and defaults) as Node Buffers but other bytes as Uint8Array views;
 * one kind everywhere keeps comparisons (and deepEqual in tests) honest.
 */
function plainBytes (type: protobuf.Type, value: Record<string, unknown>): void {
  for (const field of type.fieldsArray) {
    const v = value[field.name]
    if (v === undefined || v === null) continue
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined
    if (field.map) {
      const entries = v as Record<string, unknown>
      for (const key of Object.keys(entries)) {
        if (field.type === 'bytes') entries[key] = plain(entries[key] as Uint8Array)
        else if (nested !== undefined) plainBytes(nested, entries[key] as Record<string, unknown>)
      }
    } else if (field.type === 'bytes') {
      value[field.name] = field.repeated ? (v as Uint8Array[]).map(plain) : plain(v as Uint8Array)
    } else if (nested !== undefined) {
      for (const item of field.repeated ? v as Array<Record<string, unknown>> : [v as Record<string, unknown>]) plainBytes(nested, item)
    }
  }
}

function plain (bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes
}

/** Throws MalformedMessageError when `bytes` are not a well-formed `name`; for callers that decode on their own (gRPC). */
export function assertWellFormed (name: string, bytes: Uint8Array): void {
  const violation = findViolation(messageType(name), bytes)
  if (violation !== undefined) throw new MalformedMessageError(name, violation.reason, { field: violation.field })
}
