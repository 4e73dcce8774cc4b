import { createError, defineEventHandler, getRequestHeader, setResponseHeader } from 'h3'
import { useBackends } from '../../server/utils/backends'
import type { OutboxMailer } from '../../server/utils/mail/outbox'
import { DEV_PEER_HEADER, isLoopback } from './dev-peer'

const escape = (text: string) => text.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)

// The dev outbox as a page (modules/dev-mailbox.ts): plain HTML, reloading itself every 3 s.
export default defineEventHandler(async (event) => {
  if (!isLoopback(getRequestHeader(event, DEV_PEER_HEADER))) {
    throw createError({ statusCode: 403, message: 'The dev mailbox answers only on this machine (localhost).' })
  }
  const { mailer } = await useBackends()
  const mails = mailer.mode === 'log' ? [...(mailer as OutboxMailer).outbox].reverse() : undefined
  const nonce = event.context.cspNonce as string | undefined
  const items = mails?.map(mail => `<li><div class="meta">${escape(mail.sentAt.toISOString().slice(11, 19))} · to ${escape(mail.to)}</div>`
    + `<div class="subject">${escape(mail.subject)}</div><pre>${escape(mail.text)}</pre></li>`).join('')
  setResponseHeader(event, 'content-type', 'text/html; charset=utf-8')
  setResponseHeader(event, 'cache-control', 'no-store')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Dev mailbox · Natter</title>
<style${nonce ? ` nonce="${nonce}"` : ''}>body{font:16px system-ui,sans-serif;margin:2rem auto;max-width:44rem;padding:0 1rem}
li{list-style:none;border-bottom:1px solid #ddd;padding:.75rem 0}.meta{color:#555;font-size:.85rem}.subject{font-weight:600}
pre{white-space:pre-wrap;margin:.25rem 0 0}ul{padding:0}</style></head><body>
<h1>Dev mailbox</h1><p>Mail the development server "sent" (it has no SMTP_URL), newest first. Development only, from this machine only.</p>
${mails === undefined ? '<p>SMTP_URL is set: mail goes to that server, not here.</p>' : mails.length ? `<ul>${items}</ul>` : '<p>No mail yet. Ask for a sign-in code on <a href="/login">the sign-in page</a>.</p>'}
</body></html>`
})
