import { checkBackends } from '../utils/backends'
import { pipelineRunning } from '../utils/realtime/pipeline'

// Readiness: 503 naming the failing part, so an orchestrator stops routing here until it answers.
// Besides the backends, this instance's pipeline (persister, fanout, presence) must be running.
// Which backends run and how they fail (driver errors name hosts) is for operators only, as
// /metrics is: anyone else hears the status and the names of the failing parts.
export default defineEventHandler(async (event) => {
  const parts = {
    ...await checkBackends(),
    pipeline: { mode: 'messaging', ok: pipelineRunning() }
  }
  const failing = Object.entries(parts).filter(([, part]) => !part.ok).map(([name]) => name)
  const detail = isOperator(event) ? { parts } : {}
  if (failing.length) {
    throw createError({
      statusCode: 503,
      message: `not ready: ${failing.join(', ')} not answering`,
      data: { code: 'not_ready', failing, ...detail }
    })
  }
  return { status: 'ready', ...detail }
})
