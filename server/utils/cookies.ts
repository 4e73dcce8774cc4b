import type { IncomingHttpHeaders } from 'node:http'
import type { H3Event } from 'h3'
import { appendResponseHeader } from 'h3'

// The app's own cookies and the one shape each can have. A value of another shape under one of
// these names (bad percent-encoding, a huge value, a duplicate planted by a sibling domain with
// `Domain=`) is treated as absent, as if the person were signed out or had chosen nothing.
const OWN_COOKIES: Record<string, RegExp> = {
  natter_session: /^[\w-]{43}$/,
  natter_csrf: /^[\w-]{32,64}$/,
  natter_totp: /^[\w-]{43}$/,
  natter_theme: /^(?:light|dark)$/
}
// Browsers keep at most 4 KiB a cookie; other sites' cookies on a shared domain pass if decodable.
const MAX_FOREIGN_VALUE = 4096

export interface CleanCookies {
  /** The Cookie header every reader on the server sees. */
  header: string
  /** Own cookies that came with a value of the wrong shape. */
  malformed: string[]
  /** Own cookies that also came with a value of the right shape (the first such one is kept). */
  wellFormed: string[]
}

/** Keeps the first well-formed value of each own cookie and every decodable foreign cookie. */
export function cleanCookies(header: string): CleanCookies {
  const kept: string[] = []
  const malformed = new Set<string>()
  const wellFormed = new Set<string>()
  for (const pair of header.split(';')) {
    const split = pair.indexOf('=')
    if (split < 1) continue
    const name = pair.slice(0, split).trim()
    const value = pair.slice(split + 1).trim()
    const shape = OWN_COOKIES[name]
    if (shape) {
      if (!shape.test(value)) {
        malformed.add(name)
        continue
      }
      if (wellFormed.has(name)) continue
      wellFormed.add(name)
    }
    else if (value.length > MAX_FOREIGN_VALUE || !decodable(value)) {
      continue
    }
    kept.push(`${name}=${value}`)
  }
  return { header: kept.join('; '), malformed: [...malformed], wellFormed: [...wellFormed] }
}

/** Rewrites a request's Cookie header to its clean form (also before a WebSocket upgrade). */
export function cleanCookieHeader(headers: IncomingHttpHeaders): CleanCookies | undefined {
  if (!headers.cookie) return undefined
  const clean = cleanCookies(headers.cookie)
  if (clean.header) headers.cookie = clean.header
  else delete headers.cookie
  return clean
}

function decodable(value: string): boolean {
  if (!value.includes('%')) return true
  try {
    decodeURIComponent(value)
    return true
  }
  catch {
    return false
  }
}

/**
 * Every reader on the server (h3's getCookie, Nuxt's useCookie during SSR) sees only clean
 * cookies, and the browser is told to drop the malformed ones, or the page's own scripts would
 * trip over them (Nuxt's useCookie throws on bad percent-encoding). A cookie planted by a sibling
 * domain is deleted by naming that domain; the host's own cookie only when no good value is left,
 * since the Cookie header does not say which of two same-named cookies is which.
 */
export function sanitizeCookies(event: H3Event, host: string) {
  const clean = cleanCookieHeader(event.node.req.headers)
  if (!clean?.malformed.length || event.node.res.headersSent) return
  for (const name of clean.malformed) {
    const domains = parentDomains(host)
    if (!clean.wellFormed.includes(name)) domains.unshift(undefined)
    for (const domain of domains) {
      for (const path of pathPrefixes(event.path)) {
        appendResponseHeader(event, 'Set-Cookie', `${name}=; Path=${path}${domain ? `; Domain=${domain}` : ''}; Max-Age=0; SameSite=Lax`)
      }
    }
  }
}

// chat.example.org -> [chat.example.org, example.org]: where a sibling could have scoped a cookie.
// An IP address has no parents; a bare top-level label cannot carry cookies.
function parentDomains(host: string): Array<string | undefined> {
  if (/^[\d.]+$/.test(host) || host.includes(':')) return []
  const labels = host.split('.')
  const domains: string[] = []
  for (let i = 0; i < labels.length - 1; i++) domains.push(labels.slice(i).join('.'))
  return domains
}

// The paths a cookie visible on this page can have: "/", "/a", "/a/b" for /a/b/c (bounded).
function pathPrefixes(path: string): string[] {
  const segments = (path.split('?')[0] ?? '/').split('/').filter(Boolean).slice(0, 4)
  const prefixes = ['/']
  for (let i = 1; i <= segments.length; i++) {
    const prefix = '/' + segments.slice(0, i).join('/')
    if (/^[\w\-./]+$/.test(prefix)) prefixes.push(prefix)
  }
  return prefixes
}
