import test from 'ava'
import { createRequire } from 'node:module'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { ReflectionService } from '@grpc/reflection'
import protobuf from 'protobufjs'
import {
  CONTROL_SERVICE, HEALTH_SERVICE, NODE_SERVICE, PROTO_PACKAGE, packageDefinition, protoFiles, protoRoot, serviceType
} from '../../src/protocol/index.ts'

const require = createRequire(import.meta.url)
const descriptor = require('protobufjs/ext/descriptor') as { FileDescriptorProto: protobuf.Type }

test('every .proto under proto/inframind/v1 is loaded, once, into one Root', (t) => {
  t.deepEqual(protoFiles(), [
    'inframind/v1/attestation.proto', 'inframind/v1/control.proto', 'inframind/v1/envelope.proto',
    'inframind/v1/mesh.proto', 'inframind/v1/node.proto', 'inframind/v1/receipt.proto', 'inframind/v1/records.proto',
    'inframind/v1/roster.proto', 'inframind/v1/subscription.proto', 'inframind/v1/verification.proto'
  ])
  t.is(protoRoot(), protoRoot())
  const files = new Set((protoRoot().lookup(PROTO_PACKAGE) as protobuf.Namespace).nestedArray.map((n) => n.filename?.replace(/^.*\/proto\//, '')))
  for (const f of protoFiles()) t.true(files.has(f), f)
  t.is(packageDefinition(), packageDefinition())
})

test('the gRPC package definition, derived from the Root, has every service and message', (t) => {
  const def = packageDefinition()
  for (const name of [NODE_SERVICE, CONTROL_SERVICE, HEALTH_SERVICE]) {
    const service = def[name] as Record<string, unknown>
    t.deepEqual(Object.keys(service).sort(), Object.keys(serviceType(name).methods).sort(), name)
  }
  for (const name of ['inframind.v1.Heartbeat', 'inframind.v1.Receipt', 'inframind.v1.Attestation', 'inframind.v1.SignedEnvelope']) {
    t.is((def[name] as { format?: string }).format, 'Protocol Buffer 3 DescriptorProto', name)
  }
})

/** Asks a reflection server one question; resolves with its answer. */
async function reflect (address: string, request: Record<string, string>): Promise<any> {
  const reflectionProto = require.resolve('@grpc/reflection').replace(/build\/src\/index\.js$/, 'build/proto/grpc/reflection/v1/reflection.proto')
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto, { keepCase: true })) as any
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure())
  try {
    return await new Promise((resolve, reject) => {
      const call = client.ServerReflectionInfo()
      call.on('data', (msg: unknown) => { resolve(msg); call.end() })
      call.on('error', reject)
      call.write(request)
    })
  } finally {
    client.close()
  }
}

test('server reflection lists and fully describes every service', async (t) => {
  const server = new grpc.Server()
  t.teardown(() => server.forceShutdown())
  new ReflectionService(packageDefinition(), { services: [NODE_SERVICE, CONTROL_SERVICE, HEALTH_SERVICE] }).addToServer(server)
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => err !== null ? reject(err) : resolve(p))
  })
  const address = `127.0.0.1:${port}`
  const listed = await reflect(address, { list_services: '' })
  t.deepEqual(listed.list_services_response.service.map((s: { name: string }) => s.name).sort(), [HEALTH_SERVICE, CONTROL_SERVICE, NODE_SERVICE].sort())

  for (const name of [NODE_SERVICE, CONTROL_SERVICE, HEALTH_SERVICE]) {
    const answer = await reflect(address, { file_containing_symbol: name })
    const files = (answer.file_descriptor_response?.file_descriptor_proto ?? []).map((b: Buffer) => descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(b))) as any[]
    const pkg = name.slice(0, name.lastIndexOf('.'))
    const described = new Set<string>()
    for (const f of files) for (const m of f.messageType ?? []) described.add(`.${f.package}.${m.name}`)
    const service = files.flatMap((f) => (f.service ?? []).map((s: any) => ({ ...s, pkg: f.package }))).find((s: any) => `${s.pkg}.${s.name}` === name)
    t.truthy(service, `${name} is described`)
    const methods = serviceType(name).methods
    t.deepEqual(service.method.map((m: { name: string }) => m.name).sort(), Object.keys(methods).sort(), `${name}: every method`)
    for (const m of service.method) {
      for (const type of [m.inputType, m.outputType]) {
        const full = type.startsWith('.') ? type : `.${pkg}.${type}`
        t.true(described.has(full), `${name}.${m.name}: ${full} is described`)
      }
    }
  }
})
