/**
 * Roster files. A signed roster is the JSON envelope every signed artefact uses ({payload_type,
 * payload, public_key, signature}, bytes base64: see envelopeToJson), so `infra verify`-style tools
 * read it as they read a receipt. Writes are atomic: a crash never leaves half a roster behind.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { envelopeFromJson, envelopeToJson, type SignedEnvelope } from '../envelope/index.ts'
import type { Roster } from '../protocol/index.ts'
import { MAX_ROSTER_FILE_BYTES } from './constants.ts'
import { RosterMalformedError } from './errors.ts'

/** Reads up to `max` bytes of a file; undefined when it does not exist, RosterMalformedError when larger. */
export async function readSmallFile (file: string, max = MAX_ROSTER_FILE_BYTES): Promise<string | undefined> {
  let handle
  try {
    handle = await open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const size = (await handle.stat()).size
    if (size > max) throw new RosterMalformedError(`${file} is ${size} bytes, larger than any roster (${max})`)
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}

/** The envelope in a signed roster file's text; RosterMalformedError naming the file when it is not one. */
export function parseSignedRosterText (text: string, file: string): SignedEnvelope {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new RosterMalformedError(`${file} is not JSON (${(err as Error).message}); expected a signed roster from "infra roster sign"`, { cause: err })
  }
  try {
    return envelopeFromJson(value)
  } catch (err) {
    throw new RosterMalformedError(`${file} is not a signed envelope (${(err as Error).message}); expected the output of "infra roster sign"`, { cause: err })
  }
}

/** The signed roster in `file`, or undefined when there is no such file. */
export async function readSignedRosterFile (file: string): Promise<SignedEnvelope | undefined> {
  const text = await readSmallFile(file)
  return text === undefined ? undefined : parseSignedRosterText(text, file)
}

export function signedRosterText (env: SignedEnvelope): string {
  return JSON.stringify(envelopeToJson(env), null, 2) + '\n'
}

/** Writes `text` to a temp file beside `file`, fsyncs it and renames it into place (`mode` applies to the new file). */
export async function writeFileAtomically (file: string, text: string, mode: number): Promise<void> {
  const dir = dirname(file)
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  await mkdir(dir, { recursive: true })
  try {
    const handle = await open(tmp, 'wx', mode)
    try {
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, file)
  } finally {
    await rm(tmp, { force: true })
  }
}

/** A roster in the JSON form people read (snake_case, as in roster.proto; instants as ISO text). */
export function rosterToJson (roster: Roster): Record<string, unknown> {
  return {
    mesh: roster.mesh,
    version: roster.version,
    issued_at: iso(roster.issuedAtMs),
    expires_at: iso(roster.expiresAtMs),
    members: roster.members.map((m) => ({ node_id: m.nodeId, roles: m.roles, name: m.name }))
  }
}

function iso (ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null
}
