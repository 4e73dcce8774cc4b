import { getValidatedQuery } from 'h3'
import { SearchQuery } from '#shared/types/search'
import { requireUser } from '../utils/auth'
import { useBackends } from '../utils/backends'
import { validated } from '../utils/http'
import { searchMessages } from '../utils/search/search'
import { hitLimit, throttled } from '../utils/throttle'

/** Search as you type sends a few a second; more than this is a script, and each one is an index scan. */
const SEARCHES_PER_SECOND = 10

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const search = await getValidatedQuery(event, validated(SearchQuery))
  const backends = await useBackends()
  const { allowed, retryAfterMs } = await hitLimit(backends.store, { key: `search:${user.id}`, max: SEARCHES_PER_SECOND, windowMs: 1000 })
  if (!allowed) throw throttled(event, retryAfterMs, 'Too many searches at once: wait a moment.', 'search')
  return searchMessages(backends.database.db, user.id, search)
})
