/** Final paths (what the installed system sees) and where this run writes them (under --root when given). */
import { join } from 'node:path'

/** `path` as written by this run: itself, or under the staging root. */
export function hostPath (root: string, path: string): string {
  return root === '' ? path : join(root, path)
}

/** True when `child` is `parent` or inside it (both absolute, normalised). */
export function within (parent: string, child: string): boolean {
  return child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`)
}

/**
 * Characters a path may have to appear in the unit and the launcher as is. Anything else (spaces,
 * quotes, $, %, backslashes) would need quoting rules that differ between ExecStart=, Environment=,
 * ReadWritePaths= and sh; refusing such paths is simpler than getting one of them subtly wrong.
 */
const SAFE_PATH = /^\/[A-Za-z0-9_@+=:,./-]*$/

/** Undefined when `path` is fine, else why not (for an error that says what to pass instead). */
export function unsafePath (path: string): string | undefined {
  return SAFE_PATH.test(path) ? undefined : `"${path}" must be absolute and use only letters, digits and _ @ + = : , . / - (it goes into the unit file as is)`
}
