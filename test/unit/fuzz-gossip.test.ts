/**
 * Property-based fuzzing of gossip validation on every topic: validateGossip never throws and always
 * answers ACCEPT, IGNORE or REJECT; random bytes are never accepted; signed envelopes with random or
 * generated payloads (the author's own, fresh) get through the signature checks and still never throw.
 */
import test from 'ava'
import fc from 'fast-check'
import { encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { PAYLOAD_MESSAGES, TOPIC_PAYLOAD, TOPICS, encode, messageType, type TopicName } from '../../src/protocol/index.ts'
import type { GossipContext } from '../../src/mesh/gossip.ts'
import { signReceipt, type Receipt } from '../../src/receipt/index.ts'
import { payloadTypeOf, validateGossip } from '../../src/mesh/validate.ts'
import { hostileBytes, messageArbitrary, mutatedBytes } from '../../bench/fuzz.ts'

const NOW = 1_763_000_000_000
const RUNS = 100
const alice = identityFromSeed(new Uint8Array(32).fill(7))
const ctx: GossipContext = { now: NOW, maxBytes: 64 * 1024, maxSkewMs: 30_000, lastHeartbeatAt: () => NOW - 2_000 }
const ACTIONS = new Set(['ACCEPT', 'IGNORE', 'REJECT'])

/** The verdict's action, or its code when not accepted. Any throw fails the property: validateGossip must never throw. */
function judge (topic: TopicName, bytes: Uint8Array, from: string): string {
  const verdict = validateGossip(topic, bytes, from, ctx)
  if (!ACTIONS.has(verdict.action)) throw new Error(`verdict ${String(verdict.action)}`)
  return verdict.action === 'ACCEPT' ? 'ACCEPT' : verdict.code
}

function signed (topic: TopicName, payload: Uint8Array): Uint8Array {
  return encodeEnvelope(signEnvelope(alice, payloadTypeOf(topic), payload))
}

/** A generated payload, sometimes with every top-level *Id field naming alice and every *AtMs field now. */
function ownPayload (topic: TopicName): fc.Arbitrary<Uint8Array> {
  const name = PAYLOAD_MESSAGES[TOPIC_PAYLOAD[topic]]
  return fc.tuple(messageArbitrary(messageType(name)), fc.boolean()).map(([value, own]) => {
    if (own) {
      for (const key of Object.keys(value)) {
        if (/^(node|worker|scheduler|author|from|issuer|validator)Id$/.test(key) && typeof value[key] === 'string') value[key] = alice.nodeId
        if (/atMs$/i.test(key) && typeof value[key] === 'number') value[key] = NOW
      }
      // A job result's author is its receipt's signer.
      if (topic === 'receipts') value.receipt = signReceipt(alice, { ...RECEIPT, jobId: `job-${String(value.outputSize)}` })
    }
    return encode(name, value as never)
  })
}

const RECEIPT: Receipt = {
  jobId: 'job-1',
  jobHash: new Uint8Array(32).fill(1),
  inputHash: new Uint8Array(32).fill(2),
  outputHash: new Uint8Array(32).fill(3),
  steps: [],
  status: 'success',
  exitCode: 0,
  latencyMs: 12,
  startedAtMs: NOW - 12,
  finishedAtMs: NOW,
  workerId: alice.nodeId,
  schedulerId: '',
  error: ''
}

const topics = Object.keys(TOPICS) as TopicName[]

for (const topic of topics) {
  const payloadName = PAYLOAD_MESSAGES[TOPIC_PAYLOAD[topic]]

  test(`${topic}: random and mutated bytes are never accepted and never throw`, (t) => {
    fc.assert(fc.property(hostileBytes('inframind.v1.SignedEnvelope'), fc.constantFrom(alice.nodeId, '', 'not-a-peer-id'), (bytes, from) => {
      return judge(topic, bytes, from) !== 'ACCEPT'
    }), { numRuns: RUNS })
    t.pass()
  })

  test(`${topic}: signed envelopes with hostile payloads never throw`, (t) => {
    fc.assert(fc.property(fc.oneof(hostileBytes(payloadName), mutatedBytes(payloadName)), (payload) => {
      judge(topic, signed(topic, payload), alice.nodeId)
    }), { numRuns: RUNS })
    t.pass()
  })

  test(`${topic}: signed envelopes with generated payloads never throw`, (t) => {
    const outcomes = new Set<string>()
    fc.assert(fc.property(ownPayload(topic), (payload) => {
      outcomes.add(judge(topic, signed(topic, payload), alice.nodeId))
    }), { numRuns: RUNS })
    // The envelope checks passed, so the fuzzing reached the payload's own checks (author, freshness, content).
    t.false(outcomes.has('BAD_SIGNATURE'))
    t.true([...outcomes].some((o) => o !== 'SIGNER_MISMATCH' && o !== 'MALFORMED_PAYLOAD'), [...outcomes].join(', '))
  })

  test(`${topic}: a signed envelope cut or flipped anywhere never throws`, (t) => {
    fc.assert(fc.property(ownPayload(topic), fc.nat(), fc.nat(255), (payload, at, value) => {
      const bytes = signed(topic, payload)
      const cut = bytes.slice(0, at % bytes.length)
      const flipped = new Uint8Array(bytes)
      flipped[at % bytes.length] ^= value | 1
      judge(topic, cut, alice.nodeId)
      judge(topic, flipped, alice.nodeId)
    }), { numRuns: RUNS })
    t.pass()
  })
}
