export { decodeStrict, encodeMessage, messageType, wireViolation, MalformedMessageError } from './check.ts'
