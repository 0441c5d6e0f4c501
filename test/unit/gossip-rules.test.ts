import test from 'ava'
import { randomBytes } from 'node:crypto'
import { TopicValidatorResult } from '@libp2p/interface'
import { encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import {
  encodeAssignment, encodeAttestation, encodeDisputeRecord, encodeHeartbeat, encodeJobResult, PAYLOAD_TYPES, TOPICS,
  type Assignment, type Attestation, type DisputeRecord, type Heartbeat, type JobResultNotice, type TopicName
} from '../../src/protocol/index.ts'
import type { SignedEnvelope } from '../../src/envelope/types.ts'
import { computeJobHash, receiptHash, sha256, signReceipt, type Receipt } from '../../src/receipt/index.ts'
import { signAttestation } from '../../src/verification/index.ts'
import { GOSSIP_CODES, TOPIC_VALIDATOR_RESULT, type GossipContext, type GossipRules, type GossipVerdict } from '../../src/mesh/gossip.ts'
import { GOSSIP_RULES } from '../../src/mesh/gossip-rules.ts'
import { payloadTypeOf, validateGossip } from '../../src/mesh/validate.ts'
import type { Mesh } from '../../src/mesh/index.ts'

const NOW = 1_763_000_000_000
const SKEW = 30_000
const alice = identityFromSeed(new Uint8Array(32).fill(1))
const bob = identityFromSeed(new Uint8Array(32).fill(2))

function ctx (lastHeartbeats: Map<string, number> = new Map()): GossipContext {
  return { now: NOW, maxBytes: 64 * 1024, maxSkewMs: SKEW, lastHeartbeatAt: (id) => lastHeartbeats.get(id) }
}

const signed = (id: Identity, payloadType: string, payload: Uint8Array): Uint8Array => encodeEnvelope(signEnvelope(id, payloadType, payload))

function heartbeat (over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    nodeId: alice.nodeId, atMs: NOW, roles: ['worker'], containers: ['echo'], cpuCores: 2, memoryBytes: 1 << 30, gpus: 0,
    grpcAddress: '', freeSlots: 1, stats: null, intervalMs: 1000, rosterVersion: 0, ...over
  }
}

function attestation (over: Partial<Attestation> = {}): Attestation {
  return {
    receiptHash: sha256(new TextEncoder().encode('a receipt')), jobId: 'job-1', workerId: bob.nodeId, validatorId: alice.nodeId,
    verdict: 'agree', method: 'signature', outputHash: new Uint8Array(0), reason: '', atMs: NOW, ...over
  }
}

function assignment (over: Partial<Assignment> = {}): Assignment {
  return {
    jobId: 'job-1', containers: ['echo'], sealed: new Uint8Array(60), inputHash: sha256(new Uint8Array(0)), inputSize: 0, inputProvider: '',
    workerId: bob.nodeId, schedulerId: alice.nodeId, issuedAtMs: NOW, deadlineAtMs: NOW + 60_000, requiresProof: false, replyAddress: '', purpose: '', checkedReceipt: null, ...over
  }
}

const output = new TextEncoder().encode('hello\n')

function receipt (worker: Identity, over: Partial<Receipt> = {}): Receipt {
  const inputHash = sha256(new Uint8Array(0))
  return {
    jobId: 'job-1', jobHash: computeJobHash('job-1', ['echo'], inputHash), inputHash, outputHash: sha256(output),
    steps: [], status: 'success', exitCode: 0, latencyMs: 3, startedAtMs: NOW - 10, finishedAtMs: NOW - 7,
    workerId: worker.nodeId, schedulerId: bob.nodeId, error: '', ...over
  }
}

function notice (over: Partial<JobResultNotice> = {}): JobResultNotice {
  return { receipt: signReceipt(alice, receipt(alice)), sealedOutput: new Uint8Array(60), outputInline: true, outputSize: output.length, atMs: NOW, attestation: null, ...over }
}

/** The verdict's action and code, or just 'ACCEPT'. */
function outcome (v: GossipVerdict<unknown>): string {
  return v.action === 'ACCEPT' ? 'ACCEPT' : `${v.action} ${v.code}`
}

function check<K extends TopicName> (topic: K, data: Uint8Array, from = alice.nodeId, c = ctx()): string {
  return outcome(validateGossip(topic, data, from, c))
}

test('every topic has a rule and carries its own payload type', (t) => {
  t.deepEqual(Object.keys(GOSSIP_RULES).sort(), Object.keys(TOPICS).sort())
  t.is(payloadTypeOf('heartbeats'), PAYLOAD_TYPES.heartbeat)
  t.is(payloadTypeOf('receipts'), PAYLOAD_TYPES.jobResult)
  t.is(payloadTypeOf('attestations'), PAYLOAD_TYPES.attestation)
})

