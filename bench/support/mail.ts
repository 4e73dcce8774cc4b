import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import { onCleanup } from './procs'

export interface MailCatcher {
  url: string
  /** The code mailed to the address (the newest one); fails after `timeoutMs`. */
  codeFor(email: string, timeoutMs?: number): Promise<string>
  close(): Promise<void>
}

/** A real SMTP server in the bench process: the app mails its sign-in codes through nodemailer. */
export async function startMailCatcher(): Promise<MailCatcher> {
  const codes = new Map<string, string>()
  const waiting = new Map<string, (code: string) => void>()
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    size: 64 * 1024,
    onData(stream, _session, callback) {
      simpleParser(stream).then((mail) => {
        const code = mail.subject?.match(/^(\d{6}) /)?.[1]
        const to = mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : undefined
        if (code && to) {
          const wake = waiting.get(to)
          if (wake) {
            waiting.delete(to)
            wake(code)
          }
          else {
            codes.set(to, code)
          }
        }
        callback()
      }, callback)
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  const { port } = server.server.address() as AddressInfo
  const close = () => new Promise<void>(resolve => server.close(() => resolve()))
  onCleanup('mail catcher', close)
  return {
    url: `smtp://127.0.0.1:${port}`,
    codeFor(email, timeoutMs = 30_000) {
      const known = codes.get(email)
      if (known) {
        codes.delete(email)
        return Promise.resolve(known)
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(email)
          reject(new Error(`no code mailed to ${email} within ${timeoutMs} ms`))
        }, timeoutMs)
        waiting.set(email, (code) => {
          clearTimeout(timer)
          resolve(code)
        })
      })
    },
    close
  }
}
