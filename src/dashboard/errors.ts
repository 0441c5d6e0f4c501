/** The dashboard could not listen (port taken, address not on this machine): the node does not start. */
export class DashboardListenError extends Error {
  readonly code = 'DASHBOARD_LISTEN_FAILED'
  constructor (host: string, port: number, cause: unknown) {
    const reason = (cause as NodeJS.ErrnoException)?.code === 'EADDRINUSE' ? `port ${port} is in use` : (cause as Error)?.message ?? String(cause)
    super(`the dashboard cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${reason} (set dashboard.listen to a free loopback address, or "" to turn it off)`, { cause })
    this.name = 'DashboardListenError'
  }
}

/** A request the dashboard answers with a 4xx: its status, a code for programs, and what to fix. */
export class DashboardRequestError extends Error {
  readonly status: number
  readonly code: string
  readonly headers: Record<string, string>
  constructor (status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'DashboardRequestError'
    this.status = status
    this.code = code
    this.headers = headers
  }
}
