// The theme chosen in the app bar (layouts/default.vue, the `natter_theme` cookie) is set before
// <v-app> renders, on the server too, so a dark page never arrives light. Without a choice the
// system's setting rules: the browser tells the server through the Sec-CH-Prefers-Color-Scheme
// client hint (asked for below), and the page follows the setting live once mounted.
import { appendResponseHeader, setResponseHeader } from 'h3'

const HINT = 'Sec-CH-Prefers-Color-Scheme'

export default defineNuxtPlugin({
  name: 'natter:theme',
  // Vuetify's own plugin runs late (order 25) and in parallel: wait for it by name. Only the one
  // of this side (client or server) exists; Nuxt ignores the other.
  dependsOn: ['vuetify:nuxt:client:plugin', 'vuetify:nuxt:server:plugin'],
  order: 30,
  setup(nuxtApp) {
    const saved = useCookie<string | null>('natter_theme', { default: () => null, decode: themeFromCookie })
    // useVTheme() needs a component; the plugin's instance is the same global theme.
    const { theme } = nuxtApp.$vuetify
    const show = (name: ThemeName) => {
      if (theme.global.name.value !== name) theme.change(name)
    }
    const chosen = () => saved.value === 'light' || saved.value === 'dark' ? saved.value : null
    if (import.meta.server) {
      const event = useRequestEvent()
      if (event) {
        // Chromium sends the hint once asked; Critical-CH makes it retry the first visit with it.
        setResponseHeader(event, 'Accept-CH', HINT)
        setResponseHeader(event, 'Critical-CH', HINT)
        appendResponseHeader(event, 'Vary', HINT)
      }
      const hinted = useRequestHeader(HINT.toLowerCase())
      show(chosen() ?? (hinted === 'dark' ? 'dark' : 'light'))
      return
    }
    const initial = chosen()
    if (initial) show(initial)
    // After hydration, so the page first matches what the server rendered.
    nuxtApp.hook('app:mounted', () => {
      const media = window.matchMedia('(prefers-color-scheme: dark)')
      // The cookie as it is now: the app bar's switch writes it through its own ref.
      const chosenNow = () => themeFromCookie(/(?:^|;\s*)natter_theme=([^;]*)/.exec(document.cookie)?.[1] ?? '')
      const follow = () => {
        if (!chosenNow()) show(media.matches ? 'dark' : 'light')
      }
      follow()
      media.addEventListener('change', follow)
    })
  }
})
