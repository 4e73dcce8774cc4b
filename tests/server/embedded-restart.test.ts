import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { realServices } from '../support/backends'
import { Client } from '../support/client'
import { startMailCatcher, type MailCatcher } from '../support/mail-catcher'
import { signedInPerson, type Person } from '../support/people'
import { startServer, type TestServer } from '../support/server'

// With Redis the sessions live outside the process anyway; this is about the embedded store.
describe.runIf(!realServices)('an embedded server restarted (in-process store)', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'natter-restart-'))
  const env = { NATTER_TRUST_PROXY: '1', NATTER_CODE_RESEND_SECONDS: '0' }
  let server: TestServer
  let mail: MailCatcher
  let ada: Person

  beforeAll(async () => {
    mail = await startMailCatcher()
    server = await startServer({ SMTP_URL: mail.url, ...env }, { cwd })
    ada = await signedInPerson(server, mail, 'ada')
  })

  afterAll(async () => {
    await server?.stop()
    await mail?.close()
    rmSync(cwd, { recursive: true, force: true })
  })

  function sameBrowser(person: Person): Client {
    const client = new Client(server.url)
    for (const [name, value] of person.client.cookies) client.cookies.set(name, value)
    return client
  }

  it('keeps people signed in across a restart', async () => {
    expect(await server.stop()).toBe(0)
    server = await startServer({ SMTP_URL: mail.url, ...env }, { cwd })
    const me = await sameBrowser(ada).get('/api/me')
    expect(me.status).toBe(200)
    expect(me.body.user).toMatchObject({ id: ada.id })
  })

  it('still forgets a session that was signed out before the restart', async () => {
    const browser = sameBrowser(ada)
    expect((await browser.post('/api/auth/logout')).status).toBe(204)
    expect(await server.stop()).toBe(0)
    server = await startServer({ SMTP_URL: mail.url, ...env }, { cwd })
    expect((await sameBrowser(ada).get('/api/me')).status).toBe(401)
  })
})
