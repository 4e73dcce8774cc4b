import { checkBackends } from '../utils/backends'
import { pipelineRunning } from '../utils/realtime/pipeline'

// Readiness: 503 naming the failing part, so an orchestrator stops routing here until it answers.
// Besides the backends, this instance's pipeline (persister, fanout, presence) must be running.
export default defineEventHandler(async () => {
  const parts = {
    ...await checkBackends(),
    pipeline: { mode: 'messaging', ok: pipelineRunning() }
  }
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
