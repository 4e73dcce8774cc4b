import type { Ref } from 'vue'

/**
 * For a dialog opened from code rather than through an activator (Vuetify returns focus only to
 * an activator): when it closes, focus goes back to what had it when it opened, if still there.
 */
export function useReturnFocus(open: Ref<boolean>) {
  let before: HTMLElement | null = null
  watch(open, async (isOpen) => {
    if (isOpen) {
      before = document.activeElement instanceof HTMLElement ? document.activeElement : null
      return
    }
    await nextTick()
    if (before?.isConnected) before.focus({ preventScroll: true })
    before = null
  })
}
