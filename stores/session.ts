import type { User } from '#shared/types/user'

/** Who is signed in on this tab, and the sign-in steps that change it. */
export const useSessionStore = defineStore('session', () => {
  const api = useApi()
  const user = ref<User | null>(null)
  // Set once /api/me has answered; it travels in the SSR payload, so the browser does not ask again.
  const loaded = ref(false)
  // The server's setting, so the UI never promises a period it does not keep.
  const retentionDays = ref(7)
  // Whether two-step sign-in (an authenticator app) is on, for the account settings.
  const totp = ref(false)

  /** Asks the server who this is: a 401 means signed out; any other failure is thrown. */
  async function load(): Promise<void> {
    try {
      const me = await api<{ user: User, retentionDays?: number, totp?: boolean }>('GET', '/api/me')
      user.value = me.user
      if (me.retentionDays) retentionDays.value = me.retentionDays
      totp.value = me.totp === true
    }
    catch (error) {
      if (!isApiError(error) || error.status !== 401) throw error
      user.value = null
    }
    loaded.value = true
  }

  async function requestCode(email: string): Promise<void> {
    await api('POST', '/api/auth/request-otp', { email })
  }

  /**
   * Signs in with the emailed code; resolves to true when this created the account, or to 'totp'
   * when two-step sign-in is on and the code from the app is still to come (no session yet).
   */
  async function verify(email: string, otp: string): Promise<boolean | 'totp'> {
    const answer = await api<{ user?: User, firstSignIn?: boolean, totp?: 'required' }>('POST', '/api/auth/verify-otp', { email, otp })
    if (answer.totp === 'required' || !answer.user) return 'totp'
    user.value = answer.user
    loaded.value = true
    return answer.firstSignIn === true
  }

  /** The second step of a two-step sign-in: a code from the authenticator app, or a recovery code. */
  async function verifyTotp(code: string): Promise<boolean> {
    const answer = await api<{ user: User, firstSignIn?: boolean }>('POST', '/api/auth/verify-totp', { code })
    user.value = answer.user
    totp.value = true
    loaded.value = true
    return answer.firstSignIn === true
  }

  async function update(change: { displayName?: string, readReceipts?: boolean }): Promise<void> {
    user.value = (await api<{ user: User }>('PATCH', '/api/me', change)).user
  }

  async function logout(): Promise<void> {
    try {
      await api('POST', '/api/auth/logout')
    }
    catch (error) {
      // Already signed out on the server is still signed out.
      if (!isApiError(error) || error.status !== 401) throw error
    }
    user.value = null
  }

  return { user, loaded, retentionDays, totp, load, requestCode, verify, verifyTotp, update, logout }
})
