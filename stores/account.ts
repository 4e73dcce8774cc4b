import type { Device, SecondFactorSetup } from '#shared/types/me'

/** My own account: signed-in devices, two-step sign-in, my data. Each action throws the server's ApiError. */
export const useAccountStore = defineStore('account', () => {
  const api = useApi()
  const session = useSessionStore()
  const devices = ref<Device[]>([])

  async function loadDevices(): Promise<void> {
    devices.value = (await api<{ sessions: Device[] }>('GET', '/api/me/sessions')).sessions
  }

  /** Ends another device's session: its pages are signed out and its sockets close at once. */
  async function endDevice(id: string): Promise<void> {
    await api('DELETE', `/api/me/sessions/${encodeURIComponent(id)}`)
    devices.value = devices.value.filter(device => device.id !== id)
  }

  /** A fresh app secret to scan; two-step sign-in stays off until `confirmTotp`. */
  async function beginTotp(): Promise<SecondFactorSetup> {
    return api<SecondFactorSetup>('POST', '/api/me/totp')
  }

  /** Turns two-step sign-in on; resolves to the recovery codes, shown this once. */
  async function confirmTotp(code: string): Promise<string[]> {
    const { recoveryCodes } = await api<{ recoveryCodes: string[] }>('POST', '/api/me/totp/confirm', { code })
    session.totp = true
    return recoveryCodes
  }

  async function removeTotp(code: string): Promise<void> {
    await api('DELETE', '/api/me/totp', { code })
    session.totp = false
  }

  /** Erases my account (my own address is the confirmation); the caller leaves the page after. */
  async function deleteAccount(email: string): Promise<void> {
    await api('DELETE', '/api/me', { email })
    session.user = null
  }

  return { devices, loadDevices, endDevice, beginTotp, confirmTotp, removeTotp, deleteAccount }
})
