import type { Peer } from 'crossws'
import { useBackends } from '../utils/backends'
import { useConfig } from '../utils/config'
import { handleFrame, refuse } from '../utils/gateway/index'
import { log } from '../utils/log'
import { onSocketClosed, onSocketOpened } from '../utils/realtime/pipeline'
import { reserveSocket, socketCounts, instanceId, type ChatSocket } from '../utils/realtime/sockets'
import { lookupSession } from '../utils/auth'

const SESSION_COOKIE_PATTERN = /(?:^|;\s*)natter_session=([^;]*)/
// Frames waiting behind the one being handled; past this a socket is flooding.
const MAX_QUEUED_FRAMES = 100

// Set on the raw socket by the one shared 'pong' listener: no closure per socket.
const AWAITING_PONG = Symbol('natter.awaitingPong')
const TEXT_FRAME = { binary: false }

type RawSocket = {
  bufferedAmount: number
  send: (data: string | Buffer, options: { binary: boolean }) => void
  close: (code: number, reason: string) => void
  ping: () => void
  terminate: () => void
  on: (event: 'pong', listener: (this: RawSocket) => void) => void
  _socket?: Connection
  [AWAITING_PONG]?: boolean
}

// NOTE: crossws 0.3 hides the ws socket; its buffer size tells a slow reader apart, and its
// protocol ping finds a socket that died without a close. The peer's internals also hold the
// whole upgrade request (node's IncomingMessage with every header, two request proxies and a
// Headers copy: ~2.7 KB per socket) for as long as the socket is open; nothing here reads them
// after the upgrade, so they are swapped for the little crossws still needs (see socketOf()).
interface PeerInternals {
  ws: RawSocket
  request?: { url: string }
  nodeReq?: { _context: unknown, socket?: Connection }
}

/** The TCP connection under a request or a socket, as far as this file uses it. */
interface Connection {
  remoteAddress?: string
  destroyed: boolean
  once: (event: 'close', listener: () => void) => void
  off: (event: 'close', listener: () => void) => void
  pause: () => void
  end: () => void
  destroy: () => void
}

/** What the upgrade hook leaves in the context for the open. */
interface Admitted { userId: string, sessionId: string, ip: string, release: () => void }
const internalsOf = (peer: Peer) => (peer as unknown as { _internal: PeerInternals })._internal

// crossws resolves every hook (message, close, error) by the path of peer.request.url.
const ROUTE_ONLY = Object.freeze({ url: '/ws' })

function onPong(this: RawSocket) {
  this[AWAITING_PONG] = false
}

// A per-process counter: crossws' peer.id is a UUID that node builds as a rope of 13 string
// pieces (~450 bytes per socket, never flattened). instanceId keeps it unique across instances.
let opened = 0

/**
 * One open socket: its state and what the rest of the server calls on it, as one object whose
 * methods live on the prototype (not four closures, a context and a state object per socket).
 */
class PeerSocket implements ChatSocket {
  readonly id: string
  readonly userId: string
  readonly sessionId: string
  readonly ip: string
  typingIn?: string
  watching?: string
  /** The open, then the frames of this socket, one at a time; undefined once all are done. */
  queue?: Promise<void>
  /** Frames waiting or being handled (the open is not counted). */
  queued = 0
  private readonly raw: RawSocket

  constructor(userId: string, sessionId: string, ip: string, raw: RawSocket) {
    this.id = `${instanceId}:${(++opened).toString(36)}`
    this.userId = userId
    this.sessionId = sessionId
    this.ip = ip
    this.raw = raw
    raw[AWAITING_PONG] = false
  }

  sendText(text: string | Buffer) {
    // A Buffer goes out as it is, as a text frame: ws would otherwise encode a string again per socket.
    this.raw.send(text, TEXT_FRAME)
  }

  bufferedAmount() {
    return this.raw.bufferedAmount
  }

  close(code: number, reason: string) {
    this.raw.close(code, reason)
  }

  probe() {
    const raw = this.raw
    if (raw[AWAITING_PONG]) {
      raw.terminate()
      return false
    }
    raw[AWAITING_PONG] = true
    raw.ping()
    return true
  }

  /** Any frame from the client shows it is alive, as a pong does. */
  heard() {
    this.raw[AWAITING_PONG] = false
  }

  /** Runs the open first; frames that come meanwhile wait for it. */
  opening(open: Promise<void>) {
    this.queue = open
      .catch(error => log.error('gateway: open failed', { error }))
      .finally(() => this.drained())
  }

  /** Runs `work` after this socket's earlier frames (and its open). */
  enqueue(work: () => Promise<void>) {
    this.queued += 1
    this.queue = (this.queue ?? Promise.resolve())
      .then(work)
      .catch(error => log.error('gateway: frame failed', { error }))
      .finally(() => {
        this.queued -= 1
        this.drained()
      })
  }

  // Nothing waiting: a settled promise kept per idle socket would be memory for nothing.
  private drained() {
    if (this.queued === 0) this.queue = undefined
  }
}

/**
 * The socket's state, made at its first hook. The upgrade hook put userId and sessionId in the
 * context; from then on peer.context is this socket and the upgrade request is let go.
 */
