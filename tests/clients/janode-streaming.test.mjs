// Real-client test: meetecho/janode's Streaming wrapper (`janode/plugins/streaming`) over the
// Janus WebSocket API, against `janus.plugin.streaming`. No media: `rtp` mountpoints created
// here (multistream and legacy syntax), their list/info, a viewer's watch (the plugin's offer),
// stop, destroy, and the error codes a viewer and an operator can reach. Expected values are what
// Janus 1.1.2 sends (checked with tests/clients/with-janus.sh).
//
// Env: JANUS_WS_URL (required). Skipped (loudly) when the server does not list the plugin.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import Janode from 'janode';
import StreamingPlugin from 'janode/plugins/streaming';

import { STEP_TIMEOUT_MS, withTimeout, isPositiveSafeInteger, brief, requireEnv } from './lib/util.mjs';

const WS_URL = requireEnv('JANUS_WS_URL');
const STREAMING = 'janus.plugin.streaming';
Janode.Logger.setLevel(process.env.JANODE_LOG || 'warn');

const BASE = 20_000_000 + Math.floor(Math.random() * 1_000_000) * 10;
const MP = BASE + 1; // multistream mountpoint
const MP2 = BASE + 2; // the same streams, a switch target
const SECRET = 'jano-secret';
const PIN = 'jano-pin';

const state = { conn: null, session: null, handles: [], replies: [], failed: null, legacyId: null };

async function probe() {
  let conn = null;
  try {
    conn = await withTimeout(Janode.connect({ address: { url: WS_URL }, retry_time_secs: 1, max_retries: 0 }), 5000, 'probe connect');
    const info = await withTimeout(conn.getInfo(), 5000, 'probe info');
    return !!(info.plugins && info.plugins[STREAMING]);
  } catch {
    return true; // let the steps fail with a clear message
  } finally {
    if (conn) { try { await withTimeout(conn.close(), 3000, 'probe close'); } catch { /* gone */ } }
  }
}
const SKIP = (await probe()) ? false : `the server does not list ${STREAMING} in info`;
if (SKIP) console.error(`[janode-streaming] SKIPPING the whole file: ${SKIP}`);

/** Steps run in order; after a failure the rest are skipped. */
function step(name, fn) {
  it(name, async (t) => {
    if (state.failed) { t.skip(`earlier step failed: ${state.failed}`); return; }
    try {
      await withTimeout(fn(), STEP_TIMEOUT_MS, name);
    } catch (e) {
      state.failed = name;
      console.error(`[janode-streaming] "${name}" failed; last replies: ${brief(state.replies.slice(-4), 2000)}`);
      throw e;
    }
  });
}

async function attach() {
  const h = await state.session.attach(StreamingPlugin);
  state.handles.push(h);
  return h;
}

/** The plugin's data in the last reply on the wire for `h` (janode maps it; the raw shape is checked too). */
function recordReplies(conn) {
  const orig = conn._handleMessage.bind(conn);
  conn._handleMessage = (msg) => {
    if (msg.plugindata) state.replies.push(JSON.parse(JSON.stringify(msg)));
    return orig(msg);
  };
}
const lastData = () => state.replies[state.replies.length - 1].plugindata.data;

/** A rejected promise with this Janus plugin error (janode's message: "<code> <text>"). */
async function expectError(promise, code, text) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.message, `${code} ${text}`);
    return true;
  });
}

