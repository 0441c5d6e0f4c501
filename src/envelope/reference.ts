import nacl from 'tweetnacl'
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from './types.ts'
import { InvalidSignatureError, PayloadTypeMismatchError } from './errors.ts'
import { assertEnvelopeShape, signingInput } from './signing-input.ts'
import type { VerifyOptions } from './index.ts'

/*
 * Portable pure-JS reference (tweetnacl) of signEnvelope/verifyEnvelope. Too slow for the hot path
 * (~90 signs/s vs ~14,000/s with node:crypto) but independent of OpenSSL, so tests cross-check the two.
 */

export function signEnvelopeNacl (identity: Pick<Identity, 'seed'>, payloadType: string, payload: Uint8Array): SignedEnvelope {
  const keys = nacl.sign.keyPair.fromSeed(identity.seed)
  const env: SignedEnvelope = {
    payloadType,
    payload,
    publicKey: keys.publicKey,
    signature: nacl.sign.detached(signingInput(payloadType, payload), keys.secretKey)
  }
  assertEnvelopeShape(env)
  return env
}

export function verifyEnvelopeNacl (env: SignedEnvelope, opts: VerifyOptions = {}): void {
  assertEnvelopeShape(env)
  if (opts.payloadType !== undefined && env.payloadType !== opts.payloadType) {
    throw new PayloadTypeMismatchError(opts.payloadType, env.payloadType)
  }
  if (!nacl.sign.detached.verify(signingInput(env.payloadType, env.payload), env.signature, env.publicKey)) {
    throw new InvalidSignatureError()
  }
}
