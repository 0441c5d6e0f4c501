/** ContainerConfig objects for tests, pinned to the digests in containers/images.lock.json. */
import { readFileSync } from 'node:fs'
import { containerConfig } from '../../src/config/index.ts'
import type { ContainerConfig, ContainerResources, ServiceConfig } from '../../src/config/types.ts'

export const ECHO_IMAGE = 'inframind/echo:1'
export const NLP_IMAGE = 'inframind/nlp:1'

const LOCK_URL = new URL('../../containers/images.lock.json', import.meta.url)

/** tag -> image id, as written by scripts/build-images.ts. */
export function imageLock (): Record<string, string> {
  return JSON.parse(readFileSync(LOCK_URL, 'utf8')) as Record<string, string>
}

export function lockedDigest (image: string): string {
  const digest = imageLock()[image]
  if (digest === undefined) throw new Error(`${image} is not in containers/images.lock.json: run 'node scripts/build-images.ts'`)
  return digest
}

export type TestContainerOptions = Partial<Omit<ContainerConfig, 'resources'>> & { resources?: Partial<ContainerResources> }

/**
 * A sandboxed test container: the echo image (stdin to stdout) unless `image` says otherwise, small
 * limits, no network, user nobody, digest pinned from the lock unless `digest` overrides it.
 */
export function testContainer (opts: TestContainerOptions = {}): ContainerConfig {
  const { resources, ...rest } = opts
  const image = opts.image ?? ECHO_IMAGE
  return containerConfig({
    id: image === NLP_IMAGE ? 'nlp' : 'echo',
    description: `test container (${image})`,
    image,
    digest: opts.digest ?? lockedDigest(image),
    command: [],
    env: {},
    timeoutMs: 15_000,
    maxOutputBytes: 1024 * 1024,
    maxInputBytes: 1024 * 1024,
    inputSchema: 'text',
    outputSchema: 'text',
    network: 'none',
    user: '65534:65534',
    ...rest,
    resources: { cpus: 1, memoryBytes: 64 * 1024 * 1024, pids: 64, gpu: false, ...resources }
  })
}

/** The nlp image running one task (analyze, sentiment, entities, embed); node needs more memory than echo. */
export function nlpContainer (task: string, opts: TestContainerOptions = {}): ContainerConfig {
  return testContainer({
    image: NLP_IMAGE,
    command: [task],
    // The app takes plain text as well as {"text": ...}.
    inputSchema: 'text',
    outputSchema: task === 'embed' ? 'embedding<float>' : 'json',
    timeoutMs: 30_000,
    ...opts,
    resources: { memoryBytes: 256 * 1024 * 1024, pids: 64, ...opts.resources }
  })
}

/** A `sh -c` job on the echo image. */
export function shContainer (script: string, opts: TestContainerOptions = {}): ContainerConfig {
  return testContainer({ command: ['sh', '-c', script], ...opts })
}

/** Small timeouts so a test sees startup failures, restarts and give-ups within seconds. */
export const TEST_SERVICE: ServiceConfig = {
  port: 8080,
  path: '/',
  healthPath: '/health',
  startupTimeoutMs: 5000,
  healthIntervalMs: 200,
  healthTimeoutMs: 1000,
  unhealthyThreshold: 2,
  maxRestarts: 3,
  restartBackoffMs: 200,
  restartBackoffMaxMs: 1000
}

export type ServiceContainerOptions = Omit<TestContainerOptions, 'service'> & { service?: Partial<ServiceConfig> }

/**
 * A warm service on the nlp image: `serve` (the nlp analyses over HTTP, TASK env picks the task) or
 * `testserver` (the misbehaving server of containers/nlp/testserver.js, driven by env and inputs).
 */
export function serviceContainer (id: string, entry: 'serve' | 'testserver', opts: ServiceContainerOptions = {}): ContainerConfig {
  const { service, ...rest } = opts
  return testContainer({
    id,
    image: NLP_IMAGE,
    command: [entry],
    mode: 'service',
    network: 'bridge',
    inputSchema: 'text',
    outputSchema: entry === 'serve' ? 'json' : 'text',
    timeoutMs: 10_000,
    ...rest,
    service: { ...TEST_SERVICE, ...service },
    resources: { memoryBytes: 256 * 1024 * 1024, pids: 64, ...opts.resources }
  })
}
