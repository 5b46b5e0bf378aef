// What the janus.js media tests share: a local page that loads janus.js, adapter.js and the
// media harness, and Debian's Chromium launched with shared/TESTING.md's flags (fake devices,
// real IP host candidates) and a throw-away profile and HOME.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { STEP_TIMEOUT_MS, withTimeout } from '../../clients/lib/util.mjs';

const MEDIA = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLIENTS = path.join(MEDIA, '..', 'clients');
const require = createRequire(path.join(CLIENTS, 'package.json'));
const pkgDir = (name) => path.dirname(require.resolve(`${name}/package.json`));
const ASSETS = {
  '/recorder.js': path.join(CLIENTS, 'page', 'recorder.js'),
  '/adapter.js': path.join(pkgDir('webrtc-adapter'), 'out', 'adapter.js'),
  '/janus.js': path.join(pkgDir('janus-gateway'), 'npm', 'src', 'janus.js'),
  '/media-harness.js': path.join(MEDIA, 'page', 'media-harness.js'),
};

const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-crash-reporter', '--remote-debugging-pipe',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required', '--mute-audio',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/** Extra page scripts a test may ask for by name (loaded after media-harness.js). */
const EXTRA_SCRIPTS = {
  '/videoroom-harness.js': path.join(MEDIA, 'page', 'videoroom-harness.js'),
  '/audiobridge-harness.js': path.join(MEDIA, 'page', 'audiobridge-harness.js'),
};

/**
 * Serves the test page (titled `title`) on 127.0.0.1 and launches Chromium.
 * `extraScripts`: paths from EXTRA_SCRIPTS to load on the page too (e.g. '/videoroom-harness.js').
 * Returns `{ origin, browser, close() }`.
 */
export async function startBrowser(title, tmpPrefix, { extraScripts = [] } = {}) {
  const assets = { ...ASSETS };
  for (const p of extraScripts) {
    if (!EXTRA_SCRIPTS[p]) throw new Error(`unknown extra script ${p}`);
    assets[p] = EXTRA_SCRIPTS[p];
  }
  for (const [p, f] of Object.entries(assets)) {
    if (!fs.existsSync(f)) throw new Error(`asset for ${p} not found: ${f} (npm ci in tests/clients)`);
  }
  const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<script>window.__STEP_MS = ${STEP_TIMEOUT_MS};</script>
<script src="/recorder.js"></script>
<script src="/adapter.js"></script>
<script src="/janus.js"></script>
<script src="/media-harness.js"></script>
${extraScripts.map((p) => `<script src="${p}"></script>\n`).join('')}</head><body>${title}</body></html>`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/' || url.pathname === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page);
      return;
    }
    const f = assets[url.pathname];
    if (!f) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
    fs.createReadStream(f).pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const home = path.join(tmp, 'home');
  const runtime = path.join(tmp, 'xdg-runtime');
  for (const d of [home, runtime]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${path.join(tmp, 'profile')}`],
    env: {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_CACHE_HOME: path.join(home, '.cache'),
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      XDG_STATE_HOME: path.join(home, '.local', 'state'),
      XDG_RUNTIME_DIR: runtime,
    },
    timeout: 30000,
  });
  return {
    origin,
    browser,
    async close() {
      await withTimeout(browser.close(), 10000, 'browser.close').catch(() => {});
      await new Promise((r) => server.close(r));
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}
