/**
 * The explorer at /explore in a real browser (the system Chromium, driven by playwright-core)
 * against the real service on the embedded backend: a search from the URL shows the matching
 * stored events newest first with the terms marked and the payload expandable, the histogram of
 * their counts (a click on a bar narrows the range and the URL), more results through the cursor,
 * and live mode showing newly stored matching events only; a payload's numbers with every digit
 * as stored; no console error, no CSP violation.
 * It saves docs/explorer.png, the screenshot the README shows, of a real search.
 *
 * Needs /usr/bin/chromium; without it the suite is skipped loudly, or fails with REQUIRE_SERVICES.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEvent } from '../../src/log-event.js';
import { REQUIRE_SERVICES } from '../helpers/environment.js';
import { publish, request } from '../helpers/http.js';
import { ROOT } from '../helpers/process-service.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not found`;
const skip = missing !== undefined && !REQUIRE_SERVICES;
if (skip) process.stderr.write(`!! SKIPPING the explorer browser tests: ${missing}\n`);

const SCREENSHOT = join(ROOT, 'docs', 'explorer.png');
const WAIT = { timeout: 30_000, interval: 100 };
const NOW = Date.now();
const SERVICES = ['checkout', 'cart-api', 'payments', 'auth'];

/** A day of plausible log lines; every 9th is a timeout of the cart API. */
function logLines(count: number): LogEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const timeout = i % 9 === 0;
    const service = timeout ? 'cart-api' : (SERVICES[i % SERVICES.length] as string);
    return {
      topic: i % 3 === 0 ? 'web' : 'app',
      event_id: `line-${i}`,
      // Spread over the last 20 hours, denser in the last two.
      timestamp: new Date(
        NOW - ((i * 7919) % count) * (i % 4 === 0 ? 20_000 : 180_000),
      ).toISOString(),
      source: service,
      payload: timeout
        ? {
            level: 'error',
            msg: `upstream request timeout after 5000ms: ERR_TIMEOUT calling db-${i % 3}`,
            http: { method: 'POST', path: '/api/v1/cart', status: 504 },
            req: `req-${(i * 48271).toString(16).slice(0, 6)}`,
            client: { ip: `10.0.${i % 4}.${i % 250}` },
          }
        : {
            level: i % 5 === 0 ? 'warn' : 'info',
            msg: `${['GET', 'POST'][i % 2]} /api/v1/${['cart', 'orders', 'login'][i % 3]} answered in ${(i * 37) % 900}ms`,
            http: { status: i % 5 === 0 ? 404 : 200 },
            req: `req-${(i * 48271).toString(16).slice(0, 6)}`,
          },
    };
  });
}

