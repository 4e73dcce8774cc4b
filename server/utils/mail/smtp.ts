import nodemailer from 'nodemailer'
import { isPlainAddress } from '#shared/types/auth'
import type { Mailer } from './types'

/** Real delivery through nodemailer; `smtp://` upgrades with STARTTLS when offered, `smtps://` is TLS from the start. */
export function createSmtpMailer(url: string, from: string): Mailer {
  const transport = nodemailer.createTransport(url)
  return {
    mode: 'smtp',
    async send(mail) {
      // nodemailer reads recipients out of address lists ("a:b@x;", "a,b@x", "n <b@x>"): only one
      // plain address goes in, as an explicit envelope and an address object, so nothing is parsed.
      if (!isPlainAddress(mail.to)) throw new Error('mail: refusing a recipient that is not one plain address')
      await transport.sendMail({
        from,
        to: { name: '', address: mail.to },
        envelope: { from, to: mail.to },
        subject: mail.subject,
        text: mail.text,
        html: mail.html
      })
    },
    async ping() {
      await transport.verify()
    },
    async close() {
      transport.close()
    }
  }
}
