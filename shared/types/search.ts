import { z } from './zod'
import { Id } from './ids'
import { ChatMessageSchema } from './messages'

/** Longer searches are refused (400): nobody types more, and the query planner's work grows with it. */
export const MAX_SEARCH_CHARS = 200
export const MAX_SEARCH_RESULTS = 50
/** How deep `next` pages go: past this a person should narrow the search, not page on. */
export const MAX_SEARCH_DEPTH = 500

const isoTime = (name: string) => z.iso.datetime({ offset: true, error: `${name} must be an ISO-8601 time.` }).optional()

/**
 * `GET /api/search`. The box's filters (`from:alice`, `in:#design`, `before:`, `after:`, `has:`)
 * are read by the client, which knows the names, and sent as these parameters; `q` is the words,
 * in `websearch_to_tsquery` syntax (quotes, `-word`, `or`), the last word matched as a prefix.
 */
export const SearchQuery = z.object({
  q: z.string().max(MAX_SEARCH_CHARS, `A search is at most ${MAX_SEARCH_CHARS} characters.`).default(''),
  conversationId: Id.optional(),
  from: Id.optional(),
  after: isoTime('after'),
  before: isoTime('before'),
  /** An addition to the contract: only messages with a link, or with a file attached. */
  has: z.enum(['link', 'file']).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_SEARCH_RESULTS).default(20),
  /** Opaque: the `next` of the previous page. */
  cursor: z.string().max(100).optional()
})
export type Search = z.infer<typeof SearchQuery>

/** Where a result was said; for a direct conversation the client names it after the other person. */
export const SearchConversationSchema = z.object({
  id: Id,
  kind: z.enum(['direct', 'room']),
  name: z.string().nullable()
})

/**
 * One hit. `snippet` is plain text around the matching words (never HTML); `highlights` are the
 * matching words in it as UTF-16 offsets, so a client marks them without parsing markup.
 */
export const SearchResultSchema = z.object({
  message: ChatMessageSchema,
  conversation: SearchConversationSchema,
  snippet: z.string(),
  highlights: z.array(z.object({ start: z.number().int().min(0), length: z.number().int().min(1) }))
})
export type SearchResult = z.infer<typeof SearchResultSchema>

export const SearchAnswer = z.object({ results: z.array(SearchResultSchema), next: z.string().nullable() })
export type SearchAnswerBody = z.infer<typeof SearchAnswer>
