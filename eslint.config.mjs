import withNuxt from './.nuxt/eslint.config.mjs'

export default withNuxt(
  { ignores: ['bench/results/**', '.cache/**', '.tools/**'] },
  {
    // Tests read JSON answers whose shape the assertions themselves check.
    files: ['tests/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' }
  }
)
