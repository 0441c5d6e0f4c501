import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import type { Identity } from './types.ts'
import { nodeIdFromPublicKey } from './peer-id.ts'

/*
 * Key file format: PEM "PRIVATE KEY" (PKCS#8, RFC 8410), the same bytes `openssl genpkey -algorithm ed25519`
 * writes, so operators can inspect or back it up with standard tools. For ed25519 the PKCS#8 DER is a fixed
 * 16-byte header followed by the 32-byte seed, which is what makes the seed (and so the libp2p key) recoverable.
 */
const PKCS8_ED25519_HEADER = Buffer.from('302e020100300506032b657004220420', 'hex')

export function privateKeyFromSeed (seed: Uint8Array): KeyObject {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new TypeError('an ed25519 seed is 32 bytes')
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_HEADER, seed]), format: 'der', type: 'pkcs8' })
}

/** Builds the in-memory identity from a 32-byte seed (deterministic: same seed, same node id). */
export function identityFromSeed (seed: Uint8Array, keyFile = ''): Identity {
  return identityFromPrivateKey(privateKeyFromSeed(seed), keyFile)
}

export function identityFromPrivateKey (privateKey: KeyObject, keyFile: string): Identity {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError(`expected an ed25519 key, got ${privateKey.asymmetricKeyType ?? 'a secret key'}`)
  const priv = privateKey.export({ format: 'jwk' })
  const pub = createPublicKey(privateKey).export({ format: 'jwk' })
  if (typeof priv.d !== 'string' || typeof pub.x !== 'string') throw new TypeError('ed25519 key without d/x')
  const seed = new Uint8Array(Buffer.from(priv.d, 'base64url'))
  const publicKey = new Uint8Array(Buffer.from(pub.x, 'base64url'))
  return { nodeId: nodeIdFromPublicKey(publicKey), publicKey, privateKey, seed, keyFile }
}

export function encodeKeyFile (identity: Identity): string {
  return identity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
}

/** Parses key file text; throws a plain Error with the reason (the caller adds the file name). */
export function decodeKeyFile (text: string, keyFile: string): Identity {
  if (!text.includes('-----BEGIN PRIVATE KEY-----')) {
    throw new Error(text.includes('ENCRYPTED PRIVATE KEY')
      ? 'encrypted keys are not supported'
      : 'expected a PEM "PRIVATE KEY" block (PKCS#8 ed25519)')
  }
  const key = createPrivateKey({ key: text, format: 'pem' })
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`expected an ed25519 key, found ${key.asymmetricKeyType ?? 'unknown'}`)
  return identityFromPrivateKey(key, keyFile)
}
