const AVATAR_COLORS = ['indigo', 'teal', 'deep-orange', 'purple', 'blue', 'green', 'pink', 'brown', 'cyan', 'deep-purple'] as const

/** "Ada Lovelace" → "AL", "bob" → "B", "<script>" → "S": letters and digits only, never a symbol. */
export function initials(name: string): string {
  const words = name.match(/[\p{L}\p{N}][\p{L}\p{N}\p{M}]*/gu) ?? []
  const letters = words.length > 1 ? [words[0]!, words[words.length - 1]!] : words
  return letters.map(word => [...word][0]!.toUpperCase()).join('') || '?'
}

/** The same person gets the same colour everywhere. */
export function avatarColor(id: string): string {
  let hash = 0
  for (const char of id) hash = (hash * 31 + char.charCodeAt(0)) >>> 0
  return AVATAR_COLORS[hash % AVATAR_COLORS.length]!
}
