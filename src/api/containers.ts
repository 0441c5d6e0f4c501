import type { ContainerConfig } from '../config/types.ts'
import type { ApiComponents } from './types.ts'
import type { ContainerLiveState } from './convert.ts'

/** Live state of each configured container (service lifecycle, or image readiness), by id. */
export function liveStates (c: ApiComponents): Map<string, ContainerLiveState> {
  return new Map(c.runtime.containerStatuses().map((s) => [s.id, { state: s.state, restarts: s.restarts, lastError: s.lastError }]))
}

/** Each configured container with whether its pinned image is in the local engine right now. */
export async function containerInfos (c: ApiComponents): Promise<Array<[ContainerConfig, boolean]>> {
  return await Promise.all(c.config.containers.map(async (cfg): Promise<[ContainerConfig, boolean]> => {
    try {
      const status = await c.runtime.imageStatus(cfg.image)
      return [cfg, status.present && status.digest === cfg.digest]
    } catch {
      return [cfg, false]
    }
  }))
}
