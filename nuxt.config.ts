import { createRequire } from 'node:module'

// Everything the browser loads is served by this app: no CDN, so Natter works on a closed network.
// NATTER_BUILD_DIR lets two builds run side by side (say, a test run and an e2e run) without
// overwriting each other's .output.
const buildRoot = process.env.NATTER_BUILD_DIR

export default defineNuxtConfig({
  modules: ['@nuxt/eslint', '@pinia/nuxt', 'vuetify-nuxt-module'],
  devtools: { enabled: false },
  app: {
    head: {
      title: 'Natter',
      htmlAttrs: { lang: 'en' },
      meta: [
        { name: 'viewport', content: 'width=device-width, initial-scale=1' },
        { name: 'description', content: 'Natter: self-hosted realtime chat. Sign in with a code sent to your email.' }
      ]
    }
  },
  srcDir: '.',
  compatibilityDate: '2026-11-01',
  ...(buildRoot && { buildDir: `${buildRoot}/.nuxt` }),
  nitro: {
    ...(buildRoot && { output: { dir: `${buildRoot}/.output` } }),
    experimental: { websocket: true, tasks: true },
    // The built assets are stored brotli- and gzip-compressed beside the originals and served
    // compressed to a client that accepts it; the rendered pages are compressed as they go out
    // (server/plugins/render-compress.ts).
    compressPublicAssets: { gzip: true, brotli: true },
    // Fixed at build time (Nitro writes the schedule into the bundle): see docs/retention.md.
    scheduledTasks: { [process.env.NATTER_RETENTION_CRON || '0 * * * *']: ['retention:purge'] }
  },
  typescript: { strict: true },
  hooks: {
    // Our API error handler first, for /api; Nuxt's page error handler stays behind it.
    'nitro:config'(config) {
      const nuxt = config.errorHandler ? [config.errorHandler].flat() : []
      config.errorHandler = ['~~/server/api-errors', ...nuxt]
    },
    // The production server sets the HTTP edge's timeouts and connection caps in its own entry
    // (server/entry.ts says why). Only for the node-server build: `nuxt dev` and a prerender
    // run their own presets' entries.
    'nitro:init'(nitro) {
      if (nitro.options.preset !== 'node-server') return
      // NOTE: the project's crossws (0.4, from Nuxt) is not the one Nitro and h3 speak (0.3): the
      // entry takes the WebSocket adapter from where Nitro's own entry would.
      nitro.options.alias['crossws/adapters/node'] = createRequire(nitro.options.entry).resolve('crossws/adapters/node')
      nitro.options.entry = `${nitro.options.rootDir}/server/entry.ts`
    }
  },
  eslint: {
    config: { stylistic: { quotes: 'single', semi: false, commaDangle: 'never' } }
  },
  vuetify: {
    moduleOptions: {
      // NOTE: Vuetify's useLayout collides with Nuxt 4.5's own: prefixed composables avoid it.
      prefixComposables: true,
      styles: true
    },
    vuetifyOptions: {
      icons: { defaultSet: 'mdi-svg' },
      theme: {
        // Vuetify 4's 'system' theme is not SSR-safe: pick one explicitly, switchable on the client.
        defaultTheme: 'light',
        themes: {
          light: { dark: false, colors: { primary: '#3b5bdb', secondary: '#495057', background: '#f8f9fb', surface: '#ffffff', error: '#c92a2a', success: '#2b8a3e' } },
          dark: { dark: true, colors: { primary: '#748ffc', secondary: '#adb5bd', background: '#15171c', surface: '#1f2229', error: '#ff6b6b', success: '#51cf66' } }
        }
      }
    }
  }
})
