import type { Peer } from 'crossws'
import { forgetRateLimit, handleFrame } from '../utils/gateway'
import { onSocketClosed, onSocketOpened } from '../utils/messaging'

const SESSION_COOKIE_PATTERN = /(?:^|;\s*)natter_session=([^;]*)/
// Frames waiting behind the one being handled; past this a socket is flooding.
const MAX_QUEUED_FRAMES = 100

interface SocketContext {
  userId: string
  sessionId: string
  socket?: ChatSocket
  queue?: Promise<void>
  queued?: number
  awaitingPong?: boolean
}

type RawSocket = { bufferedAmount?: number, ping?: () => void, terminate?: () => void, on?: (event: 'pong', listener: () => void) => void }
// NOTE: crossws 0.3 hides the ws socket; its buffer size tells a slow reader apart, and its
// protocol ping finds a socket that died without a close.
const rawSocket = (peer: Peer) => (peer as unknown as { _internal?: { ws?: RawSocket } })._internal?.ws

// The upgrade hook put userId and sessionId there; the rest is this socket's own state.
function chatSocket(peer: Peer): ChatSocket {
  const context = peer.context as unknown as SocketContext
  if (context.socket) return context.socket
  // Once per socket: a listener per frame piled up (MaxListenersExceededWarning after ~10 frames).
  rawSocket(peer)?.on?.('pong', () => {
    context.awaitingPong = false
  })
  context.socket = {
    id: `${instanceId}:${peer.id}`,
    userId: context.userId,
    sessionId: context.sessionId,
    sendText: text => peer.send(text),
    bufferedAmount: () => rawSocket(peer)?.bufferedAmount ?? 0,
    close: (code, reason) => peer.close(code, reason),
    probe: () => {
      const raw = rawSocket(peer)
      if (!raw?.ping) return true
      if (context.awaitingPong) {
        raw.terminate?.()
        return false
      }
      context.awaitingPong = true
      raw.ping()
      return true
    }
  }
  return context.socket
}

export default defineWebSocketHandler({
  async upgrade(request) {
    if (request.headers.get('origin') !== useConfig().publicOrigin) {
      return new Response('Forbidden: foreign origin', { status: 403 })
    }
    const token = request.headers.get('cookie')?.match(SESSION_COOKIE_PATTERN)?.[1]
    let signedIn
    try {
      signedIn = await lookupSession(token && decodeURIComponent(token))
    }
    catch (error) {
      // NOTE: a throw that is not a Response becomes an unhandled rejection and a dropped socket
      // (shared/notes/nuxt-stack-pitfalls.md): answer with a status instead.
      log.error('gateway: session lookup failed', { error })
      return new Response('Service unavailable', { status: 503 })
    }
    if (!signedIn) return new Response('Unauthorized', { status: 401 })
    Object.assign(request.context as object, { userId: signedIn.user.id, sessionId: signedIn.session.id })
  },
  open(peer) {
    // Frames wait for the open to finish, so a client gets its contacts' presence before any answer.
    const context = peer.context as unknown as SocketContext
    context.queue = onSocketOpened(chatSocket(peer)).catch(error => log.error('gateway: open failed', { error }))
  },
  message(peer, message) {
    const context = peer.context as unknown as SocketContext
    const socket = chatSocket(peer)
    if ((context.queued ?? 0) >= MAX_QUEUED_FRAMES) {
      return sendFrame(socket, { type: 'error', code: 'rate_limited', message: 'Too many frames at once. Slow down.' })
    }
    // One frame at a time per socket: a person's messages reach the bus in the order they were sent.
    const data = message.uint8Array()
    context.awaitingPong = false
    context.queued = (context.queued ?? 0) + 1
    context.queue = (context.queue ?? Promise.resolve())
      .then(async () => handleFrame(await useBackends(), socket, data))
      .catch(error => log.error('gateway: frame failed', { error }))
      .finally(() => {
        context.queued! -= 1
      })
  },
  async close(peer) {
    const socket = chatSocket(peer)
    if (await onSocketClosed(socket)) forgetRateLimit(socket.userId)
  },
  error(peer, error) {
    log.warn('gateway: socket error', { error })
  }
})
