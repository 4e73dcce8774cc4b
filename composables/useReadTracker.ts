import type { Ref } from 'vue'

/**
 * Marks the others' messages read once they are on screen while someone is looking: at least
 * half of one in the list's view, the tab visible and the window focused. The badge drops at
 * once and the protocol client reports the new watermark (`natter.markRead`). With receipts
 * turned off the reports go out all the same: the server keeps them private and they clear this
 * person's own unread counts on every device.
 *
 * Their messages are the list's `[data-their-message]` elements, with the seq in `data-seq`.
 */
export function useReadTracker(root: Ref<HTMLElement | null>, conversationId: () => string) {
  const messages = useMessagesStore()
  const inView = new Set<number>()
  const watched = new WeakSet<Element>()
  let observer: IntersectionObserver | undefined

  function someoneIsLooking() {
    return document.visibilityState === 'visible' && document.hasFocus()
  }

  function collect() {
    if (!inView.size || !someoneIsLooking()) return
    messages.markRead(conversationId(), Math.max(...inView))
  }

  function onIntersection(entries: IntersectionObserverEntry[]) {
    for (const entry of entries) {
      const seq = Number((entry.target as HTMLElement).dataset.seq)
      if (!seq) continue
      const rootHeight = entry.rootBounds?.height ?? 0
      // A message taller than the view counts once it fills half of it.
      const seen = entry.isIntersecting && (entry.intersectionRatio >= 0.5 || (rootHeight > 0 && entry.intersectionRect.height >= rootHeight / 2))
      if (seen) inView.add(seq)
      else inView.delete(seq)
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
  })

  return { observeNew }
}
