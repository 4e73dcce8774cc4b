// The ports of one e2e run: fixed by default, moved with E2E_APP_PORT, E2E_SMTP_PORT and
// E2E_MAILBOX_PORT so two runs can share a machine.
export const APP_PORT = Number(process.env.E2E_APP_PORT || 3300)
export const SMTP_PORT = Number(process.env.E2E_SMTP_PORT || 2525)
export const MAILBOX_PORT = Number(process.env.E2E_MAILBOX_PORT || 2526)
