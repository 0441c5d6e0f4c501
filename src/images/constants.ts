/** Defaults of the image cache, each with the reason for its value. */

/**
 * How long a verified hit is trusted without asking the engine again. An inspect over the unix socket
 * measured 0.29 ms at p50 and 2.7 ms at p99 on this machine class: a third of the 1 ms overhead budget
 * of a warm-container job, so hot paths answer from memory. A short window is sound because the
 * runtime creates containers from the returned image id (content-addressed: that id can only ever
 * be the pinned image); a retag only changes what the tag names, and the next ensure() after the
 * window inspects again. An image deleted inside the window makes the create fail loudly, never run
 * something else.
 */
export const DEFAULT_HIT_CACHE_MS = 1_000

/** File in the data dir recording the images this cache brought in (loaded or pulled) and their last use. */
export const RECORD_FILE = 'images.json'

/** Folder in the data dir for tars being downloaded; emptied at start (leftovers of a crash). */
export const DOWNLOAD_DIR = 'image-downloads'

/** Version of the record file's layout; a file with another version is ignored (never trusted). */
export const RECORD_VERSION = 1

/**
 * Entries of a `docker save` tar kept in memory for the pre-load check (manifest.json and image
 * configs are a few KiB); anything larger is only hashed, never buffered.
 */
export const TAR_METADATA_MAX_BYTES = 1024 * 1024

/**
 * A fetch reports its byte progress at most this often. Status readers poll (the CLI every 500 ms,
 * the dashboard on its snapshots), so 4 reports a second is all they can show, and the cost per
 * downloaded chunk stays one clock read and a comparison.
 */
export const IMAGE_PROGRESS_INTERVAL_MS = 250
