import type { H3Event } from 'h3'
import { useBackends } from './backends'
import { log } from './log'
import type { Mail } from './mail/types'
import { signInCodesFailed, signInCodesSent } from './metrics'

const pending = new Set<Promise<void>>()

/**
 * Sends after the response: a slow SMTP server must not slow sign-in (or show, in how long an
 * answer takes, whether a mail went out), and a failure is logged, not shown.
 */
export function sendAfterResponse(event: H3Event, mail: Mail, kind: 'sign-in' | 'invitation' = 'sign-in') {
  const delivery = useBackends()
    .then(({ mailer }) => mailer.send(mail))
    .then(
      () => {
        if (kind === 'sign-in') signInCodesSent.inc()
      },
      (error) => {
        if (kind === 'sign-in') signInCodesFailed.inc()
        log.error('mail: delivery failed', { kind, to: mail.to, error })
      }
    )
    .finally(() => pending.delete(delivery))
  pending.add(delivery)
  event.waitUntil?.(delivery)
}

/** Lets shutdown wait for mails already on their way. */
export async function flushOutgoingMail() {
  await Promise.allSettled([...pending])
}
