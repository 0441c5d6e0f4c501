/** How a command talks to the user: injected, so tests run commands in-process and read what they print. */
export interface CliIo {
  out: (s: string) => void
  err: (s: string) => void
  env: NodeJS.ProcessEnv
  stdin: () => Promise<Uint8Array>
  /** Where spinners and progress bars go (they draw only when it is a TTY). */
  stderr: NodeJS.WriteStream
  /** Raw bytes of a job's output as they stream (`--follow`); without it they go through `out` as text. */
  stdout?: NodeJS.WritableStream
}

/** The process's own streams: what `infra` uses when run from a shell. */
export function processIo (): CliIo {
  // `infra jobs | head`: the reader went away, so the rest of the output has nowhere to go.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw err
  })
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    stdin: readStdin,
    stderr: process.stderr,
    stdout: process.stdout
  }
}

async function readStdin (): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return new Uint8Array(Buffer.concat(chunks))
}
