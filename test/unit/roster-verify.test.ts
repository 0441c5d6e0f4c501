import test from 'ava'
import { randomBytes } from 'node:crypto'
import { signEnvelope, type SignedEnvelope } from '../../src/envelope/index.ts'
import { signEnvelopeNacl, verifyEnvelopeNacl } from '../../src/envelope/reference.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { encodeRoster, PAYLOAD_TYPES, type Roster } from '../../src/protocol/index.ts'
import {
  decodeRosterRequest, decodeRosterResponse, draftText, emptyDraft, encodeRosterRequest, encodeRosterResponse, isRosterRefusal, openRoster,
  parseDraft, removeMember, rosterFromDraft, signRoster, upsertMember, verifyRoster, type VerifyRosterOptions
} from '../../src/roster/index.ts'

const operator = identityFromSeed(new Uint8Array(32).fill(9))
const stranger = identityFromSeed(new Uint8Array(32).fill(8))
const worker = identityFromSeed(new Uint8Array(32).fill(1))
const scheduler = identityFromSeed(new Uint8Array(32).fill(2))
const NOW = 1_750_000_000_000

function roster (overrides: Partial<Roster> = {}): Roster {
  return {
    mesh: 'edge',
    version: 3,
    issuedAtMs: NOW - 1000,
    expiresAtMs: 0,
    members: [
      { nodeId: worker.nodeId, roles: ['worker'], name: 'box-1' },
      { nodeId: scheduler.nodeId, roles: ['scheduler', 'gateway'], name: '' }
    ],
    ...overrides
  }
}

const opts = (o: Partial<VerifyRosterOptions> = {}): VerifyRosterOptions => ({ operators: [operator.nodeId], meshName: 'edge', now: NOW, ...o })

/** Signed without signRoster's content checks: what a careless or hostile signer could produce. */
const signRaw = (r: Roster, by = operator): SignedEnvelope => signEnvelope(by, PAYLOAD_TYPES.roster, encodeRoster(r))

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

test('a roster signed by an operator for this mesh verifies and decodes to what was signed', (t) => {
  const env = signRoster(operator, roster())
  const got = verifyRoster(env, opts({ current: 2 }))
  t.is(got.version, 3)
  t.deepEqual(got.members.map((m) => [m.nodeId, m.roles]), [[worker.nodeId, ['worker']], [scheduler.nodeId, ['scheduler', 'gateway']]])
  const opened = openRoster(env)
  t.is(opened.signer, operator.nodeId)
  t.regex(opened.hash, /^[0-9a-f]{64}$/)
})

test('not a roster envelope, or a signature that does not verify, is ROSTER_UNSIGNED', (t) => {
  const env = signRoster(operator, roster())
  const other = signEnvelope(operator, PAYLOAD_TYPES.rosterNotice, env.payload)
  t.is(codeOf(() => verifyRoster(other, opts())), 'ROSTER_UNSIGNED', 'another payload type, validly signed')
  t.is(codeOf(() => verifyRoster({ ...env, payloadType: PAYLOAD_TYPES.rosterNotice }, opts())), 'ROSTER_UNSIGNED', 'type changed after signing')
  const tampered = roster({ members: [{ nodeId: stranger.nodeId, roles: ['scheduler'], name: '' }] })
  t.is(codeOf(() => verifyRoster({ ...env, payload: encodeRoster(tampered) }, opts())), 'ROSTER_UNSIGNED', 'payload swapped')
  const flipped = new Uint8Array(env.payload)
  flipped[flipped.length - 1] ^= 1
  t.is(codeOf(() => verifyRoster({ ...env, payload: flipped }, opts())), 'ROSTER_UNSIGNED', 'one bit of the payload')
  t.is(codeOf(() => verifyRoster({ ...env, signature: env.signature.map((b, i) => i === 0 ? b ^ 1 : b) }, opts())), 'ROSTER_UNSIGNED', 'signature')
  t.is(codeOf(() => verifyRoster({ ...env, signature: new Uint8Array(0) }, opts())), 'ROSTER_UNSIGNED', 'no signature')
  // The operator's key claimed on a stranger's signature.
  const forged = signRaw(roster(), stranger)
  t.is(codeOf(() => verifyRoster({ ...forged, publicKey: operator.publicKey }, opts())), 'ROSTER_UNSIGNED', 'key swapped')
  t.is(codeOf(() => verifyRoster(null as unknown as SignedEnvelope, opts())), 'ROSTER_UNSIGNED', 'not an envelope')
})

