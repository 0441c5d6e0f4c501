/**
 * Verified results (issue 11): verification policies, the deterministic choice of validators,
 * attestations, certificates and dispute records, one codec and one set of checks for the scheduler,
 * the validators and `infra verify` alike.
 */
export * from './errors.ts'
export * from './policy.ts'
export * from './rank.ts'
export * from './attestation.ts'
export * from './certificate.ts'
export * from './ids.ts'
export * from './dispute.ts'
