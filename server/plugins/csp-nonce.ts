// Nuxt inlines a few scripts (the import map, the runtime config); each gets this response's nonce
// so the Content-Security-Policy can forbid every other inline script.
export default defineNitroPlugin((nitroApp) => {
  nitroApp.hooks.hook('render:html', (html, { event }) => {
    const nonce = event.context.cspNonce as string | undefined
    if (!nonce) return
    const stamp = (chunks: string[]) => chunks.map(chunk => chunk.replace(/<script(?![^>]*\bnonce=)/g, `<script nonce="${nonce}"`))
    html.head = stamp(html.head)
    html.bodyPrepend = stamp(html.bodyPrepend)
    html.body = stamp(html.body)
    html.bodyAppend = stamp(html.bodyAppend)
  })
})
