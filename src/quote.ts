/**
 * Client input inside error messages. An error's message becomes the gRPC status message, which
 * travels in a trailer: grpc-core clients refuse metadata over 8 KiB and then report
 * RESOURCE_EXHAUSTED instead of the real error, so an id or name a client sent is quoted only as a
 * short prefix. Every error that echoes client input goes through quote().
 */

/** Enough to recognise an id (a UUID with a prefix fits); far below any metadata limit. */
export const QUOTE_MAX_CHARS = 64

/**
 * `text` in double quotes with control characters escaped, cut to its first `max` characters with
 * "…(N chars)" after the closing quote when longer: `"abc"`, `"abcd"…(10000 chars)`.
 */
export function quote (text: unknown, max = QUOTE_MAX_CHARS): string {
  const s = typeof text === 'string' ? text : String(text)
  if (s.length <= max) return JSON.stringify(s)
  let prefix = s.slice(0, max)
  // Never end on half a surrogate pair: it would show as U+FFFD.
  const last = prefix.charCodeAt(prefix.length - 1)
  if (last >= 0xd800 && last <= 0xdbff) prefix = prefix.slice(0, -1)
  return `${JSON.stringify(prefix)}…(${s.length} chars)`
}
