/**
 * Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core (no browser
 * download), a fresh profile under os.tmpdir() per launch, and every console error and uncaught page error
 * collected so a test can assert there were none. A missing browser fails with a clear message (CI installs it
 * with scripts/install-browser.sh) unless TLAB_SKIP_BROWSER_TESTS=1 says to skip.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const SKIP_ENV = 'TLAB_SKIP_BROWSER_TESTS';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-quic',
  '--no-first-run',
  '--disable-sync',
];

export interface BrowserSession {
  context: BrowserContext;
  /** Console messages of type error and uncaught exceptions, from every page of the session. */
  consoleErrors: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export interface LaunchOptions {
  executablePath?: string;
  /** More Chromium flags after the standard ones. */
  args?: readonly string[];
}

/**
 * Why browser tests cannot run here, or null when they can. With the browser missing and no skip requested it
 * throws, so a test run never passes silently without its browser tests.
 */
export function browserSkipReason(executablePath = CHROMIUM_PATH): string | null {
  if (existsSync(executablePath)) return null;
  if (process.env[SKIP_ENV] === '1') return `${executablePath} is missing and ${SKIP_ENV}=1`;
  throw new Error(
    `browser tests need Chromium at ${executablePath}: run scripts/install-browser.sh (apt-get install chromium), or set ${SKIP_ENV}=1 to skip them`,
  );
}

export async function launchBrowser(options: LaunchOptions = {}): Promise<BrowserSession> {
  const executablePath = options.executablePath ?? CHROMIUM_PATH;
  browserSkipReason(executablePath);
  const profile = mkdtempSync(join(tmpdir(), 'tlab-chromium-'));
  const consoleErrors: string[] = [];
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_FLAGS, ...(options.args ?? [])],
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const watch = (page: Page) => {
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));
  };
  for (const p of context.pages()) watch(p);
  context.on('page', watch);
  return {
    context,
    consoleErrors,
    newPage: () => context.newPage(),
    close: async () => {
      try {
        await context.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
