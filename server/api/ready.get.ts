import { checkBackends } from '../utils/backends'

// Readiness: 503 naming the failing part, so an orchestrator stops routing here until it answers.
export default defineEventHandler(async () => {
  const parts = await checkBackends()
  const failing = Object.entries(parts).filter(([, part]) => !part.ok).map(([name]) => name)
  if (failing.length) {
    throw createError({
      statusCode: 503,
      message: `not ready: ${failing.join(', ')} not answering`,
      data: { code: 'not_ready', parts }
    })
  }
  return { status: 'ready', parts }
})
