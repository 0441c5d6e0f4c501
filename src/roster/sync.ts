/**
 * How a roster update reaches every node without restarts. Forward: the node an operator pushed the
 * roster to publishes it on the roster topic, and every node applies it. Catch-up: a node that was
 * offline, or started later, asks each peer it connects to (at most once a minute per peer) for its
 * roster over /inframind/roster/1.0.0 and applies it when newer. Nodes only ever take a roster an
 * operator signed, so a peer can withhold an update but never forge or roll one back.
 */
import type { Connection, IncomingStreamData } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from 'it-length-prefixed-stream'
import type { SignedEnvelope } from '../envelope/index.ts'
import type { Identity } from '../identity/types.ts'
import type { Mesh, MeshLibp2p, MeshMessage } from '../mesh/index.ts'
import { ROSTER_PROTOCOL, type RosterNotice } from '../protocol/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Startable } from '../types.ts'
import type { RosterBook } from './book.ts'
import {
  CATCH_UP_INTERVAL_MS, CATCH_UP_TIMEOUT_MS, MAX_CATCH_UP_IN_FLIGHT, MAX_ROSTER_ENVELOPE_BYTES, MAX_ROSTER_REQUEST_BYTES, MAX_TRACKED_PEERS
} from './constants.ts'
import { isRosterRefusal, RosterFetchError } from './errors.ts'
import { decodeRosterRequest, decodeRosterResponse, encodeRosterRequest, encodeRosterResponse } from './wire.ts'

export interface RosterSyncInit {
  /** A peer is asked at most once per this interval (default CATCH_UP_INTERVAL_MS). */
  catchUpIntervalMs?: number
  /** Deadline of one catch-up request, asked or served (default CATCH_UP_TIMEOUT_MS). */
  timeoutMs?: number
  /** Catch-up requests under way at once; further new connections are not asked (default MAX_CATCH_UP_IN_FLIGHT). */
  maxInFlight?: number
  /** Peers remembered for the once-per-interval rule (default MAX_TRACKED_PEERS). */
  maxTrackedPeers?: number
}

export interface RosterSyncComponents {
  mesh: Pick<Mesh, 'publish' | 'subscribe' | 'libp2p'>
  roster: RosterBook
  identity: Identity
  logger: Logger
}

export interface RosterSync extends Startable {
  /** Passes an operator-signed roster this node has applied on to the mesh (a RosterNotice on the roster topic). */
  publish(envelope: SignedEnvelope): Promise<void>
  /**
   * Asks one peer for its roster now and applies it when newer. Resolves true when it was applied,
   * false when the peer has none newer or its roster was refused (counted in refused()); rejects
   * with RosterFetchError when the peer could not be asked.
   */
  catchUp(peer: string, signal?: AbortSignal): Promise<boolean>
  /** Rosters from the mesh (topic and catch-up) this node refused since start, by error code. */
  refused(): Record<string, number>
}

