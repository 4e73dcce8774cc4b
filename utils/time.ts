// Times are shown in the reader's own time zone and locale; only the browser knows both, so the
// chat renders them on the client.
const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** The locale's own short time: "3:53 AM" in the US, "03:53" in Germany (a fixed '2-digit' hour gave "03:53 AM"). */
export function clockFormat(locale?: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat(locale, { timeStyle: 'short' })
}

const clock = clockFormat()
const weekday = new Intl.DateTimeFormat(undefined, { weekday: 'long' })
const shortWeekday = new Intl.DateTimeFormat(undefined, { weekday: 'short' })
const dayMonth = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' })
const longDay = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' })
const longDayYear = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' })
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' })

function toDate(time: string | number | Date): Date {
  return time instanceof Date ? time : new Date(time)
}

function startOfDay(date: Date): number {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime()
}

/** Whole calendar days between two times in local time: 0 today, 1 yesterday. */
export function daysAgo(time: string | number | Date, now: number): number {
  return Math.round((startOfDay(new Date(now)) - startOfDay(toDate(time))) / DAY)
}

/** "14:02" (or "2:02 PM", as the reader's locale writes it). */
export function clockTime(time: string | number | Date): string {
  return clock.format(toDate(time))
}

/** For a tooltip: the whole date and time. */
export function fullDateTime(time: string | number | Date): string {
  return full.format(toDate(time))
}

/** A local calendar day, to group messages by. */
export function dayKey(time: string | number | Date): string {
  const date = toDate(time)
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`
}

/** The separator between days: "Today", "Yesterday", "Monday", "Monday, 3 March". */
export function dayLabel(time: string | number | Date, now: number): string {
  const date = toDate(time)
  const ago = daysAgo(date, now)
  if (ago === 0) return 'Today'
  if (ago === 1) return 'Yesterday'
  if (ago > 1 && ago < 7) return weekday.format(date)
  return date.getFullYear() === new Date(now).getFullYear() ? longDay.format(date) : longDayYear.format(date)
}

/** The time in a contact row: the clock today, then "Yesterday", the weekday, the date. */
export function listTime(time: string | number | Date, now: number): string {
  const date = toDate(time)
  const ago = daysAgo(date, now)
  if (ago <= 0) return clockTime(date)
  if (ago === 1) return 'Yesterday'
  if (ago < 7) return shortWeekday.format(date)
  return dayMonth.format(date)
}

/** "today at 14:02", "yesterday at 14:02", "Monday at 14:02", "3 Mar at 14:02". */
export function dayAndTime(time: string | number | Date, now: number): string {
  const date = toDate(time)
  const ago = daysAgo(date, now)
  const day = ago <= 0 ? 'today' : ago === 1 ? 'yesterday' : ago < 7 ? weekday.format(date) : dayMonth.format(date)
  return `${day} at ${clockTime(date)}`
}

/** "last seen just now", "last seen 5 min ago", "last seen yesterday at 14:02". */
export function lastSeenText(lastSeen: string | null, now: number): string {
  if (!lastSeen) return 'offline'
  const elapsed = now - toDate(lastSeen).getTime()
  if (elapsed < MINUTE) return 'last seen just now'
  if (elapsed < HOUR) return `last seen ${Math.floor(elapsed / MINUTE)} min ago`
  return `last seen ${dayAndTime(lastSeen, now)}`
}
