import { isUtf8 } from 'node:buffer'
import fc from 'fast-check'

/** The contract's frame limit: larger frames get `frame_too_large` without being parsed. */
export const FRAME_LIMIT = 16 * 1024
export const CLIENT_TYPES = ['chat.send', 'typing.start', 'typing.stop', 'read.update', 'ping']

/**
 * What the server must answer to one frame: a `pong`, or an `error` with one of `codes` whose
 * `ref` is `ref` (absent when undefined), or, with `refOptional`, either absent or `ref`.
 */
export type Expected = { pong: true } | { codes: string[], ref?: string, refOptional?: boolean }

/** A frame thrown at /ws, the bytes as they go on the wire, and the answer the contract asks for. */
export interface HostileFrame {
  bytes: Buffer
  binary: boolean
  expected: Expected
}

/** Shows a frame as its first bytes in a failure report, not as a Buffer of 16,000 numbers. */
export function hostileFrame(bytes: Buffer, binary: boolean, expected: Expected): HostileFrame {
  return {
    bytes,
    binary,
    expected,
    [fc.toStringMethod]: () => `${binary ? 'binary' : 'text'}(${bytes.byteLength} B) ${JSON.stringify(bytes.subarray(0, 300).toString('latin1'))}${bytes.byteLength > 300 ? '…' : ''}`
  } as HostileFrame
}

/** Who the frames are about: the sender's own id and the one contact they have. */
export interface Cast {
  self: string
  partner: string
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

// Keys that have tripped JavaScript servers before: prototype pollution, coercion, thenables.
const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'toJSON', 'hasOwnProperty', 'then', 'length', 'type', 'clientId', '']

const anyCodeUnit = fc.integer({ min: 0, max: 0xFFFF }).map(code => String.fromCharCode(code))

/** Strings a careless parser trips on: lone surrogates, NUL, bidi marks, format strings, injections. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', ' ', '\u0000', '\u0007', '\u001B[2J', '\u200B', '\u202E', '\uFEFF', '\uD800', '\uDFFF', '\uDBFF\uDBFF',
    'null', 'undefined', 'NaN', '[object Object]', '{}', '[]', '__proto__', '../../etc/passwd', '\' OR 1=1 --',
    '<script>alert(1)</script>', '${7*7}', '{{7*7}}', '%s%s%n', '\r\n\r\nHTTP/1.1 200 OK', '0x', '-0', '1e309'),
  fc.string({ unit: anyCodeUnit, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 })
)

/** A UUID with one thing wrong, so no schema may take it for an id. */
export const brokenUuid: fc.Arbitrary<string> = fc.tuple(fc.uuid(), fc.integer({ min: 0, max: 5 }), fc.nat(35)).map(([id, how, at]) => {
  switch (how) {
    case 0: return id.slice(0, at) + id.slice(at + 1)
    case 1: return `${id}0`
    case 2: return id.slice(0, at) + 'g' + id.slice(at + 1)
    case 3: return id.replaceAll('-', '')
    case 4: return ` ${id}`
    default: return `${id.slice(0, 35)}\u0000`
  }
})

const scalar: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER + 2, 1e308, -1e-308), hostileString
)

/**
 * Objects that make String(), `+` and comparisons throw: no callable toString/valueOf, or a `length`
 * (what a length check reads) that has no primitive form.
 */
export const coercionTraps: Json[] = [{ toString: 1 }, { valueOf: 1, toString: {} }, [{ toString: null }], { length: { toString: 1 } }, { length: [{ valueOf: 'x', toString: 'y' }] }]

/** Small JSON with hostile keys: the generator stays fast however deep it goes. */
export const hostileJson: fc.Arbitrary<Json> = fc.letrec<{ json: Json }>(tie => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.constantFrom(...coercionTraps),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 8 })), tie('json'), { maxKeys: 4 })
  )
})).json

/** A value that is not a string at all. */
const notString: fc.Arbitrary<Json> = hostileJson.filter(value => typeof value !== 'string')

/** Extra fields a frame may carry; the schema must ignore or refuse them, never act on them. */
const extras = fc.dictionary(fc.constantFrom(...HOSTILE_KEYS.filter(key => key !== 'type' && key !== 'clientId')), hostileJson, { maxKeys: 3 })

