/** The server answered with a non-2xx status (409 busy, 422 bad id or prompt, 503, ...). */
export class HttpError extends Error {
  override readonly name = 'HttpError'
  readonly status: number
  /** The server's `detail`, or a description of the status when it sent none. */
  readonly detail: string

  constructor(status: number, detail: string) {
    super(detail)
    this.status = status
    this.detail = detail
  }

  /** Whether sending the same request again may work. */
  get retryable(): boolean {
    return this.status === 408 || this.status === 409 || this.status === 429 || this.status >= 500
  }
}

/** The request never got an answer (server down, connection dropped). */
export class NetworkError extends Error {
  override readonly name = 'NetworkError'
  constructor(message = 'Could not reach the server.', options?: { cause?: unknown }) {
    super(message, options)
  }
}

const STATUS_TEXT: Record<number, string> = {
  404: 'Not found.',
  409: 'A reply is already streaming in this conversation.',
  422: 'The request was not accepted.',
  429: 'Too many requests from you at once; try again soon.',
  503: 'The service is unavailable.',
}

function describeDetail(detail: unknown): string | null {
  if (typeof detail === 'string') return detail
  if (Array.isArray(detail)) {
    // FastAPI's validation errors: [{loc, msg, type}, ...]
    const messages = detail
      .map((entry: unknown) => {
        if (entry && typeof entry === 'object' && 'msg' in entry) {
          const { msg, loc } = entry as { msg: unknown; loc?: unknown }
          const where = Array.isArray(loc) ? loc.filter((p) => p !== 'body').join('.') : ''
          return where ? `${where}: ${String(msg)}` : String(msg)
        }
        return null
      })
      .filter((m): m is string => Boolean(m))
    return messages.length ? messages.join('; ') : null
  }
  return null
}

/** Turns a failed response into an HttpError carrying the server's `detail` message. */
export async function httpErrorFrom(response: Response): Promise<HttpError> {
  let detail: string | null = null
  try {
    const text = await response.text()
    try {
      const body: unknown = JSON.parse(text)
      if (body && typeof body === 'object' && 'detail' in body) {
        detail = describeDetail((body as { detail: unknown }).detail)
      }
    } catch {
      detail = text.trim() ? text.trim().slice(0, 500) : null
    }
  } catch {
    // The body could not be read; the status says enough.
  }
  const fallback = STATUS_TEXT[response.status] ?? `The server answered ${response.status} ${response.statusText}`.trim()
  return new HttpError(response.status, detail ?? fallback)
}

export function isAbortError(error: unknown): boolean {
  return (
    (error instanceof DOMException && error.name === 'AbortError') ||
    (error instanceof Error && error.name === 'AbortError')
  )
}