async function openBrowser(): Promise<{ page: Page; problems: string[]; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'explorer-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 860 },
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`answer ${r.status()}: ${r.url()}`);
  });
  await page.exposeFunction('reportCspViolation', (t: string) => problems.push(`CSP: ${t}`));
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) =>
      window.reportCspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')));`,
  });
  return {
    page,
    problems,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

describe.skipIf(skip)('explorer in Chromium', () => {
  let svc: TestService;
  const lines = logLines(400);
  const timeouts = lines.filter((e) => JSON.stringify(e.payload).includes('ERR_TIMEOUT'));

  beforeAll(async () => {
    svc = await startTestService('pglite-inbox');
    for (let i = 0; i < lines.length; i += 200) {
      expect((await publish(svc.url, lines.slice(i, i + 200), '?atomic=true')).status).toBe(200);
    }
  }, 120_000);
  afterAll(async () => {
    await svc?.close();
  });

  it('searches from the URL, marks terms, zooms, pages, goes live; screenshot', async () => {
    const browser = await openBrowser();
    const { page, problems } = browser;
    try {
      await page.goto(`${svc.url}/explore?q=${encodeURIComponent('ERR_TIMEOUT cart')}`);
      expect(await page.inputValue('#explore-q')).toBe('ERR_TIMEOUT cart');
      expect(await page.locator('input[type="search"]').count()).toBe(1);

      // Every match of the last 24 hours, 50 a page, newest first.
      const rows = page.locator('#explore-results > li');
      await expect.poll(() => rows.count(), WAIT).toBe(Math.min(50, timeouts.length));
      const newest = [...timeouts].sort((a, b) => b.timestamp.localeCompare(a.timestamp));
      expect(await rows.first().getAttribute('data-event-id')).toBe(newest[0]?.event_id);
      const marks = await page.locator('#explore-results > li:first-child mark').allTextContents();
      expect(marks.map((m) => m.toLowerCase())).toEqual(
        expect.arrayContaining(['err_timeout', 'cart']),
      );
      await expect
        .poll(() => page.textContent('#explore-summary'), WAIT)
        .toContain(`${timeouts.length} matching events`);

      // The histogram's bars add up to the matches.
      const counts = await Promise.all(
        (await page.locator('#explore-histogram .bar').all()).map(async (bar) =>
          Number(await bar.getAttribute('data-count')),
        ),
      );
      expect(counts.reduce((a, b) => a + b, 0)).toBe(timeouts.length);

      // Expanding a result shows the whole payload, pretty-printed.
      await rows.first().locator('.result-line').click();
      const full = await rows.first().locator('pre.payload-full').textContent();
      expect(JSON.parse(full ?? '')).toEqual(newest[0]?.payload);

      // Load more through the cursor: the rest, no repeat.
      if (timeouts.length > 50) {
        await page.click('#explore-more');
        await expect.poll(() => rows.count(), WAIT).toBe(timeouts.length);
        const ids = await Promise.all(
          (await rows.all()).map((row) => row.getAttribute('data-event-id')),
        );
        expect(new Set(ids).size).toBe(timeouts.length);
      }
      await page.screenshot({ path: SCREENSHOT, fullPage: false });

      // Clicking the tallest bar narrows the range to its bucket, in the URL too.
      const tallest = counts.indexOf(Math.max(...counts));
      const bar = page.locator('#explore-histogram .bar').nth(tallest);
      const start = await bar.getAttribute('data-start');
      await bar.click();
      await expect.poll(() => new URL(page.url()).searchParams.get('since'), WAIT).toBe(start);
      await expect.poll(() => rows.count(), WAIT).toBe(Math.min(50, counts[tallest] ?? 0));

      // Live: only newly stored matching events appear.
      await page.check('#explore-live');
      await expect.poll(() => page.textContent('#explore-live-state'), WAIT).toBe('live');
      await sleep(500);
      const fresh = (id: string, msg: string): LogEvent => ({
        topic: 'web',
        event_id: id,
        timestamp: new Date().toISOString(),
        source: 'cart-api',
        payload: { level: 'error', msg },
      });
      await publish(
        svc.url,
        [fresh('live-1', 'ERR_TIMEOUT on cart again'), fresh('live-2', 'all fine')],
        '?atomic=true',
      );
      const liveRows = page.locator('#explore-live-list > li');
      await expect.poll(() => liveRows.count(), WAIT).toBe(1);
      expect(await liveRows.first().getAttribute('data-event-id')).toBe('live-1');
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('shows a result with every digit its payload was stored with', async () => {
    const topic = `exact-${randomUUID().slice(0, 8)}`;
    // Sent as text: JSON.stringify here would already round the numbers.
    const reply = await request(`${svc.url}/publish?atomic=true`, {
      method: 'POST',
      rawBody: `{"events": [{"topic": "${topic}", "event_id": "x1", "timestamp": "${new Date(NOW).toISOString()}", "source": "s", "payload": {"trace_id": 2868860079149422351, "list": [18446744073709551617, 0.1000000000000000055511151231257827]}}]}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(reply.status).toBe(200);
    const browser = await openBrowser();
    const { page, problems } = browser;
    try {
      await page.goto(`${svc.url}/explore?topic=${topic}`);
      const row = page.locator('#explore-results > li');
      await expect.poll(() => row.count(), WAIT).toBe(1);
      // The one-line payload, compact, with the digits as stored.
      expect(await row.locator('.payload').textContent()).toBe(
        '{"list":[18446744073709551617,0.1000000000000000055511151231257827],"trace_id":2868860079149422351}',
      );
      // Expanded, pretty-printed, the same digits.
      await row.locator('.result-line').click();
      const full = (await row.locator('pre.payload-full').textContent()) ?? '';
      expect(full.replace(/\s+/g, '')).toBe(
        '{"list":[18446744073709551617,0.1000000000000000055511151231257827],"trace_id":2868860079149422351}',
      );
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
