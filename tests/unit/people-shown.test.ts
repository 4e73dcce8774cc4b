import { describe, expect, it } from 'vitest'
import { initials } from '../../utils/avatar'
import { clockFormat } from '../../utils/time'

describe('an avatar’s initials', () => {
  it('are letters or digits, never a symbol the name starts with', () => {
    expect(initials('<script>alert(1)</script>')).toBe('SS')
    expect(initials('< Ada')).toBe('A')
    expect(initials('🙂 bob')).toBe('B')
    expect(initials('***')).toBe('?')
    expect(initials('Ada Lovelace')).toBe('AL')
    expect(initials('élodie')).toBe('É')
    expect(initials('42 club')).toBe('4C')
  })
})

describe('a message’s time', () => {
  const at = new Date(2026, 11, 2, 3, 53)
  it('follows the locale: no padded hour beside AM/PM, padded where the locale writes 24 hours so', () => {
    expect(clockFormat('en-US').format(at)).toMatch(/^3:53\s?AM$/u)
    expect(clockFormat('en-GB').format(at)).toBe('03:53')
    expect(clockFormat('de-DE').format(at)).toBe('03:53')
  })
})
