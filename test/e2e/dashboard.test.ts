/**
 * The dashboard at / in a real browser: the system Chromium, driven by playwright-core, against
 * the real service on the embedded backend. Events are published over HTTP and the page must show
 * the exact counters, the topics, the live tail (only the filtered topics while a filter is set),
 * the health, and deduplication: conflicting duplicates listed with what differs, a topic's
 * figures per source once it is selected, and the counters verified (or the checks that failed),
 * with no console error and no Content-Security-Policy violation. With API_KEYS the page asks for
 * a key and then reads everything with it, the live tail through fetch.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`); without it the suite is skipped loudly,
 * or fails when REQUIRE_SERVICES is set.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REQUIRE_SERVICES } from '../helpers/environment.js';
import { event, request, stats } from '../helpers/http.js';
import { ROOT } from '../helpers/process-service.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const CHROMIUM = '/usr/bin/chromium';
const missing = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} not found (apt-get install -y chromium)`;
const skip = missing !== undefined && !REQUIRE_SERVICES;
if (skip) {
  process.stderr.write(
    `!! SKIPPING the dashboard browser tests: ${missing} (REQUIRE_SERVICES=1 fails instead)\n`,
  );
}

const SCREENSHOT = join(ROOT, 'test-results', 'dashboard.png');
// Generous: CI runs this beside other test files on two cores.
const WAIT = { timeout: 30_000, interval: 100 };
/**
 * The stream sends its first bytes before the server registered the subscription; an event
 * stored in between is not delivered. Publishing this long after the page shows "live" is safe.
 */
const SUBSCRIBE_SETTLE_MS = 500;
/** The read routes, which answer 401/403 until the page has a good key. */
const READ_PATHS = ['/stats', '/queue/stats', '/topics', '/events/stream'];

const PUBLISH = 'p-0123456789abcdef';
const READ = 'r-0123456789abcdef';
const API_KEYS = `ingest:publish:${PUBLISH},viewer:read:${READ}`;

interface Browser {
  readonly page: Page;
  /** Console errors, page errors, CSP violations and failed answers, as they happened. */
  readonly problems: string[];
  /** The live tail's requests: how each was made and with which Authorization. */
  readonly streams: { type: string; authorization: string | undefined; url: string }[];
  close(): Promise<void>;
}

/**
 * A fresh Chromium profile and page. `expectedRefusal` names the 401/403 answers a test provokes
 * on purpose; every other answer of 400 or more, and every console error, is a problem.
 */
async function openBrowser(expectedRefusal: (path: string) => boolean = () => false) {
  const profile = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
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
      viewport: { width: 1280, height: 900 },
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  const streams: Browser['streams'] = [];
  const refused = (url: string, status: number) =>
    (status === 401 || status === 403) && expectedRefusal(new URL(url).pathname);

  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const url = message.location().url;
    const status = /status of (\d{3})/.exec(message.text())?.[1];
    if (status !== undefined && url !== '' && refused(url, Number(status))) return;
    problems.push(`console error: ${message.text()} (${url})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('response', (response) => {
    const status = response.status();
    if (status >= 400 && !refused(response.url(), status)) {
      problems.push(`answer ${status}: ${response.request().method()} ${response.url()}`);
    }
  });
  page.on('request', (req) => {
    if (new URL(req.url()).pathname !== '/events/stream') return;
    streams.push({
      type: req.resourceType(),
      authorization: req.headers().authorization,
      url: req.url(),
    });
  });
  // Violations are reported to the page as events (and to the console); both are watched.
  await page.exposeFunction('reportCspViolation', (text: string) => {
    problems.push(`CSP violation: ${text}`);
  });
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) =>
      window.reportCspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')));`,
  });

  return {
    page,
    problems,
    streams,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  } satisfies Browser;
}

const text = async (page: Page, selector: string) =>
  ((await page.textContent(selector)) ?? '').trim();

async function counters(page: Page) {
  return {
    received: await text(page, '#received'),
    unique: await text(page, '#unique'),
    duplicates: await text(page, '#duplicates'),
    dedupRate: await text(page, '#dedup-rate'),
    conflicting: await text(page, '#conflicting'),
    rejected: await text(page, '#rejected'),
    expired: await text(page, '#expired'),
    queued: await text(page, '#queue-size'),
  };
}

