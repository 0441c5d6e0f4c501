/** The verified image cache: local images, tar URLs and registries, always checked against the pinned id. */
import type { ImageCache } from './types.ts'
import { DockerImageCache } from './cache.ts'
import type { ImageCacheComponents, ImageCacheInit } from './cache.ts'

export function imageCache (init: ImageCacheInit): (components: ImageCacheComponents) => ImageCache {
  return (components) => new DockerImageCache(init, components)
}

export type { ImageCacheInit, ImageCacheComponents }
export type { ImageCache, ImageCacheStats, PrefetchResult } from './types.ts'
export * from './errors.ts'
export * from './constants.ts'
export { planEviction } from './eviction.ts'
export type { EvictionInput, EvictionPlan } from './eviction.ts'
export { readRecord, writeRecord, parseRecord, serialiseRecord } from './record.ts'
export type { ImageRecordEntry, FetchSource } from './record.ts'
export { TarManifestReader } from './tar-manifest.ts'
export type { TarImage } from './tar-manifest.ts'
export { splitReference, normaliseReference } from './engine.ts'
export { registryHost } from './fetch.ts'
export { ProgressThrottle, PullProgressTally } from './progress.ts'
export type { ProgressListener, ByteReport, ThrottleClock } from './progress.ts'
