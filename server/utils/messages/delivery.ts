import { messagesDelivered, sendToDeliver } from '../metrics'
import { onEnvelope } from '../realtime/broadcast'
import { sendSettled } from './backpressure'

/** Every instance settles its own waiting sends as their outcome arrives, and counts deliveries. */
export function startMessageDelivery(): () => Promise<void> {
  const stop = onEnvelope((envelope, delivered) => {
    const settled = envelope.settles
    if (settled?.kind !== 'send') return
    sendSettled(settled.origin, settled.clientId)
    if (delivered && !settled.duplicate && !settled.refused) {
      messagesDelivered.inc()
      sendToDeliver.observe((Date.now() - settled.sentAt) / 1000)
    }
  })
  return async () => {
    stop()
  }
}
