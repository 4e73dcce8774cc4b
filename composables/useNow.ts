const now = ref(Date.now())
let ticking = false

/** A clock for relative times ("5 min ago", "Yesterday"), one for the page, moving every 15 s. */
export function useNow(): Readonly<Ref<number>> {
  if (import.meta.client && !ticking) {
    ticking = true
    setInterval(() => {
      now.value = Date.now()
    }, 15_000)
  }
  return now
}
