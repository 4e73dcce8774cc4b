/** The record without one key, as a new object (a reactive record's own keys change with it). */
export function withoutKey<T>(record: Record<string, T>, key: string): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([known]) => known !== key))
}
