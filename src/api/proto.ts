/** The gRPC side of the protocol layer: service constructors built from its one package definition. */
import * as grpc from '@grpc/grpc-js'
import { assertWellFormed, packageDefinition, serviceType, UnknownMessageTypeError } from '../protocol/index.ts'

export { NODE_SERVICE, CONTROL_SERVICE, HEALTH_SERVICE, packageDefinition } from '../protocol/index.ts'

interface ServiceCtor { service: grpc.ServiceDefinition, new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions): grpc.Client }

export class UnknownServiceError extends Error {
  override name = 'UnknownServiceError'
  readonly code = 'UNKNOWN_SERVICE'
  constructor (fullName: string) {
    super(`service ${fullName} is not in the loaded .proto files`)
  }
}

const constructors = new Map<string, ServiceCtor>()

/**
 * Client constructor (and `.service` definition) of a service. Responses pass the strict check before
 * proto-loader decodes them: the node at the other end is outside this process too, and a malformed
 * answer fails the call (INTERNAL, naming the message type) instead of arriving half-decoded.
 */
export function serviceConstructor (fullName: string): ServiceCtor {
  const known = constructors.get(fullName)
  if (known !== undefined) return known
  const def = packageDefinition()[fullName] as grpc.ServiceDefinition | undefined
  if (def === undefined || typeof def.format === 'string') throw new UnknownServiceError(fullName)
  const methods = serviceType(fullName).methods
  const strict: Record<string, grpc.MethodDefinition<unknown, unknown>> = {}
  for (const [name, spec] of Object.entries(def)) {
    const resolved = methods[name]?.resolvedResponseType
    if (resolved == null) throw new UnknownMessageTypeError(`${fullName}.${name} response`)
    const responseType = resolved.fullName.slice(1)
    strict[name] = { ...spec, responseDeserialize: (bytes: Buffer) => { assertWellFormed(responseType, bytes); return spec.responseDeserialize(bytes) } }
  }
  const ctor = grpc.makeClientConstructor(strict as grpc.ServiceDefinition, fullName) as unknown as ServiceCtor
  constructors.set(fullName, ctor)
  return ctor
}
