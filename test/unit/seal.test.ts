import test from 'ava'
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto'
import nacl from 'tweetnacl'
import { identityFromSeed } from '../../src/identity/index.ts'
import {
  openSealed, sealTo, SEAL_CONTEXTS, SEAL_OVERHEAD, x25519PublicKey, x25519Secret
} from '../../src/seal/index.ts'

const alice = identityFromSeed(new Uint8Array(32).fill(1))
const bob = identityFromSeed(new Uint8Array(32).fill(2))
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const ctx = SEAL_CONTEXTS.assignment('job-1')

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

test('a box opens for its recipient and context, and hides the plaintext', (t) => {
  const secret = enc('confidential client data: 4111 1111 1111 1111')
  const box = sealTo(alice.nodeId, secret, ctx)
  t.is(box.byteLength, secret.byteLength + SEAL_OVERHEAD)
  t.false(Buffer.from(box).includes(Buffer.from('confidential')))
  t.deepEqual(Buffer.from(openSealed(alice, box, ctx)), Buffer.from(secret))
  // Two boxes of the same bytes differ (a fresh key each): equal inputs are not linkable.
  t.notDeepEqual(Buffer.from(sealTo(alice.nodeId, secret, ctx)), Buffer.from(box))
  t.deepEqual(Buffer.from(openSealed(alice, sealTo(alice.nodeId, new Uint8Array(), ctx), ctx)), Buffer.alloc(0))
})

test('another key, another context or any changed byte does not open', (t) => {
  const box = sealTo(alice.nodeId, enc('hello'), ctx)
  t.is(codeOf(() => openSealed(bob, box, ctx)), 'SEAL_OPEN_FAILED')
  t.is(codeOf(() => openSealed(alice, box, SEAL_CONTEXTS.assignment('job-2'))), 'SEAL_OPEN_FAILED')
  t.is(codeOf(() => openSealed(alice, box, SEAL_CONTEXTS.output('job-1'))), 'SEAL_OPEN_FAILED')
  for (const at of [1, 20, 33, 34, box.byteLength - 1]) {
    const bad = new Uint8Array(box)
    bad[at]! ^= 0x01
    t.is(codeOf(() => openSealed(alice, bad, ctx)), 'SEAL_OPEN_FAILED', `byte ${at} flipped`)
  }
  t.is(codeOf(() => openSealed(alice, box.subarray(0, 20), ctx)), 'SEAL_MALFORMED')
  const v2 = new Uint8Array(box)
  v2[0] = 2
  t.is(codeOf(() => openSealed(alice, v2, ctx)), 'SEAL_MALFORMED')
  t.is(codeOf(() => sealTo('not-a-node-id', enc('x'), ctx)), 'SEAL_BAD_RECIPIENT')
})

test('the X25519 keys agree with tweetnacl: secret·base = converted public key', (t) => {
  for (let i = 0; i < 6; i++) {
    const id = identityFromSeed(randomBytes(32))
    const fromSecret = nacl.scalarMult.base(x25519Secret(id.seed))
    t.deepEqual(Buffer.from(fromSecret), Buffer.from(x25519PublicKey(id.publicKey)))
  }
})

test('a box built from the documented layout with tweetnacl\'s X25519 opens with openSealed', (t) => {
  // An independent sender: tweetnacl for the key agreement, the layout from docs/ARCHITECTURE.md.
  const e = nacl.box.keyPair()
  const R = x25519PublicKey(alice.publicKey)
  const shared = nacl.scalarMult(e.secretKey, R)
  const context = Buffer.from(ctx)
  const key = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([e.publicKey, R]), Buffer.concat([Buffer.from('inframind/seal/v1\0'), context]), 32))
  const cipher = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 })
  const plaintext = enc('built from the docs')
  cipher.setAAD(context, { plaintextLength: plaintext.byteLength })
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  const box = Buffer.concat([Buffer.of(1), e.publicKey, body, cipher.getAuthTag()])
  t.deepEqual(Buffer.from(openSealed(alice, box, ctx)), Buffer.from(plaintext))
})
