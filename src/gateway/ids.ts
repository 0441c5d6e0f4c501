/**
 * The one rule for each kind of id a client sends, applied by every method that takes one (SubmitJob,
 * RunJob, GetJob, WatchJob; the container ids of any submission): an id that breaks it could never
 * name anything on a node, so it is refused as a client error (INVALID_ARGUMENT) saying the rule,
 * never looked up and never echoed whole. The checks are in admit.ts.
 */
export { JOB_ID_PATTERN } from './constants.ts'

/** What JOB_ID_PATTERN allows, in the words error messages use. */
export const JOB_ID_RULE = 'use 1-128 characters from A-Z a-z 0-9 . _ : -'

/**
 * The rule config.yaml's containers[].id follows: a request naming anything else names a container
 * no node has.
 */
export { CONTAINER_ID_PATTERN } from '../config/containers.ts'
export const CONTAINER_ID_RULE = 'use 1-63 characters from a-z 0-9 . _ - starting with a letter or digit'
