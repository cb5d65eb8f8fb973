// tests/browser/make_run.test.mjs - `make run` as a newcomer runs it: it
// comes up (PostgreSQL, schema, daemon, demo feed), prints the page and
// admin URLs, the live page in headless Chromium changes within 10 seconds,
// the admin endpoint answers, and Ctrl-C stops everything it started.
//
// It runs on free ports with its own DEMO_VAR (tools/run-demo.sh reads
// both), so a developer's `make run` on the default ports and ./var goes on
// undisturbed. Whatever Ctrl-C leaves behind is killed (and the test
// fails), so a failing run leaks nothing either.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import {
  exited, fail, freePort, launch, outDir, portOpen, request, root, sleep, watchProblems, within,
} from './lib.mjs';

// What the page shows: per match card, its score and clock text.
async function view(page) {
  return page.$$eval('[data-match-id]', (els) => els.map((el) => el.textContent).join('|'));
}

// Processes this run started that are still there: any in make's process
// group, and the ones run-demo.sh puts in sessions of their own (the
// daemon, feedsim) or hands to the postgres user (the server), known by
// their ports or the run's private directory on their command line.
function leftovers(pgid, ports, varDir) {
  const mine = new Set(Object.values(ports).map(String));
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let argv;
    let stat;
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch (e) {
      continue; // gone meanwhile, or a kernel thread
    }
    // pgrp is the 5th field; the 2nd, (comm), may hold spaces.
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    const cmd = argv.join(' ');
    const onOurPort = argv.some((a, i) => i > 0 && /^--(feed-|http-|admin-)?port$/.test(argv[i - 1])
      && mine.has(a));
    if (pgrp === pgid || cmd.includes(varDir) || onOurPort) {
      found.push(`${pid} ${cmd}`);
    }
  }
  return found;
}

async function main() {
  const ports = { feed: await freePort(), http: await freePort(), admin: await freePort() };
  const varDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scorewire-make-run-'));
  fs.chmodSync(varDir, 0o755); // PostgreSQL runs as postgres under it
  const env = {
    ...process.env,
    DEMO_VAR: varDir,
    SCOREWIRE_FEED_PORT: String(ports.feed),
    SCOREWIRE_HTTP_PORT: String(ports.http),
    SCOREWIRE_ADMIN_PORT: String(ports.admin),
  };
  // Its own process group, so "Ctrl-C" reaches make and everything under
  // it, as it would from a terminal.
  const run = spawn('make', ['--no-print-directory', 'run'], {
    cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const runExit = exited(run);
  let output = '';
  const lines = readline.createInterface({ input: run.stdout });
  run.stderr.on('data', (d) => { output += d; });
  let pageUrl = null;
  let adminUrl = null;
  const up = new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      output += `${line}\n`;
      const page = line.match(/live page:\s+(\S+)/);
      const admin = line.match(/operator page:\s+(\S+)/);
      if (page) { pageUrl = page[1]; }
      if (admin) { adminUrl = admin[1]; }
      if (line.includes('Ctrl-C stops everything')) { resolve(); }
    });
    runExit.then(([code, sig]) => reject(new Error(`make run exited ${code ?? sig}:\n${output}`)));
  });
  let browser;
  const failures = [];
  try {
    // Building is done (make browser depends on all): PostgreSQL's initdb
    // and start are most of this.
    await within(120000, 'make run to come up', up).catch((e) => fail(`${e.message}; it said:\n${output}`));
    if (pageUrl !== `http://127.0.0.1:${ports.http}/` || adminUrl !== `http://127.0.0.1:${ports.admin}/`) {
      fail(`make run printed ${pageUrl} and ${adminUrl}, not the ports it was given:\n${output}`);
    }
    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = watchProblems(page);
    await page.goto(pageUrl);
    await page.waitForSelector('[data-match-id]', { timeout: 20000 });
    const first = await view(page);
    const t0 = Date.now();
    let changed = false;
    while (Date.now() - t0 < 10000) {
      await sleep(250);
      if ((await view(page)) !== first) {
        changed = true;
        break;
      }
    }
    await page.screenshot({ path: path.join(outDir, 'make-run.png'), fullPage: true });
    if (!changed) {
      fail('the live page did not change within 10 seconds');
    }
    console.log(`ok   the live page changed after ${Date.now() - t0} ms`);
    const metrics = await request(`${adminUrl}metrics`);
    if (metrics.status !== 200 || !/^scorewire_ingest_events_total [1-9]/m.test(metrics.body)) {
      fail(`admin /metrics answered ${metrics.status} without events counted:\n${metrics.body.slice(0, 2000)}`);
    }
    const actors = await request(`${adminUrl}actors`);
    if (actors.status !== 200 || !Array.isArray(JSON.parse(actors.body).tree)) {
      fail(`admin /actors answered ${actors.status}: ${actors.body.slice(0, 500)}`);
    }
    console.log('ok   the admin endpoint answers /metrics and /actors');
    if (problems.length) {
      fail(problems.join('\n'));
    }
  } catch (e) {
    failures.push(e.message);
  } finally {
    if (browser) {
      await browser.close();
    }
  }

  // Ctrl-C, then what is left of this run after make has exited.
  const pgDir = path.join(varDir, 'pg');
  const pgPort = fs.existsSync(path.join(pgDir, 'port'))
    ? Number(fs.readFileSync(path.join(pgDir, 'port'), 'utf8')) : 0;
  const t1 = Date.now();
  try {
    process.kill(-run.pid, 'SIGINT');
  } catch (e) {
    // make has exited already: what it left is checked all the same
  }
  await within(60000, 'make run to stop after Ctrl-C', runExit).catch((e) => failures.push(e.message));
  // make waits for run-demo.sh, which waits for each child it stops; allow
  // a moment for the kernel to reap the last of PostgreSQL's workers.
  let left = leftovers(run.pid, ports, varDir);
  for (let i = 0; i < 20 && left.length; i++) {
    await sleep(100);
    left = leftovers(run.pid, ports, varDir);
  }
  if (left.length) {
    failures.push(`still running after Ctrl-C (now killed):\n${left.join('\n')}`);
    spawnSync(path.join(root, 'tools', 'pg.sh'), ['stop', pgDir, 'immediate'], { stdio: 'inherit' });
    for (const line of left) {
      try { process.kill(Number(line.split(' ')[0]), 'SIGKILL'); } catch (e) { /* gone */ }
    }
  }
  for (const port of [...Object.values(ports), pgPort].filter(Boolean)) {
    if (await portOpen(port)) {
      failures.push(`port ${port} is still open after Ctrl-C`);
    }
  }
  if (!output.includes('make run: stopped')) {
    failures.push(`make run did not say it stopped:\n${output}`);
  }
  if (!failures.length) {
    console.log(`ok   Ctrl-C stopped everything in ${Date.now() - t1} ms`);
  }
  // Keep the run's logs next to the screenshot, then leave nothing behind.
  const logs = path.join(outDir, 'make-run-logs');
  fs.rmSync(logs, { recursive: true, force: true });
  if (fs.existsSync(path.join(varDir, 'log'))) {
    fs.mkdirSync(outDir, { recursive: true });
    fs.cpSync(path.join(varDir, 'log'), logs, { recursive: true, force: true });
  }
  fs.rmSync(varDir, { recursive: true, force: true });
  if (failures.length) {
    fail(failures.join('\n'));
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
