import test from 'ava'
import { peerIdFromString } from '@libp2p/peer-id'
import { identityFromSeed } from '../../src/identity/index.ts'
import { BanList, banGater } from '../../src/mesh/bans.ts'
import {
  BAN_BASE_MS, BAN_MAX_MS, BAN_MEMORY_MS, FLOOD_WINDOW_MS, HEARTBEAT_BURST, HEARTBEAT_FLOOD_EXCESS, JOB_TOPIC_BURST, JOB_TOPIC_PER_SECOND
} from '../../src/mesh/constants.ts'
import { GOSSIP_CODES } from '../../src/mesh/gossip.ts'
import { peerGuard } from '../../src/mesh/guard.ts'
import type { MeshLibp2p } from '../../src/mesh/libp2p.ts'
import { GOSSIP_LIMITS, GossipLimiter, KeyedRateLimiter, type RateOutcome } from '../../src/mesh/limits.ts'
import { screenGossip } from '../../src/mesh/validate.ts'
import { TOPICS, type TopicName } from '../../src/protocol/constants.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'

const T0 = 1_763_000_000_000
const alice = identityFromSeed(new Uint8Array(32).fill(1)).nodeId
const bob = identityFromSeed(new Uint8Array(32).fill(2)).nodeId

function limiter (intervals: Record<string, number> = {}, maxAuthors?: number): GossipLimiter {
  return new GossipLimiter({ heartbeatIntervalOf: (id) => intervals[id], maxAuthors })
}

/** `n` checks at one instant; the outcomes in order. */
function burst (l: GossipLimiter, topic: TopicName, author: string, n: number, now: number, fromAuthor = true): RateOutcome[] {
  return Array.from({ length: n }, () => l.check(topic, author, fromAuthor, now))
}

test('the new gossip codes: NOT_ADMITTED and RATE_LIMITED are IGNOREd, FLOODING is REJECTed', (t) => {
  t.is(GOSSIP_CODES.NOT_ADMITTED, 'IGNORE')
  t.is(GOSSIP_CODES.RATE_LIMITED, 'IGNORE')
  t.is(GOSSIP_CODES.FLOODING, 'REJECT')
})

test('every topic has a limit', (t) => {
  t.deepEqual(Object.keys(GOSSIP_LIMITS).sort(), Object.keys(TOPICS).sort())
})

test('a token bucket takes its burst at once, refuses the next, and refills at its rate', (t) => {
  const l = new KeyedRateLimiter({ perSecond: 10, burst: 5, maxKeys: 100 })
  const first = Array.from({ length: 6 }, () => l.take('a', T0))
  t.deepEqual(first, [true, true, true, true, true, false])
  // 10/s: one token per 100 ms, never more than the burst however long the pause.
  t.false(l.take('a', T0 + 50))
  t.true(l.take('a', T0 + 150))
  t.false(l.take('a', T0 + 150))
  const afterPause = Array.from({ length: 6 }, () => l.take('a', T0 + 3_600_000))
  t.deepEqual(afterPause, [true, true, true, true, true, false])
  // Another key has its own bucket.
  t.true(l.take('b', T0 + 150))
})

test('a keyed limiter never tracks more than maxKeys, and a forgotten key starts with a full bucket', (t) => {
  const l = new KeyedRateLimiter({ perSecond: 1, burst: 1, maxKeys: 50 })
  t.true(l.take('victim', T0))
  t.false(l.take('victim', T0))
  for (let i = 0; i < 10_000; i++) l.take(`sybil-${i}`, T0)
  t.is(l.size, 50)
  // Evicted (least recently seen): forgiven, never punished by the eviction.
  t.true(l.take('victim', T0))
})

test('the keys seen last are the ones kept', (t) => {
  const l = new KeyedRateLimiter({ perSecond: 1, burst: 1, maxKeys: 3 })
  for (const k of ['a', 'b', 'c']) l.take(k, T0)
  t.false(l.take('a', T0)) // touching a makes b the oldest
  l.take('d', T0)
  t.false(l.take('a', T0), 'a was kept, its bucket still empty')
  t.true(l.take('b', T0), 'b was evicted, so it starts again full')
})