function socketOf(peer: Peer): PeerSocket {
  const context = peer.context as unknown as PeerSocket | Admitted
  if (context instanceof PeerSocket) return context
  const internals = internalsOf(peer)
  // The place the upgrade held is now the socket's own (registered as the open starts).
  context.release()
  internals.nodeReq?.socket?.off('close', context.release)
  const socket = new PeerSocket(context.userId, context.sessionId, context.ip, internals.ws)
  // Once per socket: a listener per frame piled up (MaxListenersExceededWarning after ~10 frames).
  internals.ws.on('pong', onPong)
  // peer.context reads nodeReq._context; peer.request is only read for its url (hook routing).
  internals.nodeReq = { _context: socket }
  internals.request = ROUTE_ONLY
  return socket
}

export default defineWebSocketHandler({
  async upgrade(request) {
    const config = useConfig()
    if (request.headers.get('origin') !== config.publicOrigin) {
      return new Response('Forbidden: foreign origin', { status: 403 })
    }
    const ip = clientIp(request as unknown as UpgradeRequest, config.trustProxy)
    const early = overCap('', ip)
    if (early) return early
    const token = request.headers.get('cookie')?.match(SESSION_COOKIE_PATTERN)?.[1]
    let signedIn
    try {
      signedIn = await lookupSession(token && decodeURIComponent(token))
    }
    catch (error) {
      // NOTE: a throw that is not a Response becomes an unhandled rejection and a dropped socket
      // (crossws 0.3): answer with a status instead.
      log.error('gateway: session lookup failed', { error })
      return new Response('Service unavailable', { status: 503 })
    }
    if (!signedIn) return new Response('Unauthorized', { status: 401 })
    const userId = signedIn.user.id
    const full = overCap(userId, ip)
    if (full) return full
    // Each open announces presence and loads memberships: a socket opened and closed in a loop is a storm.
    const opening = await (await useBackends()).store.takeTokens(`limit:sockets:${userId}`, OPENS.perSecond, OPENS.burst).catch(() => ({ allowed: true, retryAfterMs: 0 }))
    if (!opening.allowed) return tooMany('Reconnecting too often. Wait a moment.', opening.retryAfterMs)
    // Checked again after the last await and held at once, so parallel upgrades see each other.
    const raced = overCap(userId, ip)
    if (raced) return raced
    const release = reserveSocket(userId, ip)
    // A connection that drops before the open (or dropped while the store answered) gives its place back.
    const connection = (request as unknown as UpgradeRequest)._req?.socket
    if (!connection || connection.destroyed) release()
    else connection.once('close', release)
    const admitted: Admitted = { userId, sessionId: signedIn.session.id, ip, release }
    Object.assign(request.context as object, admitted)
  },
  open(peer) {
    // Frames wait for the open to finish, so a client gets its contacts' presence before any answer.
    const socket = socketOf(peer)
    socket.opening(onSocketOpened(socket))
  },
  message(peer, message) {
    const socket = socketOf(peer)
    if (socket.queued >= MAX_QUEUED_FRAMES) return refuse(socket, 'rate_limited', 'Too many frames at once. Slow down.', undefined, 1000)
    // One frame at a time per socket: a person's messages reach the bus in the order they were sent.
    const data = message.uint8Array()
    socket.heard()
    socket.enqueue(async () => handleFrame(await useBackends(), socket, data))
  },
  async close(peer) {
    // crossws does not await this hook: a failure here (the bus already stopped while a server
    // stops and its sockets close) would escape as an unhandled rejection. Logged instead.
    await onSocketClosed(socketOf(peer)).catch((error: unknown) => log.warn('gateway: tidying up after a closed socket failed', { error }))
  },
  error(peer, error) {
    log.warn('gateway: socket error', { error })
    hangUp(internalsOf(peer).ws)
  }
})

/** Socket opens per person: bursts of 20 (tabs, a flaky network), then one every 2 s. */
const OPENS = { perSecond: 0.5, burst: 20 }

interface UpgradeRequest { headers: Headers, _req?: { socket?: Connection } }

/** The caps on this instance's sockets (those about to open count too); a person's only once known. */
function overCap(userId: string, ip: string): Response | undefined {
  const config = useConfig()
  const counts = socketCounts(userId, ip)
  if (counts.ip >= config.maxSocketsPerIp || counts.total >= config.maxSockets) return tooMany('Too many connections from your network.')
  if (userId && counts.user >= config.maxSocketsPerUser) return tooMany('Too many open chat windows. Close some and try again.')
}

/** The client's address: the hop the proxy added when one is trusted, else the connection's. */
function clientIp(request: UpgradeRequest, trustProxy: boolean): string {
  const forwarded = trustProxy ? request.headers.get('x-forwarded-for')?.split(',').at(-1)?.trim() : undefined
  return forwarded || request._req?.socket?.remoteAddress || 'unknown'
}

// Long enough for a client busy sending to read the close frame (cut at once, it saw 1006).
const HANG_UP_AFTER_MS = 1000

/**
 * A socket failed (a message over the cap, text that is not UTF-8): ws has sent its close frame.
 * NOTE: ws then resumes reading, throwing away whatever the client still sends, until the client
 * closes or 30 s pass; a client that ignores the close had all of a 100 MiB message read (4 at
 * once: 400 MiB, ~0.7 s of CPU, the process up to 80 MB larger). This hook runs after ws' resume:
 * stop reading, say goodbye (FIN), and cut the connection soon after.
 */
function hangUp(raw: RawSocket) {
  const connection = raw._socket
  if (!connection || connection.destroyed) return
  connection.pause()
  connection.end()
  setTimeout(() => connection.destroy(), HANG_UP_AFTER_MS).unref()
}

function tooMany(message: string, retryAfterMs = 10_000) {
  return new Response(message, { status: 429, headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } })
}
