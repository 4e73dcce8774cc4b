import { get as httpGet } from 'node:http'
import { connect, type Socket } from 'node:net'

/** What a raw HTTP exchange came to: the status line's code, how much was sent, who closed. */
export interface RawAnswer {
  status: number | undefined
  /** Everything the server wrote, head and body. */
  text: string
  /** Bytes of request body written before the connection ended. */
  sent: number
  /** The server closed (or reset) the connection while the client was still sending or waiting. */
  closedByServer: boolean
  /** From the first byte written to the first byte of the answer. */
  answeredInMs: number | undefined
}

export interface RawRequest {
  port: number
  /** The request line and headers, without the blank line that ends them. */
  head: string
  /** Body bytes to stream as chunked transfer encoding, 64 KiB a chunk, until the server answers or closes. */
  chunkedBytes?: number
  /** Bytes written after the head as they are (no chunk framing), e.g. a partial body. */
  then?: string
  /** Stop waiting (and close from this side) after this long. */
  timeoutMs?: number
  localAddress?: string
}

/**
 * One HTTP/1.1 request over a plain socket, for what fetch cannot do: stream a body that never
 * ends, stall half-way, or see whether the server closed the connection while we were sending.
 */
export function rawRequest(request: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ port: request.port, host: '127.0.0.1', localAddress: request.localAddress })
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
    let text = ''
    let sent = 0
    let started = 0
    let answeredInMs: number | undefined
    let closedByUs = false
    const timer = setTimeout(() => {
      closedByUs = true
      socket.destroy()
    }, request.timeoutMs ?? 20_000)
    const pump = () => {
      while (!socket.destroyed && request.chunkedBytes !== undefined && sent < request.chunkedBytes) {
        sent += chunk.length
        if (!socket.write(frame)) {
          socket.once('drain', pump)
          return
        }
      }
      if (!socket.destroyed && request.chunkedBytes !== undefined && sent >= request.chunkedBytes) socket.write('0\r\n\r\n')
    }
    socket.on('connect', () => {
      started = performance.now()
      socket.write(`${request.head}\r\n\r\n`)
      if (request.then) socket.write(request.then)
      pump()
    })
    socket.on('data', (data) => {
      answeredInMs ??= performance.now() - started
      text += data.toString('latin1')
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]
      resolve({ status: status ? Number(status) : undefined, text, sent, closedByServer: !closedByUs, answeredInMs })
    })
  })
}

/** The head of a request, with the headers given (name: value) after Host. */
export function head(method: string, path: string, port: number, headers: Record<string, string> = {}): string {
  return [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)].join('\r\n')
}

/**
 * A connection that sends part of a request and then nothing (slowloris): it resolves once
 * connected (or refused), and `closed` resolves with the time the server closed it.
 */
export function stall(port: number, localAddress: string, partial: string): Promise<{ socket: Socket, closed: Promise<number> }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress })
    const closed = new Promise<number>(done => socket.once('close', () => done(performance.now())))
    socket.on('error', () => {})
    // Reads (and drops) whatever the server answers, so its close is seen.
    socket.resume()
    socket.once('connect', () => {
      socket.write(partial)
      resolve({ socket, closed })
    })
    socket.once('close', () => resolve({ socket, closed }))
  })
}

/** A GET on a connection of its own (no pooled keep-alive one): what a new visitor does. */
export function freshGet(url: string, timeoutMs = 5000): Promise<{ status: number | undefined, ms: number }> {
  const started = performance.now()
  return new Promise((resolve) => {
    const request = httpGet(url, { agent: false, timeout: timeoutMs }, (response) => {
      response.resume()
      response.on('end', () => resolve({ status: response.statusCode, ms: performance.now() - started }))
    })
    request.on('timeout', () => request.destroy())
    request.on('error', () => resolve({ status: undefined, ms: performance.now() - started }))
  })
}
