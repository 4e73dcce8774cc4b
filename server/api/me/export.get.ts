import { sendStream, setResponseHeaders } from 'h3'
import { requireUser } from '../../utils/auth'
import { useBackends } from '../../utils/backends'
import { exportOf } from '../../utils/own-data/export'
import { enforceLimit } from '../../utils/throttle'

export default defineEventHandler(async (event) => {
  const { user } = await requireUser(event)
  const { store, database } = await useBackends()
  // A whole account read from the database: once a minute is plenty for a person.
  await enforceLimit(event, store, { key: `export:${user.id}`, max: 1, windowMs: 60_000 }, 'Your data was just downloaded. Try again in a minute.')
  setResponseHeaders(event, {
    'Content-Type': 'application/x-ndjson; charset=utf-8',
    'Content-Disposition': `attachment; filename="natter-export-${new Date().toISOString().slice(0, 10)}.jsonl"`,
    'Cache-Control': 'no-store'
  })
  return sendStream(event, exportOf(database.db, user.id))
})
