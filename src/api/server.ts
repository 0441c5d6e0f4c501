import { rm } from 'node:fs/promises'
import * as grpc from '@grpc/grpc-js'
import { HealthImplementation } from 'grpc-health-check'
import { ReflectionService } from '@grpc/reflection'
import type { Startable } from '../types.ts'
import type { ApiComponents } from './types.ts'
import { CONTROL_SERVICE, HEALTH_SERVICE, NODE_SERVICE, packageDefinition, serviceConstructor } from './proto.ts'
import { nodeServiceHandlers } from './node-service.ts'
import { controlServiceHandlers } from './control-service.ts'
import { listPeersHandler } from './mesh-service.ts'
import protobuf from 'protobufjs'
import descriptor from 'protobufjs/ext/descriptor/index.js'
import { assertWellFormed, findViolation, MalformedMessageError, serviceType, UnknownMessageTypeError } from '../protocol/index.ts'
import { ERROR_CODE_KEY } from './errors.ts'

/** How long stop() lets in-flight calls finish before cutting them (streams never finish on their own). */
const SHUTDOWN_GRACE_MS = 1000

const MALFORMED = Symbol('malformed request')

export interface ApiServer extends Startable {
  /** host:port the public listener is bound to ('' before start). */
  publicAddress(): string
  /** host:port or unix:path of the control listener ('' before start). */
  controlAddress(): string
}

export function apiServer () {
  return (c: ApiComponents): ApiServer => {
    const logger = c.logger.child({ component: 'api' })
    const comps = { ...c, logger }
    let publicServer: grpc.Server | undefined
    let controlServer: grpc.Server | undefined
    let publicAddr = ''
    let controlAddr = ''
    const health = new HealthImplementation({ '': 'NOT_SERVING', [NODE_SERVICE]: 'NOT_SERVING', [CONTROL_SERVICE]: 'NOT_SERVING' })

    const options: grpc.ServerOptions = {
      'grpc.max_receive_message_length': c.config.api.maxMessageBytes,
      'grpc.max_send_message_length': c.config.api.maxMessageBytes,
      interceptors: [rejectMalformed]
    }

    return {
      publicAddress: () => publicAddr,
      controlAddress: () => controlAddr,
      async start () {
        if (publicServer !== undefined) return
        const pub = new grpc.Server(options)
        addGuarded(pub, NODE_SERVICE, nodeServiceHandlers(comps))
        health.addToServer(guardedRegistrar(pub))
        new ReflectionService(packageDefinition(), { services: [NODE_SERVICE, HEALTH_SERVICE] }).addToServer(guardedRegistrar(pub))

        const ctl = new grpc.Server(options)
        addGuarded(ctl, CONTROL_SERVICE, { ...controlServiceHandlers(comps), ListPeers: listPeersHandler(comps) })
        health.addToServer(guardedRegistrar(ctl))
        new ReflectionService(packageDefinition(), { services: [CONTROL_SERVICE, HEALTH_SERVICE] }).addToServer(guardedRegistrar(ctl))

        const { host, port } = c.config.api.public
        const boundPublic = await bind(pub, `${host.includes(':') ? `[${host}]` : host}:${port}`)
        publicAddr = `${host.includes(':') ? `[${host}]` : host}:${boundPublic}`

        const socket = c.config.api.control.socket
        try {
          if (socket !== '') {
            await rm(socket, { force: true })
            await bind(ctl, `unix:${socket}`)
            controlAddr = `unix:${socket}`
          } else {
            const ch = c.config.api.control.host
            const h = ch.includes(':') ? `[${ch}]` : ch
            controlAddr = `${h}:${await bind(ctl, `${h}:${c.config.api.control.port}`)}`
          }
        } catch (err) {
          pub.forceShutdown()
          // Nothing listens any more: report no address rather than the closed listener's.
          publicAddr = ''
          controlAddr = ''
          throw err
        }
        publicServer = pub
        controlServer = ctl
        for (const name of ['', NODE_SERVICE, CONTROL_SERVICE]) health.setStatus(name, 'SERVING')
        logger.info({ public: publicAddr, control: controlAddr }, 'gRPC listening')
      },
      async stop () {
        const servers = [publicServer, controlServer].filter((s): s is grpc.Server => s !== undefined)
        publicServer = undefined
        controlServer = undefined
        if (servers.length === 0) return
        for (const name of ['', NODE_SERVICE, CONTROL_SERVICE]) health.setStatus(name, 'NOT_SERVING')
        await Promise.all(servers.map(async (s) => await shutdown(s)))
        if (c.config.api.control.socket !== '') await rm(c.config.api.control.socket, { force: true })
        publicAddr = ''
        controlAddr = ''
      }
    }
  }
}

async function bind (server: grpc.Server, address: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err !== null) reject(new ListenError(address, err))
      else resolve(port)
    })
  })
}

async function shutdown (server: grpc.Server): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => { server.forceShutdown(); resolve() }, SHUTDOWN_GRACE_MS)
    server.tryShutdown(() => { clearTimeout(timer); resolve() })
  })
}

export class ListenError extends Error {
  readonly code = 'LISTEN_FAILED'
  constructor (address: string, cause: Error) {
    super(`cannot listen on ${address}: ${cause.message} (is another node using the port? change api.* in config.yaml)`, { cause })
    this.name = 'ListenError'
  }
}

