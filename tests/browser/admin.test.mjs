// tests/browser/admin.test.mjs - the operator page (web/admin/, on the
// admin port) in headless Chromium against the real daemon fed by
// feedsim, with the live page open in a second tab as a WebSocket client:
// the charts take a point every poll, events per second in and stored are
// above zero while the feed plays and fall to zero when it stops, latency
// is measured, the mailbox chart follows the busiest actors, a killed
// actor shows as a restart, and the sources table shows feedsim's source
// live, then not. The page is read through what it exposes for this:
// body[data-polls], canvas[data-points] and the legend items' data-key,
// data-latest and data-max. Screenshots: out/browser/admin.png (feed
// playing, after the restart), admin-stopped.png (feed stopped).
import { spawn } from 'node:child_process';
import path from 'node:path';

import {
  exited, fail, launch, outDir, request, startSystem, waitFor, watchProblems, within,
} from './lib.mjs';

const CHARTS = ['c-events', 'c-latency', 'c-backlog', 'c-mailbox', 'c-restarts', 'c-kinds', 'c-ws'];
const SOURCE = 'feed-1'; // feedsim's first source (--source-prefix feed-)
const VICTIM = 'match:sim:4:0'; // the first match of --seed 4

// Every chart: its points, and per series its key, last and largest value.
function charts(page) {
  return page.$$eval('figure.chart', (figs) => Object.fromEntries(figs.map((f) => [f.id, {
    points: Number(f.querySelector('canvas').dataset.points || 0),
    series: Object.fromEntries([...f.querySelectorAll('.legend li')].map((li) => [li.dataset.key, {
      latest: li.dataset.latest === '' ? null : Number(li.dataset.latest),
      max: li.dataset.max === '' ? null : Number(li.dataset.max),
    }])),
  }])));
}

const polls = (page) => page.$eval('body', (b) => Number(b.dataset.polls || 0));

// Resolves once the page has polled @n more times.
async function morePolls(page, n) {
  const want = (await polls(page)) + n;
  await waitFor(`${n} more polls`, async () => (await polls(page)) >= want, 5000 + n * 2000);
}

function sourceState(page, name) {
  return page.$$eval('#sources tbody tr', (rows, n) => {
    const row = rows.find((r) => r.dataset.source === n);
    return row ? row.dataset.state : null;
  }, name);
}

function series(all, chart, key) {
  const s = all[chart].series[key];
  if (!s) {
    fail(`chart ${chart} has no series ${key}: ${JSON.stringify(all[chart])}`);
  }
  return s;
}

