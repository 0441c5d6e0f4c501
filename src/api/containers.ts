import type { ContainerConfig } from '../config/types.ts'
import type { ApiComponents } from './types.ts'
import type { ContainerLiveState } from './convert.ts'

/** State of a container this node admits but does not run: the mesh's workers run it. */
const ON_MESH: ContainerLiveState = { state: 'mesh', restarts: 0, lastError: '' }

/** Live state of each configured container (service lifecycle, image readiness, or run on the mesh), by id. */
export function liveStates (c: ApiComponents): Map<string, ContainerLiveState> {
  const live = new Map<string, ContainerLiveState>(c.runtime.containerStatuses().map((s) => [s.id, { state: s.state, restarts: s.restarts, lastError: s.lastError, pull: s.pull }]))
  for (const cfg of c.config.containers) if (!c.runsLocally(cfg.id)) live.set(cfg.id, ON_MESH)
  return live
}

/** Each configured container with whether its pinned image is in the local engine right now. */
export async function containerInfos (c: ApiComponents): Promise<Array<[ContainerConfig, boolean]>> {
  return await Promise.all(c.config.containers.map(async (cfg): Promise<[ContainerConfig, boolean]> => {
    // A gateway never pulls what only its workers run.
    if (!c.runsLocally(cfg.id)) return [cfg, false]
    try {
      const status = await c.runtime.imageStatus(cfg.image)
      return [cfg, status.present && status.digest === cfg.digest]
    } catch {
      return [cfg, false]
    }
  }))
}
