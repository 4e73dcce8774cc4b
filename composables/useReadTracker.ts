import type { Ref } from 'vue'

const REPORT_AFTER_MS = 300

/**
 * Marks the other person's messages read once they are on screen while someone is looking: at
 * least half of one in the list's view, the tab visible and the window focused. The badge drops at
 * once; the server hears of it in batches (read.update, or POST /api/read-receipt without a socket).
 * With receipts turned off the reports go out all the same: the server keeps them private and
 * they clear this person's own unread counts on every device.
 *
 * Their messages are the list's `[data-their-message]` elements, with the id in `data-id`.
 */
export function useReadTracker(root: Ref<HTMLElement | null>, conversationId: () => string) {
  const chat = useChatStore()
  const socket = useChatSocket()
  const inView = new Set<string>()
  const watched = new WeakSet<Element>()
  const toReport = new Set<string>()
  let observer: IntersectionObserver | undefined
  let timer: ReturnType<typeof setTimeout> | undefined

  function someoneIsLooking() {
    return document.visibilityState === 'visible' && document.hasFocus()
  }

  function collect() {
    if (!inView.size || !someoneIsLooking()) return
    const ids = chat.markRead(conversationId(), [...inView])
    if (!ids.length) return
    for (const id of ids) toReport.add(id)
    timer ??= setTimeout(report, REPORT_AFTER_MS)
  }

  function report() {
    timer = undefined
    const ids = [...toReport]
    toReport.clear()
    if (ids.length) void socket.reportRead(ids)
  }

  function onIntersection(entries: IntersectionObserverEntry[]) {
    for (const entry of entries) {
      const id = (entry.target as HTMLElement).dataset.id
      if (!id) continue
      const rootHeight = entry.rootBounds?.height ?? 0
      // A message taller than the view counts once it fills half of it.
      const seen = entry.isIntersecting && (entry.intersectionRatio >= 0.5 || (rootHeight > 0 && entry.intersectionRect.height >= rootHeight / 2))
      if (seen) inView.add(id)
      else inView.delete(id)
    }
    collect()
  }

  /** Starts watching the messages rendered since the last call; call it after each render. */
  function observeNew() {
    if (!observer || !root.value) return
    for (const element of root.value.querySelectorAll('[data-their-message]')) {
      if (watched.has(element)) continue
      watched.add(element)
      observer.observe(element)
    }
  }

  onMounted(() => {
    observer = new IntersectionObserver(onIntersection, { root: root.value, threshold: [0, 0.5, 1] })
    observeNew()
    window.addEventListener('focus', collect)
    document.addEventListener('visibilitychange', collect)
  })

  onBeforeUnmount(() => {
    observer?.disconnect()
    window.removeEventListener('focus', collect)
    document.removeEventListener('visibilitychange', collect)
    clearTimeout(timer)
    report()
  })

  return { observeNew }
}
