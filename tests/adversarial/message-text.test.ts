import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { linkify, type TextPart } from '../../utils/linkify'

// What components/chat/MessageText.vue renders: each part in its own <bdi>, links showing `text`.
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/u
const INVISIBLE = /[\u200B-\u200D\u2060\uFEFF]/u
const links = (body: string) => linkify(body).filter(part => part.href)

describe('links in messages show the address they open', () => {
  it('a zero-width space in the host cannot make another address look like example.com', () => {
    // The URL parser drops the invisible character: the link really opens example.com, and says so.
    expect(links('pay at https://exa\u200Bmple.com now')).toEqual([{ text: 'https://example.com/', href: 'https://example.com/' }])
    expect(links('https://ex\u00ADample.com/login\u200B')).toEqual([{ text: 'https://example.com/login%E2%80%8B', href: 'https://example.com/login%E2%80%8B' }])
  })

  it('a look-alike letter shows as punycode', () => {
    expect(links('https://ex\u0430mple.com/login')).toEqual([{ text: 'https://xn--exmple-4nf.com/login', href: 'https://xn--exmple-4nf.com/login' }])
  })

  it('a bidi override inside a link is shown percent-encoded, not obeyed', () => {
    const [link] = links('https://example.com/\u202Egnp.exe')
    expect(link).toEqual({ text: 'https://example.com/%E2%80%AEgnp.exe', href: 'https://example.com/%E2%80%AEgnp.exe' })
  })

  it('keeps what was written when that already is the address', () => {
    expect(links('See https://example.org/docs?page=2 (the second page).')).toEqual([{ text: 'https://example.org/docs?page=2', href: 'https://example.org/docs?page=2' }])
    expect(links('https://example.org.')).toEqual([{ text: 'https://example.org', href: 'https://example.org/' }])
    expect(links('HTTPS://Example.ORG/x')).toEqual([{ text: 'https://example.org/x', href: 'https://example.org/x' }])
  })

  it('a host the URL parser refuses (an override in it) is no link at all', () => {
    expect(links('https://\u202Eexample.com')).toEqual([])
  })
})

describe('bidi controls in messages', () => {
  it('stand alone, so each one reorders nothing around it', () => {
    expect(linkify('report\u202Efdp.exe is safe')).toEqual([
      { text: 'report' },
      { text: '\u202E', control: true },
      { text: 'fdp.exe is safe' }
    ])
    expect(linkify('\u2067שלום\u2069 https://example.org/a')).toEqual([
      { text: '\u2067', control: true },
      { text: 'שלום' },
      { text: '\u2069', control: true },
      { text: ' ' },
      { text: 'https://example.org/a', href: 'https://example.org/a' }
    ])
  })

  it('whatever the text: plain runs hold no control, links show only visible ASCII, nothing is lost', () => {
    const piece = fc.oneof(
      fc.string(),
      fc.constantFrom('\u202A', '\u202B', '\u202C', '\u202D', '\u202E', '\u2066', '\u2067', '\u2068', '\u2069', '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF', ' ', '\n'),
      fc.webUrl().map(url => url.replace(/^(https?:\/\/)/, `$1${'\u200B'}`)),
      fc.webUrl()
    )
    fc.assert(fc.property(fc.array(piece, { maxLength: 12 }).map(pieces => pieces.join('')), (body) => {
      const parts: TextPart[] = linkify(body)
      for (const part of parts) {
        if (part.control) expect(part.text).toMatch(/^[\u202A-\u202E\u2066-\u2069]$/u)
        else if (part.href) expect(part.text).toMatch(/^https?:\/\/[\x21-\x7E]+$/)
        else expect(BIDI_CONTROLS.test(part.text)).toBe(false)
        if (part.href) expect(INVISIBLE.test(part.text)).toBe(false)
      }
      // Only a link's own text may differ from what was written: the rest comes in order, whole.
      let rest = body
      for (const part of parts) {
        if (part.href) continue
        const at = rest.indexOf(part.text)
        expect(at).toBeGreaterThanOrEqual(0)
        rest = rest.slice(at + part.text.length)
      }
    }), { numRuns: 500 })
  })
})
