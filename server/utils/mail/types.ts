export interface Mail {
  to: string
  subject: string
  text: string
  html: string
}

export interface Mailer {
  readonly mode: 'smtp' | 'log'
  send(mail: Mail): Promise<void>
  ping(): Promise<void>
  close(): Promise<void>
}
