import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

/** Directory holding inframind/v1/*.proto: the single source of truth for the wire format. */
export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url))

export const NODE_SERVICE = 'inframind.v1.Node'
export const CONTROL_SERVICE = 'inframind.v1.Control'
export const HEALTH_SERVICE = 'grpc.health.v1.Health'

const require = createRequire(import.meta.url)
const HEALTH_PROTO: string = require('grpc-health-check').protoPath

/** camelCase fields, enums as names, 64-bit ints as numbers, bytes as Buffer. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT]
}

let cached: protoLoader.PackageDefinition | undefined

/** Package definition of every service the node serves, health included (reflection needs them all). */
export function packageDefinition (): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(
    ['inframind/v1/node.proto', 'inframind/v1/control.proto', HEALTH_PROTO],
    LOADER_OPTIONS
  )
  return cached
}

interface ServiceCtor { service: grpc.ServiceDefinition, new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions): grpc.Client }

export function serviceConstructor (fullName: string): ServiceCtor {
  const loaded = grpc.loadPackageDefinition(packageDefinition()) as Record<string, any>
  let at: any = loaded
  for (const part of fullName.split('.')) at = at?.[part]
  if (at?.service === undefined) throw new Error(`service ${fullName} is not in the loaded protos`)
  return at as ServiceCtor
}
