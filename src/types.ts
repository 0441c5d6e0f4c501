/** Shapes shared by every component. */

/** Anything holding a socket, timer, container or DB. stop() is idempotent. */
export interface Startable {
  start(): Promise<void>
  stop(): Promise<void>
}

export type JobState = 'pending' | 'running' | 'success' | 'failed'

export interface StateChange {
  state: JobState
  atMs: number
  detail: string
}

/** Written in data_dir once a node listens: its id and actual addresses (devnet reads it). */
export const NODE_FILE = 'node.json'
