// tests/browser/lib.mjs - what every browser test shares: Debian's
// Chromium launched headless with the flags a root sandbox needs, the
// output folder for screenshots, the system under test (PostgreSQL and the
// daemon on free ports), and waiting with a deadline.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..');
export const outDir = path.join(root, 'out', 'browser');

// playwright-core adds --headless and a fresh --user-data-dir itself; the
// rest keeps Chromium off the network and quiet as root.
export const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update',
  '--disable-sync',
];

export async function launch() {
  fs.mkdirSync(outDir, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: chromiumArgs,
    timeout: 60000,
  });
}

// Collects page errors and console errors: a test fails on any.
export function watchProblems(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') {
      problems.push(`console: ${m.text()}`);
    }
  });
  return problems;
}

export function fail(msg) {
  throw new Error(msg);
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// A loopback TCP port nobody listens on right now.
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Whether something accepts connections on a loopback port.
export function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

// {status, body} of an HTTP request; status 0 when nothing answered.
export function request(url, { method = 'GET', body = null } = {}) {
  return new Promise((resolve) => {
    const req = http.request(url, { method, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => { req.destroy(); resolve({ status: 0, body: '' }); });
    req.end(body);
  });
}

// Calls fn() until it returns a true value; fails after @ms with @what.
export async function waitFor(what, fn, ms, step = 200) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      fail(`timed out after ${ms / 1000} s waiting for ${what}`);
    }
    await sleep(step);
  }
}

// @promise's value, or a failure naming @what after @ms.
export async function within(ms, what, promise) {
  let timer;
  const limit = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

// Resolves when @child has exited (at once if it has already).
export function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve([child.exitCode, child.signalCode]);
  }
  return once(child, 'exit');
}

// PostgreSQL and the daemon on free ports, through the integration tests'
// harness, which keeps them until its stdin closes. Returns {info, stop}:
// info has http_port, feed_port, admin_port and feedsim (its path).
export async function startSystem() {
  const sys = spawn('python3', [path.join(root, 'tests', 'integration', 'notify_system.py')],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: sys.stdout });
  const stop = async () => {
    sys.stdin.end();
    await exited(sys);
  };
  try {
    const [first] = await within(120000, 'notify_system.py to come up', Promise.race([
      once(lines, 'line'),
      exited(sys).then(([code]) => fail(`notify_system.py exited ${code}`)),
    ]));
    return { info: JSON.parse(first), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
