/** Characters that make one text look like another, or hide text: refused in names, never stripped. */
export const HOSTILE_TEXT = /[\p{Cc}\p{Cf}\u2028\u2029]/u
