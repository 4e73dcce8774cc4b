/** A run of message text, with `href` when it is a link. */
export interface TextPart {
  text: string
  href?: string
}

// Only http and https become links: javascript:, data: and the rest stay plain text.
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`]+/giu
const TRAILING_PUNCTUATION = /[.,;:!?'"’”]+$/u

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

/** Splits message text into plain runs and http(s) links; the text is never parsed as HTML. */
export function linkify(body: string): TextPart[] {
  const parts: TextPart[] = []
  let rest = 0
  for (const match of body.matchAll(URL_IN_TEXT)) {
    const text = trimUrl(match[0])
    const href = safeHref(text)
    if (!href) continue
    if (match.index > rest) parts.push({ text: body.slice(rest, match.index) })
    parts.push({ text, href })
    rest = match.index + text.length
  }
  if (rest < body.length) parts.push({ text: body.slice(rest) })
  return parts
}
