import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createOutboxMailer } from '../../server/utils/mail/outbox'
import { createSmtpMailer } from '../../server/utils/mail/smtp'

const mail = {
  to: 'ada@example.org',
  subject: '123456 is your Natter code',
  text: 'Your code is 123456.',
  html: '<p>Your code is <b>123456</b>.</p>'
}

describe('mail seam: dev outbox', () => {
  it('keeps the mail and prints it to the log', async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
    const mailer = createOutboxMailer()
    await mailer.send(mail)
    expect(mailer.outbox).toHaveLength(1)
    expect(mailer.outbox[0]).toMatchObject(mail)
    expect(write.mock.calls.map(call => String(call[0])).join('')).toContain('123456')
    write.mockRestore()
  })

  it('keeps only the newest mails', async () => {
    const mailer = createOutboxMailer(3)
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
    for (let i = 0; i < 5; i++) await mailer.send({ ...mail, subject: `#${i}` })
    vi.restoreAllMocks()
    expect(mailer.outbox.map(m => m.subject)).toEqual(['#2', '#3', '#4'])
  })
})

describe('mail seam: SMTP against a real SMTP server', () => {
  let server: SMTPServer
  let port: number
  const received: ParsedMail[] = []
  const envelopes: string[] = []

  beforeAll(async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, callback) {
        envelopes.push(...session.envelope.rcptTo.map(rcpt => rcpt.address))
        simpleParser(stream).then((parsed) => {
          received.push(parsed)
          callback()
        }, callback)
      }
    })
    server.listen(0, '127.0.0.1')
    await once(server.server, 'listening')
    port = (server.server.address() as AddressInfo).port
  })
  afterAll(() => new Promise<void>(resolve => server.close(() => resolve())))

  it('delivers a multipart mail a client can parse', async () => {
    const mailer = createSmtpMailer(`smtp://127.0.0.1:${port}`, 'Natter <no-reply@natter.test>')
    await mailer.ping()
    await mailer.send(mail)
    await mailer.close()
    expect(envelopes).toEqual(['ada@example.org'])
    const [parsed] = received
    expect(parsed!.subject).toBe(mail.subject)
    expect(parsed!.from?.value[0]).toMatchObject({ name: 'Natter', address: 'no-reply@natter.test' })
    expect(parsed!.text?.trim()).toBe(mail.text)
    expect(parsed!.html).toContain('<b>123456</b>')
  })

  it('hands SMTP exactly the one recipient, as the envelope and as the To header', async () => {
    const mailer = createSmtpMailer(`smtp://127.0.0.1:${port}`, 'Natter <no-reply@natter.test>')
    const since = received.length
    await mailer.send({ ...mail, to: 'o\'hara+chat@example.org' })
    await mailer.close()
    expect(envelopes.at(-1)).toBe('o\'hara+chat@example.org')
    expect(received.slice(since).map(parsed => parsed.to)).toMatchObject([{ value: [{ name: '', address: 'o\'hara+chat@example.org' }] }])
  })

  it('refuses a recipient that is anything but one plain address, and sends nothing', async () => {
    const mailer = createSmtpMailer(`smtp://127.0.0.1:${port}`, 'Natter <no-reply@natter.test>')
    const since = envelopes.length
    for (const to of ['attacker:victim@example.com;', 'a,b@example.com', '"q"@example.com', '(c)x@example.com', 'victim<x@evil.example>', 'Ada <ada@example.org>', 'ada@example.org\r\nBcc: eve@example.org']) {
      await expect(mailer.send({ ...mail, to }), to).rejects.toThrow(/not one plain address/)
    }
    await mailer.close()
    expect(envelopes.slice(since)).toEqual([])
  })

  it('rejects when the server is unreachable', async () => {
    const mailer = createSmtpMailer('smtp://127.0.0.1:1', 'Natter <no-reply@natter.test>')
    await expect(mailer.send(mail)).rejects.toThrow()
    await mailer.close()
  })
})
