// The theme chosen in the app bar (layouts/default.vue, the `natter_theme` cookie) is set before
// <v-app> renders, on the server too, so a dark page never arrives light.
export default defineNuxtPlugin({
  name: 'natter:theme',
  // Vuetify's own plugin runs late (order 25) and in parallel: wait for it by name. Only the one
  // of this side (client or server) exists; Nuxt ignores the other.
  dependsOn: ['vuetify:nuxt:client:plugin', 'vuetify:nuxt:server:plugin'],
  order: 30,
  setup(nuxtApp) {
    const saved = useCookie<string | null>('natter_theme', { default: () => null, decode: themeFromCookie }).value
    if (saved !== 'light' && saved !== 'dark') return
    // useVTheme() needs a component; the plugin's instance is the same global theme.
    const { theme } = nuxtApp.$vuetify
    if (theme.global.name.value !== saved) theme.change(saved)
  }
})