export function rosterSync (init: RosterSyncInit = {}) {
  return (components: RosterSyncComponents): RosterSync => {
    const { mesh, roster: book, identity } = components
    const logger = components.logger.child({ component: 'roster-sync' })
    const intervalMs = init.catchUpIntervalMs ?? CATCH_UP_INTERVAL_MS
    const timeoutMs = init.timeoutMs ?? CATCH_UP_TIMEOUT_MS
    const maxInFlight = init.maxInFlight ?? MAX_CATCH_UP_IN_FLIGHT
    const maxTracked = init.maxTrackedPeers ?? MAX_TRACKED_PEERS

    let node: MeshLibp2p | undefined
    let stopping = new AbortController()
    let unsubscribe: (() => void) | undefined
    const refusals: Record<string, number> = {}
    /** When each peer was last asked, oldest first (a re-ask moves the peer to the end). */
    const asked = new Map<string, number>()
    /** Everything under way (served requests, applies, catch-ups): stop() waits for it. */
    const inFlight = new Set<Promise<unknown>>()
    /** Catch-up requests this node is making now (bounded by maxInFlight). */
    let asking = 0
    // The envelope bytes served, encoded once per roster rather than once per request.
    let served: { hash: string, bytes: Uint8Array } | undefined

    const signalFor = (signal?: AbortSignal): AbortSignal =>
      AbortSignal.any([AbortSignal.timeout(timeoutMs), stopping.signal, ...(signal !== undefined ? [signal] : [])])

    /** Applies a roster from the mesh; a refusal is counted and logged at debug (stale copies are normal traffic). */
    const offer = async (envelope: SignedEnvelope, source: 'gossip' | 'catch-up', from: string): Promise<boolean> => {
      try {
        await book.apply(envelope, source)
        return true
      } catch (err) {
        if (!isRosterRefusal(err)) throw err
        refusals[err.code] = (refusals[err.code] ?? 0) + 1
        logger.debug({ source, from, code: err.code, reason: err.message }, 'roster from the mesh not applied')
        return false
      }
    }

    const track = <T>(p: Promise<T>): Promise<T> => {
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p)).catch(() => {})
      return p
    }

    const onNotice = (msg: MeshMessage<RosterNotice>): void => {
      // The topic's gossip rule already refused notices without a roster envelope.
      if (msg.value.roster === null) return
      track(offer(msg.value.roster, 'gossip', msg.from)).catch((err: unknown) => logger.warn({ err, from: msg.from }, 'roster from the mesh failed to apply'))
    }

    const serve = ({ stream }: IncomingStreamData): void => {
      const signal = signalFor()
      const lp = lpStream(stream, { maxDataLength: MAX_ROSTER_REQUEST_BYTES })
      track((async () => {
        try {
          const known = decodeRosterRequest((await lp.read({ signal })).subarray())
          const held = book.current()
          const expires = held?.roster.expiresAtMs ?? 0
          // An expired roster is refused by every node, so it is not worth the bytes.
          const worthSending = held !== undefined && held.roster.version > known && (expires === 0 || expires > Date.now())
          let body: Uint8Array = new Uint8Array(0)
          if (worthSending) {
            if (served?.hash !== held.hash) served = { hash: held.hash, bytes: encodeRosterResponse(held.envelope) }
            body = served.bytes
          }
          await lp.write(body, { signal })
          await stream.close({ signal })
        } catch (err) {
          logger.debug({ err: (err as Error).message }, 'roster request not answered')
          stream.abort(err as Error)
        }
      })())
    }

    const catchUp = async (peer: string, signal?: AbortSignal): Promise<boolean> => {
      const n = node
      if (n === undefined) throw new RosterFetchError(peer, 'roster sync is not started')
      const sig = signalFor(signal)
      let envelope: SignedEnvelope | undefined
      try {
        const stream = await n.dialProtocol(peerIdFromString(peer), ROSTER_PROTOCOL, { signal: sig, runOnLimitedConnection: true })
        try {
          const lp = lpStream(stream, { maxDataLength: MAX_ROSTER_ENVELOPE_BYTES })
          await lp.write(encodeRosterRequest(book.version()), { signal: sig })
          envelope = decodeRosterResponse((await lp.read({ signal: sig })).subarray())
          await stream.close({ signal: sig }).catch(() => {})
        } catch (err) {
          stream.abort(err as Error)
          throw err
        }
      } catch (err) {
        throw new RosterFetchError(peer, (err as Error).message, { cause: err })
      }
      if (envelope === undefined) return false
      return await offer(envelope, 'catch-up', peer)
    }

    /** Asks a newly connected peer, unless it was asked within the interval or enough requests are under way. */
    const maybeAsk = (peer: string): void => {
      if (node === undefined || peer === identity.nodeId) return
      const now = Date.now()
      const last = asked.get(peer)
      if (last !== undefined && now - last < intervalMs) return
      if (asking >= maxInFlight) return
      asked.delete(peer)
      asked.set(peer, now)
      if (asked.size > maxTracked) {
        const oldest = asked.keys().next().value
        if (oldest !== undefined) asked.delete(oldest)
      }
      asking++
      track(catchUp(peer)).then((applied) => {
        if (applied) logger.info({ peer, version: book.version() }, 'caught up with a newer roster from a peer')
      }, (err: unknown) => logger.debug({ peer, err: (err as Error).message }, 'roster catch-up failed')).finally(() => { asking-- })
    }

    const onConnectionOpen = (evt: CustomEvent<Connection>): void => {
      maybeAsk(evt.detail.remotePeer.toString())
    }

    return {
      async publish (envelope) {
        await mesh.publish('roster', { roster: envelope, nodeId: identity.nodeId, atMs: Date.now() })
      },
      catchUp,
      refused: () => ({ ...refusals }),
      async start () {
        if (node !== undefined) return
        const n = mesh.libp2p()
        stopping = new AbortController()
        await n.handle(ROSTER_PROTOCOL, serve, { runOnLimitedConnection: true })
        n.addEventListener('connection:open', onConnectionOpen)
        unsubscribe = mesh.subscribe('roster', onNotice)
        node = n
        // Connections the mesh opened while starting (bootstrap peers) came before our listener.
        for (const conn of n.getConnections()) maybeAsk(conn.remotePeer.toString())
      },
      async stop () {
        const n = node
        if (n === undefined) return
        node = undefined
        unsubscribe?.()
        unsubscribe = undefined
        n.removeEventListener('connection:open', onConnectionOpen)
        stopping.abort(new Error('roster sync stopping'))
        await n.unhandle(ROSTER_PROTOCOL).catch(() => {})
        await Promise.allSettled([...inFlight])
        asked.clear()
        served = undefined
      }
    }
  }
}
