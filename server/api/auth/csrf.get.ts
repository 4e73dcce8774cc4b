// The security middleware has set (or found) the cookie; this hands its value to clients that need it first.
export default defineEventHandler(event => ({ token: event.context.csrfToken as string }))
