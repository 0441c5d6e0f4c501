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
import { assertWellFormed, MalformedMessageError, serviceType, UnknownMessageTypeError } from '../protocol/index.ts'
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
      'grpc.max_send_message_length': c.config.api.maxMessageBytes
    }

    return {
      publicAddress: () => publicAddr,
      controlAddress: () => controlAddr,
      async start () {
        if (publicServer !== undefined) return
        const pub = new grpc.Server(options)
        addGuarded(pub, NODE_SERVICE, nodeServiceHandlers(comps))
        health.addToServer(pub)
        new ReflectionService(packageDefinition(), { services: [NODE_SERVICE, HEALTH_SERVICE] }).addToServer(pub)

        const ctl = new grpc.Server(options)
        addGuarded(ctl, CONTROL_SERVICE, { ...controlServiceHandlers(comps), ListPeers: listPeersHandler(comps) })
        health.addToServer(ctl)
        new ReflectionService(packageDefinition(), { services: [CONTROL_SERVICE, HEALTH_SERVICE] }).addToServer(ctl)

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

/**
 * Registers a service whose request decoding cannot fail silently: every body passes the protocol
 * layer's strict check, and one that is not a valid protobuf of the request type is answered
 * INVALID_ARGUMENT naming the type and the field, instead of grpc-js's bare INTERNAL "Error
 * deserializing request" (or a leniently half-decoded request).
 */
function addGuarded (server: grpc.Server, fullName: string, handlers: grpc.UntypedServiceImplementation): void {
  const def = serviceConstructor(fullName).service
  const methods = serviceType(fullName).methods
  const guardedDef: Record<string, grpc.MethodDefinition<unknown, unknown>> = {}
  const guardedHandlers: grpc.UntypedServiceImplementation = {}
  for (const [method, spec] of Object.entries(def)) {
    const resolved = methods[method]?.resolvedRequestType
    if (resolved == null) throw new UnknownMessageTypeError(`${fullName}.${method} request`)
    // Without protobufjs's leading dot: inframind.v1.SubmitJobRequest.
    const requestType = resolved.fullName.slice(1)
    guardedDef[method] = {
      ...spec,
      requestDeserialize: (bytes: Buffer) => {
        try {
          assertWellFormed(requestType, bytes)
          return spec.requestDeserialize(bytes)
        } catch (err) {
          const what = err instanceof MalformedMessageError
            ? (err.field === '' ? err.reason : `${err.field}: ${err.reason}`)
            : (err as Error).message
          return { [MALFORMED]: `the request body is not a valid ${requestType} protobuf (${what}); check the client's .proto files or use server reflection` }
        }
      }
    }
    const handler = handlers[method]
    if (handler === undefined) continue
    guardedHandlers[method] = ((call: any, callback?: grpc.sendUnaryData<unknown>) => {
      const malformed = call.request?.[MALFORMED]
      if (typeof malformed === 'string') {
        const metadata = new grpc.Metadata()
        metadata.set(ERROR_CODE_KEY, 'MALFORMED_MESSAGE')
        const status = { code: grpc.status.INVALID_ARGUMENT, details: malformed, metadata }
        if (callback !== undefined) callback(status as grpc.ServiceError, null)
        else call.emit('error', status)
        return
      }
      ;(handler as (...args: unknown[]) => void)(call, callback)
    }) as grpc.UntypedHandleCall
  }
  server.addService(guardedDef as grpc.ServiceDefinition, guardedHandlers)
}
