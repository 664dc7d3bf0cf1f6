import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REQUIRE_E2E, runOk } from './e2e.js';
import { apiFor, createRegistry, uniqueName, type Api } from './management.js';
import { startTestBerth, TEST_ADMIN_PASSWORD, type ConfigOverrides, type TestBerth } from './server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Debian's Chromium; playwright-core never downloads a browser of its own. */
export const CHROMIUM = '/usr/bin/chromium';
/** Where each test's screenshots go (gitignored; CI keeps them as artifacts). */
export const RESULTS_DIR = join(ROOT, 'test-results');
export const WIDE = { width: 1280, height: 900 };
export const NARROW = { width: 390, height: 844 };

/**
 * Chromium's path, or undefined after skipping the test (failing it under BERTH_REQUIRE_E2E=1),
 * as `requireTool` does for the other clients.
 */
export function requireChromium(t: TestContext): string | undefined {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  const reason = `${CHROMIUM} is not installed (apt-get install -y chromium)`;
  if (REQUIRE_E2E)
    throw new Error(`${reason}, and BERTH_REQUIRE_E2E=1 requires every end-to-end test to run`);
  process.stderr.write(`skipping ${t.name}: ${reason}\n`);
  t.skip(reason);
  return undefined;
}

let built = false;
/** Builds the portal when dist/portal is missing or older than a source file, so tests see this code. */
async function ensurePortalBuilt(): Promise<void> {
  if (built) return;
  const index = join(ROOT, 'dist', 'portal', 'index.html');
  const builtAt = existsSync(index) ? statSync(index).mtimeMs : 0;
  if (
    newestMtime(join(ROOT, 'src', 'portal')) > builtAt ||
    newestMtime(join(ROOT, 'src', 'network')) > builtAt
  ) {
    await runOk(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'),
        'build',
        '--config',
        'src/portal/vite.config.ts',
        '--logLevel',
        'warn',
      ],
      {
        cwd: ROOT,
        timeoutMs: 180_000,
      },
    );
  }
  built = true;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let shared: Promise<BrowserContext> | undefined;
let closeBrowser: (() => Promise<void>) | undefined;
// Registered when a test file imports this module, so it runs once that file's tests are done.
after(async () => {
  await shared?.catch(() => undefined);
  await closeBrowser?.();
});
/**
 * The test file's one browser (a fresh profile directory, removed afterwards), started on first use
 * and closed when the file's tests end.
 */
export function browserContext(): Promise<BrowserContext> {
  shared ??= (async () => {
    await ensurePortalBuilt();
    const profile = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: WIDE,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      timeout: 60_000,
    });
    closeBrowser = async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    };
    return context;
  })();
  return shared;
}

/**
 * A new page for one test, with its cookies cleared. Any uncaught page error or console error fails the
 * test when it ends — except Chromium's own "Failed to load resource" line for a 4xx API answer, which
 * is the API saying no (the test asserts what the page shows for it), not a JavaScript error.
 */
export async function openPage(t: TestContext): Promise<Page> {
  const context = await browserContext();
  await context.clearCookies();
  const page = await context.newPage();
  await page.setViewportSize(WIDE);
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(message.text())) return;
    errors.push(`console error: ${message.text()}`);
  });
  t.after(async () => {
    await page.close();
    assert.deepEqual(errors, [], 'the page must not log JavaScript errors');
  });
  return page;
}

/** Saves the page at 1280 px and at 390 px wide under test-results/, then returns to 1280 px. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: join(RESULTS_DIR, `${name}-1280.png`), fullPage: true });
  await page.setViewportSize(NARROW);
  await page.screenshot({ path: join(RESULTS_DIR, `${name}-390.png`), fullPage: true });
  await page.setViewportSize(WIDE);
}

/** Opens the portal and signs in as the test owner through the sign-in form. */
export async function signIn(page: Page, berth: Pick<TestBerth, 'managementUrl'>, path = ''): Promise<void> {
  await page.goto(`${berth.managementUrl}/${path}`);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(TEST_ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/**
 * A page and a fresh Berth with one registry (name from `prefix`), stopped when the test ends. The page
 * comes first: it builds the portal if needed, and Berth lists the portal's files when it starts.
 */
export async function portalWithRegistry(
  t: TestContext,
  prefix: string,
  sku: 'Basic' | 'Standard' | 'Premium',
  properties?: Record<string, unknown>,
  overrides: ConfigOverrides = {},
): Promise<{ page: Page; berth: TestBerth; api: Api; name: string }> {
  const page = await openPage(t);
  const berth = await startTestBerth(overrides);
  t.after(() => berth.stop());
  const api = apiFor(berth);
  const name = uniqueName(prefix);
  await createRegistry(api, name, sku, properties);
  return { page, berth, api, name };
}
