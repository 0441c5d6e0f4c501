import type { ContainerConfig } from '../config/types.ts'
import type { ImageProgress, ImageResolver } from '../runtime/types.ts'
import type { Startable } from '../types.ts'

export interface ImageCacheStats {
  /** ensure() calls answered by an image already in the engine with the pinned id. */
  hits: number
  /** ensure() calls that had to fetch (tar URL or registry), successful or not. */
  misses: number
  /** hits / (hits + misses); 1 when there were no lookups. */
  hitRatio: number
}

export interface PrefetchResult {
  containerId: string
  image: string
  ok: boolean
  /** Where the image came from: local, tar, registry ('' on failure). */
  source: string
  error: string
}

export interface ImageCache extends ImageResolver, Startable {
  /** Ensures every distinct image of `containers`; never throws, reports each result. */
  prefetch(containers: ContainerConfig[]): Promise<PrefetchResult[]>
  stats(): ImageCacheStats
  /** The last byte progress of a fetch of `container`'s image under way (prefetch or a run's); undefined when none. */
  progress(container: ContainerConfig): ImageProgress | undefined
  /** Removes unused images (never those of configured containers) past the disk budget; returns removed ids. */
  evict(): Promise<string[]>
}