async function main() {
  const { info, stop } = await startSystem();
  const adminUrl = `http://127.0.0.1:${info.admin_port}/`;
  let browser;
  let feed;
  try {
    browser = await launch();
    // The live page as a WebSocket client: without one nothing is sent and
    // no feed-to-client latency is measured.
    const live = await browser.newPage();
    const liveProblems = watchProblems(live);
    await live.goto(`http://127.0.0.1:${info.http_port}/`);
    await live.waitForFunction(() => document.documentElement.dataset.connection === 'live',
      null, { timeout: 20000 });

    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    const problems = watchProblems(page);
    await page.goto(adminUrl);
    // (waitForFunction evaluates a string, which the page's CSP forbids.)
    await waitFor('the page to poll twice', async () => (await page.$eval('body',
      (body) => body.dataset.state === 'up' && Number(body.dataset.polls) >= 2)), 20000);
    // The shortest window, so the screenshot shows the run in some detail.
    await page.selectOption('#window', '60');

    // Before the feed: nothing came in, no source is known.
    let before = await charts(page);
    if (series(before, 'c-events', 'in').max !== 0) {
      fail(`events in before any feed: ${JSON.stringify(before['c-events'])}`);
    }
    if (await page.$$eval('#sources tbody tr', (rows) => rows.length) !== 0) {
      fail('the sources table lists a source before any feed connected');
    }

    // About 60 s of events at 40 a second; stopped once it has been seen.
    feed = spawn(info.feedsim, ['--host', '127.0.0.1', '--port', String(info.feed_port),
      '--sent', 'wall', '--quiet', '--matches', '6', '--seed', '4', '--rate', '40',
      '--duration', '60'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const feedDone = exited(feed);
    await waitFor(`source ${SOURCE} live in the sources table`,
      async () => (await sourceState(page, SOURCE)) === 'live', 15000);

    // Every chart takes a point a poll.
    before = await charts(page);
    await morePolls(page, 4);
    const during = await charts(page);
    for (const id of CHARTS) {
      if (!(during[id].points > before[id].points)) {
        fail(`chart ${id} did not grow over 4 polls: ${before[id].points} then ${during[id].points} points`);
      }
    }
    for (const [chart, key, what] of [
      ['c-events', 'in', 'events accepted per second'],
      ['c-events', 'stored', 'events stored per second'],
      ['c-latency', 'p50', 'latency p50'],
      ['c-latency', 'p99', 'latency p99'],
      ['c-ws', 'sent', 'WebSocket messages sent per second'],
    ]) {
      if (!(series(during, chart, key).max > 0)) {
        fail(`${what} stayed at zero while feedsim ran: ${JSON.stringify(during[chart])}`);
      }
    }
    series(during, 'c-backlog', 'backlog');
    series(during, 'c-kinds', 'kind:match');
    const busiest = Object.keys(during['c-mailbox'].series);
    if (busiest.length !== 5 || !busiest.every((k) => k.startsWith('mb:'))) {
      fail(`the mailbox chart shows ${JSON.stringify(busiest)}, not the 5 busiest actors`);
    }
    if (series(during, 'c-restarts', 'restarts').max !== 0) {
      fail(`restarts before any actor was killed: ${JSON.stringify(during['c-restarts'])}`);
    }
    const tileIn = await page.textContent('#t-in');
    if (!/^[0-9.]+k?$/.test(tileIn) || Number.parseFloat(tileIn) === 0) {
      fail(`the events-in tile says ${tileIn}`);
    }
    console.log(`ok   every chart grew over 4 polls; in ${tileIn}/s, `
      + `p99 ${(series(during, 'c-latency', 'p99').max * 1000).toFixed(1)} ms at most`);

    // A restart, as an operator would cause one.
    const killed = await request(`${adminUrl}actors/kill`, { method: 'POST', body: VICTIM });
    if (killed.status !== 200) {
      fail(`POST /actors/kill ${VICTIM} answered ${killed.status}: ${killed.body}`);
    }
    await waitFor('the restart on the restarts chart, tile and tree', async () => {
      const now = await charts(page);
      const tile = await page.textContent('#t-restarts');
      const inTree = await page.$$eval('#tree li', (lis, name) => {
        const li = lis.find((l) => l.querySelector('.label').textContent === name);
        return li ? li.querySelector('.restarts').textContent : null;
      }, VICTIM);
      return series(now, 'c-restarts', 'restarts').max > 0 && tile === '1' && inTree === '1';
    }, 10000);
    console.log(`ok   killing ${VICTIM} shows as a restart`);
    await page.screenshot({ path: path.join(outDir, 'admin.png'), fullPage: true });

    // The feed stops: its source is no longer live, events in fall to zero.
    if (feed.exitCode !== null) {
      fail(`feedsim ended early (exit ${feed.exitCode})`);
    }
    feed.kill('SIGTERM');
    await within(20000, 'feedsim to stop', feedDone);
    await waitFor(`source ${SOURCE} not live`,
      async () => ['offline', 'stale'].includes(await sourceState(page, SOURCE)), 20000);
    await waitFor('events in at zero', async () => series(await charts(page), 'c-events', 'in').latest === 0,
      10000);
    console.log(`ok   after feedsim stopped: ${SOURCE} ${await sourceState(page, SOURCE)}, events in 0/s`);

    await page.screenshot({ path: path.join(outDir, 'admin-stopped.png'), fullPage: true });
    const all = [...problems, ...liveProblems.map((p) => `live page: ${p}`)];
    if (all.length) {
      fail(`the pages reported: ${all.join('; ')}`);
    }
    console.log(`ok   no page or console errors; screenshots admin.png, admin-stopped.png in ${outDir}`);
  } finally {
    if (feed && feed.exitCode === null && feed.signalCode === null) {
      feed.kill('SIGKILL');
    }
    if (browser) {
      await browser.close();
    }
    await stop();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
