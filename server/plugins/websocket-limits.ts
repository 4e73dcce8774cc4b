import { MAX_FRAME_BYTES } from '#shared/types/messages'

/**
 * The transport's own cap on one WebSocket message, fragmented or not: `ws` stops reading and
 * closes with 1009 past it, so nothing larger is ever held in memory (without it, ws buffered up
 * to 100 MiB per message before the gateway could say no). Between MAX_FRAME_BYTES and this, a
 * frame is read, refused with an `error` frame, and the socket stays open, as the protocol says.
 */
export const MAX_SOCKET_MESSAGE_BYTES = 4 * MAX_FRAME_BYTES

export default defineNitroPlugin((nitroApp) => {
  // NOTE: Nitro's node-server entry builds the ws server from h3App.websocket after the plugins
  // ran (nitropack 2.13, presets/node/runtime/node-server.mjs); h3 caches that object, so options
  // set on it here reach `new WebSocketServer(...)`.
  const options = nitroApp.h3App.websocket as { serverOptions?: Record<string, unknown> }
  options.serverOptions = { ...options.serverOptions, maxPayload: MAX_SOCKET_MESSAGE_BYTES }
})
