import { join } from 'node:path'

export const root = join(import.meta.dirname, '../..')
/** Where `nuxt build` put the production bundle (see NATTER_BUILD_DIR in nuxt.config.ts). */
export const outputDir = process.env.NATTER_BUILD_DIR ? join(process.env.NATTER_BUILD_DIR, '.output') : join(root, '.output')
export const serverEntry = join(outputDir, 'server/index.mjs')
