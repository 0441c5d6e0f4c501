/** GET /health, /info and /resources: read-only facts about the node, in Infernet's shapes plus ours. */
import { endianness, release } from 'node:os'
import type { FastifyInstance } from 'fastify'
import type { ContainerConfig } from '../../config/types.ts'
import { RESOURCES_QUERY } from '../schemas.ts'
import { validationError } from '../validation.ts'
import type { RestContext } from '../types.ts'

/** Infernet's ServiceResources version field (infernet_ml ServiceResources). */
const SERVICE_RESOURCES_VERSION = '0.1.0'

export function nodeRoutes (app: FastifyInstance, ctx: RestContext): void {
  app.get('/health', async () => ({ status: 'healthy' }))

  app.get('/info', async () => {
    const stats = ctx.jobs.stats()
    const states = liveStates(ctx)
    return {
      version: ctx.version,
      containers: ctx.containers.map((c) => ({
        id: c.id,
        description: c.description,
        external: c.external,
        image: c.image,
        // Ours:
        mode: c.mode,
        state: states.get(c.id) ?? 'unknown',
        input_schema: c.inputSchema,
        output_schema: c.outputSchema,
        generates_proofs: c.generatesProofs
      })),
      // Infernet counts jobs not yet finished; this node has no chain, so none are on-chain.
      pending: { offchain: stats.active + stats.queued, onchain: 0 },
      chain: { enabled: false, address: '' },
      // Ours:
      node_id: ctx.nodeId,
      roles: ctx.roles
    }
  })

  app.get<{ Querystring: { model_id?: string } }>('/resources', {
    schema: { querystring: RESOURCES_QUERY },
    schemaErrorFormatter: (errors, dataVar) => validationError(errors, dataVar, 'send /resources or /resources?model_id=<model id>')
  }, async (request) => {
    const modelId = request.query.model_id
    const out: Record<string, unknown> = {}
    for (const c of ctx.containers) {
      // No container here advertises models, so each answers as an Infernet service without a model list does.
      out[c.id] = modelId !== undefined && modelId !== '' ? { supported: false } : resourcesOf(c, ctx)
    }
    return out
  })
}

/** Each container's state: its service lifecycle or image readiness here, or "mesh" when workers run it. */
function liveStates (ctx: RestContext): Map<string, string> {
  const states = new Map<string, string>(ctx.runtime.containerStatuses().map((s) => [s.id, s.state]))
  for (const c of ctx.containers) if (!ctx.runsLocally(c.id)) states.set(c.id, 'mesh')
  return states
}

/** Infernet's ServiceResources of a container (hardware is this node's when it runs the container), plus its limits. */
function resourcesOf (c: ContainerConfig, ctx: RestContext): Record<string, unknown> {
  const hw = ctx.hardware
  const hardware: unknown[] = []
  if (ctx.runsLocally(c.id)) {
    hardware.push({
      capability_id: 'base',
      os_info: { name: hw.platform, version: release() },
      cpu_info: { model: hw.cpuModel, architecture: hw.arch, byte_order: endianness() === 'LE' ? 'Little Endian' : 'Big Endian', vendor_id: '', num_cores: hw.cpuCores, cores: [] },
      disk_info: []
    })
    if (hw.gpus.length > 0) {
      hardware.push({ capability_id: 'gpu', driver_version: '', cuda_version: '', gpu_info: hw.gpus.map((g) => ({ name: g.name, memory_total: g.memoryBytes, memory_used: 0 })) })
    }
  }
  return {
    version: SERVICE_RESOURCES_VERSION,
    service_id: c.id,
    hardware_capabilities: hardware,
    compute_capability: [],
    // Ours: what one run of the container may use.
    limits: {
      cpus: c.resources.cpus,
      memory_bytes: c.resources.memoryBytes,
      pids: c.resources.pids,
      gpu: c.resources.gpu,
      timeout_ms: c.timeoutMs,
      max_input_bytes: c.maxInputBytes,
      max_output_bytes: c.maxOutputBytes
    }
  }
}
