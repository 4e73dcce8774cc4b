import withNuxt from './.nuxt/eslint.config.mjs'

export default withNuxt(
  { ignores: ['bench/results/**', '.cache/**', '.tools/**'] },
  {
    // Schemas take `z` from shared/types/zod.ts, which sets zod jitless first (the CSP forbids eval).
    ignores: ['shared/types/zod.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [{ name: 'zod', message: 'Import z from #shared/types/zod: it is configured jitless there.', allowTypeImports: true }]
      }]
    }
  },
  {
    // Tests read JSON answers whose shape the assertions themselves check.
    files: ['tests/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' }
  }
)