/**
 * What the callbacks below use of a DOM element: this project compiles without the DOM library,
 * so Playwright's Element type does not resolve here.
 */
interface PageElement {
  readonly textContent: string | null;
  readonly children: ArrayLike<PageElement>;
  getAttribute(name: string): string | null;
}

/** The topics table, one row per topic: [stored, received, unique, duplicates, expired]. */
async function topicRows(page: Page): Promise<Record<string, string[]>> {
  const rows = await page.$$eval('#topics-body tr[data-topic]', (trs: PageElement[]) =>
    trs.map((tr) => Array.from(tr.children, (td) => td.textContent ?? '')),
  );
  return Object.fromEntries(rows.map(([topic = '', ...cells]) => [topic, cells.slice(0, 5)]));
}

/**
 * The selected topic's table, one row per source:
 * [events, unique, duplicates, duplicate ratio, conflicts, median delay, max delay].
 */
async function sourceRows(page: Page): Promise<Record<string, string[]>> {
  const rows = await page.$$eval('#dedup-body tr[data-source]', (trs: PageElement[]) =>
    trs.map((tr) => Array.from(tr.children, (td) => td.textContent ?? '')),
  );
  return Object.fromEntries(rows.map(([source = '', ...cells]) => [source, cells]));
}

/**
 * The recent conflicts, newest first, without the detection time:
 * [topic, event id, what differs, stored payload, duplicate payload, rejected or dropped].
 */
async function conflictRows(page: Page): Promise<string[][]> {
  return page.$$eval('#conflicts-body tr[data-topic]', (trs: PageElement[]) =>
    trs.map((tr) => Array.from(tr.children, (td) => td.textContent ?? '').slice(1)),
  );
}

/** The consistency badge, and the failing checks it lists. */
async function verification(page: Page) {
  return {
    state: await page.getAttribute('#verify-state', 'data-state'),
    text: await text(page, '#verify-state'),
    failures: await page.$$eval('#verify-failures li', (lis: PageElement[]) =>
      lis.map((li) => li.textContent ?? ''),
    ),
    failuresShown: await page.isVisible('#verify-failures'),
  };
}

/** The dashboard's duplicate rate: a percentage with at most two decimals. */
const rate = (duplicates: number, received: number) =>
  `${Math.round((duplicates / received) * 10_000) / 100} %`;

/** A delay as the per-source table writes it. */
const DELAY = /^\d+ ms$|^[\d.]+ s$/;

/** The live tail's rows as `topic/event_id`, newest first. */
async function tailRows(page: Page): Promise<string[]> {
  return page.$$eval('#tail-list li', (lis: PageElement[]) =>
    lis.map((li) => `${li.getAttribute('data-topic')}/${li.getAttribute('data-event-id')}`),
  );
}

async function setTailFilter(page: Page, filter: string) {
  await page.fill('#tail-topics', filter);
  await page.click('#tail-form button');
  await expect.poll(() => text(page, '#tail-state'), WAIT).toBe('live');
  await sleep(SUBSCRIBE_SETTLE_MS);
}

