import { acceptingSends } from '../messages/backpressure'
import { changeByFrame } from '../messages/changes'
import { sendMessage } from '../messages/send'
import { watchPresence } from '../presence/presence'
import { readUpTo } from '../receipts/receipts'
import { sendFrame } from '../realtime/sockets'
import { changeTyping } from '../typing/typing'
import type { FrameRegistry } from './frame'
import { FRAME_LIMITS } from './limits'

/**
 * Every client frame type, its limits and its handler: one line each. The type is derived from
 * shared/types/frames.ts, so a frame added there and not here does not compile.
 */
export const frameRoutes: FrameRegistry = {
  'chat.send': { admit: acceptingSends, limit: FRAME_LIMITS.send, handle: sendMessage },
  'chat.edit': { admit: acceptingSends, limit: FRAME_LIMITS.change, handle: changeByFrame },
  'chat.delete': { admit: acceptingSends, limit: FRAME_LIMITS.change, handle: changeByFrame },
  'chat.react': { admit: acceptingSends, limit: FRAME_LIMITS.change, handle: changeByFrame },
  'typing.start': { limit: FRAME_LIMITS.typing, handle: changeTyping },
  'typing.stop': { limit: FRAME_LIMITS.typing, handle: changeTyping },
  'read.update': { limit: FRAME_LIMITS.read, handle: readUpTo },
  'presence.watch': { limit: FRAME_LIMITS.watch, handle: watchPresence },
  'ping': { handle: ({ socket }) => sendFrame(socket, { type: 'pong' }) }
}
