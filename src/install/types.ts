/** The install plan as data: built once (plan.ts), then printed (--dry-run) or carried out (apply.ts). */

export interface InstallOptions {
  /** Print every step and what it would change; change nothing. */
  dryRun: boolean
  /** '' = this machine. Else every path is written under this folder and nothing outside it is touched (no apt, user, chown, systemctl). */
  root: string
  /** Final paths (as the running system sees them; under `root` they are written to root + path). */
  prefix: string
  configDir: string
  dataDir: string
  binDir: string
  unitDir: string
  /** System user the service runs as; `root` runs it as root (no user is created). */
  user: string
  /** Supplementary group of the service that may use the engine's socket; '' = none (root, rootless engines). */
  dockerGroup: string
  /** The package to install from (a checkout with node_modules). */
  source: string
  /** Node binary for the unit and the launcher, as the installed system sees it; '' = choose (plan.ts). */
  node: string
  /** Check (and on Debian/Ubuntu install) the container engine. */
  engine: boolean
  /** Build the sample images the default config pins. */
  images: boolean
  /** Enable and (re)start the unit. */
  start: boolean
  /** Let the service see NVIDIA devices (no PrivateDevices); undefined = yes when /dev/nvidiactl exists. */
  gpu: boolean | undefined
}

/** Who owns a path once the user exists; absent under --root (files keep the installer's owner). */
export interface Owner { user: string, group: string }

interface Base {
  /** Short stable name (`config`, `unit`): what changed is tracked by it. */
  id: string
  title: string
}

export type Step =
  | Base & { kind: 'engine', script: string }
  | Base & { kind: 'user', name: string, home: string }
  | Base & { kind: 'package', source: string, target: string, display: string }
  | Base & { kind: 'dir', path: string, display: string, mode: number, owner?: Owner }
  | Base & {
    kind: 'file'
    path: string
    display: string
    content: string
    mode: number
    owner?: Owner
    /** Replace an existing file only when it carries this line (it is ours); '' = always ours. */
    marker: string
  }
  | Base & { kind: 'config', path: string, display: string, content: string, mode: number, owner?: Owner }
  | Base & { kind: 'identity', keyFile: string, display: string, owner?: Owner }
  | Base & { kind: 'images', argv: string[], cwd: string }
  | Base & { kind: 'service', unit: string }
  | Base & { kind: 'skip', reason: string }

export type StepKind = Step['kind']

/** What a step did (or, in a dry run, would do). */
export type Action = 'create' | 'update' | 'keep' | 'run' | 'skip'

export interface Outcome {
  action: Action
  /** Lines for the operator: what exactly, or why not. */
  notes: string[]
}

export interface Plan {
  options: InstallOptions
  steps: Step[]
  /** What the installed system will use, for the closing "how to check it" text. */
  summary: {
    unit: string
    configFile: string
    dataDir: string
    keyFile: string
    launcher: string
    node: string
  }
}