async function publishWith(base: string, events: unknown[], key?: string) {
  const reply = await request(`${base}/publish`, {
    method: 'POST',
    body: { events },
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
}

async function expectHealthy(page: Page, base: string) {
  const health = (await request<{ queue_durability: string }>(`${base}/health`)).body;
  await expect.poll(() => text(page, '#health-status'), WAIT).toBe('healthy');
  expect(await text(page, '#health-database')).toBe('database up');
  expect(await text(page, '#health-queue')).toBe('queue up');
  expect(await text(page, '#health-detail')).toContain(`durability ${health.queue_durability}`);
}

describe.skipIf(skip)(
  skip ? `dashboard in Chromium (SKIPPED: ${missing})` : 'dashboard in Chromium',
  () => {
    let svc: TestService | undefined;
    let browser: Browser | undefined;

    beforeAll(() => {
      if (missing !== undefined) throw new Error(`REQUIRE_SERVICES is set but ${missing}`);
    });

    afterEach(async () => {
      // The browser first: its open streams would otherwise log the server going away.
      await browser?.close();
      browser = undefined;
      await svc?.close();
      svc = undefined;
    });

    it('shows exact counters, topics, a filtered live tail and health, within the CSP', async () => {
      svc = await startTestService('pglite-inbox');
      const base = svc.url;
      browser = await openBrowser();
      const { page, problems } = browser;
      const id = randomUUID().slice(0, 8);
      const auth = `auth-${id}`;
      const billing = `billing-${id}`;

      // No request can make the real counters disagree, so the first verifications are answered
      // as a store whose counters drifted would answer: the badge must turn red and name the
      // failing checks, then turn green once the real answer comes through.
      let drifted = true;
      await page.route('**/stats/verify', async (route) => {
        if (!drifted) return route.continue();
        await route.fulfill({
          json: {
            consistent: false,
            in_flight: 0,
            dead_lettered_events: 0,
            checks: [
              {
                name: 'received = unique_processed + duplicate_dropped + rejected',
                expected: 9,
                actual: 9,
                difference: 0,
              },
              {
                name: 'conflicting_duplicates = rows in conflicts',
                expected: 3,
                actual: 2,
                difference: -1,
              },
              {
                name: 'per topic and source: events = received',
                expected: 9,
                actual: 11,
                difference: 2,
              },
            ],
          },
        });
      });

      const answer = await page.goto(`${base}/`);
      expect(answer?.status()).toBe(200);
      expect(answer?.headers()['content-security-policy']).toContain("default-src 'self'");
      await expectHealthy(page, base);
      await expect.poll(() => text(page, '#received'), WAIT).toBe('0');
      expect(await page.isHidden('#key-form')).toBe(true);
      expect(await page.locator('#rate-chart canvas').count()).toBeGreaterThan(0);
      expect(await page.locator('#queue-chart canvas').count()).toBeGreaterThan(0);
      await expect
        .poll(() => verification(page), WAIT)
        .toEqual({
          state: 'bad',
          text: 'counters inconsistent',
          failures: [
            'conflicting_duplicates = rows in conflicts: expected 3, found 2 (-1)',
            'per topic and source: events = received: expected 9, found 11 (+2)',
          ],
          failuresShown: true,
        });
      drifted = false;
      expect(await conflictRows(page)).toEqual([]);
      expect(await text(page, '#conflicts-body')).toBe('No conflicting duplicate.');
      expect(await text(page, '#dedup-body')).toBe('No topic selected.');

      // Only `auth` in the tail: billing's events are stored and counted, never shown.
      await setTailFilter(page, auth);
      await publishWith(base, [
        ...[1, 2, 3, 4].map((n) => event(auth, `a-${n}`, { source: 'login-svc' })),
        event(billing, 'b-1', { source: 'invoices' }),
      ]);
      await publishWith(base, [
        event(auth, 'a-1', { source: 'login-svc' }),
        event(auth, 'a-2', { source: 'login-svc' }),
        event(billing, 'b-2', { source: 'invoices' }),
        event(billing, 'b-3', { source: 'invoices' }),
      ]);
      await expect
        .poll(() => counters(page), WAIT)
        .toEqual({
          received: '9',
          unique: '7',
          duplicates: '2',
          dedupRate: '22.22 %',
          conflicting: '0',
          rejected: '0',
          expired: '0',
          queued: '0',
        });
      expect(await stats(base)).toMatchObject({
        received: 9,
        unique_processed: 7,
        duplicate_dropped: 2,
        dedup_rate_percent: 22.22,
      });
      await expect
        .poll(() => topicRows(page), WAIT)
        .toEqual({
          [auth]: ['4', '6', '4', '2', '0'],
          [billing]: ['3', '3', '3', '0', '0'],
        });
      await expect
        .poll(async () => (await tailRows(page)).sort(), WAIT)
        .toEqual([`${auth}/a-1`, `${auth}/a-2`, `${auth}/a-3`, `${auth}/a-4`]);
      expect(await text(page, '#rate-summary')).toMatch(/peak (?!0\/s)[\d.,]+\/s/);

      // No filter: every topic, from now on (the list starts empty).
      await setTailFilter(page, '');
      expect(await tailRows(page)).toEqual([]);
      await publishWith(base, [
        event(billing, 'b-4', { source: 'invoices' }),
        event(auth, 'a-5', { source: 'login-svc' }),
        event(auth, 'a-5', { source: 'login-svc' }),
      ]);
      await expect
        .poll(async () => (await tailRows(page)).sort(), WAIT)
        .toEqual([`${auth}/a-5`, `${billing}/b-4`]);
      await expect
        .poll(() => counters(page), WAIT)
        .toEqual({
          received: '12',
          unique: '9',
          duplicates: '3',
          dedupRate: '25 %',
          conflicting: '0',
          rejected: '0',
          expired: '0',
          queued: '0',
        });
      await expect
        .poll(() => topicRows(page), WAIT)
        .toEqual({
          [auth]: ['5', '8', '5', '3', '0'],
          [billing]: ['4', '4', '4', '0', '0'],
        });
      await expectHealthy(page, base);
      // Without a key the tail is an EventSource: all topics at first, then the filter, then none.
      expect(browser.streams.map((s) => `${s.type} ${new URL(s.url).search}`)).toEqual([
        'eventsource ',
        `eventsource ?topic=${auth}`,
        'eventsource ',
      ]);

      // A few seconds of traffic on three topics: the counters follow exactly, the charts get a
      // shape, and the tail keeps only its newest rows in the page.
      const gateway = `gateway-${id}`;
      const topics = [auth, billing, gateway];
      let unique = 9;
      let duplicates = 3;
      for (let wave = 1; wave <= 5; wave++) {
        const fresh = Array.from({ length: 14 * wave }, (_, i) =>
          event(topics[i % 3] ?? auth, `w${wave}-${i}`, { source: `svc-${i % 4}` }),
        );
        await publishWith(base, [...fresh, ...fresh.slice(0, wave)]);
        unique += fresh.length;
        duplicates += wave;
        await sleep(800);
      }
      const received = unique + duplicates;
      await expect
        .poll(() => counters(page), WAIT)
        .toEqual({
          received: String(received),
          unique: String(unique),
          duplicates: String(duplicates),
          dedupRate: `${Math.round((duplicates / received) * 10_000) / 100} %`,
          conflicting: '0',
          rejected: '0',
          expired: '0',
          queued: '0',
        });
      await expect.poll(async () => (await tailRows(page)).length, WAIT).toBe(100);
      await expect
        .poll(() => text(page, '#tail-count'), WAIT)
        .toBe(`${unique - 7} events since subscribing`);
      await expect
        .poll(async () => Object.keys(await topicRows(page)).sort(), WAIT)
        .toEqual([...topics].sort());

      // Copies of stored orders that differ from them: each is a conflicting duplicate, listed
      // with what differs; one equal copy is a plain duplicate. Two sources, so the per-source
      // figures of the topic are told apart.
      const orders = `orders-${id}`;
      const order = (n: number, extra: Parameters<typeof event>[2] = {}) =>
        event(orders, `o-${n}`, { source: 'shop', ...extra });
      await publishWith(base, [order(1), order(2), order(3), order(4)]);
      await expect.poll(() => text(page, '#received'), WAIT).toBe(String(received + 4));
      await publishWith(base, [
        order(1),
        order(2, { payload: { n: 'o-2', total: 12.5 } }),
        order(3, { source: 'mobile' }),
        order(4, {
          source: 'mobile',
          timestamp: '2024-05-01T12:00:05Z',
          payload: { n: 'o-4', void: true },
        }),
        order(5, { source: 'mobile' }),
      ]);
      await expect
        .poll(() => counters(page), WAIT)
        .toEqual({
          received: String(received + 9),
          unique: String(unique + 5),
          duplicates: String(duplicates + 4),
          dedupRate: rate(duplicates + 4, received + 9),
          conflicting: '3',
          rejected: '0',
          expired: '0',
          queued: '0',
        });
      await expect
        .poll(() => conflictRows(page), WAIT)
        .toEqual([
          [
            orders,
            'o-4',
            'timestamp, source, payload',
            '{"n": "o-4"}',
            '{"n": "o-4", "void": true}',
            'dropped',
          ],
          [orders, 'o-3', 'source', '{"n": "o-3"}', '{"n": "o-3"}', 'dropped'],
          [orders, 'o-2', 'payload', '{"n": "o-2"}', '{"n": "o-2", "total": 12.5}', 'dropped'],
        ]);
      expect(
        await page.getAttribute(`#conflicts-body tr[data-event-id="o-4"] .fields`, 'title'),
      ).toBe(
        'timestamp: 2024-05-01T12:00:00.000000Z → 2024-05-01T12:00:05.000000Z\nsource: shop → mobile',
      );
      await expect
        .poll(async () => (await topicRows(page))[orders], WAIT)
        .toEqual(['5', '9', '5', '4', '0']);

      await page.click(`#topics-body tr[data-topic="${orders}"] button`);
      expect(await text(page, '#dedup-topic')).toBe(`· ${orders}`);
      expect(
        await page.getAttribute(`#topics-body tr[data-topic="${orders}"] button`, 'aria-pressed'),
      ).toBe('true');
      await expect
        .poll(async () => {
          const rows = await sourceRows(page);
          return Object.fromEntries(
            Object.entries(rows).map(([s, cells]) => [s, cells.slice(0, 5)]),
          );
        }, WAIT)
        .toEqual({
          mobile: ['3', '1', '2', '66.67 %', '2'],
          shop: ['6', '4', '2', '33.33 %', '1'],
        });
      // Every source has copies, so a delay: the median is approximate, the maximum exact.
      for (const [median = '', max = ''] of Object.values(await sourceRows(page)).map((cells) =>
        cells.slice(5),
      )) {
        expect(median).toMatch(/^≈ /);
        expect(median.slice(2)).toMatch(DELAY);
        expect(max).toMatch(DELAY);
      }
      await expect
        .poll(() => verification(page), WAIT)
        .toEqual({ state: 'ok', text: 'counters verified', failures: [], failuresShown: false });
      expect(await text(page, '#verify-detail')).toMatch(
        /^\d+ checks · 0 events in flight · 0 dead-lettered · checked /,
      );

      mkdirSync(join(ROOT, 'test-results'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(problems).toEqual([]);
    });

    it('shows a payload in the live tail with every digit it was stored with', async () => {
      svc = await startTestService('pglite-inbox');
      const base = svc.url;
      browser = await openBrowser();
      const { page, problems } = browser;
      const topic = `exact-${randomUUID().slice(0, 8)}`;
      expect((await page.goto(`${base}/`))?.status()).toBe(200);
      await expectHealthy(page, base);
      await setTailFilter(page, topic);
      // Sent as text: JSON.stringify here would already round the numbers.
      const reply = await request(`${base}/publish`, {
        method: 'POST',
        rawBody: `{"events": [{"topic": "${topic}", "event_id": "x1", "timestamp": "2024-05-01T12:00:00Z", "source": "s", "payload": {"trace_id": 2868860079149422351, "list": [18446744073709551617, 0.1000000000000000055511151231257827]}}]}`,
        headers: { 'content-type': 'application/json' },
      });
      expect(reply.status).toBe(200);
      await expect.poll(() => tailRows(page), WAIT).toEqual([`${topic}/x1`]);
      // Written compactly by the page, with the digits as stored.
      expect(await text(page, '#tail-list li .payload')).toBe(
        '{"list":[18446744073709551617,0.1000000000000000055511151231257827],"trace_id":2868860079149422351}',
      );
      expect(problems).toEqual([]);
    });

    it('with API_KEYS asks for a read key, keeps it for the tab, reads tail and conflicts with it', async () => {
      svc = await startTestService('pglite-inbox', {
        API_KEYS,
        DUPLICATE_POLICY: 'reject-conflicts',
      });
      const base = svc.url;
      browser = await openBrowser((path) => READ_PATHS.includes(path));
      const { page, problems } = browser;
      const topic = `audit-${randomUUID().slice(0, 8)}`;
      const other = `other-${randomUUID().slice(0, 8)}`;

      await page.goto(`${base}/`);
      await expect.poll(() => page.isVisible('#key-form'), WAIT).toBe(true);
      // Health needs no key; the counters wait for one.
      await expectHealthy(page, base);
      expect(await text(page, '#received')).toBe('–');
      expect(await text(page, '#tail-state')).toBe('needs key');

      const useKey = async (key: string) => {
        await page.fill('#key-input', key);
        await page.click('#key-form button');
      };
      await useKey('x'.repeat(18));
      await expect.poll(() => text(page, '#key-message'), WAIT).toBe('The API key is not valid');
      await useKey(PUBLISH);
      await expect
        .poll(() => text(page, '#key-message'), WAIT)
        .toContain('"ingest" lacks the read scope');
      expect(await page.isVisible('#key-form')).toBe(true);

      await useKey(READ);
      await expect.poll(() => text(page, '#received'), WAIT).toBe('0');
      expect(await page.isHidden('#key-form')).toBe(true);
      expect(await page.evaluate('sessionStorage.getItem("log-aggregator.api-key")')).toBe(READ);

      await setTailFilter(page, topic);
      await publishWith(
        base,
        [event(topic, 1), event(topic, 2), event(other, 1), event(topic, 1)],
        PUBLISH,
      );
      await expect
        .poll(async () => (await tailRows(page)).sort(), WAIT)
        .toEqual([`${topic}/1`, `${topic}/2`]);
      await expect
        .poll(() => counters(page), WAIT)
        .toEqual({
          received: '4',
          unique: '3',
          duplicates: '1',
          dedupRate: '25 %',
          conflicting: '0',
          rejected: '0',
          expired: '0',
          queued: '0',
        });
      await expect
        .poll(async () => Object.keys(await topicRows(page)).sort(), WAIT)
        .toEqual([topic, other].sort());
      // The tail read the stream with fetch and the key, as EventSource cannot send one.
      const keyed = browser.streams.filter((s) => s.authorization === `Bearer ${READ}`);
      expect(keyed.length).toBeGreaterThan(0);
      expect(keyed.every((s) => s.type === 'fetch')).toBe(true);

      // A reload keeps the key for this tab: no question asked again.
      await page.reload();
      await expect.poll(() => text(page, '#received'), WAIT).toBe('4');
      await expect.poll(() => text(page, '#tail-state'), WAIT).toBe('live');
      expect(await page.isHidden('#key-form')).toBe(true);

      // Under DUPLICATE_POLICY=reject-conflicts a copy that differs is refused; the counters, the
      // conflict and the verification are read with the key like everything else.
      await publishWith(base, [event(topic, 2, { source: 'changed' })], PUBLISH);
      await expect
        .poll(() => counters(page), WAIT)
        .toEqual({
          received: '5',
          unique: '3',
          duplicates: '1',
          dedupRate: '20 %',
          conflicting: '1',
          rejected: '1',
          expired: '0',
          queued: '0',
        });
      await expect
        .poll(() => conflictRows(page), WAIT)
        .toEqual([[topic, '2', 'source', '{"n": 2}', '{"n": 2}', 'rejected']]);
      await expect.poll(() => text(page, '#verify-state'), WAIT).toBe('counters verified');
      expect(problems).toEqual([]);
    });

    it('before any data the charts say they wait for it, with no invented time axis', async () => {
      svc = await startTestService('pglite-inbox');
      browser = await openBrowser();
      const { page } = browser;
      // /stats never answers: the charts get no point, as on a first paint.
      await page.route('**/stats', () => undefined);
      await page.goto(svc.url);
      for (const chart of ['#rate-chart', '#queue-chart']) {
        await expect
          .poll(() => text(page, `${chart} .chart-empty`), WAIT)
          .toBe('Waiting for data…');
        expect(await page.isVisible(`${chart} .chart-empty`)).toBe(true);
        // The axes (uPlot's default empty range reads as 2027-2029) are not shown.
        expect(await page.isVisible(`${chart} .uplot`)).toBe(false);
      }
    });
  },
);
