import { defineConfig } from "@playwright/test";

// The portal in Debian's Chromium (no browser download) against a running gateway that serves the
// build: tests/e2e/test_web.py starts the real stack on a throwaway PostgreSQL and passes its URL;
// by hand: `make run`, then `npx playwright test` in web/ (ETP_WEB_URL for another gateway).
export default defineConfig({
  testDir: "e2e",
  outputDir: "../build/web/test-results",
  // One stack for the whole run; each spec makes its own users and data.
  workers: 1,
  fullyParallel: false,
  forbidOnly: Boolean(process.env["CI"]),
  timeout: 45_000,
  expect: { timeout: 7_000 },
  reporter: [["list"]],
  use: {
    baseURL: process.env["ETP_WEB_URL"] ?? "http://127.0.0.1:8000",
    viewport: { width: 1360, height: 860 },
    launchOptions: {
      executablePath: process.env["ETP_CHROMIUM"] ?? "/usr/bin/chromium",
      // As root Chromium's sandbox cannot start.
      args: ["--no-sandbox"],
    },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
});
