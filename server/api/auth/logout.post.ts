import { getCookie, setResponseStatus } from 'h3'

export default defineEventHandler(async (event) => {
  const { store } = await useBackends()
  const signedIn = await lookupSession(getCookie(event, SESSION_COOKIE))
  // Signing out twice is not an error: the person ends up signed out either way.
  if (signedIn) await endSession(store, signedIn.session)
  clearSessionCookie(event)
  setResponseStatus(event, 204)
  return null
})
