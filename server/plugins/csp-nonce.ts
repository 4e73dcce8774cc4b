// Nuxt inlines a few scripts (the import map, the runtime config) and, during server rendering,
// each component's CSS as a <style> element: each gets this response's nonce, so the
// Content-Security-Policy can forbid every other inline script and style element. Page content
// cannot add a tag here: Vue escapes every `<` it renders from data.
export default defineNitroPlugin((nitroApp) => {
  nitroApp.hooks.hook('render:html', (html, { event }) => {
    const nonce = event.context.cspNonce as string | undefined
    if (!nonce) return
    const stamp = (chunks: string[]) => chunks.map(chunk => chunk.replace(/<(script|style)(?![^>]*\bnonce=)(?=[\s>])/g, `<$1 nonce="${nonce}"`))
    html.head = stamp(html.head)
    html.bodyPrepend = stamp(html.bodyPrepend)
    html.body = stamp(html.body)
    html.bodyAppend = stamp(html.bodyAppend)
  })
})
