import type { Backends } from './backends'
import { log } from './log'
import { deliverText, socketsOf, type ChatSocket } from './sockets'

/** Typing expires here, on the listener's side, so a crashed sender's indicator clears too. */
export const TYPING_EXPIRY_MS = 5_000
const CHANNEL = 'typing'

interface TypingEvent { from: string, to: string, typing: boolean }

const timers = new Map<string, NodeJS.Timeout>()

function show(event: TypingEvent) {
  const text = JSON.stringify({ type: 'typing.update', from: event.from, typing: event.typing })
  for (const socket of socketsOf(event.to)) deliverText(socket, text)
}

function hear(event: TypingEvent) {
  const key = `${event.to}:${event.from}`
  clearTimeout(timers.get(key))
  timers.delete(key)
  if (event.typing) {
    timers.set(key, setTimeout(() => {
      timers.delete(key)
      show({ ...event, typing: false })
    }, TYPING_EXPIRY_MS).unref())
  }
  show(event)
}

export async function publishTyping({ store }: Pick<Backends, 'store'>, socket: ChatSocket, to: string, typing: boolean) {
  socket.typingTo = typing ? to : undefined
  await store.publish(CHANNEL, JSON.stringify({ from: socket.userId, to, typing } satisfies TypingEvent))
}

export async function startTyping({ store }: Pick<Backends, 'store'>): Promise<() => Promise<void>> {
  const unsubscribe = await store.subscribe(CHANNEL, (text) => {
    try {
      hear(JSON.parse(text) as TypingEvent)
    }
    catch (error) {
      log.error('typing: unreadable event', { error })
    }
  })
  return async () => {
    await unsubscribe()
    timers.forEach(timer => clearTimeout(timer))
    timers.clear()
  }
}
