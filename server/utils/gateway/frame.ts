import type { ClientFrameOf, ClientFrameType, SocketErrorCode } from '#shared/types/frames'
import type { Backends } from '../backends'
import type { ChatSocket } from '../realtime/sockets'
import type { FrameLimit } from './limits'

/** What a frame handler gets besides its frame. */
export interface FrameContext {
  socket: ChatSocket
  backends: Backends
}

/** One line of the registry: how a frame type is limited and who handles it. */
export interface FrameRoute<T extends ClientFrameType> {
  /** Checked first and in memory: false refuses at once (a busy pipeline). */
  admit?: () => boolean
  /** Per person, in the store. */
  limit?: FrameLimit
  handle: (context: FrameContext, frame: ClientFrameOf<T>) => Promise<void> | void
}

export type FrameRegistry = { [T in ClientFrameType]: FrameRoute<T> }

/** A frame refused for a reason the client can act on: it becomes an `error` frame. */
export class FrameRefused extends Error {
  constructor(readonly code: SocketErrorCode, message: string, readonly retryAfterMs?: number) {
    super(message)
  }
}