// Characters the contract refuses in a message body (newline and tab are text).
const controlCharacter = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0xB, max: 0x1F }), fc.integer({ min: 0x7F, max: 0x9F }))
  .map(code => String.fromCharCode(code))

/** A body the schema refuses: empty once trimmed, a control character, too long, or not text. */
const badBody: fc.Arbitrary<Json | undefined> = fc.oneof(
  fc.constantFrom('', ' ', '\n\t  \r', '\u00A0\u2003'.trim()),
  fc.tuple(fc.string({ maxLength: 20 }), controlCharacter, fc.string({ maxLength: 20 })).map(([a, c, b]) => `${a}${c}${b}`),
  fc.integer({ min: 4001, max: 6000 }).map(length => 'x'.repeat(length)),
  notString,
  fc.constant(undefined)
)

const badId: fc.Arbitrary<Json | undefined> = fc.oneof(brokenUuid, hostileString.filter(text => text.length !== 36), notString, fc.constant(undefined))

function withoutUndefined(frame: Record<string, Json | undefined>): Record<string, Json> {
  return Object.fromEntries(Object.entries(frame).filter(([, value]) => value !== undefined)) as Record<string, Json>
}

function jsonFrame(fields: Record<string, Json | undefined>, expected: Expected, binary = false): HostileFrame {
  const clean = withoutUndefined(fields)
  // JSON.stringify writes "__proto__" as an own key, as a hostile client would.
  const bytes = Buffer.from(JSON.stringify(clean))
  return hostileFrame(bytes, binary, bytes.byteLength > FRAME_LIMIT ? tooLarge(bytes) : expected)
}

const CLIENT_ID_IN_TEXT = /"clientId"\s*:\s*"([0-9a-fA-F-]{36})"/

// An oversized frame is not parsed: naming its clientId is welcome, naming another id is wrong.
function tooLarge(bytes: Buffer): Expected {
  const ref = CLIENT_ID_IN_TEXT.exec(bytes.toString('latin1'))?.[1]
  return { codes: ['frame_too_large'], ref, refOptional: true }
}

const refOf = (clientId: Json | undefined) => (typeof clientId === 'string' && clientId.length <= 64 ? clientId : undefined)

