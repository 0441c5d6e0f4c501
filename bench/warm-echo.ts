/** The trivial warm container the mesh benches give their workers: its cost is (almost) only the node's. */
import { readFile } from 'node:fs/promises'
import path from 'node:path'

export const WARM_ECHO_ID = 'echo-warm'

/** The nlp image's test server echoes its input: a warm container that costs well under a millisecond. */
export async function warmEcho (root: string): Promise<Record<string, unknown>> {
  const lock = JSON.parse(await readFile(path.join(root, 'containers', 'images.lock.json'), 'utf8')) as Record<string, string>
  return {
    id: WARM_ECHO_ID, image: 'inframind/nlp:1', digest: lock['inframind/nlp:1'], command: ['testserver'], mode: 'service',
    service: { port: 8080, startup_timeout_ms: 60_000, health_interval_ms: 5_000 },
    resources: { cpus: 0.5, memory: '128m', pids: 32 }, timeout_ms: 10_000, input_schema: 'text', output_schema: 'text'
  }
}
