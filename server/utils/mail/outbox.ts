import { log } from '../log'
import type { Mail, Mailer } from './types'

export interface OutboxMailer extends Mailer {
  /** What was "sent", newest last; a dev and test aid, never served in production. */
  readonly outbox: ReadonlyArray<Mail & { sentAt: Date }>
}

/** No SMTP server configured: print the mail to the server log so a developer can read the code. */
export function createOutboxMailer(limit = 100): OutboxMailer {
  const outbox: Array<Mail & { sentAt: Date }> = []
  return {
    mode: 'log',
    outbox,
    async send(mail) {
      outbox.push({ ...mail, sentAt: new Date() })
      if (outbox.length > limit) outbox.shift()
      log.info(`mail to ${mail.to}: ${mail.subject}`, { text: mail.text, ...(import.meta.dev && { mailbox: '/dev/mailbox' }) })
    },
    async ping() {},
    async close() {
      outbox.length = 0
    }
  }
}
