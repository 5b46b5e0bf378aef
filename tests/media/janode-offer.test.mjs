// End-to-end: Janode (npm `janode`) EchoTest with a JSEP offer, over WebSocket (JANUS_WS_URL).
//
// Janode cannot create an offer itself: an aiortc peer (offer_peer.py, spawned here, talking
// JSON lines on stdin/stdout) produces one (audio + video + data channel, all candidates in the
// SDP, trickle:false). The offer goes through janode's EchoTest plugin class (`start({audio,
// video, jsep})`); the answer it returns must be a real answer (fingerprint, ICE credentials,
// candidates on the namespace address); the peer applies it and must connect; Janode must
// report the server's `webrtcup` and `media` events; then hangup (→ `hangup` event), detach,
// destroy, close.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import Janode from 'janode';
import EchoTestPlugin from 'janode/plugins/echotest';

import { STEP_TIMEOUT_MS, withTimeout, waitFor, isPositiveSafeInteger, brief, requireEnv } from '../clients/lib/util.mjs';

const WS_URL = requireEnv('JANUS_WS_URL');
const MEDIA_ADDR = process.env.JANUS_MEDIA_ADDR || '';
const PYTHON = process.env.PYTHON || 'python3';
const HERE = path.dirname(fileURLToPath(import.meta.url));

Janode.Logger.setLevel(process.env.JANODE_LOG || 'warn');

const s = {
  peer: null, peerLines: [], peerErr: '', conn: null, session: null, handle: null,
  events: [], failed: null, answer: null,
};

function dump() {
  return `peer stdout:\n${s.peerLines.slice(-20).map((l) => '  ' + brief(l, 300)).join('\n')}\n` +
    `peer stderr (last 1500 chars):\n${s.peerErr.slice(-1500)}\n` +
    `janode handle events:\n${s.events.map((e) => '  ' + brief(e, 300)).join('\n')}`;
}

function step(name, fn, { timeoutMs = STEP_TIMEOUT_MS + 5000 } = {}) {
  it(name, async (t) => {
    if (s.failed) { t.skip(`earlier step failed: ${s.failed}`); return; }
    try {
      await withTimeout(fn(t), timeoutMs, name);
    } catch (err) {
      s.failed = name;
      console.error(`\n[janode media] step "${name}" failed: ${err && err.stack || err}\n${dump()}\n`);
      throw err;
    }
  });
}

const peerSays = (pred, ms, label) => waitFor(() => s.peerLines.find(pred), ms, label, 20);
const toPeer = (obj) => s.peer.stdin.write(JSON.stringify(obj) + '\n');

