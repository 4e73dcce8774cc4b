/** A run of message text: plain, a link (with `href`), or a lone bidi control. */
export interface TextPart {
  /** What is shown. For a link, the address it really opens (see `linkify`). */
  text: string
  /** A link's target: normalised, with a punycode host and a percent-encoded path. */
  href?: string
  /** A bidi embedding, override or isolate character: shown isolated, so it reorders nothing. */
  control?: boolean
}

// Only http and https become links: javascript:, data: and the rest stay plain text.
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`]+/giu
const TRAILING_PUNCTUATION = /[.,;:!?'"’”]+$/u
// U+202A-202E (embeddings, overrides, pop) and U+2066-2069 (isolates, pop): each can reverse
// the text after it, e.g. make "exe.txt" read "txt.exe" or a link's address read backwards.
const BIDI_CONTROL = /([\u202A-\u202E\u2066-\u2069])/u

function trimUrl(candidate: string): string {
  let url = candidate.replace(TRAILING_PUNCTUATION, '')
  // "(see https://example.org/a)" keeps its closing parenthesis outside the link.
  while (url.endsWith(')') && (url.match(/\(/g)?.length ?? 0) < (url.match(/\)/g)?.length ?? 0)) {
    url = url.slice(0, -1).replace(TRAILING_PUNCTUATION, '')
  }
  return url
}

function safeHref(text: string): string | undefined {
  try {
    const url = new URL(text)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined
  }
  catch {
    return undefined
  }
}

function plain(text: string, parts: TextPart[]) {
  for (const piece of text.split(BIDI_CONTROL)) {
    if (piece) parts.push(BIDI_CONTROL.test(piece) ? { text: piece, control: true } : { text: piece })
  }
}

/**
 * Splits message text into plain runs, bidi controls and http(s) links; the text is never parsed
 * as HTML. A link shows the address it opens, as the URL parser normalised it: what was written
 * when that is the same (give or take the final "/" of a bare origin), else the normalised form,
 * so `https://exa\u200Bmple.com` (a zero-width space), a Cyrillic look-alike letter or a reversed
 * path cannot pass for another address.
 */
export function linkify(body: string): TextPart[] {
  const parts: TextPart[] = []
  let rest = 0
  for (const match of body.matchAll(URL_IN_TEXT)) {
    const written = trimUrl(match[0])
    const href = safeHref(written)
    if (!href) continue
    if (match.index > rest) plain(body.slice(rest, match.index), parts)
    parts.push({ text: href === written || href === `${written}/` ? written : href, href })
    rest = match.index + written.length
  }
  if (rest < body.length) plain(body.slice(rest), parts)
  return parts
}
