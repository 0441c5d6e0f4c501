/**
 * The subscription RPCs of inframind.v1.Node (docs/SUBSCRIPTIONS.md): thin adapters over the
 * subscriptions component, which checks signatures, rules and limits. A node without the component
 * (no coordinator role) answers every one of them FAILED_PRECONDITION (NO_SUBSCRIPTIONS).
 */
import * as grpc from '@grpc/grpc-js'
import type { SignedEnvelope } from '../envelope/index.ts'
import type { GetSubscriptionRequest, ListSubscriptionsRequest, ListSubscriptionsResponse, SubscriptionResponse, SubscriptionStatus, WatchSubscriptionRequest } from '../protocol/index.ts'
import type { Subscriptions } from '../subscriptions/index.ts'
import { silentLogger, type Logger } from '../telemetry/logger.ts'
import { toServiceError } from './errors.ts'
import { unary } from './unary.ts'

/** Any subscription RPC on a node that holds no subscriptions. */
export class NoSubscriptionsError extends Error {
  readonly code = 'NO_SUBSCRIPTIONS'
  constructor () {
    super('this node holds no subscriptions: it needs the scheduler or gateway role and mesh.enabled')
    this.name = 'NoSubscriptionsError'
  }
}

/** The gRPC handlers CreateSubscription, CancelSubscription, GetSubscription, ListSubscriptions, WatchSubscription. */
export function subscriptionHandlers (subs: Subscriptions | undefined, logger: Logger = silentLogger()): grpc.UntypedServiceImplementation {
  const need = (): Subscriptions => {
    if (subs === undefined) throw new NoSubscriptionsError()
    return subs
  }
  return {
    CreateSubscription: unary(logger, 'CreateSubscription', async (req: SignedEnvelope, call): Promise<SubscriptionStatus> =>
      await need().create(req, { submittedBy: call.getPeer() })),

    CancelSubscription: unary(logger, 'CancelSubscription', async (req: SignedEnvelope): Promise<SubscriptionStatus> =>
      await need().cancel(req)),

    GetSubscription: unary(logger, 'GetSubscription', async (req: GetSubscriptionRequest): Promise<SubscriptionStatus> =>
      await need().get(req.id)),

    ListSubscriptions: unary(logger, 'ListSubscriptions', async (req: ListSubscriptionsRequest): Promise<ListSubscriptionsResponse> =>
      ({ subscriptions: await need().list({ owner: req.owner, state: req.state }) })),

    WatchSubscription: (call: grpc.ServerWritableStream<WatchSubscriptionRequest, SubscriptionResponse>) => {
      const controller = new AbortController()
      call.on('cancelled', () => controller.abort())
      const watch = async (): Promise<void> => {
        for await (const response of need().watch(call.request.id, call.request.fromInterval, controller.signal)) {
          if (call.cancelled) return
          call.write(response)
        }
        call.end()
      }
      watch().catch((err: unknown) => {
        if (call.cancelled) return
        const status = toServiceError(err)
        if (status.code === grpc.status.INTERNAL) logger.error({ err }, 'WatchSubscription failed')
        call.emit('error', status)
      })
    }
  }
}
