// tests/browser/live.test.mjs - the live page in headless Chromium against
// the real daemon fed by feedsim: scores on the page change as the feed
// says, and end equal to feedsim's expected final state. Screenshots go to
// out/browser/.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { exited, fail, launch, outDir, startSystem, watchProblems, within } from './lib.mjs';

async function cards(page) {
  return page.$$eval('[data-match-id]', (els) => els.map((el) => ({
    id: el.dataset.matchId,
    home: el.querySelector('[data-score-home]').textContent,
    away: el.querySelector('[data-score-away]').textContent,
    version: Number(el.dataset.version),
    incidents: el.querySelectorAll('.incident').length,
  })));
}

// Every team name shows whole: two teams that start alike ("Manchester
// City", "Manchester United") must not read the same.
async function checkNamesWhole(page, where) {
  const cut = await page.$$eval('.team-name', (els) => els
    .filter((el) => el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1)
    .map((el) => el.textContent));
  if (cut.length) {
    fail(`team names cut ${where}: ${cut.join(', ')}`);
  }
}

async function main() {
  const { info, stop } = await startSystem();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scorewire-browser-'));
  const expectPath = path.join(tmp, 'expect.json');
  let browser;
  let feed;
  try {
    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = watchProblems(page);
    await page.goto(`http://127.0.0.1:${info.http_port}/`);
    await page.waitForFunction(() => document.documentElement.dataset.connection === 'live',
      null, { timeout: 20000 });

    feed = spawn(info.feedsim, ['--host', '127.0.0.1', '--port', String(info.feed_port),
      '--sent', 'wall', '--quiet', '--matches', '6', '--seed', '9', '--rate', '30',
      '--events', '450', '--expect', expectPath], { stdio: ['ignore', 'ignore', 'inherit'] });
    // 450 events at 30 a second: about 15 s.
    const feedDone = within(60000, 'feedsim to end', exited(feed));

    await page.waitForSelector('[data-match-id]', { timeout: 20000 });
    // Watch the scores while the feed plays.
    const seen = new Map(); // id -> set of "h-a"
    let done = false;
    const finished = () => { done = true; };
    feedDone.then(finished, finished);
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
    await checkNamesWhole(page, 'at 1280 px');
    await page.setViewportSize({ width: 390, height: 844 });
    await checkNamesWhole(page, 'at 390 px');
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
    await stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
