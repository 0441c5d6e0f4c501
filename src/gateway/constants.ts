/** Client job ids: safe in logs, URLs, LevelDB keys and file names; long enough for a UUID plus a prefix. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/** A deadline beyond a day is a client bug (ms vs s), not a real budget for an edge job. */
export const MAX_DEADLINE_MS = 24 * 60 * 60 * 1000

/** stop() waits this long for aborted runs to settle; a runtime that ignores aborts cannot hang shutdown. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000

/** stats().avgLatencyMs covers this many most recent finished jobs. */
export const LATENCY_WINDOW = 50

/** Longest chain a job may name: enough for real pipelines, short enough that one job cannot hog a slot with hundreds of runs. */
export const MAX_CHAIN_LENGTH = 16

/** setTimeout's ceiling; deadlines are far below it (MAX_DEADLINE_MS), this only keeps a bad value from firing at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1