test('heartbeats: a burst, then one per half of the author\'s interval (1 s before any heartbeat was accepted)', (t) => {
  const l = limiter({ [bob]: 4_000 })
  const first = burst(l, 'heartbeats', alice, HEARTBEAT_BURST + 1, T0)
  t.deepEqual(first.slice(0, HEARTBEAT_BURST), Array(HEARTBEAT_BURST).fill('OK'))
  t.is(first[HEARTBEAT_BURST], 'RATE_LIMITED')
  // Unknown interval: 1 s, refilled every 500 ms.
  t.is(l.check('heartbeats', alice, true, T0 + 400), 'RATE_LIMITED')
  t.is(l.check('heartbeats', alice, true, T0 + 1_000), 'OK')
  // Bob's last heartbeat said 4 s: one token per 2 s.
  burst(l, 'heartbeats', bob, HEARTBEAT_BURST, T0)
  t.is(l.check('heartbeats', bob, true, T0 + 1_500), 'RATE_LIMITED')
  t.is(l.check('heartbeats', bob, true, T0 + 4_100), 'OK')
})

test('an honest heartbeat schedule (one per interval, plus a start-up extra) is never limited', (t) => {
  const l = limiter({ [alice]: 1_000 })
  const outcomes = [l.check('heartbeats', alice, true, T0), l.check('heartbeats', alice, true, T0 + 5)]
  for (let i = 1; i <= 600; i++) outcomes.push(l.check('heartbeats', alice, true, T0 + i * 1_000))
  t.true(outcomes.every((o) => o === 'OK'))
})

test('a claimed interval outside 1–5 s is clamped: a tiny one cannot speed the bucket up', (t) => {
  const l = limiter({ [alice]: 1 })
  burst(l, 'heartbeats', alice, HEARTBEAT_BURST, T0)
  t.is(l.check('heartbeats', alice, true, T0 + 100), 'RATE_LIMITED')
  t.is(l.check('heartbeats', alice, true, T0 + 500), 'OK')
})

test('over-rate messages sent by the author itself become FLOODING past the threshold; forwarded ones never', (t) => {
  const direct = limiter()
  const out = burst(direct, 'heartbeats', alice, HEARTBEAT_BURST + HEARTBEAT_FLOOD_EXCESS + 5, T0)
  t.is(out.filter((o) => o === 'OK').length, HEARTBEAT_BURST)
  t.is(out.filter((o) => o === 'RATE_LIMITED').length, HEARTBEAT_FLOOD_EXCESS)
  t.deepEqual(out.slice(HEARTBEAT_BURST + HEARTBEAT_FLOOD_EXCESS), Array(5).fill('FLOODING'))

  // The same flood reaching us through another peer: only ignored, the forwarder is not blamed.
  const forwarded = limiter()
  const via = burst(forwarded, 'heartbeats', alice, HEARTBEAT_BURST + HEARTBEAT_FLOOD_EXCESS + 50, T0, false)
  t.false(via.includes('FLOODING'))
  t.is(via.filter((o) => o === 'RATE_LIMITED').length, HEARTBEAT_FLOOD_EXCESS + 50)
})

test('the flood count starts again after a quiet window', (t) => {
  const l = limiter()
  burst(l, 'heartbeats', alice, HEARTBEAT_BURST + HEARTBEAT_FLOOD_EXCESS, T0)
  const later = T0 + FLOOD_WINDOW_MS + 1
  // Refilled tokens first, then a fresh allowance of over-rate messages before FLOODING.
  const out = burst(l, 'heartbeats', alice, HEARTBEAT_BURST + HEARTBEAT_FLOOD_EXCESS + 1, later)
  t.is(out.filter((o) => o === 'FLOODING').length, 1)
  t.is(out[out.length - 1], 'FLOODING')
})

test('job topics allow a busy scheduler\'s rate and each topic has its own bucket', (t) => {
  const l = limiter()
  // A scheduler sending assignments at its steady rate for 10 s, every 10 ms a batch.
  const perBatch = JOB_TOPIC_PER_SECOND / 100
  let limited = 0
  for (let i = 0; i < 1_000; i++) for (const o of burst(l, 'assignments', alice, perBatch, T0 + i * 10)) if (o !== 'OK') limited++
  t.is(limited, 0)
  // Acks are another bucket: full.
  t.deepEqual(burst(l, 'acks', alice, JOB_TOPIC_BURST, T0 + 10_000).filter((o) => o !== 'OK'), [])
})

