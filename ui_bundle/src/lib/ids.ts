const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'

/** A new conversation id: 16 characters of [A-Za-z0-9_-] (the server's id pattern). */
export function newConversationId(length = 16): string {
  // getRandomValues works on plain http too (randomUUID needs a secure context).
  const bytes = crypto.getRandomValues(new Uint8Array(length))
  let id = ''
  for (const byte of bytes) id += ALPHABET[byte & 63]
  return id
}

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export function isValidId(value: string | null | undefined): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value)
}