test('a roster validly signed by a key that is not an operator is ROSTER_UNKNOWN_OPERATOR, also when no operator is configured', (t) => {
  const env = signRoster(stranger, roster())
  t.is(codeOf(() => verifyRoster(env, opts())), 'ROSTER_UNKNOWN_OPERATOR')
  t.is(codeOf(() => verifyRoster(signRoster(operator, roster()), opts({ operators: [] }))), 'ROSTER_UNKNOWN_OPERATOR')
  // A node id of the operator is not enough: the key that signed must be it.
  t.is(codeOf(() => verifyRoster(env, opts({ operators: [operator.nodeId, worker.nodeId] }))), 'ROSTER_UNKNOWN_OPERATOR')
  try {
    verifyRoster(env, opts())
  } catch (err) {
    t.is((err as { signer?: string }).signer, stranger.nodeId)
  }
})

test('a roster for another mesh is ROSTER_WRONG_MESH', (t) => {
  t.is(codeOf(() => verifyRoster(signRoster(operator, roster({ mesh: 'other' })), opts())), 'ROSTER_WRONG_MESH')
  t.is(codeOf(() => verifyRoster(signRoster(operator, roster({ mesh: 'edge' })), opts({ meshName: 'Edge' }))), 'ROSTER_WRONG_MESH')
})

test('a roster whose expiry has come is ROSTER_EXPIRED; 0 never expires', (t) => {
  t.is(codeOf(() => verifyRoster(signRoster(operator, roster({ expiresAtMs: NOW })), opts())), 'ROSTER_EXPIRED', 'expires exactly now')
  t.is(codeOf(() => verifyRoster(signRoster(operator, roster({ expiresAtMs: NOW - 1 })), opts())), 'ROSTER_EXPIRED')
  t.is(verifyRoster(signRoster(operator, roster({ expiresAtMs: NOW + 1 })), opts()).expiresAtMs, NOW + 1)
  t.is(verifyRoster(signRoster(operator, roster({ expiresAtMs: 0 })), opts({ now: Number.MAX_SAFE_INTEGER })).expiresAtMs, 0)
})

test('a roster not newer than the one held is ROSTER_STALE (an equal version too: a replay is no update)', (t) => {
  const env = signRoster(operator, roster({ version: 5 }))
  t.is(codeOf(() => verifyRoster(env, opts({ current: 5 }))), 'ROSTER_STALE')
  t.is(codeOf(() => verifyRoster(env, opts({ current: 6 }))), 'ROSTER_STALE')
  t.is(verifyRoster(env, opts({ current: 4 })).version, 5)
  t.is(verifyRoster(env, opts()).version, 5)
})