describe(`Janode EchoTest with an aiortc offer over WebSocket (${WS_URL})`, () => {
  before(() => {
    s.peer = spawn(PYTHON, [path.join(HERE, 'offer_peer.py'), '--timeout', '40'], { stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: s.peer.stdout }).on('line', (l) => {
      try { s.peerLines.push(JSON.parse(l)); } catch { s.peerLines.push({ raw: l }); }
    });
    s.peer.stderr.on('data', (d) => { s.peerErr += d; });
    s.peer.on('exit', (code) => s.peerLines.push({ exit: code }));
  });

  after(async () => {
    if (s.conn) await withTimeout(s.conn.close(), 5000, 'connection close').catch(() => {});
    if (s.peer && s.peer.exitCode === null) {
      try { toPeer({ close: true }); s.peer.stdin.end(); } catch { /* gone */ }
      await withTimeout(new Promise((r) => s.peer.once('exit', r)), 5000, 'peer exit').catch(() => s.peer.kill('SIGKILL'));
    }
  });

  step('connect, create session, attach janode/plugins/echotest', async () => {
    // One attempt: by default janode retries a failed connection for about a minute.
    s.conn = await Janode.connect({ is_admin: false, address: { url: WS_URL }, max_retries: 0, retry_time_secs: 1 });
    s.session = await s.conn.create();
    assert.ok(isPositiveSafeInteger(s.session.id), `session id ${brief(s.session.id)}`);
    s.handle = await s.session.attach(EchoTestPlugin);
    assert.ok(isPositiveSafeInteger(s.handle.id), `handle id ${brief(s.handle.id)}`);
    for (const [name, evt] of [['webrtcup', Janode.EVENT.HANDLE_WEBRTCUP], ['media', Janode.EVENT.HANDLE_MEDIA],
      ['hangup', Janode.EVENT.HANDLE_HANGUP], ['detached', Janode.EVENT.HANDLE_DETACHED]]) {
      s.handle.on(evt, (data) => s.events.push({ name, data: data || {} }));
    }
  });

  step('aiortc produced an offer; start({audio,video,jsep}) → result ok + a real answer', async () => {
    const o = await peerSays((l) => l.offer || l.exit !== undefined, 15000, 'the offer from offer_peer.py');
    assert.ok(o.offer, `offer_peer.py exited: ${brief(o)}`);
    assert.equal(o.offer.type, 'offer');
    const r = await s.handle.start({ audio: true, video: true, jsep: o.offer });
    assert.equal(r.result, 'ok');
    const jsep = r.jsep;
    assert.ok(jsep, `janode's start() must return the answer jsep: ${brief(r)}`);
    assert.equal(jsep.type, 'answer');
    const sdp = jsep.sdp;
    assert.match(sdp, /\r\na=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\r\n/);
    assert.match(sdp, /\r\na=ice-ufrag:\S+\r\n/);
    assert.match(sdp, /\r\na=ice-pwd:\S{22,}\r\n/);
    for (const m of ['audio', 'video', 'application']) assert.match(sdp, new RegExp(`\\r\\nm=${m} `), `answer has no m=${m}`);
    const cands = sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
    // The offer said trickle:false, so the answer must be complete: candidates in the SDP.
    assert.ok(cands.length > 0 || /\r\na=end-of-candidates/.test(sdp), 'answer has neither candidates nor end-of-candidates');
    assert.ok(cands.length > 0, 'the peer does not trickle: the answer must carry the server\'s candidates');
    if (MEDIA_ADDR) assert.ok(cands.some((c) => c.includes(` ${MEDIA_ADDR} `)), `no candidate on ${MEDIA_ADDR}: ${brief(cands)}`);
    s.answer = jsep;
  });

  step('the peer connects with the answer; Janode sees webrtcup and media {receiving:true}', async () => {
    toPeer({ answer: { type: 'answer', sdp: s.answer.sdp } });
    const st = await peerSays((l) => l.state === 'connected' || l.state === 'failed' || l.exit !== undefined, 15000, 'peer connected');
    assert.equal(st.state, 'connected', `peer: ${brief(st)}`);
    await waitFor(() => s.events.some((e) => e.name === 'webrtcup'), 10000, 'janode HANDLE_WEBRTCUP');
    await waitFor(() => ['audio', 'video'].every((k) => s.events.some((e) => e.name === 'media' && e.data.type === k && e.data.receiving === true)),
      10000, 'janode HANDLE_MEDIA receiving:true for audio and video');
    for (const e of s.events.filter((x) => x.name === 'media')) assert.equal(typeof e.data.mid, 'string', `media mid: ${brief(e)}`);
    await peerSays((l) => l.media, 10000, 'echoed frames at the peer');
  }, { timeoutMs: 40000 });

  step('hangup → success, then the hangup event', async () => {
    await s.handle.hangup();
    const h = await waitFor(() => s.events.find((e) => e.name === 'hangup'), 10000, 'janode HANDLE_HANGUP');
    assert.equal(typeof h.data.reason, 'string');
  });

  step('detach, destroy session, close', async () => {
    await s.handle.detach();
    await s.session.destroy();
    await s.conn.close();
    s.conn = null;
  });
});