test('outcomes map onto gossipsub results, and only time, replay, admission and rate are IGNOREd', (t) => {
  t.is(TOPIC_VALIDATOR_RESULT.ACCEPT, TopicValidatorResult.Accept)
  t.is(TOPIC_VALIDATOR_RESULT.IGNORE, TopicValidatorResult.Ignore)
  t.is(TOPIC_VALIDATOR_RESULT.REJECT, TopicValidatorResult.Reject)
  const ignored = Object.entries(GOSSIP_CODES).filter(([, a]) => a === 'IGNORE').map(([c]) => c).sort()
  t.deepEqual(ignored, ['DUPLICATE', 'FUTURE', 'NOT_ADMITTED', 'RATE_LIMITED', 'STALE'])
})

test('a valid message on each topic is ACCEPTed with its decoded value and signer', (t) => {
  const hb = validateGossip('heartbeats', signed(alice, PAYLOAD_TYPES.heartbeat, encodeHeartbeat(heartbeat())), alice.nodeId, ctx())
  t.is(hb.action, 'ACCEPT')
  if (hb.action === 'ACCEPT') {
    t.is(hb.value.nodeId, alice.nodeId)
    t.is(hb.signer, alice.nodeId)
  }
  t.is(check('assignments', signed(alice, PAYLOAD_TYPES.assignment, encodeAssignment(assignment()))), 'ACCEPT')
  t.is(check('receipts', signed(alice, PAYLOAD_TYPES.jobResult, encodeJobResult(notice()))), 'ACCEPT')
})

test('a valid attestation is ACCEPTed, with or without an output hash', (t) => {
  const v = validateGossip('attestations', signed(alice, PAYLOAD_TYPES.attestation, encodeAttestation(attestation())), alice.nodeId, ctx())
  t.is(outcome(v), 'ACCEPT')
  if (v.action === 'ACCEPT') t.is(v.value.verdict, 'agree')
  const reexecuted = attestation({ verdict: 'disagree', method: 'reexecution', outputHash: sha256(output), reason: 'different output' })
  t.is(check('attestations', signed(alice, PAYLOAD_TYPES.attestation, encodeAttestation(reexecuted))), 'ACCEPT')
  t.is(check('attestations', signed(alice, PAYLOAD_TYPES.attestation, encodeAttestation(attestation({ verdict: 'unverifiable' })))), 'ACCEPT')
})

test('structural failures are REJECTed, each with its code', (t) => {
  const hb = encodeHeartbeat(heartbeat())
  t.is(check('heartbeats', new Uint8Array(64 * 1024 + 1)), 'REJECT OVERSIZED')
  t.is(check('heartbeats', randomBytes(300)), 'REJECT MALFORMED_ENVELOPE')
  // Correctly signed, but the payload type of another topic.
  t.is(check('heartbeats', signed(alice, PAYLOAD_TYPES.ack, hb)), 'REJECT WRONG_PAYLOAD_TYPE')
  t.is(check('attestations', signed(alice, PAYLOAD_TYPES.heartbeat, hb)), 'REJECT WRONG_PAYLOAD_TYPE')
  const tampered = signEnvelope(alice, PAYLOAD_TYPES.heartbeat, hb)
  tampered.signature[3] ^= 0xff
  t.is(check('heartbeats', encodeEnvelope(tampered)), 'REJECT BAD_SIGNATURE')
  // A field 1 announcing 5 bytes and carrying 1.
  t.is(check('heartbeats', signed(alice, PAYLOAD_TYPES.heartbeat, Uint8Array.of(0x0a, 0x05, 0x01))), 'REJECT MALFORMED_PAYLOAD')
  t.is(check('attestations', signed(alice, PAYLOAD_TYPES.attestation, Uint8Array.of(0x0a, 0x05, 0x01))), 'REJECT MALFORMED_PAYLOAD')
})

test('signer, gossipsub author and the node named in the payload must be one node', (t) => {
  // Signed by alice, published (gossipsub author) by bob.
  t.is(check('heartbeats', signed(alice, PAYLOAD_TYPES.heartbeat, encodeHeartbeat(heartbeat())), bob.nodeId), 'REJECT SIGNER_MISMATCH')
  // Signed and published by alice, but the payload names bob.
  t.is(check('heartbeats', signed(alice, PAYLOAD_TYPES.heartbeat, encodeHeartbeat(heartbeat({ nodeId: bob.nodeId })))), 'REJECT SIGNER_MISMATCH')
  t.is(check('attestations', signed(alice, PAYLOAD_TYPES.attestation, encodeAttestation(attestation({ validatorId: bob.nodeId })))), 'REJECT SIGNER_MISMATCH')
  t.is(check('assignments', signed(alice, PAYLOAD_TYPES.assignment, encodeAssignment(assignment({ schedulerId: bob.nodeId })))), 'REJECT SIGNER_MISMATCH')
  // A notice from alice carrying bob's (valid) receipt.
  const bobs = notice({ receipt: signReceipt(bob, receipt(bob)) })
  t.is(check('receipts', signed(alice, PAYLOAD_TYPES.jobResult, encodeJobResult(bobs))), 'REJECT SIGNER_MISMATCH')
})

