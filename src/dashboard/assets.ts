import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/**
 * The page's files, read once at start and served from memory by exact path: nothing from a CDN,
 * no path is ever joined with a request, so no request reaches another file.
 *
 * Front end: plain ES modules (no framework, no build step, like the rest of the node) and uPlot
 * for the charts. uPlot is small (one file), dependency-free, fast on long series and well kept; it
 * builds its DOM with textContent and CSSOM styles, so it runs under a CSP without 'unsafe-inline'.
 * The page builds every element through one helper that sets text, never HTML (web/dom.js).
 */

export interface Asset { type: string, body: Buffer }

const WEB = (name: string): string => fileURLToPath(new URL(`./web/${name}`, import.meta.url))
const require = createRequire(import.meta.url)

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml'
}

/** URL path → file. */
function files (): Array<[string, string]> {
  const own = ['index.html', 'app.js', 'dom.js', 'format.js', 'jobs.js', 'tables.js', 'peers.js', 'charts.js', 'style.css', 'favicon.svg']
  return [
    ['/', WEB('index.html')],
    ...own.map((f): [string, string] => [`/${f}`, WEB(f)]),
    ['/vendor/uPlot.esm.js', require.resolve('uplot/dist/uPlot.esm.js')],
    ['/vendor/uPlot.min.css', require.resolve('uplot/dist/uPlot.min.css')]
  ]
}

/** Reads every asset; a missing one fails the dashboard's start (a broken install, said at once). */
export async function loadAssets (): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>()
  for (const [url, file] of files()) {
    const ext = file.slice(file.lastIndexOf('.') + 1)
    out.set(url, { type: TYPES[ext] ?? 'application/octet-stream', body: await readFile(file) })
  }
  return out
}
