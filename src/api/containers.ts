import type { ContainerConfig } from '../config/types.ts'
import type { ApiComponents } from './types.ts'

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