test('invalid content is REJECTed', (t) => {
  const att = (over: Partial<Attestation>): string => check('attestations', signed(alice, PAYLOAD_TYPES.attestation, encodeAttestation(attestation(over))))
  t.is(att({ receiptHash: new Uint8Array(31) }), 'REJECT INVALID_CONTENT')
  t.is(att({ receiptHash: new Uint8Array(0) }), 'REJECT INVALID_CONTENT')
  t.is(att({ verdict: 'maybe' }), 'REJECT INVALID_CONTENT')
  t.is(att({ verdict: '' }), 'REJECT INVALID_CONTENT')
  t.is(att({ method: 'vibes' }), 'REJECT INVALID_CONTENT')
  t.is(att({ outputHash: new Uint8Array(16) }), 'REJECT INVALID_CONTENT')

  const res = (n: JobResultNotice): string => check('receipts', signed(alice, PAYLOAD_TYPES.jobResult, encodeJobResult(n)))
  // A tampered receipt inside a notice.
  const tampered = signReceipt(alice, receipt(alice))
  t.is(res(notice({ receipt: { ...tampered, payload: Uint8Array.from(tampered.payload, (b, i) => i === 3 ? b ^ 1 : b) } })), 'REJECT INVALID_CONTENT')
  // A receipt alice signed that names bob as its worker.
  const misnamed = signEnvelope(alice, PAYLOAD_TYPES.receipt, signReceipt(bob, receipt(bob)).payload)
  t.is(res(notice({ receipt: misnamed })), 'REJECT INVALID_CONTENT')

  const asg = (over: Partial<Assignment>): string => check('assignments', signed(alice, PAYLOAD_TYPES.assignment, encodeAssignment(assignment(over))))
  t.is(asg({ jobId: '' }), 'REJECT INVALID_CONTENT')
  t.is(asg({ containers: [] }), 'REJECT INVALID_CONTENT')
})

test('messages stamped outside the clock-skew window are IGNOREd, not REJECTed', (t) => {
  const hb = (atMs: number): string => check('heartbeats', signed(alice, PAYLOAD_TYPES.heartbeat, encodeHeartbeat(heartbeat({ atMs }))))
  t.is(hb(NOW - SKEW), 'ACCEPT')
  t.is(hb(NOW + SKEW), 'ACCEPT')
  t.is(hb(NOW - SKEW - 1), 'IGNORE STALE')
  t.is(hb(NOW - 3_600_000), 'IGNORE STALE')
  t.is(hb(NOW + SKEW + 1), 'IGNORE FUTURE')
  t.is(check('attestations', signed(alice, PAYLOAD_TYPES.attestation, encodeAttestation(attestation({ atMs: NOW - 3_600_000 })))), 'IGNORE STALE')
  t.is(check('receipts', signed(alice, PAYLOAD_TYPES.jobResult, encodeJobResult(notice({ atMs: NOW + 3_600_000 })))), 'IGNORE FUTURE')
})

test('a heartbeat not newer than the last one accepted from its node is IGNOREd as a duplicate', (t) => {
  const last = new Map([[alice.nodeId, NOW - 1000]])
  const hb = (atMs: number, nodeId = alice.nodeId, id = alice): string =>
    check('heartbeats', signed(id, PAYLOAD_TYPES.heartbeat, encodeHeartbeat(heartbeat({ atMs, nodeId }))), id.nodeId, ctx(last))
  t.is(hb(NOW - 1000), 'IGNORE DUPLICATE', 'the same stamp again (a replay)')
  t.is(hb(NOW - 2000), 'IGNORE DUPLICATE', 'an older heartbeat arriving late')
  t.is(hb(NOW - 999), 'ACCEPT')
  t.is(hb(NOW - 5000, bob.nodeId, bob), 'ACCEPT', 'another node has its own history')
})

test('a replayed heartbeat is ignored once its original was recorded', (t) => {
  const last = new Map<string, number>()
  const c = ctx(last)
  const data = signed(alice, PAYLOAD_TYPES.heartbeat, encodeHeartbeat(heartbeat()))
  const first = validateGossip('heartbeats', data, alice.nodeId, c)
  t.is(first.action, 'ACCEPT')
  if (first.action === 'ACCEPT') last.set(first.value.nodeId, first.value.atMs)
  t.is(outcome(validateGossip('heartbeats', data, alice.nodeId, c)), 'IGNORE DUPLICATE')
})

