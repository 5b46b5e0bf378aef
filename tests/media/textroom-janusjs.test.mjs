// End-to-end TextRoom test: janus.js (npm `janus-gateway`) in Debian's headless Chromium against
// `janus.plugin.textroom`, used the way Janus's own TextRoom demo (textroomtest.js) uses it, by
// two pages: "alice" (display "Alice") on WebSocket (JANUS_WS_URL) and "bob" on HTTP long poll
// (JANUS_HTTP_URL), each in its own browser context with its own Janus session.
//   * each page: {request:"setup"} → event {"textroom":"event","result":"ok"} with an offer
//     holding one data m-line → createAnswer({jsep, tracks:[{type:"data"}]}) (janus.js opens its
//     "JanusDataChannel") → {request:"ack"} + answer → event ok; ondataopen("JanusDataChannel"),
//     webrtcState(true);
//   * alice creates a room on the Janus API (→ {"textroom":"created", room, permanent:false});
//     both join over the data channel; a public message, a private one (`to`), an announcement
//     (with the room secret), bob leaves, alice leaves and destroys the room on the Janus API.
// Every step asserts exactly what each page's ondata received (in order, after a quiet period),
// and that it arrived on "JanusDataChannel". The shapes are what Janus 1.1.2 sends ("Janus
// 1.1.2:" comments where it differs from shared/spec/plugin-textroom.md).
// Runs inside the test network namespace (tests/media/run.sh).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startBrowser } from './lib/browser.mjs';

import { STEP_TIMEOUT_MS, withTimeout, waitFor, isPositiveSafeInteger, brief, requireEnv } from '../clients/lib/util.mjs';

const HTTP_URL = requireEnv('JANUS_HTTP_URL').replace(/\/+$/, '');
const WS_URL = requireEnv('JANUS_WS_URL');
const MEDIA_ADDR = process.env.JANUS_MEDIA_ADDR || '';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const HARNESS = path.join(HERE, 'page', 'textroom-harness.js');
const LABEL = 'JanusDataChannel';
const QUIET_MS = 300;
const DATE = '<date>';
const DATE_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$/;

let g = null;

before(async () => {
  g = await startBrowser('jano janus.js textroom test', 'jano-media-textroom-');
  console.error(`[janus.js textroom] chromium ${g.browser.version()}; page ${g.origin}; ${WS_URL} ${HTTP_URL}; media address ${MEDIA_ADDR || '(any)'}`);
});

after(async () => {
  if (g) await g.close();
});