/** Known types, each with at least one field the schema must refuse (or a stranger as recipient). */
export function hostileFields(cast: Cast): fc.Arbitrary<HostileFrame> {
  const uuid = fc.uuid()
  const send = fc.record({
    to: fc.oneof(fc.constant(cast.partner), badId),
    body: fc.oneof(fc.constant('hello'), badBody),
    clientId: fc.oneof(uuid, badId),
    extra: extras
  }).filter(({ to, body, clientId }) => to !== cast.partner || body !== 'hello' || typeof clientId !== 'string' || clientId.length !== 36)
    .map(({ to, body, clientId, extra }) => jsonFrame({ ...extra, type: 'chat.send', to, body, clientId }, { codes: ['invalid_frame'], ref: refOf(clientId) }))
  // Well-formed but to someone who is no contact: refused before anything is published.
  const stranger = fc.tuple(uuid, uuid, fc.constantFrom('chat.send', 'typing.start', 'typing.stop'), extras).map(([to, clientId, type, extra]) =>
    type === 'chat.send'
      ? jsonFrame({ ...extra, type, to: [to, cast.self][to.charCodeAt(0) % 2]!, body: 'who are you?', clientId }, { codes: ['not_a_contact', 'rate_limited'], ref: clientId })
      : jsonFrame({ ...extra, type, to: [to, cast.self][to.charCodeAt(0) % 2]! }, { codes: ['not_a_contact', 'rate_limited'] }))
  const typing = fc.tuple(fc.constantFrom('typing.start', 'typing.stop'), badId, extras)
    .map(([type, to, extra]) => jsonFrame({ ...extra, type, to }, { codes: ['invalid_frame'] }))
  const read = fc.tuple(fc.oneof<fc.Arbitrary<Json | undefined>[]>(
    fc.constant<Json>([]),
    fc.constant(undefined),
    notString.filter(value => !Array.isArray(value)),
    fc.tuple(fc.array(uuid, { maxLength: 5 }), badId.filter(id => id !== undefined)).map(([ids, bad]) => [...ids, bad as Json]),
    fc.integer({ min: 501, max: 700 }).map(count => Array.from({ length: count }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`))
  ), extras).map(([messageIds, extra]) => jsonFrame({ ...extra, type: 'read.update', messageIds }, { codes: ['invalid_frame'] }))
  // A ping takes no fields: whatever else it carries is ignored, and it is answered.
  const ping = extras.map(extra => jsonFrame({ ...extra, type: 'ping' }, { pong: true }))
  return fc.oneof(
    { arbitrary: send, weight: 5 },
    { arbitrary: stranger, weight: 1 },
    { arbitrary: typing, weight: 2 },
    { arbitrary: read, weight: 2 },
    { arbitrary: ping, weight: 1 }
  )
}

/** Objects whose type is missing or unknown: hostile strings, numbers, objects, arrays. */
export const unknownTypes: fc.Arbitrary<HostileFrame> = fc.record({
  type: fc.oneof(
    fc.constantFrom('CHAT.SEND', 'chat.send ', ' ping', 'chat', 'chat.ack', 'chat.receive', 'error', 'pong', 'presence.update', '__proto__', 'constructor', 'toString', 'hasOwnProperty'),
    hostileString.filter(text => !CLIENT_TYPES.includes(text)),
    notString,
    fc.constant(undefined),
    // Objects and arrays whose string form cannot be made: the server must not need one.
    fc.constantFrom<Json>(...coercionTraps, { toString: 'x', valueOf: 'y' })
  ),
  clientId: fc.oneof(fc.uuid(), badId),
  extra: extras
}).map(({ type, clientId, extra }) => jsonFrame({ ...extra, type, clientId }, { codes: ['unknown_type'], ref: refOf(clientId) }))

/** The answer the contract asks for, worked out from the bytes alone (for frames made without a plan). */
export function expectedFor(bytes: Buffer): Expected {
  if (bytes.byteLength > FRAME_LIMIT) return tooLarge(bytes)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  }
  catch {
    return { codes: ['invalid_json'] }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { codes: ['invalid_frame'] }
  const { type, clientId } = json as { type?: unknown, clientId?: unknown }
  const ref = typeof clientId === 'string' && clientId.length <= 64 ? clientId : undefined
  if (!CLIENT_TYPES.includes(type as string)) return { codes: ['unknown_type'], ref }
  // A known type from random text is rare enough; any refusal will do, and a ping is answered.
  return type === 'ping' ? { pong: true } : { codes: ['invalid_frame', 'not_a_contact', 'rate_limited'], ref }
}

const planless = (bytes: Buffer, binary = false): HostileFrame => hostileFrame(bytes, binary, expectedFor(bytes))

// What the contract refuses in a body; everything else (newline, tab, lone surrogates, bidi marks) is text.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const REFUSED_IN_BODY = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/

/** A body the contract accepts, as awkward as it gets: any code unit but the refused ones, up to 4,000 once trimmed. */
export const legalBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: anyCodeUnit, minLength: 1, maxLength: 300 }),
  fc.string({ unit: fc.constantFrom('\uD800', '\uDFFF', '\u202E', '\u2028', '\u2029', '\uFEFF', '\u200B', '\u0301', '\n', '\t', ' ', 'x', '😀', '€', '"', '\\', '<', '\u00A0'), minLength: 1, maxLength: 300 }),
  fc.constantFrom('€'.repeat(4000), '😀'.repeat(2000), ` ${'x'.repeat(4000)} `, '\n\tindented\n', '\u202Egnp.exe', '</script><script>alert(1)</script>', '${{7*7}}')
).map(body => body.replace(new RegExp(REFUSED_IN_BODY.source, 'g'), '')).filter(body => body.trim().length > 0 && body.trim().length <= 4000)

/** Text that is not JSON, JSON that is not an object, and frames cut short. */
export function notObjects(cast: Cast): fc.Arbitrary<HostileFrame> {
  const valid = JSON.stringify({ type: 'chat.send', to: cast.partner, body: 'hello', clientId: '5b0c2ef4-55f4-4d5e-9a57-3f8f6c0b6f2a' })
  return fc.oneof(
    hostileString,
    fc.string({ unit: anyCodeUnit, maxLength: 200 }),
    hostileJson.filter(value => typeof value !== 'object' || value === null || Array.isArray(value)).map(value => JSON.stringify(value)),
    fc.nat(valid.length - 1).map(cut => valid.slice(0, cut)),
    fc.constantFrom('{', '}', '{"type":', '{"type":"ping"', '{"type":"ping"}}', '{"type":"ping",}', '{\'type\':\'ping\'}', '{type:"ping"}',
      '{"type":"ping"}{"type":"ping"}', 'NaN', 'Infinity', '-', '01', '"\\ud800"', '"\\u00"', '[', '{"a":1e999}', '\u0000{}')
  ).map(text => planless(Buffer.from(text)))
}

/** Deep nesting (bounded so the generator stays fast) and frames around and far over 16 KiB. */
export function deepAndHuge(cast: Cast): fc.Arbitrary<HostileFrame> {
  const nest = (depth: number, open: string, close: string, core = '0') => open.repeat(depth) + core + close.repeat(depth)
  const deep = fc.tuple(fc.integer({ min: 50, max: 8100 }), fc.constantFrom('array', 'object'), fc.constantFrom('type', 'body', 'to', 'messageIds', 'extra', 'whole'), fc.uuid())
    .map(([depth, shape, where, clientId]) => {
      const value = shape === 'array' ? nest(depth, '[', ']') : nest(depth, '{"a":', '}')
      const text = where === 'whole'
        ? value
        : where === 'extra'
          ? `{"type":"ping","extra":${value}}`
          : where === 'type'
            ? `{"clientId":"${clientId}","type":${value}}`
            : `{"clientId":"${clientId}","type":"${where === 'messageIds' ? 'read.update' : where === 'to' ? 'typing.start' : 'chat.send'}","to":"${cast.partner}","${where}":${value}}`
      return planless(Buffer.from(text))
    })
  // Exactly at, just over and far over the limit, up to the transport's own cap (64 KiB: past it
  // the socket is closed with 1009, which tests/adversarial/socket-limits.test.ts checks); the
  // clientId first, so the refusal can name it.
  const sized = fc.tuple(fc.oneof(
    fc.integer({ min: FRAME_LIMIT - 2, max: FRAME_LIMIT + 2 }),
    fc.integer({ min: FRAME_LIMIT + 1, max: 48 * 1024 }),
    fc.integer({ min: 48 * 1024, max: 64 * 1024 })
  ), fc.uuid(), fc.boolean()).map(([size, clientId, binary]) => {
    const head = `{"clientId":"${clientId}","type":"chat.send","to":"${cast.partner}","body":"`
    const text = head + 'x'.repeat(Math.max(0, size - head.length - 2)) + '"}'
    const bytes = Buffer.from(text)
    // The clientId is in the first 256 bytes, where the server looks for it without parsing.
    return hostileFrame(bytes, binary, { codes: [bytes.byteLength > FRAME_LIMIT ? 'frame_too_large' : 'invalid_frame'], ref: clientId })
  })
  const manyKeys = fc.integer({ min: 100, max: 2500 }).map(count =>
    planless(Buffer.from(`{"type":"ping",${Array.from({ length: count }, (_, i) => `"k${i}":${i}`).join(',')}}`)))
  const longNumbers = fc.integer({ min: 100, max: 16000 }).map(length => planless(Buffer.from(`{"type":"typing.start","to":${'9'.repeat(length)}}`)))
  return fc.oneof({ arbitrary: deep, weight: 4 }, { arbitrary: sized, weight: 2 }, { arbitrary: manyKeys, weight: 1 }, { arbitrary: longNumbers, weight: 1 })
}

// Byte sequences UTF-8 forbids: stray continuation bytes, overlong forms, surrogates, beyond U+10FFFF, cut sequences.
const INVALID_UTF8 = [[0x80], [0xBF], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],
  [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xC3]]

/** A byte sequence that is not UTF-8 (two cut sequences can make a whole one: those are left out). */
export const invalidUtf8: fc.Arbitrary<Buffer> = fc.array(fc.constantFrom(...INVALID_UTF8), { minLength: 1, maxLength: 3 })
  .map(parts => Buffer.from(parts.flat()))
  .filter(bytes => !isUtf8(bytes))

/** Binary frames: random bytes, JSON with bytes that are not UTF-8 inside, and hostile JSON sent as binary. */
export function binaryFrames(cast: Cast): fc.Arbitrary<HostileFrame> {
  const randomBytes = fc.uint8Array({ maxLength: 512 }).map(bytes => planless(Buffer.from(bytes), true))
  const brokenInside = fc.tuple(invalidUtf8, fc.constantFrom('ping', 'chat.send', 'typing.start'), fc.uuid()).map(([bad, type, clientId]) =>
    planless(Buffer.concat([Buffer.from(`{"type":"${type}","to":"${cast.partner}","clientId":"${clientId}","body":"`), bad, Buffer.from('"}')]), true))
    .filter(broken => !isUtf8(broken.bytes))
  const badStart = invalidUtf8.map(bad => planless(Buffer.concat([bad, Buffer.from('{"type":"ping"}')]), true)).filter(broken => !isUtf8(broken.bytes))
  const asBinary = fc.oneof(hostileFields(cast), unknownTypes, notObjects(cast)).map(text => hostileFrame(text.bytes, true, text.expected))
  return fc.oneof({ arbitrary: randomBytes, weight: 2 }, { arbitrary: brokenInside, weight: 2 }, { arbitrary: badStart, weight: 1 }, { arbitrary: asBinary, weight: 3 })
}

/** JSON bodies for the REST endpoints: the right fields with hostile values, wrong shapes, and noise. */
export function hostileBody(fields: Record<string, fc.Arbitrary<Json>>): fc.Arbitrary<Json> {
  const shaped = fc.record(Object.fromEntries(Object.entries(fields).map(([key, value]) => [key, fc.oneof(value, hostileJson)])), { requiredKeys: [] })
  return fc.oneof(
    { arbitrary: fc.tuple(shaped, fc.dictionary(fc.constantFrom(...HOSTILE_KEYS), hostileJson, { maxKeys: 2 })).map(([body, extra]) => ({ ...extra, ...body }) as Json), weight: 4 },
    { arbitrary: hostileJson, weight: 2 },
    { arbitrary: fc.integer({ min: 1, max: 2000 }).map(depth => JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as Json), weight: 1 }
  )
}

/** A body as it goes on the wire: JSON text, broken text, bytes that are not UTF-8, or far too much. */
export function hostileRaw(json: fc.Arbitrary<Json>): fc.Arbitrary<string | Buffer> {
  return fc.oneof(
    { arbitrary: json.map(value => JSON.stringify(value)), weight: 6 },
    { arbitrary: fc.oneof(hostileString, fc.constantFrom('{', '{"email":', 'null', '""', '{"email":"a@b.c"}}', '\uFEFF{}', '[]')), weight: 2 },
    { arbitrary: fc.tuple(invalidUtf8, fc.boolean()).map(([bad, wrapped]) => wrapped ? Buffer.concat([Buffer.from('{"email":"'), bad, Buffer.from('@example.org"}')]) : bad), weight: 1 },
    { arbitrary: fc.integer({ min: 16 * 1024 + 1, max: 256 * 1024 }).map(size => `{"email":"${'a'.repeat(size)}@example.org"}`), weight: 1 },
    { arbitrary: fc.integer({ min: 1, max: 5000 }).map(depth => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)), weight: 1 }
  )
}

/** Query strings and path segments a hostile client may send. */
export const hostileQueryValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', '-1', '0', '1', '200', '201', '1e3', '0x10', '1.5', 'NaN', 'Infinity', '9'.repeat(400), '-0', ' 1', '1 ', '%00', '%', '%E0%A4%A',
    '%C0%AF', '..%2F..%2F', '2026-13-45T99:99:99Z', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999+14:00', 'yesterday', '[object Object]', '__proto__'),
  fc.integer().map(String),
  fc.double().map(String),
  fc.date({ noInvalidDate: true }).map(date => date.toISOString()),
  hostileString.map(text => encodeURIComponent(text.replace(/[\uD800-\uDFFF]/g, 'x'))),
  fc.string({ unit: 'grapheme-ascii', maxLength: 30 })
)
