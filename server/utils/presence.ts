import type { Contact } from '../../shared/types/chat'
import { useBackends } from './backends'

export const presenceKey = (userId: string) => `presence:${userId}`

/** Adds each contact's presence: online while the store holds a live presence entry for them. */
export async function withPresence(contacts: Array<Omit<Contact, 'presence'> & { lastSeen: string | null }>): Promise<Contact[]> {
  const { store } = await useBackends()
  const live = await Promise.all(contacts.map(contact => store.get(presenceKey(contact.user.id))))
  return contacts.map(({ lastSeen, ...contact }, index) => ({
    ...contact,
    presence: { status: live[index] ? 'online' : 'offline', lastSeen }
  }))
}
