/** Verification policies: what a client may ask for, resolved against the gateway's defaults and limits. */
import type { VerificationPolicy } from '../protocol/messages.ts'
import { InvalidPolicyError } from './errors.ts'

export const VERIFICATION_METHODS = ['none', 'signature', 'reexecute'] as const
export type VerificationMethod = typeof VERIFICATION_METHODS[number]

/** The attestation method a validator names for each policy method that has validators. */
export const ATTESTATION_METHOD = { signature: 'signature', reexecute: 'reexecution' } as const

/** A policy with every default filled in: v and q are 0 only for "none". */
export interface ResolvedPolicy {
  method: VerificationMethod
  validators: number
  quorum: number
}

/** What the gateway's config says about verification. */
export interface PolicyLimits {
  /** Used when a request leaves the method empty. */
  defaultMethod: VerificationMethod
  /** v when a request asks for validators without saying how many. */
  defaultValidators: number
  /** The largest v this gateway honours. */
  maxValidators: number
}

export const NO_VERIFICATION: ResolvedPolicy = { method: 'none', validators: 0, quorum: 0 }

export function isVerificationMethod (m: string): m is VerificationMethod {
  return (VERIFICATION_METHODS as readonly string[]).includes(m)
}

/** Fills in the defaults and checks 1 <= q <= v <= max; throws InvalidPolicyError naming the field to fix. */
export function resolvePolicy (requested: VerificationPolicy | null | undefined, limits: PolicyLimits): ResolvedPolicy {
  const method = requested === null || requested === undefined || requested.method === '' ? limits.defaultMethod : requested.method
  if (!isVerificationMethod(method)) {
    throw new InvalidPolicyError(`verification method must be one of ${VERIFICATION_METHODS.join(', ')}; got ${JSON.stringify(method.slice(0, 32))}`)
  }
  if (method === 'none') return NO_VERIFICATION
  const validators = requested?.validators !== undefined && requested.validators > 0 ? requested.validators : limits.defaultValidators
  if (validators > limits.maxValidators) {
    throw new InvalidPolicyError(`verification asks for ${validators} validators; this gateway honours at most ${limits.maxValidators} (verification.max_validators)`)
  }
  if (validators < 1) throw new InvalidPolicyError('verification needs at least 1 validator')
  const quorum = requested?.quorum !== undefined && requested.quorum > 0 ? requested.quorum : validators
  if (quorum > validators) {
    throw new InvalidPolicyError(`verification quorum ${quorum} is more than its ${validators} validators; ask for quorum <= validators`)
  }
  return { method, validators, quorum }
}
