/** After a deadline or stop abort, how long a run may take to settle before its slot is freed anyway. */
export const DEFAULT_ABORT_GRACE_MS = 5_000

/** Receipt exit code when no process ran (or its exit status is unknown). */
export const NO_EXIT_CODE = -1

/** Failure codes set on job records by the node itself (runtime errors bring their own). */
export const FAILURE_CODES = {
  deadlineExceeded: 'DEADLINE_EXCEEDED',
  nodeRestarted: 'NODE_RESTARTED',
  internal: 'INTERNAL',
  /** A container of a resumed job is no longer in the config. */
  unknownContainer: 'UNKNOWN_CONTAINER',
  /** A step's output does not fit the next container's input schema. */
  stepInputInvalid: 'STEP_INPUT_INVALID'
} as const
