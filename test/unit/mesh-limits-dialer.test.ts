import test from 'ava'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { identityFromSeed } from '../../src/identity/index.ts'
import { keepDialer } from '../../src/mesh/dialer.ts'
import type { MeshLibp2p } from '../../src/mesh/libp2p.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'

const id = (n: number): string => identityFromSeed(new Uint8Array(32).fill(n)).nodeId
const [self, connected, missing, banned, unknown, boot] = [1, 2, 3, 4, 5, 6].map(id) as [string, string, string, string, string, string]

/** Just what the dialler uses of a libp2p node: connections, dial, the DHT's findPeer, the peer store. */
function fakeNode (opts: { known: Set<string>, found?: Record<string, string[]>, hold?: Promise<void> }) {
  const dials: string[] = []
  const merged: Array<[string, string[]]> = []
  const lookups: string[] = []
  const node = {
    peerId: peerIdFromString(self),
    getConnections: () => [{ remotePeer: peerIdFromString(connected) }],
    dial: async (target: { toString: () => string } | Multiaddr) => {
      const s = target.toString()
      dials.push(s)
      await opts.hold
      const peer = s.includes('/p2p/') ? s.slice(s.lastIndexOf('/p2p/') + 5) : s
      if (!opts.known.has(peer)) throw new Error('no addresses')
    },
    peerRouting: {
      findPeer: async (peer: { toString: () => string }) => {
        lookups.push(peer.toString())
        const addrs = opts.found?.[peer.toString()]
        if (addrs === undefined) throw new Error('not found')
        return { id: peer, multiaddrs: addrs.map((a) => multiaddr(a)) }
      }
    },
    peerStore: {
      merge: async (peer: { toString: () => string }, data: { multiaddrs: Multiaddr[] }) => {
        merged.push([peer.toString(), data.multiaddrs.map(String)])
        opts.known.add(peer.toString())
      }
    }
  }
  return { node: node as unknown as MeshLibp2p, dials, merged, lookups }
}

test('kept peers that are not connected are dialled; self, connected and banned ones are not', async (t) => {
  const f = fakeNode({ known: new Set([missing]) })
  const redial = keepDialer({ bootstrap: [], keep: () => [self, connected, missing, banned, missing], refused: (n) => n === banned, logger: silentLogger() })
  await redial(f.node)
  t.deepEqual(f.dials, [missing])
  t.deepEqual(f.lookups, [])
})

test('a kept peer whose known addresses fail is looked up in the DHT and dialled at what it finds', async (t) => {
  const f = fakeNode({ known: new Set(), found: { [unknown]: ['/ip4/127.0.0.1/tcp/4001'] } })
  const redial = keepDialer({ bootstrap: [], keep: () => [unknown], refused: () => false, logger: silentLogger() })
  await redial(f.node)
  t.deepEqual(f.lookups, [unknown])
  t.deepEqual(f.merged, [[unknown, ['/ip4/127.0.0.1/tcp/4001']]])
  t.deepEqual(f.dials, [unknown, unknown], 'dialled by id again, now with the found address')
})

test('a peer nobody can find is tried again on the next round, never twice at once', async (t) => {
  let release!: () => void
  const hold = new Promise<void>((resolve) => { release = resolve })
  const f = fakeNode({ known: new Set(), hold })
  const redial = keepDialer({ bootstrap: [], keep: () => [unknown], refused: () => false, logger: silentLogger() })
  const first = redial(f.node)
  const second = redial(f.node)
  release()
  await Promise.all([first, second])
  t.deepEqual(f.dials, [unknown], 'the second round did not dial while the first was dialling')
  await redial(f.node)
  t.deepEqual(f.dials, [unknown, unknown])
})

test('bootstrap addresses are redialled unless their peer is connected or banned; a throwing keepConnected does not stop them', async (t) => {
  const f = fakeNode({ known: new Set([boot]) })
  const addrs = [`/ip4/127.0.0.1/tcp/1/p2p/${boot}`, `/ip4/127.0.0.1/tcp/2/p2p/${connected}`, `/ip4/127.0.0.1/tcp/3/p2p/${banned}`]
  const redial = keepDialer({ bootstrap: addrs, keep: () => { throw new Error('no roster yet') }, refused: (n) => n === banned, logger: silentLogger() })
  await redial(f.node)
  t.deepEqual(f.dials, [addrs[0]])
})

test('something that is not a node id is skipped, not thrown', async (t) => {
  const f = fakeNode({ known: new Set() })
  const redial = keepDialer({ bootstrap: [], keep: () => ['not-a-peer-id'], refused: () => false, logger: silentLogger() })
  await t.notThrowsAsync(redial(f.node))
  t.deepEqual(f.dials, [])
})
