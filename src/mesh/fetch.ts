import { createHash } from 'node:crypto'
import { lpStream } from 'it-length-prefixed-stream'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from '../telemetry/logger.ts'
import { FETCH_PROTOCOL, decodeFetchRequest, decodeFetchResponse, encodeFetchRequest, encodeFetchResponse } from '../protocol/index.ts'
import {
  FETCH_MAX_INBOUND_STREAMS, FETCH_PER_PEER_BURST, FETCH_PER_PEER_PER_SECOND, FETCH_TIMEOUT_MS, MAX_FETCH_BYTES, MAX_FETCH_TRACKED_PEERS
} from './constants.ts'
import type { MeshLibp2p } from './libp2p.ts'
import { KeyedRateLimiter } from './limits.ts'

/**
 * Answers a hash with the bytes it names, or undefined when this node does not hold them or will
 * not give them to `requester`: the node id of the peer asking, as authenticated by the connection's
 * encryption handshake (never a claim inside the request).
 */
export type ContentSource = (hash: Uint8Array, requester: string) => Promise<Uint8Array | undefined>

/** Largest fetch request read (a request is one sha256, 34 bytes encoded). */
const MAX_FETCH_REQUEST_BYTES = 1024

/** Prefix of the ERROR response's text to a peer over its fetch rate (a status of its own would break older peers' decoders). */
export const FETCH_RATE_LIMITED = 'RATE_LIMITED'

export class FetchError extends Error {
  readonly code: string
  constructor (code: 'FETCH_NOT_FOUND' | 'FETCH_FAILED' | 'FETCH_HASH_MISMATCH' | 'FETCH_TOO_LARGE' | 'FETCH_RATE_LIMITED', message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'FetchError'
    this.code = code
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/**
 * Serves /inframind/fetch/1.0.0: one request (a sha256), one response (the bytes), then close. At
 * most FETCH_MAX_INBOUND_STREAMS at once per connection, and FETCH_PER_PEER_PER_SECOND requests per peer.
 */
export async function handleFetch (libp2p: MeshLibp2p, source: ContentSource, logger: Logger): Promise<void> {
  const limiter = new KeyedRateLimiter({ perSecond: FETCH_PER_PEER_PER_SECOND, burst: FETCH_PER_PEER_BURST, maxKeys: MAX_FETCH_TRACKED_PEERS })
  await libp2p.handle(FETCH_PROTOCOL, ({ stream, connection }) => {
    void (async () => {
      const requester = connection.remotePeer.toString()
      // A request is a hash (34 bytes): nothing bigger is buffered, whoever asks.
      const lp = lpStream(stream, { maxDataLength: MAX_FETCH_REQUEST_BYTES })
      const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS)
      try {
        const allowed = limiter.take(requester)
        const request = decodeFetchRequest((await lp.read({ signal })).subarray())
        if (!allowed) {
          await lp.write(encodeFetchResponse({
            status: 'ERROR', data: new Uint8Array(), error: `${FETCH_RATE_LIMITED}: over ${FETCH_PER_PEER_PER_SECOND} fetches/s from this peer; slow down`
          }), { signal })
        } else if (request.hash.byteLength !== 32) {
          await lp.write(encodeFetchResponse({ status: 'ERROR', data: new Uint8Array(), error: 'hash must be 32 bytes (sha256)' }), { signal })
        } else {
          const data = await source(request.hash, requester)
          const response = data === undefined
            ? { status: 'NOT_FOUND' as const, data: new Uint8Array(), error: '' }
            : data.byteLength > MAX_FETCH_BYTES
              ? { status: 'TOO_LARGE' as const, data: new Uint8Array(), error: `${data.byteLength} bytes` }
              : { status: 'OK' as const, data, error: '' }
          await lp.write(encodeFetchResponse(response), { signal })
        }
        await stream.close({ signal })
      } catch (err) {
        logger.debug({ err }, 'fetch request failed')
        stream.abort(err as Error)
      }
    })()
  }, { runOnLimitedConnection: true, maxInboundStreams: FETCH_MAX_INBOUND_STREAMS })
}

/** Fetches bytes by sha256 from one peer and checks them against the hash before returning. */
export async function fetchFrom (libp2p: MeshLibp2p, peer: string, hash: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
  const sig = signal ?? AbortSignal.timeout(FETCH_TIMEOUT_MS)
  let response
  try {
    const stream = await libp2p.dialProtocol(peerIdFromString(peer), FETCH_PROTOCOL, { signal: sig, runOnLimitedConnection: true })
    const lp = lpStream(stream, { maxDataLength: MAX_FETCH_BYTES + 1024 })
    await lp.write(encodeFetchRequest({ hash }), { signal: sig })
    response = decodeFetchResponse((await lp.read({ signal: sig })).subarray())
    await stream.close({ signal: sig }).catch(() => {})
  } catch (err) {
    throw new FetchError('FETCH_FAILED', `fetch of ${hex(hash).slice(0, 16)}… from ${peer} failed: ${(err as Error).message}`, { cause: err })
  }
  if (response.status === 'NOT_FOUND') throw new FetchError('FETCH_NOT_FOUND', `${peer} does not hold ${hex(hash).slice(0, 16)}…`)
  if (response.status === 'TOO_LARGE') throw new FetchError('FETCH_TOO_LARGE', `${peer}: content too large (${response.error})`)
  if (response.status === 'ERROR' && response.error.startsWith(FETCH_RATE_LIMITED)) throw new FetchError('FETCH_RATE_LIMITED', `${peer}: ${response.error}`)
  if (response.status !== 'OK') throw new FetchError('FETCH_FAILED', `${peer}: ${response.error}`)
  const got = createHash('sha256').update(response.data).digest()
  if (!got.equals(Buffer.from(hash))) throw new FetchError('FETCH_HASH_MISMATCH', `${peer} answered bytes whose sha256 is not ${hex(hash).slice(0, 16)}…`)
  return new Uint8Array(response.data)
}
