import { z } from './zod'

/** Every id in Natter (people, conversations, messages, clientIds) is a UUID. */
export const Id = z.uuid()

/** A conversation's position: every change members see has the next one. */
export const Seq = z.number().int().min(0)