/** What a request decoder hands on instead of throwing: the reason the body is not a valid request. */
interface Malformed { [MALFORMED]: string }

function isMalformed (message: unknown): message is Malformed {
  return typeof (message as Partial<Malformed> | null)?.[MALFORMED] === 'string'
}

/** What a method's request must pass before proto-loader's lenient decoder sees it: throws why not. */
type RequestCheck = (bytes: Buffer) => void

/**
 * A service definition whose request decoders never throw: a body that fails its method's strict
 * check (or the decoder) becomes a Malformed marker, which rejectMalformed answers. grpc-js would
 * otherwise answer INTERNAL "Error deserializing request" for a client's mistake, and protobufjs
 * alone decodes most garbage into some request.
 */
function guardDecoding (def: grpc.ServiceDefinition, checkOf: (method: string, spec: grpc.MethodDefinition<unknown, unknown>) => { type: string, check: RequestCheck }): grpc.ServiceDefinition {
  const guarded: Record<string, grpc.MethodDefinition<unknown, unknown>> = {}
  for (const [method, spec] of Object.entries(def as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
    const { type, check } = checkOf(method, spec)
    guarded[method] = {
      ...spec,
      requestDeserialize: (bytes: Buffer) => {
        try {
          check(bytes)
          return spec.requestDeserialize(bytes)
        } catch (err) {
          const what = err instanceof MalformedMessageError
            ? (err.field === '' ? err.reason : `${err.field}: ${err.reason}`)
            : (err as Error).message
          return { [MALFORMED]: `the request body is not a valid ${type} protobuf (${what}); check the client's .proto files or use server reflection` } satisfies Malformed
        }
      }
    }
  }
  return guarded as grpc.ServiceDefinition
}

/**
 * The strict check of a method defined outside our .proto files (health, reflection): its request
 * type rebuilt from the file descriptors proto-loader keeps with every method definition.
 */
function foreignCheck (spec: grpc.MethodDefinition<unknown, unknown>): { type: string, check: RequestCheck } {
  const [, service = '', method = ''] = /^\/(.+)\/([^/]+)$/.exec(spec.path) ?? []
  const files = (spec as { requestType?: { fileDescriptorProtos?: Buffer[] } }).requestType?.fileDescriptorProtos ?? []
  const set = descriptor.FileDescriptorSet.create({ file: files.map((b) => descriptor.FileDescriptorProto.decode(b)) })
  const root = (protobuf.Root as unknown as { fromDescriptor: (set: unknown) => protobuf.Root }).fromDescriptor(set)
  root.resolveAll()
  const requestType = root.lookupService(service).methods[method]?.resolvedRequestType
  if (requestType == null) throw new UnknownMessageTypeError(`${service}.${method} request`)
  const type = requestType.fullName.slice(1)
  return {
    type,
    check: (bytes) => {
      const v = findViolation(requestType, bytes)
      if (v !== undefined) throw new MalformedMessageError(type, v.reason, { field: v.field })
    }
  }
}

/**
 * The server interceptor that answers a Malformed request message INVALID_ARGUMENT (error code
 * MALFORMED_MESSAGE) before any handler sees it, for every service on the server: unary and
 * streaming calls alike, ours and the health and reflection services grpc-js libraries add.
 */
const rejectMalformed: grpc.ServerInterceptor = (_method, call) => {
  const intercepted: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
    start: (next) => {
      next({
        onReceiveMessage: (message, pass) => {
          if (!isMalformed(message)) {
            pass(message)
            return
          }
          const metadata = new grpc.Metadata()
          metadata.set(ERROR_CODE_KEY, 'MALFORMED_MESSAGE')
          intercepted.sendStatus({ code: grpc.status.INVALID_ARGUMENT, details: message[MALFORMED], metadata })
        }
      })
    }
  })
  return intercepted
}

/**
 * Registers one of our services with strict decoding: every body also passes the protocol layer's
 * check, so one that is not a valid protobuf of the request type is refused naming the type and the
 * field, rather than leniently half-decoded.
 */
function addGuarded (server: grpc.Server, fullName: string, handlers: grpc.UntypedServiceImplementation): void {
  const def = serviceConstructor(fullName).service
  const methods = serviceType(fullName).methods
  server.addService(guardDecoding(def, (method) => {
    const resolved = methods[method]?.resolvedRequestType
    if (resolved == null) throw new UnknownMessageTypeError(`${fullName}.${method} request`)
    // Without protobufjs's leading dot: inframind.v1.SubmitJobRequest.
    const type = resolved.fullName.slice(1)
    return { type, check: (bytes) => { assertWellFormed(type, bytes) } }
  }), handlers)
}

/**
 * The server as grpc-health-check's and @grpc/reflection's addToServer see it: both only call
 * server.addService(definition, handlers) (read in node_modules), so their definitions get guarded
 * decoders too and a garbage body is INVALID_ARGUMENT on every service, as docs/ARCHITECTURE.md says.
 */
function guardedRegistrar (server: grpc.Server): grpc.Server {
  return {
    addService: (def: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation) => {
      server.addService(guardDecoding(def, (_method, spec) => foreignCheck(spec)), handlers)
    }
  } as unknown as grpc.Server
}