describe('janus.js TextRoom: alice (WebSocket) and bob (HTTP) chat over data channels', () => {
  const mk = (name, server, display) => ({ name, server, display, page: null, ctx: null, console: [], hid: null });
  const A = mk('alice', WS_URL, 'Alice');
  const B = mk('bob', HTTP_URL, null);
  const pages = [A, B];
  const s = { failed: null, room: null, roomDestroyed: false, secret: `s-${process.pid}-${Date.now() % 100000}`, log: [], dates: [] };
  const note = (line) => { s.log.push(`${new Date().toISOString().slice(11, 23)} ${line}`); };
  const ev = (p, fn, arg, label) => withTimeout(p.page.evaluate(fn, arg), STEP_TIMEOUT_MS + 2000, `${p.name}: ${label}`);
  const st = (p, sdp = false) => ev(p, (x) => window.tr.state(x), sdp, 'state');
  const send = (p, body) => ev(p, (b) => window.tr.send(b), body, body.request);
  const data = (p, obj) => ev(p, (o) => window.tr.data(o), obj, `data ${obj.textroom}`);
  let txn = 0;
  const tx = () => `tx-${process.pid}-${++txn}`;
  const entry = (p) => (p.display ? { username: p.name, display: p.display } : { username: p.name });
  const joinEv = (p) => ({ textroom: 'join', room: s.room, username: p.name, ...(p.display ? { display: p.display } : {}) });

  /** A received data-channel message, its `date` checked and replaced by DATE. */
  function norm(m) {
    if (!m || typeof m !== 'object' || Array.isArray(m)) return m;
    const d = { ...m };
    if ('date' in d) {
      assert.match(String(d.date), DATE_RE, `date ${brief(d.date)} is not %FT%T%z`);
      const iso = d.date.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
      const off = Math.abs(Date.now() - Date.parse(iso));
      assert.ok(off < 300000, `date ${d.date} is ${Math.round(off / 1000)} s away from now`);
      s.dates.push(d.date);
      d.date = DATE;
    }
    if (Array.isArray(d.participants)) d.participants = [...d.participants].sort((x, y) => String(x.username).localeCompare(String(y.username)));
    return d;
  }

  async function marks() {
    const m = new Map();
    for (const p of pages) m.set(p, (await st(p)).data.length);
    return m;
  }

  /** Wait until each page got as many new ondata messages as `want` lists for it, let QUIET_MS
   * pass, then compare exactly (in order); every one must have come on "JanusDataChannel". */
  async function expect(m, want, what) {
    for (const p of pages) {
      const n = m.get(p) + (want.get(p) || []).length;
      await waitFor(async () => (await st(p)).data.length >= n, STEP_TIMEOUT_MS, `${what}: ${p.name} to get ${n - m.get(p)} message(s)`).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, QUIET_MS));
    for (const p of pages) {
      const got = (await st(p)).data.slice(m.get(p));
      for (const x of got) assert.equal(x.label, LABEL, `${what}: ${p.name} got a message on channel ${brief(x.label)}: ${brief(x.raw)}`);
      const parsed = got.map((x) => { try { return JSON.parse(x.raw); } catch { return { __unparsed: x.raw }; } });
      note(`${what}: ${p.name} ← ${brief(parsed, 800)}`);
      assert.deepEqual(parsed.map(norm), want.get(p) || [], `${what}: ${p.name} received ${brief(parsed, 1500)}`);
    }
  }

  function step(name, fn, { timeoutMs = STEP_TIMEOUT_MS * 2 + 5000 } = {}) {
    it(name, async (t) => {
      if (s.failed) { t.skip(`earlier step failed: ${s.failed}`); return; }
      try {
        await withTimeout(fn(t), timeoutMs, name);
      } catch (err) {
        s.failed = name;
        let extra = '';
        for (const p of pages) {
          try {
            const x = await st(p);
            extra += `\n${p.name}: events ${brief(x.events, 1500)}\n  dataOpen ${brief(x.dataOpen)} webrtcState ${brief(x.webrtcState)} errors ${brief(x.errors)}` +
              `\n  data (last 10) ${brief(x.data.slice(-10), 2500)}\n  console (last 15):\n${p.console.slice(-15).map((l) => '    ' + l).join('\n')}`;
          } catch { /* page gone */ }
        }
        console.error(`\n[janus.js textroom] step "${name}" failed: ${err && err.stack || err}\ntest log:\n${s.log.map((l) => '  ' + l).join('\n')}${extra}\n`);
        throw err;
      }
    });
  }

  before(async () => {
    for (const p of pages) {
      p.ctx = await g.browser.newContext();
      p.page = await p.ctx.newPage();
      p.page.on('console', (m) => p.console.push(`[${m.type()}] ${m.text()}`));
      p.page.on('pageerror', (e) => p.console.push(`[pageerror] ${e.message}`));
    }
  });

  after(async () => {
    if (s.room !== null && !s.roomDestroyed && A.page) {
      try { await send(A, { request: 'destroy', room: s.room, secret: s.secret }); } catch { /* best effort */ }
    }
    for (const p of pages) if (p.ctx) await withTimeout(p.ctx.close(), 10000, 'context close').catch(() => {});
  });

  step('both pages: Janus.init, new Janus({server}) (alice: WebSocket, bob: HTTP), attach janus.plugin.textroom', async () => {
    for (const p of pages) {
      await p.page.goto(`${g.origin}/`, { timeout: STEP_TIMEOUT_MS });
      await p.page.addScriptTag({ path: HARNESS });
      const r = await ev(p, () => window.tr.init(), undefined, 'init');
      assert.equal(r.webrtc, true);
      const c = await ev(p, (srv) => window.tr.create(srv), p.server, 'create');
      assert.ok(isPositiveSafeInteger(c.sessionId), `session id ${brief(c.sessionId)}`);
      const a = await ev(p, () => window.tr.attach(), undefined, 'attach');
      assert.ok(isPositiveSafeInteger(a.handleId), `handle id ${brief(a.handleId)}`);
      p.hid = a.handleId;
    }
  });

  step('setup → event ok + offer (one data m-line); createAnswer({tracks:[{type:"data"}]}) + ack → event ok; ondataopen("JanusDataChannel"), webrtcState(true)', async () => {
    for (const p of pages) {
      const t0 = Date.now();
      const r = await send(p, { request: 'setup' });
      assert.equal(r.data, null, `setup is asynchronous: janus.js got ${brief(r.data)}`);
      await waitFor(async () => (await st(p)).dataOpen.length > 0 || (await st(p)).errors.length > 0, 20000, `${p.name}: ondataopen`);
      const x = await st(p, true);
      assert.deepEqual(x.errors, [], `${p.name}: janus.js errors ${brief(x.errors)}`);
      const evs = x.events.filter((e) => e.t >= t0);
      note(`${p.name} events: ${brief(evs)}; dataOpen ${brief(x.dataOpen)}`);
      // Janus 1.1.2: the offer comes with {"textroom":"event","result":"ok"}; the `ack` gets the
      // same event, without JSEP.
      assert.equal(evs.length, 2, `${p.name}: two plugin events expected (setup, ack): ${brief(evs)}`);
      assert.deepEqual(evs[0].msg, { textroom: 'event', result: 'ok' });
      assert.equal(evs[0].jsep && evs[0].jsep.type, 'offer');
      assert.deepEqual(evs[1].msg, { textroom: 'event', result: 'ok' });
      assert.equal(evs[1].jsep, null);
      const mlines = x.offer.sdp.split('\r\n').filter((l) => l.startsWith('m='));
      assert.equal(mlines.length, 1, `one m-line in the offer: ${brief(mlines)}`);
      assert.match(mlines[0], /^m=application \d+ UDP\/DTLS\/SCTP webrtc-datachannel$/);
      assert.match(x.offer.sdp, /\r\na=sctp-port:\d+\r\n/);
      if (MEDIA_ADDR) assert.ok(x.offer.sdp.includes(` ${MEDIA_ADDR} `), `the offer carries no candidate on ${MEDIA_ADDR}`);
      assert.match(x.answer.sdp, /\r\nm=application [1-9]\d* UDP\/DTLS\/SCTP webrtc-datachannel\r\n/);
      assert.deepEqual(x.dataOpen.map((d) => d.label), [LABEL], `${p.name}: ondataopen labels ${brief(x.dataOpen)}`);
      await waitFor(async () => (await st(p)).webrtcState.find((w) => w.on === true), 10000, `${p.name}: webrtcState(true)`);
      assert.deepEqual(x.data, [], `${p.name}: nothing arrives before a request: ${brief(x.data)}`);
    }
  }, { timeoutMs: 60000 });

  step('alice creates a room on the Janus API (janus.js send) → {textroom:"created", room, permanent:false}', async () => {
    const m = await marks();
    const r = await send(A, { request: 'create', description: `jano textroom janus.js ${process.pid}`, secret: s.secret, history: 2 });
    note(`create → ${brief(r.data)}`);
    // Janus 1.1.2: "created" on the Janus API ("success" when asked over the data channel).
    assert.ok(r.data && r.data.textroom === 'created', brief(r.data));
    assert.ok(isPositiveSafeInteger(r.data.room), `room ${brief(r.data.room)}`);
    assert.deepEqual(r.data, { textroom: 'created', room: r.data.room, permanent: false });
    s.room = r.data.room;
    const x = await send(B, { request: 'exists', room: s.room });
    assert.deepEqual(x.data, { textroom: 'success', room: s.room, exists: true });
    await expect(m, new Map(), 'create');
  });

  step('alice joins over the data channel → her own join, then success participants []', async () => {
    const m = await marks();
    const t = tx();
    await data(A, { textroom: 'join', transaction: t, room: s.room, username: 'alice', display: 'Alice' });
    // Janus 1.1.2: the joiner gets its own `join` notification before the reply.
    await expect(m, new Map([[A, [joinEv(A), { textroom: 'success', participants: [], transaction: t }]]]), 'alice join');
  });

  step('bob joins → success participants [alice]; alice gets join bob', async () => {
    const m = await marks();
    const t = tx();
    await data(B, { textroom: 'join', transaction: t, room: s.room, username: 'bob' });
    await expect(m, new Map([
      [B, [joinEv(B), { textroom: 'success', participants: [entry(A)], transaction: t }]],
      [A, [joinEv(B)]],
    ]), 'bob join');
  });

  step('public message from alice → both get {message, room, from, date, text} (no whisper key); alice: success', async () => {
    const m = await marks();
    const t = tx();
    const text = 'hello from janus.js \u00e9 \u2603';
    await data(A, { textroom: 'message', transaction: t, room: s.room, text });
    // Janus 1.1.2: the sender gets its own public message too; public messages carry no
    // `whisper` key (the spec says whisper:false).
    const msg = { textroom: 'message', room: s.room, from: 'alice', date: DATE, text };
    s.dates = [];
    await expect(m, new Map([[A, [msg, { textroom: 'success', transaction: t }]], [B, [msg]]]), 'public message');
    assert.equal(new Set(s.dates).size, 1, `both got the same date: ${brief(s.dates)}`);
  });

  step('private message bob → alice (`to`) → only alice gets it, whisper:true; bob: success sent {alice:true}', async () => {
    const m = await marks();
    const t = tx();
    await data(B, { textroom: 'message', transaction: t, room: s.room, text: 'psst, alice', to: 'alice' });
    await expect(m, new Map([
      [A, [{ textroom: 'message', room: s.room, from: 'bob', date: DATE, text: 'psst, alice', whisper: true }]],
      [B, [{ textroom: 'success', sent: { alice: true }, transaction: t }]],
    ]), 'private message');
  });

  step('announcement by alice (with the secret) → both get {announcement, room, date, text}; alice: success', async () => {
    const m = await marks();
    const t = tx();
    await data(A, { textroom: 'announcement', transaction: t, room: s.room, secret: s.secret, text: 'announcing' });
    const a = { textroom: 'announcement', room: s.room, date: DATE, text: 'announcing' };
    await expect(m, new Map([[A, [a, { textroom: 'success', transaction: t }]], [B, [a]]]), 'announcement');
  });

  step('bob leaves → his own leave, then success; alice gets leave bob; listparticipants → [alice]', async () => {
    const m = await marks();
    const t = tx();
    await data(B, { textroom: 'leave', transaction: t, room: s.room });
    const lv = { textroom: 'leave', room: s.room, username: 'bob' };
    await expect(m, new Map([[B, [lv, { textroom: 'success', transaction: t }]], [A, [lv]]]), 'bob leave');
    const r = await send(B, { request: 'listparticipants', room: s.room });
    // Janus 1.1.2: no "textroom" key in the listparticipants reply.
    assert.deepEqual(r.data, { room: s.room, participants: [entry(A)] });
  });

  step('alice leaves, then destroys the room on the Janus API → {textroom:"destroyed"}; her data channel still gets destroyed', async () => {
    let m = await marks();
    const t = tx();
    await data(A, { textroom: 'leave', transaction: t, room: s.room });
    const lv = { textroom: 'leave', room: s.room, username: 'alice' };
    await expect(m, new Map([[A, [lv, { textroom: 'success', transaction: t }]]]), 'alice leave');
    m = await marks();
    const r = await send(A, { request: 'destroy', room: s.room, secret: s.secret });
    assert.deepEqual(r.data, { textroom: 'destroyed', room: s.room, permanent: false });
    s.roomDestroyed = true;
    // Janus 1.1.2: the handle that asked for the destroy gets {"textroom":"destroyed"} on its data
    // channel even though it is no longer in the room (and even on the Janus API).
    await expect(m, new Map([[A, [{ textroom: 'destroyed', room: s.room }]]]), 'destroy');
    const x = await send(B, { request: 'exists', room: s.room });
    assert.deepEqual(x.data, { textroom: 'success', room: s.room, exists: false });
  });

  step('detach, destroy the sessions; no janus.js errors', async () => {
    for (const p of pages) {
      await ev(p, () => window.tr.detach(), undefined, 'detach');
      await ev(p, () => window.tr.destroy(), undefined, 'destroy');
      const x = await st(p);
      assert.deepEqual(x.errors, [], `${p.name}: janus.js reported errors: ${brief(x.errors)}`);
      assert.deepEqual(p.console.filter((l) => l.startsWith('[pageerror]')), []);
    }
    console.error(`[janus.js textroom] ${s.log.join('\n[janus.js textroom] ')}`);
  });
});
