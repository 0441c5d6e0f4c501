export type ConfigErrorCode =
  | 'UNKNOWN_KEY' | 'WRONG_TYPE' | 'MISSING' | 'INVALID_VALUE' | 'OUT_OF_RANGE' | 'DUPLICATE'
  | 'YAML_SYNTAX' | 'NOT_FOUND' | 'READ_ERROR'

export interface ConfigProblem {
  code: ConfigErrorCode
  /** Absolute path of the config file ('' when parsed from text without a file). */
  file: string
  /** How the file is named in messages (as the user wrote it, or relative to the working directory). */
  display: string
  /** Dotted path of the key, e.g. `containers[1].resources.memory` ('' for the whole file). */
  key: string
  /** What a valid value looks like. */
  expected: string
  /** The rest of the message after "<file>:<line>: <key>: ". */
  detail: string
  line?: number
}

/**
 * Every config failure. When several problems are found they are all reported at once: `errors` lists each
 * (a ConfigError per problem), and this error's code/key/expected/line are those of the first.
 */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly code: ConfigErrorCode
  readonly file: string
  readonly key: string
  readonly expected: string
  readonly line: number | undefined
  readonly errors: ConfigError[]

  constructor (problem: ConfigProblem, options?: ErrorOptions & { errors?: ConfigError[], message?: string }) {
    super(options?.message ?? formatProblem(problem), options)
    this.code = problem.code
    this.file = problem.file
    this.key = problem.key
    this.expected = problem.expected
    this.line = problem.line
    this.errors = options?.errors ?? [this]
  }

  /** One error for a list of problems (the list itself when there is one). */
  static aggregate (errors: ConfigError[]): ConfigError {
    if (errors.length === 1) return errors[0]
    const first = errors[0]
    return new ConfigError(
      { code: first.code, file: first.file, display: '', key: first.key, expected: first.expected, detail: '', line: first.line },
      { errors, message: `${errors.length} problems in the config; fix them all and retry:\n` + errors.map((e) => '  ' + e.message).join('\n') }
    )
  }
}

function formatProblem (p: ConfigProblem): string {
  const where = p.display + (p.line !== undefined ? `:${p.line}` : '')
  return [where, p.key, p.detail].filter((s) => s !== '').join(': ')
}
