/** Input the caller can fix: exit code 2 as a one-shot job, HTTP 400 BAD_INPUT as a service. */
export class BadInputError extends Error {}
