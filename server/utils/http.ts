import { STATUS_CODES } from 'node:http'
import type { H3Event } from 'h3'
import { createError, getRequestHeader, readRawBody } from 'h3'
import type { z } from 'zod'
import type { ErrorCode } from '../../shared/types/user'

export const MAX_BODY_BYTES = 16 * 1024

/** An error in the contract's shape: a message for people, `data.code` for programs. */
export function fail(statusCode: number, code: ErrorCode, message: string, extra: Record<string, unknown> = {}): Error {
  return createError({ statusCode, statusMessage: STATUS_CODES[statusCode], message, data: { code, ...extra } })
}

/**
 * Reads a JSON body and checks it against its schema: 413 when too large, 400 with the field
 * issues when malformed, so a handler only ever sees valid input.
 */
export async function readBodyAs<S extends z.ZodType>(event: H3Event, schema: S): Promise<z.output<S>> {
  const declared = Number(getRequestHeader(event, 'content-length') || 0)
  if (declared > MAX_BODY_BYTES) throw fail(413, 'body_too_large', `The request body is larger than ${MAX_BODY_BYTES / 1024} KiB.`)
  const raw = (await readRawBody(event, 'utf8')) ?? ''
  if (Buffer.byteLength(raw) > MAX_BODY_BYTES) throw fail(413, 'body_too_large', `The request body is larger than ${MAX_BODY_BYTES / 1024} KiB.`)
  let json: unknown
  try {
    json = raw === '' ? {} : JSON.parse(raw)
  }
  catch {
    throw fail(400, 'invalid_json', 'The request body is not valid JSON.')
  }
  return validated(schema)(json)
}

/** A zod schema as an h3 validator that fails with the contract's 400 shape. */
export function validated<S extends z.ZodType>(schema: S) {
  return (value: unknown): z.output<S> => {
    let result: z.ZodSafeParseResult<z.output<S>>
    try {
      result = schema.safeParse(value)
    }
    catch {
      // NOTE: zod 4 can throw (not fail) on objects posing as arrays, e.g. { length: { toString: 1 } }.
      throw fail(400, 'invalid_body', 'The request does not match its schema.')
    }
    if (result.success) return result.data
    const issues = result.error.issues.map(issue => ({ path: issue.path.join('.'), message: issue.message }))
    throw fail(400, 'invalid_body', issues[0]?.message ?? 'The request is not valid.', { issues })
  }
}
