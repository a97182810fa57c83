// What every end-to-end test of the web console needs: the console built once, a real `fleetwire
// start` serving it, Debian's Chromium driving it, and a check of each page it shows (a screenshot
// for the docs, and axe-core's accessibility rules: no serious or critical violation).
//
// scripts/test.mjs builds the console once before the suite when a selected file imports this
// helper, and says so with FLEETWIRE_TEST_CONSOLE_BUILT=1: several console files running at once
// must not each rebuild packages/console/dist under the others' feet. A file run on its own
// (`node --import tsx --test test/console.test.ts`) builds it here instead.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { after } from 'node:test';
import { cleanupCli, root, type Server } from './cli.js';
import { programsAvailable } from './services.js';

export const chromiumPath = process.env.FLEETWIRE_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const mosquittoPub = ['/usr/bin/mosquitto_pub', '/usr/local/bin/mosquitto_pub'].find((p) => existsSync(p));
export const repository = join(root, '..', '..');
export const images = join(repository, 'docs', 'images');

/** true, or why the console tests cannot run here (a skip outside CI, a failure in it). */
export const consoleTestsAvailable = programsAvailable({ chromium: existsSync(chromiumPath) ? chromiumPath : undefined, mosquitto_pub: mosquittoPub }, 'chromium mosquitto-clients');

let built = process.env.FLEETWIRE_TEST_CONSOLE_BUILT === '1';

/** Builds the console as `npm start` does (its API types checked against docs/openapi.json first), unless the test runner did. */
export function buildConsole(): void {
  if (!built) {
    const build = spawnSync('npm', ['run', 'build', '-w', '@fleetwire/console'], { cwd: repository, encoding: 'utf8' });
    assert.equal(build.status, 0, `${build.stdout}${build.stderr}`);
    built = true;
  }
  mkdirSync(images, { recursive: true });
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/** A browser page on the platform at `origin`, with what went wrong on it collected for a final check. */
export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Requests to anywhere but the platform (the console loads nothing from elsewhere). */
  elsewhere: string[];
  /** Script errors and console errors (a 401 the session renews is not one). */
  errors: string[];
}

export async function openPage(browser: Browser, origin: string, viewport = { width: 1280, height: 800 }): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  const elsewhere: string[] = [];
  const errors: string[] = [];
  page.on('request', (req) => {
    if (!req.url().startsWith(`${origin}/`)) elsewhere.push(req.url());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(`${m.text()} (${m.location().url})`);
  });
  return { context, page, elsewhere, errors };
}

export async function signIn(page: Page, who: { email: string; password: string }): Promise<void> {
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The serious and critical accessibility violations axe-core finds on the page as it is now, one line each. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/**
 * A page of the console as a user sees it: checked with axe-core (no serious or critical violation)
 * and its screenshot written to docs/images/console-<name>.png for the docs.
 */
export async function checkPage(page: Page, name: string): Promise<void> {
  assert.deepEqual(await accessibilityViolations(page), [], `${name}: accessibility (axe-core)`);
  const file = join(images, `console-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(statSync(file).size > 10_000, `${name}: the screenshot is ${statSync(file).size} bytes, a blank page would be smaller`);
}

/**
 * The end of a console test file: closes the browser and the server its tests started (read when
 * the file is done) and whatever else cleanupCli tracks. Call it once, at the top of the file.
 */
export function closedAfterTests(held: () => { browser: Browser | undefined; server: Server | undefined }): void {
  after(async () => {
    const { browser, server } = held();
    await browser?.close();
    await server?.stop();
    await cleanupCli();
  });
}
