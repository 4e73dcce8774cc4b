import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import { vi } from 'vitest'

export interface MailCatcher {
  url: string
  mails: ParsedMail[]
  /** Waits for the newest code mailed to the address after `since` mails had arrived. */
  codeFor(email: string, since?: number): Promise<string>
  close(): Promise<void>
}

/** A real SMTP server in the test process: the app mails through nodemailer as in production. */
export async function startMailCatcher(): Promise<MailCatcher> {
  const mails: ParsedMail[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream).then((parsed) => {
        mails.push(parsed)
        callback()
      }, callback)
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  const { port } = server.server.address() as AddressInfo
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    async codeFor(email, since = 0) {
      return vi.waitFor(() => {
        const mail = mails.slice(since).reverse().find(m => m.to && !Array.isArray(m.to) && m.to.value.some(a => a.address === email))
        const code = mail?.subject?.match(/^(\d{6}) /)?.[1]
        if (!code) throw new Error(`no code mailed to ${email} yet`)
        return code
      }, { timeout: 10_000, interval: 25 })
    },
    close: () => new Promise<void>(resolve => server.close(() => resolve()))
  }
}
