import type { H3Event } from 'h3'
import { deleteCookie, getCookie, getRequestHeader, setCookie, setResponseHeader } from 'h3'
import type { User } from '#shared/types/user'
import { useBackends } from './backends'
import { useConfig } from './config'
import { clientIp, fail } from './http'
import { log } from './log'
import { OUTAGE_RETRY_AFTER_SECONDS } from './outage'
import { createSession, readSession, SESSION_ABSOLUTE_MS, SESSION_COOKIE, type Session } from './sessions'
import { findUser } from './users'

export interface SignedIn {
  user: User
  session: Session
}

/** The signed-in person behind the request's session cookie, or a 401. */
export async function requireUser(event: H3Event): Promise<SignedIn> {
  const known = event.context.signedIn as SignedIn | undefined
  if (known) return known
  let signedIn: SignedIn | undefined
  try {
    signedIn = await lookupSession(getCookie(event, SESSION_COOKIE))
  }
  catch (error) {
    // The store or the database is down: say so (503, retry) instead of a bare 500.
    log.warn('auth: session lookup failed', { error })
    setResponseHeader(event, 'Retry-After', OUTAGE_RETRY_AFTER_SECONDS)
    throw fail(503, 'unavailable', 'Natter cannot check your session right now. Try again in a moment.')
  }
  if (!signedIn) throw fail(401, 'unauthenticated', 'You are not signed in.')
  event.context.signedIn = signedIn
  return signedIn
}

export async function lookupSession(token: string | undefined): Promise<SignedIn | undefined> {
  const { store, database } = await useBackends()
  const session = await readSession(store, token)
  if (!session) return undefined
  const user = await findUser(database.db, session.userId)
  return user && { user, session }
}

/** Signs the person in on this browser: a session that remembers the device and address, and its cookie. */
export async function startSession(event: H3Event, userId: string): Promise<Session> {
  const { store } = await useBackends()
  const { token, session } = await createSession(store, userId, Date.now(), {
    userAgent: getRequestHeader(event, 'user-agent') ?? '',
    address: clientIp(event)
  })
  setSessionCookie(event, token)
  return session
}

export function setSessionCookie(event: H3Event, token: string) {
  setCookie(event, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: useConfig().secureCookies,
    maxAge: SESSION_ABSOLUTE_MS / 1000
  })
}

export function clearSessionCookie(event: H3Event) {
  deleteCookie(event, SESSION_COOKIE, { httpOnly: true, sameSite: 'lax', path: '/', secure: useConfig().secureCookies })
}