test('the gossip limiter tracks at most maxAuthors authors', (t) => {
  const l = limiter({}, 100)
  for (let i = 0; i < 5_000; i++) l.check('heartbeats', `sybil-${i}`, true, T0)
  t.is(l.size, 100)
})

test('screenGossip: rate first, then authorize; a refused author is NOT_ADMITTED, an allowed one goes on to validation', (t) => {
  const admitted = new Set([alice])
  const asked: Array<[TopicName, string]> = []
  const authorize = (topic: TopicName, author: string): boolean => {
    asked.push([topic, author])
    return admitted.has(author)
  }
  const l = limiter()
  t.is(screenGossip('heartbeats', alice, true, l, authorize, T0), undefined)
  const refused = screenGossip('assignments', bob, true, l, authorize, T0)
  t.is(refused?.action, 'IGNORE')
  t.is(refused?.code, 'NOT_ADMITTED')
  t.deepEqual(asked, [['heartbeats', alice], ['assignments', bob]])
  // No hook: everyone is admitted.
  t.is(screenGossip('acks', bob, true, l, undefined, T0), undefined)
  // A hook that throws admits nobody (and does not break the validator).
  t.is(screenGossip('acks', bob, true, l, () => { throw new Error('roster not loaded') }, T0)?.code, 'NOT_ADMITTED')
})

test('screenGossip: a flood from an author that is not admitted is still cut and REJECTed (the rate is checked first)', (t) => {
  const l = limiter()
  const codes = Array.from({ length: HEARTBEAT_BURST + HEARTBEAT_FLOOD_EXCESS + 3 }, () => screenGossip('heartbeats', bob, true, l, () => false, T0)?.code)
  t.deepEqual(codes.slice(0, HEARTBEAT_BURST), Array(HEARTBEAT_BURST).fill('NOT_ADMITTED'))
  t.deepEqual(codes.slice(HEARTBEAT_BURST, HEARTBEAT_BURST + HEARTBEAT_FLOOD_EXCESS), Array(HEARTBEAT_FLOOD_EXCESS).fill('RATE_LIMITED'))
  t.deepEqual(codes.slice(-3), ['FLOODING', 'FLOODING', 'FLOODING'])
  t.is(screenGossip('heartbeats', bob, true, l, () => false, T0)?.action, 'REJECT')
})

test('bans: the cool-down doubles on each repeat and is capped', (t) => {
  const bans = new BanList()
  let now = T0
  const lengths: number[] = []
  for (let i = 0; i < 9; i++) {
    const b = bans.ban(alice, 'graylisted', now)
    lengths.push(b.untilMs - now)
    t.true(bans.isBanned(alice, b.untilMs - 1))
    t.false(bans.isBanned(alice, b.untilMs))
    // Graylisted again soon after the ban ends.
    now = b.untilMs + 1_000
  }
  t.deepEqual(lengths.slice(0, 7), [1, 2, 4, 8, 16, 32, 60].map((m) => Math.min(m * BAN_BASE_MS, BAN_MAX_MS)))
  t.is(BAN_BASE_MS, 60_000)
  t.is(BAN_MAX_MS, 3_600_000)
  t.deepEqual(lengths.slice(6), [BAN_MAX_MS, BAN_MAX_MS, BAN_MAX_MS])
})

test('bans: a peer not banned for longer than the memory starts again at the base cool-down', (t) => {
  const bans = new BanList()
  const first = bans.ban(alice, 'x', T0)
  const second = bans.ban(alice, 'x', first.untilMs + 1)
  t.is(second.untilMs - (first.untilMs + 1), 2 * BAN_BASE_MS)
  const muchLater = second.untilMs + BAN_MEMORY_MS + 1
  const third = bans.ban(alice, 'x', muchLater)
  t.is(third.untilMs - muchLater, BAN_BASE_MS)
})

