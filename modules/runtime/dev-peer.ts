import { isIP } from 'node:net'

/** Set by modules/dev-mailbox.ts on every request the dev server accepts: the browser's address. */
export const DEV_PEER_HEADER = 'x-natter-dev-peer'

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
  return plain === '::1' || (isIP(plain) === 4 && plain.startsWith('127.'))
}
