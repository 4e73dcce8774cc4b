// Vuetify writes its theme (colours, the light/dark switch) into a <style> element, on the server
// and again in the browser when the theme changes; the Content-Security-Policy allows style
// elements only with the response's nonce (server/utils/http.ts), so Vuetify is given it.
export default defineNuxtPlugin({
  name: 'natter:csp-nonce',
  enforce: 'pre',
  setup(nuxtApp) {
    const nonce = import.meta.server
      ? useRequestEvent()?.context.cspNonce as string | undefined
      // Browsers hide a nonce from attributes but keep it on the element's `nonce` property.
      : document.querySelector<HTMLScriptElement>('script[nonce]')?.nonce
    if (!nonce) return
    nuxtApp.hook('vuetify:before-create', ({ vuetifyOptions }) => {
      vuetifyOptions.theme = { ...vuetifyOptions.theme, cspNonce: nonce }
    })
  }
})
