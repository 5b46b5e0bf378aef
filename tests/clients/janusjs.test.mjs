// Real-client test: janus.js (npm `janus-gateway`) in Debian's headless Chromium, driven by
// playwright-core, over HTTP REST + long poll (JANUS_HTTP_URL) and WebSockets (JANUS_WS_URL).
//
// A tiny static server on 127.0.0.1 (random port) serves a page loading webrtc-adapter's
// browser bundle and janus.js from node_modules. The page origin differs from the server's, so
// every janus.js POST is preceded by a real CORS preflight.
// No media: no createOffer. Every janus.js fetch and WebSocket frame is recorded in the page
// (page/recorder.js) so the assertions check what the server actually answered — janus.js
// itself reports "success" for detach/destroy even when the server returned an error.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { STEP_TIMEOUT_MS, withTimeout, waitFor, isPositiveSafeInteger, brief, requireEnv } from './lib/util.mjs';

const HTTP_URL = requireEnv('JANUS_HTTP_URL').replace(/\/+$/, '');
const WS_URL = requireEnv('JANUS_WS_URL');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ECHOTEST = 'janus.plugin.echotest';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const pkgDir = (name) => path.dirname(require.resolve(`${name}/package.json`));
const ASSETS = {
  '/recorder.js': path.join(HERE, 'page', 'recorder.js'),
  '/adapter.js': path.join(pkgDir('webrtc-adapter'), 'out', 'adapter.js'), // browserify bundle, global `adapter`
  '/janus.js': path.join(pkgDir('janus-gateway'), 'npm', 'src', 'janus.js'), // html/demos/janus.js, global `Janus`
  '/harness.js': path.join(HERE, 'page', 'harness.js'),
};
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>jano janus.js client test</title>
<script>window.__STEP_MS = ${STEP_TIMEOUT_MS};</script>
<script src="/recorder.js"></script>
<script src="/adapter.js"></script>
<script src="/janus.js"></script>
<script src="/harness.js"></script>
</head><body>jano janus.js client test</body></html>`;

// Exactly the flag set from shared/TESTING.md (plus the per-run user-data-dir).
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-crash-reporter', '--remote-debugging-pipe',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required', '--mute-audio',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

const g = { tmp: null, server: null, origin: null, browser: null };

before(async () => {
  for (const [p, f] of Object.entries(ASSETS)) {
    if (!fs.existsSync(f)) throw new Error(`asset for ${p} not found: ${f} (run npm ci)`);
  }
  g.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jano-janusjs-'));
  g.server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/' || url.pathname === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE);
      return;
    }
    if (url.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
    const f = ASSETS[url.pathname];
    if (!f) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
    fs.createReadStream(f).pipe(res);
  });
  await new Promise((resolve, reject) => {
    g.server.once('error', reject);
    g.server.listen(0, '127.0.0.1', resolve);
  });
  g.origin = `http://127.0.0.1:${g.server.address().port}`;

  const home = path.join(g.tmp, 'home');
  const runtime = path.join(g.tmp, 'xdg-runtime');
  for (const d of [home, runtime]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  g.browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${path.join(g.tmp, 'profile')}`],
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
  console.error(`[janus.js] chromium ${g.browser.version()}; page origin ${g.origin}; JANUS_HTTP_URL=${HTTP_URL} JANUS_WS_URL=${WS_URL}`);
});

after(async () => {
  if (g.browser) await withTimeout(g.browser.close(), 10000, 'browser.close').catch(() => {});
  if (g.server) await new Promise((r) => g.server.close(r));
  if (g.tmp) fs.rmSync(g.tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

/** Raw preflight the way Chromium sends it for janus.js's JSON POSTs. */
function preflight(url, origin) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'OPTIONS',
      headers: {
        Origin: origin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('preflight timeout')));
    req.end();
  });
}

describe('CORS preflight (what Chromium sends before each janus.js POST)', () => {
  it(`OPTIONS ${HTTP_URL} → 2xx allowing content-type`, async () => {
    const origin = g.origin || 'http://127.0.0.1:9';
    const r = await preflight(HTTP_URL, origin);
    assert.ok(r.status >= 200 && r.status < 300, `preflight status ${r.status}`);
    const allowOrigin = r.headers['access-control-allow-origin'];
    assert.ok(allowOrigin === '*' || allowOrigin === origin, `Access-Control-Allow-Origin: ${allowOrigin}`);
    const allowHeaders = String(r.headers['access-control-allow-headers'] || '').toLowerCase().split(/\s*,\s*/);
    assert.ok(allowHeaders.includes('content-type') || allowHeaders.includes('*'),
      `Access-Control-Allow-Headers must cover content-type: ${r.headers['access-control-allow-headers']}`);
    const allowMethods = r.headers['access-control-allow-methods'];
    if (allowMethods !== undefined) {
      assert.ok(/\bPOST\b|\*/i.test(allowMethods), `Access-Control-Allow-Methods: ${allowMethods}`);
    }
  });
});

/**
 * One janus.js flow (create → attach echotest → send {audio:true} → detach → destroy) against
 * `server`, in a fresh browser context. `kind` is 'http' or 'ws'.
 */
function janusJsFlow(kind, server) {
  describe(`janus.js over ${kind === 'ws' ? 'WebSocket' : 'HTTP'} (${server})`, () => {
    const s = { page: null, ctx: null, console: [], failed: null, sid: null, hid: null, wire: [] };

    async function ev(fn, arg, label) {
      return withTimeout(s.page.evaluate(fn, arg), STEP_TIMEOUT_MS + 2000, label);
    }
    async function refreshWire() {
      s.wire = await withTimeout(s.page.evaluate(() => window.jt.wire()), 3000, 'read wire log');
      return s.wire;
    }
    function dump() {
      const wire = s.wire.slice(-40).map((e) => e.kind === 'http'
        ? `  ${e.method} ${e.url} ${e.req ? brief(e.req, 300) : ''} → ${e.status ?? e.error ?? 'pending'} ${e.res !== undefined ? brief(e.res, 500) : ''}`
        : `  ws ${e.dir} ${brief(e.msg ?? { protocol: e.protocol, code: e.code, url: e.url, protocols: e.protocols }, 500)}`);
      return `browser console (last 60):\n${s.console.slice(-60).map((l) => '  ' + l).join('\n')}\n` +
        `wire (last ${wire.length}):\n${wire.join('\n')}`;
    }

    function step(name, fn, { timeoutMs = STEP_TIMEOUT_MS + 5000, skip = false } = {}) {
      it(name, { skip }, async (t) => {
        if (s.failed) { t.skip(`earlier step failed: ${s.failed}`); return; }
        try {
          await withTimeout(fn(t), timeoutMs, name);
        } catch (err) {
          s.failed = name;
          try { await refreshWire(); } catch { /* page gone */ }
          console.error(`\n[janus.js ${kind}] step "${name}" failed: ${err && err.stack || err}\n${dump()}\n`);
          throw err;
        }
      });
    }

    // HTTP exchanges / WS frames for one request transaction.
    function httpExchange(janus) {
      const e = s.wire.filter((x) => x.kind === 'http' && x.method === 'POST' && x.req && x.req.janus === janus).at(-1);
      assert.ok(e, `no HTTP POST "${janus}" was made`);
      return e;
    }
    function wsOut(janus) {
      const e = s.wire.filter((x) => x.kind === 'ws' && x.dir === 'out' && x.msg.janus === janus).at(-1);
      assert.ok(e, `no WS "${janus}" frame was sent`);
      return e.msg;
    }
    function wsIn(transaction) {
      return s.wire.filter((x) => x.kind === 'ws' && x.dir === 'in' && x.msg.transaction === transaction).map((x) => x.msg);
    }
    /** All messages delivered through long polls, flattened. */
    function polled() {
      const out = [];
      for (const e of s.wire) {
        if (e.kind !== 'http' || e.method !== 'GET' || e.res === undefined) continue;
        for (const m of Array.isArray(e.res) ? e.res : [e.res]) out.push(m);
      }
      return out;
    }

    before(async () => {
      s.ctx = await g.browser.newContext();
      s.page = await s.ctx.newPage();
      s.page.on('console', (m) => s.console.push(`[${m.type()}] ${m.text()}`));
      s.page.on('pageerror', (e) => s.console.push(`[pageerror] ${e.message}`));
      s.page.on('requestfailed', (r) => s.console.push(`[requestfailed] ${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
    });

    after(async () => {
      if (process.env.JANO_CLIENT_DUMP) {
        try { await refreshWire(); } catch { /* ignore */ }
        console.error(`[janus.js ${kind}] ${dump()}`);
      }
      if (s.ctx) await withTimeout(s.ctx.close(), 5000, 'context.close').catch(() => {});
    });

    step('load page with adapter.js + janus.js; Janus.init', async () => {
      await s.page.goto(`${g.origin}/`, { timeout: STEP_TIMEOUT_MS });
      const r = await ev(() => window.jt.init(), undefined, 'Janus.init');
      assert.equal(r.webrtc, true, 'Chromium must report WebRTC support');
      assert.equal(r.adapterBrowser, 'chrome');
    });

    step('new Janus({server}) creates a session', async () => {
      // On WS, a short keepAlivePeriod makes janus.js send its keepalive during the test.
      const opts = kind === 'ws' ? { keepAlivePeriod: 1000 } : {};
      const r = await ev(([srv, o]) => window.jt.create(srv, o), [server, opts], 'create');
      assert.ok(isPositiveSafeInteger(r.sessionId), `getSessionId() must be a positive safe integer, got ${brief(r.sessionId)}`);
      assert.equal(r.connected, true);
      s.sid = r.sessionId;
      await refreshWire();
      if (kind === 'http') {
        const e = httpExchange('create');
        assert.equal(e.url, server);
        assert.equal(e.status, 200);
        assert.equal(e.res.janus, 'success');
        assert.equal(e.res.transaction, e.req.transaction);
        assert.equal(e.res.data.id, s.sid);
        assert.equal(e.res.session_id, undefined, 'create reply must not carry top-level session_id');
      } else {
        const open = s.wire.find((x) => x.kind === 'ws' && x.dir === 'open');
        assert.ok(open, 'WebSocket never opened');
        assert.equal(open.protocol, 'janus-protocol', 'server must select the janus-protocol sub-protocol');
        const out = wsOut('create');
        const replies = wsIn(out.transaction);
        assert.equal(replies.length, 1, `one reply to create: ${brief(replies)}`);
        assert.equal(replies[0].janus, 'success');
        assert.equal(replies[0].data.id, s.sid);
        assert.equal(replies[0].session_id, undefined, 'create reply must not carry top-level session_id');
      }
    });

    if (kind === 'http') {
      step('long poll: GET <server>/<sid>?rid=..&maxev=10 answered 200 with a JSON array', async () => {
        // Janus answers an idle poll with a keepalive after ~30 s; we do not wait for that here,
        // the attach/message steps below check that events arrive through the poll.
        await refreshWire();
        const polls = s.wire.filter((x) => x.kind === 'http' && x.method === 'GET');
        assert.ok(polls.length >= 1, 'janus.js must have started long polling');
        const re = new RegExp(`^${server.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${s.sid}\\?rid=\\d+&maxev=10$`);
        assert.match(polls[0].url, re);
      });

      step('idle long poll is answered with [{"janus":"keepalive"}] within 35 s (JANO_CLIENT_SLOW=1)', async () => {
        // janus.js aborts a poll after 60 s and reports "Lost connection" after 3 failed polls,
        // so an idle poll must be answered (Janus: keepalive after 30 s).
        const ka = await waitFor(async () => {
          await refreshWire();
          return s.wire.find((x) => x.kind === 'http' && x.method === 'GET' && Array.isArray(x.res) &&
            x.res.some((m) => m.janus === 'keepalive'));
        }, 35000, 'a keepalive through the long poll', 500);
        assert.equal(ka.status, 200);
        assert.deepEqual(ka.res.map((m) => m.janus), ['keepalive']);
        // and janus.js went on polling
        await waitFor(async () => {
          await refreshWire();
          const i = s.wire.findIndex((x) => x.kind === 'http' && x.method === 'GET' && x.t === ka.t && x.url === ka.url);
          return s.wire.slice(i + 1).some((x) => x.kind === 'http' && x.method === 'GET');
        }, 2000, 'a new poll after the keepalive');
      }, { timeoutMs: 40000, skip: process.env.JANO_CLIENT_SLOW ? false : 'set JANO_CLIENT_SLOW=1 (waits ~30 s)' });
    }

    step(`attach ${ECHOTEST}`, async () => {
      const r = await ev((p) => window.jt.attach(p), ECHOTEST, 'attach');
      assert.ok(isPositiveSafeInteger(r.handleId), `handle id must be a positive safe integer, got ${brief(r.handleId)}`);
      assert.equal(r.plugin, ECHOTEST);
      s.hid = r.handleId;
      await refreshWire();
      if (kind === 'http') {
        const e = httpExchange('attach');
        assert.equal(e.url, `${server}/${s.sid}`);
        assert.equal(e.req.plugin, ECHOTEST);
        assert.equal(e.status, 200);
        assert.equal(e.res.janus, 'success');
        assert.equal(e.res.session_id, s.sid);
        assert.equal(e.res.data.id, s.hid);
      } else {
        const out = wsOut('attach');
        assert.equal(out.session_id, s.sid);
        const replies = wsIn(out.transaction);
        assert.equal(replies.length, 1);
        assert.equal(replies[0].janus, 'success');
        assert.equal(replies[0].session_id, s.sid);
        assert.equal(replies[0].data.id, s.hid);
      }
    });

    step('send({message:{audio:true}}) → onmessage {echotest:"event", result:"ok"}', async () => {
      const r = await ev((m) => window.jt.send(m), { audio: true }, 'send');
      assert.equal(r.sendSuccess.data, null, 'EchoTest is async: send() success comes from the ack, without data');
      assert.deepEqual(r.event.msg, { echotest: 'event', result: 'ok' });
      assert.equal(r.event.jsep, null);
      await refreshWire();
      let t;
      if (kind === 'http') {
        const e = httpExchange('message');
        t = e.req.transaction;
        assert.equal(e.url, `${server}/${s.sid}/${s.hid}`);
        assert.deepEqual(e.req.body, { audio: true });
        assert.equal(e.status, 200);
        assert.equal(e.res.janus, 'ack', `an async plugin answers the POST with ack: ${brief(e.res)}`);
        assert.equal(e.res.transaction, t);
        assert.equal(e.res.session_id, s.sid);
        const evs = polled().filter((m) => m.janus === 'event' && m.transaction === t);
        assert.equal(evs.length, 1, `the event must come once through the long poll: ${brief(polled())}`);
        const m = evs[0];
        assert.equal(m.session_id, s.sid);
        assert.equal(m.sender, s.hid);
        assert.equal(m.plugindata.plugin, ECHOTEST);
        assert.deepEqual(m.plugindata.data, { echotest: 'event', result: 'ok' });
        // every poll that completed: status 200 and (maxev=10) an array
        for (const p of s.wire.filter((x) => x.kind === 'http' && x.method === 'GET' && x.status !== undefined && x.res !== undefined)) {
          assert.equal(p.status, 200, `poll ${p.url} status`);
          assert.ok(Array.isArray(p.res), `maxev=10 poll must return a JSON array, got ${brief(p.res)}`);
        }
      } else {
        const out = wsOut('message');
        t = out.transaction;
        assert.equal(out.session_id, s.sid);
        assert.equal(out.handle_id, s.hid);
        const replies = wsIn(t);
        // Exactly one ack and one event. Their order is NOT asserted: the real Janus races them
        // (the plugin thread can push the event before the transport writes the ack), and both
        // janus.js and janode cope with either order.
        assert.deepEqual(replies.map((m) => m.janus).sort(), ['ack', 'event'], `one ack and one event: ${brief(replies)}`);
        const m = replies.find((x) => x.janus === 'event');
        assert.equal(m.session_id, s.sid);
        assert.equal(m.sender, s.hid);
        assert.equal(m.plugindata.plugin, ECHOTEST);
        assert.deepEqual(m.plugindata.data, { echotest: 'event', result: 'ok' });
      }
    });

    if (kind === 'ws') {
      step('janus.js keepalive (keepAlivePeriod 1 s) → ack echoing the transaction', async () => {
        await waitFor(async () => {
          await refreshWire();
          return s.wire.some((x) => x.kind === 'ws' && x.dir === 'out' && x.msg.janus === 'keepalive');
        }, 5000, 'a keepalive frame from janus.js');
        const out = wsOut('keepalive');
        assert.equal(out.session_id, s.sid);
        assert.match(out.transaction, /^[A-Za-z0-9]{12}$/);
        const replies = await waitFor(async () => {
          await refreshWire();
          const r = wsIn(out.transaction);
          return r.length ? r : null;
        }, 3000, 'the keepalive reply');
        assert.equal(replies[0].janus, 'ack');
        assert.equal(replies[0].session_id, s.sid);
      });
    }

    step('detach → success', async () => {
      await ev(() => window.jt.detach(), undefined, 'detach');
      // janus.js reports success whatever the server said (and on WS does not wait at all):
      // check the server's answer on the wire.
      if (kind === 'http') {
        await refreshWire();
        const e = httpExchange('detach');
        assert.equal(e.url, `${server}/${s.sid}/${s.hid}`);
        assert.equal(e.status, 200);
        await waitFor(async () => { await refreshWire(); return httpExchange('detach').res !== undefined; }, 3000, 'detach body');
        const res = httpExchange('detach').res;
        assert.equal(res.janus, 'success', `detach reply: ${brief(res)}`);
        assert.equal(res.session_id, s.sid);
      } else {
        await refreshWire();
        const out = wsOut('detach');
        assert.equal(out.session_id, s.sid);
        assert.equal(out.handle_id, s.hid);
        const replies = await waitFor(async () => {
          await refreshWire();
          const r = wsIn(out.transaction);
          return r.length ? r : null;
        }, 3000, 'the detach reply');
        assert.equal(replies[0].janus, 'success', `detach reply: ${brief(replies)}`);
        assert.equal(replies[0].session_id, s.sid);
      }
    });

    step('destroy → success, destroyed() callback, no connection errors', async () => {
      await ev(() => window.jt.destroy(), undefined, 'destroy');
      const st = await ev(() => window.jt.state(), undefined, 'state');
      assert.equal(st.destroyedCalls, 1, 'the destroyed() callback must run once');
      assert.deepEqual(st.errors, [], `janus.js reported errors: ${brief(st.errors)}`);
      await refreshWire();
      if (kind === 'http') {
        const e = httpExchange('destroy');
        assert.equal(e.url, `${server}/${s.sid}`);
        assert.equal(e.status, 200);
        await waitFor(async () => { await refreshWire(); return httpExchange('destroy').res !== undefined; }, 3000, 'destroy body');
        const res = httpExchange('destroy').res;
        assert.equal(res.janus, 'success', `destroy reply: ${brief(res)}`);
        assert.equal(res.session_id, s.sid);
        assert.equal(res.transaction, e.req.transaction);
      } else {
        // janus.js waits for a frame whose session_id AND transaction equal the request's, then
        // closes the socket; the destroy success callback above proves it came.
        const out = wsOut('destroy');
        const replies = wsIn(out.transaction);
        assert.equal(replies.length, 1);
        assert.equal(replies[0].janus, 'success');
        assert.equal(replies[0].session_id, s.sid);
        await waitFor(async () => { await refreshWire(); return s.wire.some((x) => x.kind === 'ws' && x.dir === 'close'); }, 3000, 'socket close');
      }
      // nothing failed in the page along the way
      const failed = s.console.filter((l) => l.startsWith('[pageerror]'));
      assert.deepEqual(failed, []);
    });
  });
}

janusJsFlow('http', HTTP_URL);
janusJsFlow('ws', WS_URL);