test('content that breaks the roster rules is ROSTER_MALFORMED, even when an operator signed it', (t) => {
  const cases: Array<[string, SignedEnvelope]> = [
    ['member id not a node id', signRaw(roster({ members: [{ nodeId: 'not-a-node', roles: ['worker'], name: '' }] }))],
    ['member id of another key type', signRaw(roster({ members: [{ nodeId: 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', roles: ['worker'], name: '' }] }))],
    ['unknown role', signRaw(roster({ members: [{ nodeId: worker.nodeId, roles: ['admin'], name: '' }] }))],
    ['role listed twice', signRaw(roster({ members: [{ nodeId: worker.nodeId, roles: ['worker', 'worker'], name: '' }] }))],
    ['duplicate member', signRaw(roster({ members: [{ nodeId: worker.nodeId, roles: ['worker'], name: 'a' }, { nodeId: worker.nodeId, roles: ['scheduler'], name: 'b' }] }))],
    ['version 0', signRaw(roster({ version: 0 }))],
    ['no mesh', signRaw(roster({ mesh: '' }))],
    ['not a Roster protobuf', signEnvelope(operator, PAYLOAD_TYPES.roster, Uint8Array.from([0xff, 0xff, 0xff]))],
    ['a field of the wrong wire type', signEnvelope(operator, PAYLOAD_TYPES.roster, Uint8Array.from([0x10, 0x01, 0x0a, 0x05]))]
  ]
  for (const [what, env] of cases) {
    t.is(codeOf(() => verifyRoster(env, opts())), 'ROSTER_MALFORMED', what)
    t.is(codeOf(() => openRoster(env)), 'ROSTER_MALFORMED', what)
  }
  // signRoster checks first, so an operator cannot sign such a roster by mistake.
  t.is(codeOf(() => signRoster(operator, roster({ members: [{ nodeId: worker.nodeId, roles: ['root'], name: '' }] }))), 'ROSTER_MALFORMED')
  // A trusted signer is checked before anything it sent is parsed.
  t.is(codeOf(() => verifyRoster(signEnvelope(stranger, PAYLOAD_TYPES.roster, Uint8Array.from([0xff])), opts())), 'ROSTER_UNKNOWN_OPERATOR')
})

test('every refusal is recognisable as one, and other errors are not', (t) => {
  try {
    verifyRoster(signRoster(operator, roster()), opts({ current: 9 }))
    t.fail('expected a refusal')
  } catch (err) {
    t.true(isRosterRefusal(err))
    t.is((err as Error).name, 'RosterStaleError')
  }
  t.false(isRosterRefusal(new Error('x')))
  t.false(isRosterRefusal({ code: 'ROSTER_STALE' }))
})

test('a roster signed with node:crypto verifies with tweetnacl, and one signed with tweetnacl verifies as a roster', (t) => {
  for (let i = 0; i < 4; i++) {
    const op = identityFromSeed(randomBytes(32))
    const r = roster({ version: i + 1 })
    const fast = signRoster(op, r)
    t.notThrows(() => verifyEnvelopeNacl(fast, { payloadType: PAYLOAD_TYPES.roster }))
    const ref = signEnvelopeNacl(op, PAYLOAD_TYPES.roster, encodeRoster(r))
    t.deepEqual(Buffer.from(ref.signature), Buffer.from(fast.signature), 'ed25519 is deterministic: same bytes, same signature')
    t.is(verifyRoster(ref, opts({ operators: [op.nodeId] })).version, i + 1)
  }
  const env = signRoster(operator, roster())
  t.throws(() => verifyEnvelopeNacl({ ...env, payload: encodeRoster(roster({ version: 4 })) }), { name: 'InvalidSignatureError' })
})

test('the catch-up request carries the asker version as a varint; garbage reads as 0', (t) => {
  for (const v of [0, 1, 127, 128, 300, 2 ** 32, Number.MAX_SAFE_INTEGER]) t.is(decodeRosterRequest(encodeRosterRequest(v)), v)
  t.deepEqual([...encodeRosterRequest(0)], [0])
  t.deepEqual([...encodeRosterRequest(300)], [0xac, 0x02])
  t.is(decodeRosterRequest(new Uint8Array(0)), 0)
  t.is(decodeRosterRequest(Uint8Array.from([0x80, 0x80])), 0, 'unterminated')
  t.is(decodeRosterRequest(new Uint8Array(20).fill(0xff)), 0, 'too long')
  t.throws(() => encodeRosterRequest(-1))
  const env = signRoster(operator, roster())
  t.is(encodeRosterResponse(undefined).byteLength, 0)
  t.is(decodeRosterResponse(new Uint8Array(0)), undefined)
  t.deepEqual(decodeRosterResponse(encodeRosterResponse(env)), env)
  t.throws(() => decodeRosterResponse(Uint8Array.from([1, 2, 3])), { code: 'MALFORMED_ENVELOPE' })
})

test('a draft: members added, replaced and removed; signing issues version + 1', (t) => {
  let draft = emptyDraft('edge')
  draft = upsertMember(draft, { nodeId: worker.nodeId, roles: ['worker'], name: 'box-1' }).draft
  const replaced = upsertMember(draft, { nodeId: worker.nodeId, roles: ['worker', 'validator'] })
  t.true(replaced.replaced)
  t.deepEqual(replaced.draft.members, [{ node_id: worker.nodeId, roles: ['worker', 'validator'], name: 'box-1' }])
  const reread = parseDraft(draftText({ ...replaced.draft, version: 7 }), 'd.json')
  const r = rosterFromDraft(reread, { issuedAtMs: NOW, expiresAtMs: 0 })
  t.is(r.version, 8)
  t.is(verifyRoster(signRoster(operator, r), opts()).members[0].roles.length, 2)
  t.false(removeMember(reread, scheduler.nodeId).removed)
  t.deepEqual(removeMember(reread, worker.nodeId).draft.members, [])
  t.is(codeOf(() => parseDraft('{"mesh":"edge","version":-1,"members":[]}', 'd.json')), 'ROSTER_MALFORMED')
  t.is(codeOf(() => parseDraft('{"mesh":"edge","version":0,"members":[{"node_id":1}]}', 'd.json')), 'ROSTER_MALFORMED')
  t.is(codeOf(() => parseDraft('{"payload_type":"inframind/roster/v1"}', 'd.json')), 'ROSTER_MALFORMED')
  t.is(codeOf(() => parseDraft('nope', 'd.json')), 'ROSTER_MALFORMED')
})
