/**
 * Failures of the image cache, told apart by `name` and `code`. "Not found" and "id differs from the
 * pin" reuse the runtime's classes (IMAGE_NOT_FOUND, IMAGE_DIGEST_MISMATCH) so the API maps one code
 * whichever component noticed. Messages never carry registry credentials.
 */

export class ImageCacheError extends Error {
  readonly code: string
  /** The pinned image id involved, for failure receipts. */
  readonly imageDigest?: string

  constructor (name: string, code: string, message: string, options: { imageDigest?: string, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = name
    this.code = code
    if (options.imageDigest !== undefined) this.imageDigest = options.imageDigest
  }
}

/** The downloaded tar is not the one the config pins: nothing was loaded. */
export class ImageTarHashMismatchError extends ImageCacheError {
  static readonly code = 'IMAGE_TAR_HASH_MISMATCH'
  readonly url: string
  readonly expected: string
  readonly actual: string
  constructor (image: string, url: string, expected: string, actual: string, digest: string) {
    super('ImageTarHashMismatchError', ImageTarHashMismatchError.code,
      `image tar for ${image} from ${url} has sha256 ${actual} but source.sha256 pins ${expected}; nothing was loaded. ` +
      'Check the URL serves the intended tar, or update source.sha256 if the new tar is trusted', { imageDigest: digest })
    this.url = url
    this.expected = expected
    this.actual = actual
  }
}

export class ImageDownloadError extends ImageCacheError {
  static readonly code = 'IMAGE_DOWNLOAD_FAILED'
  readonly url: string
  constructor (image: string, url: string, reason: string, options: { imageDigest?: string, cause?: unknown } = {}) {
    super('ImageDownloadError', ImageDownloadError.code,
      `could not download the image tar for ${image} from ${url}: ${reason}. Check source.url and that the server is reachable from this node`, options)
    this.url = url
  }
}

/** `docker load` of a verified tar failed (the engine refused the archive). */
export class ImageLoadError extends ImageCacheError {
  static readonly code = 'IMAGE_LOAD_FAILED'
  constructor (image: string, reason: string, options: { imageDigest?: string, cause?: unknown } = {}) {
    super('ImageLoadError', ImageLoadError.code,
      `the engine could not load the image tar for ${image}: ${reason}. The tar must be in 'docker save' format`, options)
  }
}

export class RegistryPullError extends ImageCacheError {
  static readonly code = 'REGISTRY_PULL_FAILED'
  constructor (image: string, reason: string, options: { imageDigest?: string, cause?: unknown } = {}) {
    super('RegistryPullError', RegistryPullError.code,
      `could not pull ${image} from its registry: ${reason}. If the registry is unreachable from this node, ` +
      'serve the image as a tar (source.url + source.sha256) or load it into the engine yourself (docker load)', options)
  }
}

export class ImageFetchTimeoutError extends ImageCacheError {
  static readonly code = 'IMAGE_FETCH_TIMEOUT'
  constructor (image: string, how: string, timeoutMs: number, options: { imageDigest?: string, cause?: unknown } = {}) {
    super('ImageFetchTimeoutError', ImageFetchTimeoutError.code,
      `fetching ${image} (${how}) took longer than runtime.pull_timeout_ms (${timeoutMs} ms) and was abandoned; ` +
      'raise pull_timeout_ms for large images or slow links', options)
  }
}

/** The caller gave up (its signal), or the cache stopped, before the image was ready. */
export class ImageFetchAbortedError extends ImageCacheError {
  static readonly code = 'ABORTED'
  constructor (image: string, reason: string) {
    super('ImageFetchAbortedError', ImageFetchAbortedError.code, `waiting for image ${image} was aborted: ${reason}`)
  }
}

export class ImageCacheNotStartedError extends ImageCacheError {
  static readonly code = 'NOT_STARTED'
  constructor () {
    super('ImageCacheNotStartedError', ImageCacheNotStartedError.code, 'the image cache is not started: call start() first')
  }
}
