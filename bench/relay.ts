// The floor Natter is measured against: a bare relay on `ws` with the same frame shapes and no
// auth, persistence, bus or store. A client says who it is in the URL (`/ws?user=<id>`); a
// chat.send is acked to the sender and handed as chat.receive to the socket of its `to`.
// Runs on plain Node (type stripping), in its own process like the server:
//   node bench/relay.ts --port 4100
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { WebSocketServer, type WebSocket } from 'ws'

const { values } = parseArgs({ options: { port: { type: 'string', default: '4100' } } })
const sockets = new Map<string, WebSocket>()
const conversations = new Map<string, { id: string, seq: number }>()

function conversationOf(a: string, b: string) {
  const key = a < b ? `${a}:${b}` : `${b}:${a}`
  let conversation = conversations.get(key)
  if (!conversation) {
    conversation = { id: randomUUID(), seq: 0 }
    conversations.set(key, conversation)
  }
  return conversation
}

const http = createServer((request, response) => {
  response.writeHead(request.url === '/health' ? 200 : 404, { 'content-type': 'text/plain' })
  response.end(request.url === '/health' ? 'ok' : 'not found')
})
const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 16 * 1024 })

wss.on('connection', (ws, request) => {
  const userId = new URL(request.url ?? '/', 'http://relay').searchParams.get('user') ?? randomUUID()
  sockets.set(userId, ws)
  ws.on('close', () => {
    if (sockets.get(userId) === ws) sockets.delete(userId)
  })
  ws.on('message', (data) => {
    let frame: { type?: string, to?: string, body?: string, clientId?: string }
    try {
      frame = JSON.parse(String(data))
    }
    catch {
      ws.send(JSON.stringify({ type: 'error', code: 'invalid_json', message: 'Frames are JSON text.' }))
      return
    }
    if (frame.type === 'ping') {
      ws.send('{"type":"pong"}')
      return
    }
    if (frame.type !== 'chat.send' || typeof frame.to !== 'string' || typeof frame.body !== 'string') {
      ws.send(JSON.stringify({ type: 'error', code: 'invalid_frame', message: 'Only chat.send and ping here.', ref: frame.clientId }))
      return
    }
    const conversation = conversationOf(userId, frame.to)
    const message = { id: randomUUID(), conversationId: conversation.id, seq: ++conversation.seq, from: userId, to: frame.to, body: frame.body, timestamp: new Date().toISOString() }
    ws.send(JSON.stringify({ type: 'chat.ack', clientId: frame.clientId, id: message.id, conversationId: message.conversationId, seq: message.seq, timestamp: message.timestamp }))
    sockets.get(frame.to)?.send(JSON.stringify({ type: 'chat.receive', ...message }))
  })
})

http.listen(Number(values.port), '127.0.0.1')
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const ws of wss.clients) ws.terminate()
    http.close(() => process.exit(0))
  })
}