describe(`janode Streaming over WebSocket (${WS_URL})`, { skip: SKIP }, () => {
  after(async () => {
    if (state.session) {
      const h = state.handles[0];
      if (h) {
        for (const id of [MP, MP2, state.legacyId].filter(Boolean)) {
          try { await withTimeout(h.message({ request: 'destroy', id, secret: SECRET }), 3000, 'cleanup'); } catch { /* gone */ }
        }
      }
      try { await withTimeout(state.session.destroy(), 3000, 'cleanup session'); } catch { /* gone */ }
    }
    if (state.conn) { try { await withTimeout(state.conn.close(), 3000, 'close'); } catch { /* closed */ } }
  });

  step('connect, session, attach the Streaming plugin', async () => {
    state.conn = await Janode.connect({ address: { url: WS_URL }, retry_time_secs: 1, max_retries: 0 });
    recordReplies(state.conn);
    state.session = await state.conn.create();
    const h = await attach();
    assert.ok(isPositiveSafeInteger(h.id));
  });

  step('createRtpMountpoint (multistream media) → created with one port per stream', async () => {
    const h = state.handles[0];
    const r = await h.createRtpMountpoint({
      id: MP, name: 'jano-multi', description: 'jano test', secret: SECRET, pin: PIN,
      media: [
        { type: 'audio', mid: 'a', port: 0, pt: 111, rtpmap: 'opus/48000/2' },
        { type: 'video', mid: 'v', port: 0, pt: 96, rtpmap: 'VP8/90000' },
      ],
    });
    assert.equal(r.id, MP);
    assert.equal(r.name, 'jano-multi');
    assert.equal(r.description, 'jano test');
    const d = lastData();
    assert.equal(d.streaming, 'created');
    assert.equal(d.permanent, false);
    assert.equal(d.stream.type, 'live');
    assert.equal(d.stream.is_private, false);
    assert.deepEqual(d.stream.ports.map((p) => [p.type, p.mid]), [['audio', 'a'], ['video', 'v']]);
    assert.ok(d.stream.ports.every((p) => Number.isInteger(p.port) && p.port > 0), brief(d.stream.ports));
  });

  step('createRtpMountpoint (legacy audio) → flat audio_port and the deprecated_api warning; id 0 = random; audiopt required', async () => {
    const h = state.handles[0];
    await expectError(h.message({ request: 'create', type: 'rtp', audio: true, audioport: 0, audiortpmap: 'PCMU/8000' }),
      453, 'Missing mandatory element (audiopt)');
    const r = await h.createRtpMountpoint({ secret: SECRET, audio: { port: 0, pt: 8, rtpmap: 'PCMA/8000' } });
    assert.ok(isPositiveSafeInteger(r.id), `id ${brief(r.id)}`);
    assert.ok(Number.isInteger(r.audio_port) && r.audio_port > 0, `audio_port ${brief(r.audio_port)}`);
    assert.equal(lastData().warning, 'deprecated_api');
    state.legacyId = r.id;
  });

  step('list and info: the mountpoint, its media; ports only with the secret', async () => {
    const h = state.handles[0];
    const l = await h.list();
    const mine = l.list.find((m) => m.id === MP);
    assert.ok(mine, `listed: ${brief(l.list)}`);
    assert.equal(mine.description, 'jano test');
    assert.equal(mine.type, 'live');
    assert.deepEqual(mine.media.map((m) => [m.mid, m.type]), [['a', 'audio'], ['v', 'video']]);
    const i = await h.info({ id: MP, secret: SECRET });
    assert.equal(i.id, MP);
    assert.equal(i.name, 'jano-multi');
    assert.equal(i.pin, PIN);
    assert.ok(i.media.every((m) => Number.isInteger(m.port) && m.port > 0), brief(i.media));
  });

  step('errors: info/watch of an unknown id → 455, watch without/with a wrong pin → 453/457, destroy with a wrong secret → 457', async () => {
    const h = state.handles[0];
    await expectError(h.info({ id: BASE + 9 }), 455, `No such mountpoint/stream ${BASE + 9}`);
    const v = await attach();
    await expectError(v.watch({ id: BASE + 9 }), 455, `No such mountpoint/stream ${BASE + 9}`);
    await expectError(v.watch({ id: MP }), 453, 'Missing mandatory element (pin)');
    await expectError(v.watch({ id: MP, pin: 'wrong' }), 457, 'Unauthorized (wrong pin)');
    await expectError(h.destroyMountpoint({ id: MP, secret: 'wrong' }), 457, 'Unauthorized (wrong secret)');
  });

  step('watch → preparing + an offer with a sendonly audio and video m-line; configure; switch; stop (not started) → stopping', async () => {
    const v = state.handles[1];
    const r = await v.watch({ id: MP, pin: PIN });
    assert.equal(r.status, 'preparing');
    assert.equal(r.jsep.type, 'offer');
    assert.match(r.jsep.sdp, /\r\nm=audio /);
    assert.match(r.jsep.sdp, /\r\nm=video /);
    assert.match(r.jsep.sdp, /\r\na=sendonly\r\n/);
    assert.match(r.jsep.sdp, /\r\na=rtpmap:\d+ opus\/48000\/2\r\n/);
    assert.match(r.jsep.sdp, /\r\na=rtpmap:\d+ VP8\/90000\r\n/);
    // configure (legacy video:false) → configured; switch to a mountpoint with the same
    // streams → switched ok with its id (no renegotiation).
    await state.handles[0].createRtpMountpoint({
      id: MP2, secret: SECRET, media: [
        { type: 'audio', mid: 'a', port: 0, pt: 111, rtpmap: 'opus/48000/2' },
        { type: 'video', mid: 'v', port: 0, pt: 96, rtpmap: 'VP8/90000' },
      ],
    });
    await v.configure({ video: false });
    const sw = await v.switch({ id: MP2 });
    assert.deepEqual(sw, { switched: 'ok', id: MP2 });
    // Janus 1.1.2 ignores `stop` from a viewer that never started (no event at all, so the
    // client waits forever); jano answers `stopping`.
    if (process.env.CLIENT_SERVER_IS_JANUS) return;
    const s = await v.stop();
    assert.equal(s.status, 'stopping');
  });

  step('disable/enable (secret required) → ok; list shows enabled false, then true', async () => {
    const h = state.handles[0];
    await expectError(h.disable({ id: MP, secret: 'wrong' }), 457, 'Unauthorized (wrong secret)');
    // stop_recording: false — Janus 1.1.2 crashes on `disable` with stop_recording (the default)
    // when nothing is recorded (it logs the file name of a recorder that is not there).
    await h.disable({ id: MP, secret: SECRET, stop_recording: false });
    assert.deepEqual(lastData(), { streaming: 'ok' });
    let l = await h.list();
    assert.equal(l.list.find((m) => m.id === MP).enabled, false);
    await h.enable({ id: MP, secret: SECRET });
    l = await h.list();
    assert.equal(l.list.find((m) => m.id === MP).enabled, true);
  });

  step('destroyMountpoint → destroyed (janode reads its id); gone from list', async () => {
    const h = state.handles[0];
    const d = await h.destroyMountpoint({ id: MP, secret: SECRET });
    assert.equal(d.id, MP);
    await h.destroyMountpoint({ id: state.legacyId, secret: SECRET });
    await h.destroyMountpoint({ id: MP2, secret: SECRET });
    state.legacyId = null;
    const l = await h.list();
    assert.ok(!l.list.some((m) => m.id === MP));
  });
});
