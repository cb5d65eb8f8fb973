// tests/browser/lib.mjs - what every browser test shares: Debian's
// Chromium launched headless with the flags a root sandbox needs, and the
// output folder for screenshots.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
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