test('random bytes on any topic are never accepted and never throw', (t) => {
  for (const topic of Object.keys(TOPICS) as TopicName[]) {
    for (let i = 0; i < 50; i++) {
      const v = validateGossip(topic, randomBytes(i * 13), alice.nodeId, ctx())
      t.not(v.action, 'ACCEPT')
    }
  }
})

// Type-level checks: `npm run typecheck` (tsc --noEmit, which covers test/) fails if any of these
// `@ts-expect-error` lines stops being an error. The function is never called.
export function typeChecks (mesh: Mesh): void {
  const { attestations: _att, ...withoutAttestations } = GOSSIP_RULES
  // @ts-expect-error a table missing a topic's rule does not compile
  const incomplete: GossipRules = withoutAttestations
  // @ts-expect-error a rule whose codec is another topic's does not compile
  const swapped: GossipRules = { ...GOSSIP_RULES, attestations: GOSSIP_RULES.heartbeats }

  mesh.subscribe('receipts', (msg) => {
    const n: JobResultNotice = msg.value
    // @ts-expect-error a receipts handler gets JobResultNotice, not Heartbeat
    const h: Heartbeat = msg.value
    void n; void h
  })
  void mesh.publish('attestations', attestation())
  // @ts-expect-error publish checks the value against the topic
  void mesh.publish('attestations', heartbeat())
  // @ts-expect-error topics are named by TOPICS keys
  mesh.subscribe('votes', () => {})
  void incomplete; void swapped
}

test('a dispute record is ACCEPTed only with evidence that holds by itself', (t) => {
  // bob assigned the job; alice (the worker) signed the receipt; carol and dave re-ran it and disagree.
  const carol = identityFromSeed(new Uint8Array(32).fill(41))
  const dave = identityFromSeed(new Uint8Array(32).fill(42))
  const workerReceipt = signReceipt(alice, receipt(alice))
  const disagree = (v: Identity, over: Partial<Attestation> = {}): SignedEnvelope => signAttestation(v, {
    receiptHash: receiptHash(workerReceipt), jobId: 'job-1', workerId: alice.nodeId, validatorId: v.nodeId, verdict: 'disagree',
    method: 'reexecution', outputHash: sha256(new TextEncoder().encode('the honest output')), reason: 'different output', atMs: NOW, ...over
  })
  const record = (over: Partial<DisputeRecord> = {}): DisputeRecord => ({
    jobId: 'job-1', policy: { method: 'reexecute', validators: 2, quorum: 2 }, receipt: workerReceipt, attestations: [disagree(carol), disagree(dave)],
    resolution: 'rerun', resolvedOutputHash: new Uint8Array(), schedulerId: bob.nodeId, atMs: NOW, ...over
  })
  const dispute = (r: DisputeRecord, signer = bob): string => check('disputes', signed(signer, PAYLOAD_TYPES.dispute, encodeDisputeRecord(r)), signer.nodeId)
  t.is(dispute(record()), 'ACCEPT')
  // v=2, q=2: one disagreement already makes q impossible.
  t.is(dispute(record({ attestations: [disagree(carol)] })), 'ACCEPT')
  t.is(dispute(record({ policy: { method: 'reexecute', validators: 3, quorum: 1 }, attestations: [disagree(carol), disagree(dave)] })), 'REJECT INVALID_CONTENT', 'v=3 q=1 needs 3 disagreements')
  t.is(dispute(record({ attestations: [disagree(carol), disagree(carol)], policy: { method: 'reexecute', validators: 3, quorum: 2 } })), 'REJECT INVALID_CONTENT', 'one validator twice counts once')
  t.is(dispute(record({ attestations: [disagree(carol, { verdict: 'agree', outputHash: sha256(output) })] })), 'REJECT INVALID_CONTENT', 'agreement is no evidence')
  t.is(dispute(record({ attestations: [disagree(alice)] })), 'REJECT INVALID_CONTENT', 'the worker cannot dispute itself')
  t.is(dispute(record({ attestations: [disagree(carol, { receiptHash: sha256(new Uint8Array([1])) })] })), 'REJECT INVALID_CONTENT', 'an attestation of another receipt')
  t.is(dispute(record({ receipt: { ...workerReceipt, signature: new Uint8Array(64) } })), 'REJECT INVALID_CONTENT', 'a forged receipt')
  t.is(dispute(record({ schedulerId: carol.nodeId }), carol), 'REJECT INVALID_CONTENT', 'a scheduler that did not assign the job')
  t.is(dispute(record({ resolution: 'vibes' })), 'REJECT INVALID_CONTENT')
})
