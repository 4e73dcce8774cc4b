import { MAX_FRAME_BYTES } from '#shared/types/messages'
import { ClientFrameSchema, CLIENT_FRAME_TYPES, type ClientFrame, type ClientFrameType, type SocketErrorCode } from '#shared/types/frames'
import type { Backends } from '../backends'
import { log } from '../log'
import { rateLimited } from '../metrics'
import { sendFrame, type ChatSocket } from '../realtime/sockets'
import { FrameRefused, type FrameRoute } from './frame'
import { takeFrom } from './limits'
import { frameRoutes } from './registry'

const CLIENT_ID_IN_TEXT = /"clientId"\s*:\s*"([0-9a-fA-F-]{36})"/

export function refuse(socket: ChatSocket, code: SocketErrorCode, message: string, ref?: unknown, retryAfterMs?: number) {
  sendFrame(socket, {
    type: 'error',
    code,
    message,
    ...(typeof ref === 'string' && ref.length <= 64 && { ref }),
    ...(retryAfterMs !== undefined && { retryAfterMs })
  })
}

/**
 * One frame from a socket: checked by size, JSON and schema, held to its limits, then handed to
 * the one handler the registry names for its type. Every bad frame gets an `error` frame and
 * changes nothing; the connection stays open.
 */
export async function handleFrame(backends: Backends, socket: ChatSocket, data: Uint8Array | string) {
  const frame = parse(socket, data)
  if (!frame) return
  const ref = 'clientId' in frame ? frame.clientId : 'messageId' in frame ? frame.changeId ?? frame.messageId : undefined
  const route = frameRoutes[frame.type] as FrameRoute<ClientFrameType>
  try {
    if (route.admit && !route.admit()) {
      rateLimited.inc({ what: 'backpressure' })
      return refuse(socket, 'rate_limited', 'Natter is busy. Your message will go out in a moment.', ref, 1000)
    }
    if (route.limit) {
      const taken = await takeFrom(backends.store, route.limit, socket.userId)
      if (!taken.allowed) {
        rateLimited.inc({ what: frame.type })
        return refuse(socket, 'rate_limited', 'You are going too fast. Wait a moment.', ref, taken.retryAfterMs)
      }
    }
    await route.handle({ socket, backends }, frame)
  }
  catch (error) {
    if (error instanceof FrameRefused) return refuse(socket, error.code, error.message, ref, error.retryAfterMs)
    log.error('gateway: frame failed', { type: frame.type, userId: socket.userId, error })
    refuse(socket, 'internal', 'Something went wrong on the server. Try again.', ref)
  }
}

function parse(socket: ChatSocket, data: Uint8Array | string): ClientFrame | undefined {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength
  if (size > MAX_FRAME_BYTES) {
    // Not parsed (that is the cost a limit avoids), but a clientId is cheap to find, and it lets
    // the client mark the right message as failed.
    const head = Buffer.from(typeof data === 'string' ? data.slice(0, 256) : data.subarray(0, 256)).toString('latin1')
    const tail = Buffer.from(typeof data === 'string' ? data.slice(-256) : data.subarray(-256)).toString('latin1')
    const ref = CLIENT_ID_IN_TEXT.exec(head)?.[1] ?? CLIENT_ID_IN_TEXT.exec(tail)?.[1]
    refuse(socket, 'frame_too_large', `Frames are at most ${MAX_FRAME_BYTES / 1024} KiB.`, ref)
    return
  }
  let json: unknown
  try {
    json = JSON.parse(typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data))
  }
  catch {
    refuse(socket, 'invalid_json', 'Frames are JSON text.')
    return
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    refuse(socket, 'invalid_frame', 'A frame is a JSON object with a type.')
    return
  }
  const { type, clientId } = json as { type?: unknown, clientId?: unknown }
  // Never String() a hostile value: an object without a usable toString throws.
  if (!CLIENT_FRAME_TYPES.includes(type as never)) {
    refuse(socket, 'unknown_type', `Unknown frame type: ${typeof type === 'string' ? type.slice(0, 40) : typeof type}.`, clientId)
    return
  }
  let parsed: ReturnType<typeof ClientFrameSchema.safeParse>
  try {
    parsed = ClientFrameSchema.safeParse(json)
  }
  catch {
    // NOTE: zod 4 can throw (not fail) on objects posing as arrays, e.g. { length: { toString: 1 } }.
    refuse(socket, 'invalid_frame', `${type}: the frame does not match its schema.`, clientId)
    return
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    refuse(socket, 'invalid_frame', `${type}: ${issue?.path.join('.') || 'frame'}: ${issue?.message ?? 'invalid'}`, clientId)
    return
  }
  return parsed.data
}
