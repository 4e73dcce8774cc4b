const AVATAR_COLORS = ['indigo', 'teal', 'deep-orange', 'purple', 'blue', 'green', 'pink', 'brown', 'cyan', 'deep-purple'] as const

/** "Ada Lovelace" → "AL", "bob" → "B". */
export function initials(name: string): string {
  const words = name.trim().split(/[\s._-]+/u).filter(Boolean)
  const letters = words.length > 1 ? [words[0]!, words[words.length - 1]!] : words
  return letters.map(word => [...word][0]!.toUpperCase()).join('') || '?'
}

/** The same person gets the same colour everywhere. */
export function avatarColor(id: string): string {
  let hash = 0
  for (const char of id) hash = (hash * 31 + char.charCodeAt(0)) >>> 0
  return AVATAR_COLORS[hash % AVATAR_COLORS.length]!
}
