import { z } from 'zod'

// Zod 4 compiles each object schema's parser with `new Function` the first time it is built, after
// probing with `Function('')`. The Content-Security-Policy forbids evaluating code, so in the
// browser every page reported a violation (and the probe ran on the server too, for nothing).
// Jitless, zod interprets the schema instead; it reads the setting when a schema is built, so it
// is set here, in the one module every schema imports `z` from (ESLint forbids importing 'zod'
// elsewhere): an import is evaluated before the module that imports it.
z.config({ jitless: true })

export { z }
