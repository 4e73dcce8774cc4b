import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { H3Event } from 'h3'
import { getCookie, getRequestHeader, setCookie } from 'h3'
import type { NatterConfig } from './config'
import { fail } from './http'

export const CSRF_COOKIE = 'natter_csrf'
export const CSRF_HEADER = 'x-csrf-token'
const CHANGES_STATE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** The double-submit token: a cookie scripts on our origin can read and echo in a header. */
export function ensureCsrfCookie(event: H3Event, config: NatterConfig): string {
  const existing = getCookie(event, CSRF_COOKIE)
  if (existing && /^[\w-]{32,64}$/.test(existing)) return existing
  const token = randomBytes(24).toString('base64url')
  setCookie(event, CSRF_COOKIE, token, { httpOnly: false, sameSite: 'lax', path: '/', secure: config.secureCookies })
  return token
}

/** Refuses a state change from a foreign origin or without the matching token. */
export function checkStateChange(event: H3Event, config: NatterConfig, cookieToken: string | undefined) {
  if (!CHANGES_STATE.has(event.method)) return
  const origin = getRequestHeader(event, 'origin')
  if (origin ? origin !== config.publicOrigin : getRequestHeader(event, 'sec-fetch-site') === 'cross-site') {
    throw fail(403, 'foreign_origin', 'This request came from another site.')
  }
  const header = getRequestHeader(event, CSRF_HEADER)
  if (!cookieToken || !header || !sameToken(cookieToken, header)) {
    throw fail(403, 'csrf_failed', 'The security token is missing or out of date. Reload the page and try again.')
  }
}

function sameToken(a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}
