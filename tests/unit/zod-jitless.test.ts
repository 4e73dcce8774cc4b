import { expect, it } from 'vitest'

// Issue 21: zod's `Function('')` probe and compiled parsers tripped the Content-Security-Policy on
// every page. Every schema takes `z` from shared/types/zod.ts, which makes zod jitless first.
it('builds and runs every schema without evaluating code', async () => {
  const original = globalThis.Function
  const evaluated: unknown[][] = []
  globalThis.Function = new Proxy(original, {
    construct(target, args) {
      evaluated.push(args)
      return Reflect.construct(target, args)
    },
    apply(target, self, args) {
      evaluated.push(args)
      return Reflect.apply(target, self, args)
    }
  })
  try {
    const frames = await import('#shared/types/frames')
    const auth = await import('#shared/types/auth')
    for (let i = 0; i < 3; i++) {
      expect(frames.ClientFrameSchema.safeParse({ type: 'ping' }).success).toBe(true)
      expect(auth.VerifyOtpBody.safeParse({ email: 'a@example.org', otp: 'x' }).success).toBe(false)
    }
  }
  finally {
    globalThis.Function = original
  }
  expect(evaluated).toEqual([])
})
