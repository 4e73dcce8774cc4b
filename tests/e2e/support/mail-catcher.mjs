// A test-only mailbox: takes any mail over SMTP on 127.0.0.1:2525 and shows it as JSON over HTTP
// on 127.0.0.1:2526. GET /messages?to=address lists what that address received, newest last.
import { createServer } from 'node:http'
import { simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

const SMTP_PORT = Number(process.env.MAIL_CATCHER_SMTP_PORT || 2525)
const HTTP_PORT = Number(process.env.MAIL_CATCHER_HTTP_PORT || 2526)
const HOST = '127.0.0.1'
const KEEP = 1000

/** @type {Array<{ to: string[], from: string, subject: string, text: string, html: string, receivedAt: string }>} */
const messages = []

const smtp = new SMTPServer({
  // Plain SMTP without auth, as a local relay: STARTTLS would need a certificate nodemailer trusts.
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, session, callback) {
    simpleParser(stream).then((mail) => {
      messages.push({
        to: session.envelope.rcptTo.map(recipient => recipient.address.toLowerCase()),
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        subject: mail.subject ?? '',
        text: mail.text ?? '',
        html: typeof mail.html === 'string' ? mail.html : '',
        receivedAt: new Date().toISOString()
      })
      if (messages.length > KEEP) messages.shift()
      callback()
    }, callback)
  }
})

const http = createServer((request, response) => {
  const url = new URL(request.url ?? '/', `http://${HOST}:${HTTP_PORT}`)
  if (request.method === 'GET' && url.pathname === '/health') {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
    return
  }
  if (request.method === 'GET' && url.pathname === '/messages') {
    const to = url.searchParams.get('to')?.toLowerCase()
    const found = to ? messages.filter(message => message.to.includes(to)) : messages
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(found))
    return
  }
  response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}')
})

smtp.on('error', (error) => {
  console.error('mail catcher: smtp error', error)
})

smtp.listen(SMTP_PORT, HOST, () => {
  http.listen(HTTP_PORT, HOST, () => {
    console.log(`mail catcher: smtp://${HOST}:${SMTP_PORT}, http://${HOST}:${HTTP_PORT}/messages`)
  })
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    http.close()
    smtp.close(() => process.exit(0))
  })
}
