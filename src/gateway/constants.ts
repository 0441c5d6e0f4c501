/** Client job ids: safe in logs, URLs, LevelDB keys and file names; long enough for a UUID plus a prefix. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/** A deadline beyond a day is a client bug (ms vs s), not a real budget for an edge job. */
export const MAX_DEADLINE_MS = 24 * 60 * 60 * 1000

/** stop() waits this long for aborted runs to settle; a runtime that ignores aborts cannot hang shutdown. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000

/** After a deadline abort, how long a run may take to settle before its slot is freed anyway. */
export const DEFAULT_ABORT_GRACE_MS = 5_000

/** stats().avgLatencyMs covers this many most recent finished jobs. */
export const LATENCY_WINDOW = 50

/** Receipt exit code when no process ran (or its exit status is unknown). */
export const NO_EXIT_CODE = -1

/** Failure codes the orchestrator itself sets on job records (runtime errors bring their own). */
export const FAILURE_CODES = {
  deadlineExceeded: 'DEADLINE_EXCEEDED',
  nodeRestarted: 'NODE_RESTARTED',
  internal: 'INTERNAL',
  /** A container of a resumed job is no longer in the config. */
  unknownContainer: 'UNKNOWN_CONTAINER',
  /** A step's output does not fit the next container's input schema. */
  stepInputInvalid: 'STEP_INPUT_INVALID'
} as const

/** Longest chain a job may name: enough for real pipelines, short enough that one job cannot hog a slot with hundreds of runs. */
export const MAX_CHAIN_LENGTH = 16
