// tests/browser/make_run.test.mjs - `make run` as a newcomer runs it: it
// comes up (PostgreSQL, schema, daemon, demo feed), prints the page and
// admin URLs, the live page in headless Chromium changes within 10 seconds,
// the admin endpoint answers, and Ctrl-C stops everything it started.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import { fail, launch, outDir, root, sleep, watchProblems } from './lib.mjs';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function get(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => { req.destroy(); resolve({ status: 0, body: '' }); });
  });
}

// What the page shows: per match card, its score and clock text.
async function view(page) {
  return page.$$eval('[data-match-id]', (els) => els.map((el) => el.textContent).join('|'));
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
    run.on('exit', (code) => reject(new Error(`make run exited ${code}:\n${output}`)));
  });
  let browser;
  try {
    await Promise.race([up, sleep(240000).then(() => fail(`make run did not come up:\n${output}`))]);
    if (!pageUrl || !adminUrl) {
      fail(`make run did not print both URLs:\n${output}`);
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
    const metrics = await get(`${adminUrl}metrics`);
    if (metrics.status !== 200 || !metrics.body.includes('scorewire_ingest_events_total')) {
      fail(`admin /metrics answered ${metrics.status}`);
    }
    const actors = await get(`${adminUrl}actors`);
    if (actors.status !== 200 || !JSON.parse(actors.body).tree) {
      fail(`admin /actors answered ${actors.status}`);
    }
    console.log('ok   the admin endpoint answers /metrics and /actors');
    if (problems.length) {
      fail(problems.join('\n'));
    }
  } finally {
    if (browser) {
      await browser.close();
    }
    if (run.exitCode === null) {
      process.kill(-run.pid, 'SIGINT');
      const deadline = Date.now() + 60000;
      while (run.exitCode === null && run.signalCode === null && Date.now() < deadline) {
        await sleep(100);
      }
    }
  }
  // Everything it started is gone: nothing listens on its ports.
  for (const port of Object.values(ports)) {
    const open = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (open) {
      fail(`port ${port} is still open after Ctrl-C`);
    }
  }
  if (!output.includes('make run: stopped')) {
    fail(`make run did not say it stopped:\n${output}`);
  }
  fs.rmSync(varDir, { recursive: true, force: true });
  console.log('ok   Ctrl-C stopped everything');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