test('bans: a block lasts as long as asked, does not escalate later bans, and unblock lifts it at once', (t) => {
  const bans = new BanList()
  const b = bans.block(alice, T0 + 5_000, 'partition', T0)
  t.is(b.untilMs, T0 + 5_000)
  t.true(bans.isBanned(alice, T0 + 4_999))
  t.false(bans.isBanned(alice, T0 + 5_000))
  t.true(bans.unblock(alice, T0 + 1_000))
  t.false(bans.isBanned(alice, T0 + 1_000))
  t.false(bans.unblock(alice, T0 + 1_001), 'nothing left to lift')
  // A score ban right after starts at the base length: the block was not a ban.
  const ban = bans.ban(alice, 'graylisted', T0 + 2_000)
  t.is(ban.untilMs - (T0 + 2_000), BAN_BASE_MS)
})

test('bans: list shows the active bans with their reason; records are bounded', (t) => {
  const bans = new BanList({ maxRecords: 10 })
  bans.ban(alice, 'gossip score -900 below the graylist threshold (-400)', T0)
  bans.ban(bob, 'another reason', T0)
  t.deepEqual(bans.list(T0 + 1).map((b) => [b.nodeId, b.reason]), [[alice, 'gossip score -900 below the graylist threshold (-400)'], [bob, 'another reason']])
  t.deepEqual(bans.list(T0 + BAN_BASE_MS), [])
  for (let i = 0; i < 1_000; i++) bans.ban(`sybil-${i}`, 'x', T0 + 2 * BAN_BASE_MS)
  t.is(bans.size, 10)
  t.true(bans.isBanned('sybil-999', T0 + 2 * BAN_BASE_MS))
})

test('the ban gater refuses dials to, and connections from, a banned peer only', async (t) => {
  const bans = new BanList()
  bans.ban(alice, 'x')
  const gater = banGater((id) => bans.isBanned(id))
  const a = peerIdFromString(alice)
  const b = peerIdFromString(bob)
  t.true(await gater.denyDialPeer?.(a))
  t.true(await gater.denyInboundEncryptedConnection?.(a, {} as never))
  t.true(await gater.denyInboundUpgradedConnection?.(a, {} as never))
  t.false(await gater.denyDialPeer?.(b))
  t.false(await gater.denyInboundEncryptedConnection?.(b, {} as never))
})

/** Just what the guard uses of a libp2p node: connections, gossipsub scores, hangUp. */
function guardedNode (scores: Record<string, number>) {
  const hungUp: string[] = []
  const node = {
    getConnections: () => Object.keys(scores).flatMap((id) => [{ remotePeer: peerIdFromString(id) }, { remotePeer: peerIdFromString(id) }]),
    services: { pubsub: { getScore: (id: string) => scores[id] ?? 0 } },
    hangUp: async (peer: { toString: () => string }) => { hungUp.push(peer.toString()) }
  }
  return { node: node as unknown as MeshLibp2p, hungUp }
}

test('the peer guard bans connected peers scoring below the graylist threshold, once, and hangs up on them', (t) => {
  const bans = new BanList()
  let counted = 0
  const guard = peerGuard({ bans, threshold: -400, logger: silentLogger(), onBan: () => { counted++ } })
  const { node, hungUp } = guardedNode({ [alice]: -450, [bob]: -399 })
  guard.checkScores(node)
  guard.checkScores(node)
  t.deepEqual(bans.list().map((b) => b.nodeId), [alice])
  t.regex(bans.list()[0]!.reason, /-450 below the graylist threshold \(-400\)/)
  t.deepEqual(hungUp, [alice], 'one hang-up, though it had two connections and was checked twice')
  t.is(counted, 1)
})

test('the peer guard bans a flooder at once, whatever its score', (t) => {
  const bans = new BanList()
  const guard = peerGuard({ bans, threshold: -400, logger: silentLogger() })
  const { node, hungUp } = guardedNode({ [alice]: 5 })
  guard.ban(node, alice, 'flooding: its own heartbeats far over its rate')
  guard.ban(node, alice, 'again')
  t.deepEqual(bans.list().map((b) => [b.nodeId, b.reason]), [[alice, 'flooding: its own heartbeats far over its rate']])
  t.deepEqual(hungUp, [alice])
})
