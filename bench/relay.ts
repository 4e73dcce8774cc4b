// The floor Natter is measured against: a bare relay on `ws` speaking version 2's frames, with no
// auth, persistence, bus or store. A client says who it is in the URL (`/ws?user=<id>`); the bench
// tells it the conversations, their members and where their streams stand first
// (`PUT /conversations`). A chat.send
// { conversationId } takes the conversation's next seq, is acked to the sender and handed as one
// chat.receive text to every other member's socket, in order, as the protocol client expects.
// Runs on plain Node (type stripping), in its own process like the server:
//   node bench/relay.ts --port 4100
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { WebSocketServer, type WebSocket } from 'ws'

interface Conversation { id: string, members: string[], direct: boolean, seq: number }

const { values } = parseArgs({ options: { port: { type: 'string', default: '4100' } } })
const sockets = new Map<string, WebSocket>()
const conversations = new Map<string, Conversation>()

const http = createServer((request, response) => {
  if (request.url === '/health') {
    response.writeHead(200, { 'content-type': 'text/plain' })
    response.end('ok')
    return
  }
  if (request.method === 'PUT' && request.url === '/conversations') {
    const chunks: Buffer[] = []
    request.on('data', chunk => chunks.push(chunk))
    request.on('end', () => {
      const list = JSON.parse(Buffer.concat(chunks).toString()) as Array<{ id: string, members: string[], lastSeq: number }>
      for (const { id, members, lastSeq } of list) conversations.set(id, { id, members, direct: members.length === 2, seq: Math.max(0, lastSeq) })
      response.writeHead(204)
      response.end()
    })
    return
  }
  response.writeHead(404, { 'content-type': 'text/plain' })
  response.end('not found')
})
const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 64 * 1024 })

wss.on('connection', (ws, request) => {
  const userId = new URL(request.url ?? '/', 'http://relay').searchParams.get('user') ?? randomUUID()
  sockets.set(userId, ws)
  ws.on('close', () => {
    if (sockets.get(userId) === ws) sockets.delete(userId)
  })
  ws.on('message', (data) => {
    let frame: { type?: string, conversationId?: string, body?: string, clientId?: string }
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
    const conversation = typeof frame.conversationId === 'string' ? conversations.get(frame.conversationId) : undefined
    if (frame.type !== 'chat.send' || typeof frame.body !== 'string' || !conversation) {
      ws.send(JSON.stringify({ type: 'error', code: 'invalid_frame', message: 'Only chat.send to a known conversation, and ping, here.', ref: frame.clientId }))
      return
    }
    const id = randomUUID()
    const seq = ++conversation.seq
    const timestamp = new Date().toISOString()
    const to = conversation.direct ? conversation.members.find(member => member !== userId) ?? null : null
    ws.send(JSON.stringify({ type: 'chat.ack', clientId: frame.clientId, id, conversationId: conversation.id, seq, timestamp }))
    const text = JSON.stringify({ type: 'chat.receive', id, conversationId: conversation.id, seq, from: userId, to, body: frame.body, timestamp, replyTo: null, attachments: [], mentions: [] })
    for (const member of conversation.members) if (member !== userId) sockets.get(member)?.send(text)
  })
})

http.listen(Number(values.port), '127.0.0.1')
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const ws of wss.clients) ws.terminate()
    http.close(() => process.exit(0))
  })
}
