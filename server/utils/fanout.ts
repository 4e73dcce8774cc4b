import type { Delivery } from './persister'
import { messagesDelivered, sendToDeliver } from './metrics'
import { deliverText, socketsOf } from './sockets'
import { sendSettled } from './backpressure'

/**
 * Hands persisted messages to this instance's sockets: the sending socket gets chat.ack, the
 * sender's other sockets and every socket of the recipient get chat.receive.
 */
export function fanOut(deliveries: Delivery[]) {
  const now = Date.now()
  for (const delivery of deliveries) {
    const { message } = delivery
    sendSettled(delivery.origin, delivery.clientId)
    const receive = JSON.stringify({ type: 'chat.receive', ...message })
    let ack: string | undefined
    for (const socket of socketsOf(message.from)) {
      if (socket.id === delivery.origin) {
        ack ??= JSON.stringify({ type: 'chat.ack', clientId: delivery.clientId, id: message.id, conversationId: message.conversationId, seq: message.seq, timestamp: message.timestamp })
        deliverText(socket, ack)
      }
      else {
        deliverText(socket, receive)
      }
    }
    if (message.to === message.from) continue
    let reached = false
    for (const socket of socketsOf(message.to)) reached = deliverText(socket, receive) || reached
    if (reached && !delivery.duplicate) {
      messagesDelivered.inc()
      sendToDeliver.observe((now - delivery.sentAt) / 1000)
    }
  }
}
