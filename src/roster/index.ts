/**
 * Mesh admission's roster: who belongs to a private mesh and which roles each member may play,
 * signed by an operator key every node trusts (mesh.admission.operators). verifyRoster holds the
 * rules, rosterBook the roster a node holds, rosterSync how updates spread over the mesh.
 */
export { rosterBook } from './book.ts'
export type { RosterBook, RosterBookInit, RosterBookComponents, RosterBookEvents, HeldRoster, RosterChange } from './book.ts'
export { rosterSync } from './sync.ts'
export type { RosterSync, RosterSyncInit, RosterSyncComponents } from './sync.ts'
export { verifyRoster, signRoster, openRoster, rosterSigner, parseRoster, checkRoster, rosterHash } from './verify.ts'
export type { VerifyRosterOptions, OpenedRoster } from './verify.ts'
export { readSmallFile, readSignedRosterFile, parseSignedRosterText, signedRosterText, rosterToJson, writeFileAtomically } from './files.ts'
export { emptyDraft, parseDraft, draftText, upsertMember, removeMember, rosterFromDraft } from './draft.ts'
export type { RosterDraft, DraftMember } from './draft.ts'
export { encodeRosterRequest, decodeRosterRequest, encodeRosterResponse, decodeRosterResponse } from './wire.ts'
export * from './errors.ts'
export * from './constants.ts'
export type { Roster, RosterMember, RosterNotice } from '../protocol/index.ts'
