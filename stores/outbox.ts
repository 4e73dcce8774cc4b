import { skipHydrate } from 'pinia'
import type { ChangeEntry, OutboxEntry } from '#shared/sdk/outbox'

/**
 * The UI's view of the protocol client's outbox: what I wrote that the server has not confirmed
 * yet (queued, sending, failed), kept in localStorage by the client until its ack.
 */
export const useOutboxStore = defineStore('outbox', () => {
  const natter = useNatter()
  const copy = (entries: readonly OutboxEntry[]) => entries.map(entry => ({ ...entry }))
  const entries = shallowRef<OutboxEntry[]>(copy(natter.outbox.entries))
  onOutboxChange((now) => {
    entries.value = copy(now)
  })
  // Edits, deletions and reactions not yet applied; a failed one waits to be retried or dropped.
  const changes = shallowRef<ChangeEntry[]>(natter.outbox.changes.map(change => ({ ...change })))
  onChangesChange((now) => {
    changes.value = now.map(change => ({ ...change }))
  })

  function of(conversationId: string): OutboxEntry[] {
    return entries.value.filter(entry => entry.conversationId === conversationId)
  }

  /** Writes a message: it goes now, or as soon as there is a connection. */
  function send(conversationId: string, body: string, replyTo?: string) {
    natter.sendMessage(conversationId, body, replyTo ? { replyTo } : undefined)
  }

  function retry(clientId: string) {
    natter.outbox.retry(clientId)
  }

  function discard(clientId: string) {
    natter.outbox.discard(clientId)
  }

  function retryChange(changeId: string) {
    natter.outbox.retryChange(changeId)
  }

  function discardChange(changeId: string) {
    natter.outbox.discardChange(changeId)
  }

  // The browser's own (localStorage), never the server render's empty one.
  return { entries: skipHydrate(entries), changes: skipHydrate(changes), of, send, retry, discard, retryChange, discardChange }
})
