// tests/browser/live.test.mjs - the live page in headless Chromium against
// the real daemon fed by feedsim: scores on the page change as the feed
// says, and end equal to feedsim's expected final state. Screenshots go to
// out/browser/.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const outDir = path.join(root, 'out', 'browser');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

function fail(msg) {
  throw new Error(msg);
}

// PostgreSQL and the daemon, through the integration tests' harness; it
// keeps them until its stdin closes.
async function startSystem() {
  const sys = spawn('python3', [path.join(root, 'tests', 'integration', 'notify_system.py')],
    { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
  const lines = readline.createInterface({ input: sys.stdout });
  const [first] = await Promise.race([
    once(lines, 'line'),
    once(sys, 'exit').then(([code]) => fail(`notify_system.py exited ${code}`)),
  ]);
  return { sys, info: JSON.parse(first) };
}

async function cards(page) {
  return page.$$eval('[data-match-id]', (els) => els.map((el) => ({
    id: el.dataset.matchId,
    home: el.querySelector('[data-score-home]').textContent,
    away: el.querySelector('[data-score-away]').textContent,
    version: Number(el.dataset.version),
    incidents: el.querySelectorAll('.incident').length,
  })));
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const { sys, info } = await startSystem();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scorewire-browser-'));
  const expectPath = path.join(tmp, 'expect.json');
  let browser;
  let feed;
  try {
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') {
        problems.push(`console: ${m.text()}`);
      }
    });
    await page.goto(`http://127.0.0.1:${info.http_port}/`);
    await page.waitForFunction(() => document.documentElement.dataset.connection === 'live',
      null, { timeout: 20000 });

    feed = spawn(info.feedsim, ['--host', '127.0.0.1', '--port', String(info.feed_port),
      '--sent', 'wall', '--quiet', '--matches', '6', '--seed', '9', '--rate', '30',
      '--events', '450', '--expect', expectPath], { stdio: ['ignore', 'ignore', 'inherit'] });
    const feedDone = once(feed, 'exit');

    await page.waitForSelector('[data-match-id]', { timeout: 20000 });
    // Watch the scores while the feed plays.
    const seen = new Map(); // id -> set of "h-a"
    let done = false;
    feedDone.then(() => { done = true; });
    while (!done) {
      for (const c of await cards(page)) {
        if (!seen.has(c.id)) {
          seen.set(c.id, new Set());
        }
        seen.get(c.id).add(`${c.home}-${c.away}`);
      }
      await page.waitForTimeout(200);
    }
    const [code] = await feedDone;
    if (code !== 0) {
      fail(`feedsim exited ${code}`);
    }
    const expected = JSON.parse(fs.readFileSync(expectPath, 'utf8')).matches;
    const want = Object.fromEntries(Object.entries(expected).map(([id, m]) => [id, {
      home: m.score ? String(m.score.home) : '–',
      away: m.score ? String(m.score.away) : '–',
      incidents: (m.incidents || []).length,
    }]));
    // The page catches up with the last updates.
    await page.waitForFunction((w) => Object.entries(w).every(([id, m]) => {
      const el = document.querySelector(`[data-match-id="${CSS.escape(id)}"]`);
      return el && el.querySelector('[data-score-home]').textContent === m.home
        && el.querySelector('[data-score-away]').textContent === m.away
        && el.querySelectorAll('.incident').length === m.incidents;
    }), want, { timeout: 20000 }).catch(async () => {
      const got = await cards(page);
      fail(`page differs from feedsim's final state:\n page ${JSON.stringify(got)}\n want ${JSON.stringify(want)}`);
    });
    const changed = [...seen.values()].filter((s) => s.size > 1).length;
    if (changed === 0) {
      fail('no score changed on the page while the feed played');
    }
    const shown = (await cards(page)).length;
    if (shown !== Object.keys(want).length) {
      fail(`${shown} cards for ${Object.keys(want).length} matches`);
    }
    if (problems.length) {
      fail(`the page reported: ${problems.join('; ')}`);
    }
    await page.screenshot({ path: path.join(outDir, 'live.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(outDir, 'live-phone.png') });
    console.log(`ok: ${shown} matches, scores changed on ${changed}, final state matches;`
      + ` screenshots in ${outDir}`);
  } finally {
    if (feed && feed.exitCode === null) {
      feed.kill();
    }
    if (browser) {
      await browser.close();
    }
    sys.stdin.end();
    await once(sys, 'exit');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
