import nodemailer from 'nodemailer'
import type { Mailer } from './types'

/** Real delivery through nodemailer; `smtp://` upgrades with STARTTLS when offered, `smtps://` is TLS from the start. */
export function createSmtpMailer(url: string, from: string): Mailer {
  const transport = nodemailer.createTransport(url)
  return {
    mode: 'smtp',
    async send(mail) {
      await transport.sendMail({ from, ...mail })
    },
    async ping() {
      await transport.verify()
    },
    async close() {
      transport.close()
    }
  }
}
