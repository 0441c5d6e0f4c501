/**
 * Named codecs of the subscription messages (proto/inframind/v1/subscription.proto): the payloads an
 * owner signs (request, cancel), the event a coordinator signs, and what coordinators store. Decoding
 * is strict, as for everything that arrives from outside the process.
 */
import type * as G from './generated.ts'
import { decodeStrict, encode } from './codec.ts'

export type {
  SubscriptionRequest, SubscriptionCancel, Subscription, SubscriptionResponse, SubscriptionEvent, SubscriptionStatus,
  GetSubscriptionRequest, ListSubscriptionsRequest, ListSubscriptionsResponse, WatchSubscriptionRequest
} from './generated.ts'

export const encodeSubscriptionRequest = (m: G.SubscriptionRequest): Uint8Array => encode('inframind.v1.SubscriptionRequest', m)
export const decodeSubscriptionRequest = (b: Uint8Array): G.SubscriptionRequest => decodeStrict('inframind.v1.SubscriptionRequest', b)
export const encodeSubscriptionCancel = (m: G.SubscriptionCancel): Uint8Array => encode('inframind.v1.SubscriptionCancel', m)
export const decodeSubscriptionCancel = (b: Uint8Array): G.SubscriptionCancel => decodeStrict('inframind.v1.SubscriptionCancel', b)
export const encodeSubscription = (m: G.Subscription): Uint8Array => encode('inframind.v1.Subscription', m)
export const decodeSubscription = (b: Uint8Array): G.Subscription => decodeStrict('inframind.v1.Subscription', b)
export const encodeSubscriptionResponse = (m: G.SubscriptionResponse): Uint8Array => encode('inframind.v1.SubscriptionResponse', m)
export const decodeSubscriptionResponse = (b: Uint8Array): G.SubscriptionResponse => decodeStrict('inframind.v1.SubscriptionResponse', b)
export const encodeSubscriptionEvent = (m: G.SubscriptionEvent): Uint8Array => encode('inframind.v1.SubscriptionEvent', m)
export const decodeSubscriptionEvent = (b: Uint8Array): G.SubscriptionEvent => decodeStrict('inframind.v1.SubscriptionEvent', b)
export const encodeSubscriptionStatus = (m: G.SubscriptionStatus): Uint8Array => encode('inframind.v1.SubscriptionStatus', m)
export const decodeSubscriptionStatus = (b: Uint8Array): G.SubscriptionStatus => decodeStrict('inframind.v1.SubscriptionStatus', b)
