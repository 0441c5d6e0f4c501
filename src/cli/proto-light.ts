/**
 * src/protocol/loader.ts as the CLI bundle has it (src/cli/bundle.ts puts this file in its place).
 * The same exports and the same messages, but started in a few milliseconds: the descriptors come
 * as JSON made from the real loader's Root at build time, instead of parsing the .proto files and
 * building gRPC reflection descriptors (which the node's server needs and a client never does) on
 * every `infra` run. test/unit/cli-proto-light.test.ts holds it to the real loader: the same
 * services, method paths, encodings and decodings.
 */
import protobuf from 'protobufjs'
import type * as protoLoader from '@grpc/proto-loader'
import { ProtocolLoadError, UnknownMessageTypeError } from '../protocol/errors.ts'

/** The real loader's Root as JSON (`protoRoot().toJSON()`): the bundler writes it here (a JSON.parse of it). */
declare const __INFRAMIND_PROTO_JSON__: protobuf.INamespace

import { LOADER_OPTIONS } from '../protocol/files.ts'

export { PROTO_ROOT, PROTO_DIR, HEALTH_PROTO, LOADER_OPTIONS, protoFiles } from '../protocol/files.ts'

export interface LightLoader {
  protoRoot(): protobuf.Root
  messageType(fullName: string): protobuf.Type
  serviceType(fullName: string): protobuf.Service
  packageDefinition(): protoLoader.PackageDefinition
}

/**
 * A loader over a Root given as JSON. Types resolve when first used (encoding sets a type up, a
 * method resolves its request and response), so a run pays only for the messages it sends.
 */
export function lightLoader (json: protobuf.INamespace): LightLoader {
  let root: protobuf.Root | undefined
  let definition: protoLoader.PackageDefinition | undefined
  const types = new Map<string, protobuf.Type>()
  const rootOf = (): protobuf.Root => {
    if (root === undefined) {
      // Root.fromJSON would resolve every type of every file up front; here each resolves on first use.
      root = new protobuf.Root()
      if (json.options !== undefined) root.setOptions(json.options)
      root.addJSON(json.nested ?? {})
    }
    return root
  }
  const serviceType = (fullName: string): protobuf.Service => {
    const found = rootOf().lookup(fullName)
    if (!(found instanceof protobuf.Service)) throw new UnknownMessageTypeError(fullName)
    return found
  }
  return {
    protoRoot: rootOf,
    messageType: (fullName) => {
      let type = types.get(fullName)
      if (type !== undefined) return type
      const found = rootOf().lookup(fullName)
      if (!(found instanceof protobuf.Type)) throw new UnknownMessageTypeError(fullName)
      type = found
      // The strict check walks field.resolvedType: everything this message can hold is resolved first.
      resolveDeep(type, new Set())
      types.set(fullName, type)
      return type
    },
    serviceType,
    packageDefinition: () => {
      definition ??= serviceDefinitions(rootOf())
      return definition
    }
  }
}

/** Resolves a message type, and every message type its fields (and theirs) can hold. */
function resolveDeep (type: protobuf.Type, seen: Set<protobuf.Type>): void {
  if (seen.has(type)) return
  seen.add(type)
  type.resolveAll()
  for (const field of type.fieldsArray) {
    if (field.resolvedType instanceof protobuf.Type) resolveDeep(field.resolvedType, seen)
  }
}

/** What @grpc/proto-loader makes of each service (path, streaming, codecs), without the reflection descriptors. */
function serviceDefinitions (root: protobuf.Root): protoLoader.PackageDefinition {
  const def: protoLoader.PackageDefinition = {}
  const visit = (ns: protobuf.NamespaceBase, prefix: string): void => {
    for (const child of ns.nestedArray) {
      const name = prefix === '' ? child.name : `${prefix}.${child.name}`
      if (child instanceof protobuf.Service) def[name] = service(child, name)
      else if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) visit(child, name)
    }
  }
  visit(root, '')
  return def
}

function service (svc: protobuf.Service, name: string): protoLoader.ServiceDefinition {
  const methods: protoLoader.ServiceDefinition = {}
  for (const method of svc.methodsArray) {
    method.resolve()
    const request = method.resolvedRequestType as protobuf.Type
    const response = method.resolvedResponseType as protobuf.Type
    methods[method.name] = {
      path: `/${name}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
      requestType: messageDefinition(request),
      responseType: messageDefinition(response),
      options: {}
    } as unknown as protoLoader.MethodDefinition<object, object>
  }
  return methods
}

function serializer (type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`)
    return type.encode(type.fromObject(value)).finish() as Buffer
  }
}

function deserializer (type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), LOADER_OPTIONS as protobuf.IConversionOptions)
}

function messageDefinition (type: protobuf.Type): protoLoader.MessageTypeDefinition<object, object> {
  return { format: 'Protocol Buffer 3 DescriptorProto', type: {}, fileDescriptorProtos: [], serialize: serializer(type), deserialize: deserializer(type) } as unknown as protoLoader.MessageTypeDefinition<object, object>
}

let bundled: LightLoader | undefined
function loader (): LightLoader {
  if (typeof __INFRAMIND_PROTO_JSON__ === 'undefined') throw new ProtocolLoadError('proto-light runs only inside the CLI bundle (src/cli/bundle.ts defines its descriptors)')
  bundled ??= lightLoader(__INFRAMIND_PROTO_JSON__)
  return bundled
}

export const protoRoot = (): protobuf.Root => loader().protoRoot()
export const messageType = (fullName: string): protobuf.Type => loader().messageType(fullName)
export const serviceType = (fullName: string): protobuf.Service => loader().serviceType(fullName)
export const packageDefinition = (): protoLoader.PackageDefinition => loader().packageDefinition()
