import type { ServerFrame } from '#shared/types/frames'
import type { Store } from '../store/types'
import { log } from '../log'
import { applyMembership, localMembers, membershipOf, type MembershipChange } from './membership'
import { deliverText, socketById, socketsOf } from './sockets'

/** Who gets a frame: people (all their sockets), a conversation's members, or one socket. */
export type Audience
  = | { users: string[] }
    | { conversation: string, also?: string[], except?: string }
    | { socket: string }

/** What a feature learns when its envelope arrives on every instance. */
export type Settlement
  = | { kind: 'send', origin: string, clientId: string, sentAt: number, duplicate: boolean, refused: boolean }
    | { kind: 'outcome', id: string, ok: boolean, status?: number, code?: string, message?: string }

export interface Envelope {
  to: Audience
  frame?: ServerFrame
  /** The socket (instance:counter) this answers: it gets `reply` instead of `frame` (chat.ack, not chat.receive). */
  origin?: string
  reply?: ServerFrame
  /**
   * Membership changes, applied around the delivery: a new member is added first (so they get
   * this frame and every one after it), a removed one last (so they hear of it, then nothing).
   */
  membership?: MembershipChange[]
  settles?: Settlement
}

type EnvelopeListener = (envelope: Envelope, delivered: number) => void

const CHANNEL = 'realtime'
// One pub/sub message per this many envelopes: a lost one is healed by the clients' resync.
const CHUNK = 50
const listeners = new Set<EnvelopeListener>()
let store: Store | undefined

/**
 * Hands frames to every instance, each delivering to its own sockets: the one way anything
 * reaches a client. Envelopes published by one caller arrive everywhere in the order given.
 */
export async function broadcast(envelopes: Envelope | Envelope[]): Promise<void> {
  const list = Array.isArray(envelopes) ? envelopes : [envelopes]
  if (!list.length) return
  if (!store) throw new Error('broadcast: not started')
  for (let i = 0; i < list.length; i += CHUNK) await store.publish(CHANNEL, JSON.stringify(list.slice(i, i + CHUNK)))
}

/** A feature's hook on every envelope after it was delivered here (settling sends, REST outcomes). */
export function onEnvelope(listener: EnvelopeListener): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

/** Delivers one envelope to the sockets of this instance; returns how many sockets got its frame. */
export function deliverHere(envelope: Envelope): number {
  const removals: MembershipChange[] = []
  for (const change of envelope.membership ?? []) {
    if (change.membership) applyMembership(change)
    else removals.push(change)
  }
  let delivered = 0
  if (envelope.frame || envelope.reply) {
    // UTF-8 once for every recipient: encoding per socket was 7 % of a big room's fanout.
    let text: Buffer | undefined
    let reply: string | undefined
    const conversation = envelope.frame && 'conversationId' in envelope.frame ? envelope.frame.conversationId : undefined
    for (const socket of recipients(envelope.to, conversation)) {
      if (socket.id === envelope.origin) {
        if (!envelope.reply) continue
        reply ??= JSON.stringify(envelope.reply)
        deliverText(socket, reply)
      }
      else if (envelope.frame) {
        text ??= Buffer.from(JSON.stringify(envelope.frame))
        if (deliverText(socket, text)) delivered++
      }
    }
  }
  for (const change of removals) applyMembership(change)
  for (const listener of listeners) listener(envelope, delivered)
  return delivered
}

/** The sockets an audience names here; a frame of a conversation reaches only people in it. */
function* recipients(to: Audience, conversation?: string) {
  if ('socket' in to) {
    const socket = socketById(to.socket)
    if (socket) yield socket
    return
  }
  if ('users' in to) {
    for (const userId of to.users) {
      // Someone removed a moment ago hears nothing more of the room, whoever addressed them.
      if (conversation && !membershipOf(userId, conversation)) continue
      yield* socketsOf(userId)
    }
    return
  }
  const members = localMembers(to.conversation)
  for (const userId of members) {
    if (userId !== to.except) yield* socketsOf(userId)
  }
  if (!to.also) return
  const already = new Set(members)
  for (const userId of to.also) {
    if (userId !== to.except && !already.has(userId)) yield* socketsOf(userId)
  }
}

/** Subscribes this instance; returns the stop function. */
export async function startBroadcast(shared: Store): Promise<() => Promise<void>> {
  store = shared
  const unsubscribe = await shared.subscribe(CHANNEL, (text) => {
    let envelopes: Envelope[]
    try {
      envelopes = JSON.parse(text) as Envelope[]
    }
    catch (error) {
      log.error('broadcast: unreadable envelope', { error })
      return
    }
    for (const envelope of envelopes) {
      try {
        deliverHere(envelope)
      }
      catch (error) {
        log.error('broadcast: delivery failed', { error })
      }
    }
  })
  return async () => {
    await unsubscribe()
    store = undefined
  }
}
