import { defineConfig } from '@playwright/test'
import { APP_PORT, MAILBOX_PORT, SMTP_PORT } from './tests/e2e/support/ports'

// Browser specs against the production build: `npm run test:e2e` builds, then runs them.
// The app's sign-in throttle allows 20 code requests per IP and hour: the suite stays well below
// (see docs/ui.md), and every run starts the app on a fresh data folder, so runs don't add up.
const origin = `http://127.0.0.1:${APP_PORT}`

export default defineConfig({
  testDir: 'tests/e2e',
  outputDir: 'test-results/e2e',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 2,
  reporter: process.env.CI ? [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]] : 'list',
  use: {
    baseURL: origin,
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync']
    },
    trace: 'retain-on-failure'
  },
  webServer: [
    {
      command: 'node tests/e2e/support/mail-catcher.mjs',
      url: `http://127.0.0.1:${MAILBOX_PORT}/health`,
      reuseExistingServer: false,
      timeout: 15_000,
      gracefulShutdown: { signal: 'SIGTERM', timeout: 5_000 },
      env: { MAIL_CATCHER_SMTP_PORT: String(SMTP_PORT), MAIL_CATCHER_HTTP_PORT: String(MAILBOX_PORT) }
    },
    {
      // `node .output/server/index.mjs` on a fresh NATTER_DATA_DIR, removed again after the run.
      command: 'node tests/e2e/support/app-server.mjs',
      url: `${origin}/api/ready`,
      reuseExistingServer: false,
      timeout: 120_000,
      stdout: process.env.E2E_SERVER_LOG ? 'pipe' : 'ignore',
      stderr: 'pipe',
      gracefulShutdown: { signal: 'SIGTERM', timeout: 20_000 },
      env: {
        PORT: String(APP_PORT),
        HOST: '127.0.0.1',
        NODE_ENV: 'production',
        NATTER_PUBLIC_URL: origin,
        NATTER_SESSION_SECRET: 'e2e-only-session-secret-not-for-production-0123456789abcdef',
        SMTP_URL: `smtp://127.0.0.1:${SMTP_PORT}`,
        // Always the embedded backends, whatever the shell exports: throttle counters must start at zero.
        DATABASE_URL: '',
        REDIS_URL: '',
        KAFKA_BROKERS: '',
        NITRO_SHUTDOWN_TIMEOUT: '5000'
      }
    }
  ]
})
