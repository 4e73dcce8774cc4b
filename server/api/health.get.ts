// Liveness: answers while the process lives, whatever the backends do.
export default defineEventHandler(() => ({ status: 'ok' }))
