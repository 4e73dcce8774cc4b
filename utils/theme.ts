export type ThemeName = 'light' | 'dark'

/** The `natter_theme` cookie's value; anything else (a malformed or planted value) is no choice. */
export function themeFromCookie(value: string): ThemeName | null {
  return value === 'light' || value === 'dark' ? value : null
}
