// End-to-end AudioBridge test: janus.js (npm `janus-gateway`) in Debian's headless Chromium
// against `janus.plugin.audiobridge`, used the way Janus's own AudioBridge demo
// (audiobridgetest.js) uses it, plus a second participant: an aiortc peer (audiobridge_peer.py,
// spawned here, JSON lines on stdin/stdout, its own Janus session over HTTP) sending a 1000 Hz tone.
//   * the page creates a room of its own (48 kHz) and joins it without JSEP; on its `joined` it
//     createOffer()s Chromium's fake microphone (a beep) with {type:"audio", capture:true,
//     recv:true} and sends it with {request:"configure", muted:false} → {"audiobridge":"event",
//     "result":"ok"} + the answer; the PeerConnection comes up; the mix it gets while alone is
//     silence (getStats: inbound-rtp audioLevel / totalAudioEnergy);
//   * the aiortc peer joins: its `joined` lists the page (setup:true); the page gets `joined`
//     [peer, setup:false], then `event` participants [peer, setup:true];
//   * the page's inbound-rtp audio: packets keep coming, audioLevel and the power from
//     totalAudioEnergy rise well above silence; the aiortc peer hears the page's beeps;
//   * listparticipants: both, setup:true; the peer leaves (detach) → the page gets `leaving`
//     and the mix falls back to silence; the page leaves (`left`), destroys the room, detaches.
// Once with the page on WebSocket (JANUS_WS_URL), once on HTTP long poll (JANUS_HTTP_URL).
// Runs inside the test network namespace (tests/media/run.sh).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { startBrowser } from './lib/browser.mjs';

import { STEP_TIMEOUT_MS, withTimeout, waitFor, isPositiveSafeInteger, brief, requireEnv } from '../clients/lib/util.mjs';

const HTTP_URL = requireEnv('JANUS_HTTP_URL').replace(/\/+$/, '');
const WS_URL = requireEnv('JANUS_WS_URL');
const MEDIA_ADDR = process.env.JANUS_MEDIA_ADDR || '';
const PYTHON = process.env.PYTHON || 'python3';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const PEER_HZ = 1000;
// audioLevel is 0..1 (1 = full scale); the peer's tone is at 1/4 of full scale. Silence is what
// the server sends a participant that is alone (its own voice removed): exactly 0 in Chromium.
const SILENT_LEVEL = 0.01;
const HEARD_LEVEL = 0.05;
// Mean power over a window from totalAudioEnergy / totalSamplesDuration (a 1/4 full-scale sine:
// about 0.03).
const SILENT_POWER = 1e-4;
const HEARD_POWER = 3e-3;
const MEASURE_MS = 2000;

let g = null;

before(async () => {
  g = await startBrowser('jano janus.js audiobridge test', 'jano-media-audiobridge-', { extraScripts: ['/audiobridge-harness.js'] });
  console.error(`[janus.js audiobridge] chromium ${g.browser.version()}; page ${g.origin}; ${WS_URL} ${HTTP_URL}; media address ${MEDIA_ADDR || '(any)'}`);
});

after(async () => {
  if (g) await g.close();
});

function audiobridgeFlow(tag, server) {
  describe(`janus.js AudioBridge over ${tag} (${server}) with an aiortc participant`, () => {
    const s = {
      page: null, ctx: null, console: [], wire: [], failed: null, room: null, roomDestroyed: false,
      hid: null, myid: null, peer: null, peerLines: [], peerErr: '', peerId: null, peerGone: false,
      silent: null, log: [],
    };
    const note = (line) => { s.log.push(`${new Date().toISOString().slice(11, 23)} ${line}`); };
    const ev = (fn, arg, label) => withTimeout(s.page.evaluate(fn, arg), STEP_TIMEOUT_MS + 2000, `page: ${label}`);
    const st = (sdp = false) => ev((x) => window.ab.state(x), sdp, 'state');
    const send = (body) => ev((b) => window.ab.send(b), body, body.request);
    const stats = () => ev(() => window.ab.stats(), undefined, 'stats');
    const toPeer = (obj) => s.peer.stdin.write(JSON.stringify(obj) + '\n');
    const isError = (m) => m && m.error_code !== undefined;
    const stripSdp = (m) => (m && m.jsep && m.jsep.sdp ? { ...m, jsep: { ...m.jsep, sdp: `<${m.jsep.sdp.length} chars>` } } : m);

    async function refreshWire() {
      s.wire = await withTimeout(s.page.evaluate(() => window.ab.wire()), 3000, 'read wire log');
      return s.wire;
    }
    /** Every Janus message the server sent to the page: WS frames in, HTTP replies and long polls. */
    function serverMessages() {
      const out = [];
      for (const e of s.wire) {
        if (e.kind === 'ws' && e.dir === 'in') out.push(e.msg);
        if (e.kind === 'http' && e.res !== undefined) for (const m of Array.isArray(e.res) ? e.res : [e.res]) out.push(m);
      }
      return out;
    }
    function dump() {
      const wire = s.wire.slice(-30).map((e) => e.kind === 'http'
        ? `  ${e.method} ${e.url} ${e.req ? brief(stripSdp(e.req), 300) : ''} → ${e.status ?? e.error ?? 'pending'} ${e.res !== undefined ? brief(Array.isArray(e.res) ? e.res.map(stripSdp) : stripSdp(e.res), 600) : ''}`
        : `  ws ${e.dir} ${brief(stripSdp(e.msg) ?? { protocol: e.protocol, code: e.code }, 600)}`);
      return `page console (last 25):\n${s.console.slice(-25).map((l) => '  ' + l).join('\n')}\npage wire (last ${wire.length}):\n${wire.join('\n')}\n` +
        `peer stdout:\n${s.peerLines.slice(-15).map((l) => '  ' + brief(l, 400)).join('\n')}\npeer stderr (last 1500 chars):\n${s.peerErr.slice(-1500)}`;
    }
    function step(name, fn, { timeoutMs = STEP_TIMEOUT_MS + 5000 } = {}) {
      it(name, async (t) => {
        if (s.failed) { t.skip(`earlier step failed: ${s.failed}`); return; }
        try {
          await withTimeout(fn(t), timeoutMs, name);
        } catch (err) {
          s.failed = name;
          let extra = '';
          try { await refreshWire(); } catch { /* page gone */ }
          extra += `\n${dump()}`;
          try {
            const x = await st();
            extra += `\npage events ${brief(x.events.map((e) => ({ t: e.t, msg: e.msg, jsep: e.jsep && e.jsep.type })), 2500)}` +
              `\n  webrtcState ${brief(x.webrtcState)} errors ${brief(x.errors)} remoteTracks ${brief(x.remoteTracks, 600)}`;
          } catch { /* ignore */ }
          try { extra += `\npage stats: ${brief(await stats(), 2000)}`; } catch { /* ignore */ }
          console.error(`\n[janus.js audiobridge ${tag}] step "${name}" failed: ${err && err.stack || err}\n` +
            `test log:\n${s.log.map((l) => '  ' + l).join('\n')}${extra}\n`);
          throw err;
        }
      });
    }
    /** waitFor (polling every 100 ms) whose failure message is computed when it fails. */
    async function waitFor2(fn, ms, label) {
      try {
        return await waitFor(fn, ms, 'condition', 100);
      } catch (err) {
        if (/^timeout after/.test(err.message)) throw new Error(`timeout after ${ms} ms waiting for: ${label()}`);
        throw err;
      }
    }
    /** The first plugin event (onmessage) at or after `since` matching `pred`. */
    async function waitEvent(pred, ms, label, since = 0) {
      let seen = [];
      return waitFor2(async () => {
        const evs = (await st()).events.filter((e) => e.t >= since);
        seen = evs.map((e) => e.msg);
        return evs.find((e) => pred(e.msg, e.jsep)) || null;
      }, ms, () => `${label} (events so far: ${brief(seen, 1500)})`);
    }
    const peerSays = (pred, ms, label) => waitFor2(async () => s.peerLines.find(pred), ms,
      () => `${label} (peer said: ${brief(s.peerLines.slice(-5), 800)})`);
    /** The page's inbound audio (the mix) over `ms`: packets, level, mean power. */
    async function hearing(ms = MEASURE_MS) {
      const a = await stats();
      await new Promise((r) => setTimeout(r, ms));
      const b = await stats();
      const ia = a.inbound[0] || {}; const ib = b.inbound[0] || {};
      const dur = (ib.totalSamplesDuration || 0) - (ia.totalSamplesDuration || 0);
      const energy = (ib.totalAudioEnergy || 0) - (ia.totalAudioEnergy || 0);
      return {
        packets: (ib.packetsReceived || 0) - (ia.packetsReceived || 0), level: ib.audioLevel, power: dur > 0 ? energy / dur : null,
        duration: Math.round(dur * 1000) / 1000, inbound: ib, outbound: b.outbound[0] || null, source: b.source[0] || null,
      };
    }
    const entry = (id, display, setup) => ({ id, display, setup, muted: false });
    // Janus 1.1.2 adds "talking" to entries of a `joined` reply / listparticipants for a
    // participant that negotiated the audio-level extension (both do): optional, boolean.
    const noTalking = (e) => {
      const x = { ...e };
      if ('talking' in x) { assert.equal(typeof x.talking, 'boolean', `talking: ${brief(e)}`); delete x.talking; }
      return x;
    };

    before(async () => {
      s.ctx = await g.browser.newContext();
      s.page = await s.ctx.newPage();
      s.page.on('console', (m) => s.console.push(`[${m.type()}] ${m.text()}`));
      s.page.on('pageerror', (e) => s.console.push(`[pageerror] ${e.message}`));
    });

    after(async () => {
      if (s.peer && s.peer.exitCode === null) {
        try { toPeer({ close: true }); s.peer.stdin.end(); } catch { /* gone */ }
        await withTimeout(new Promise((r) => s.peer.once('exit', r)), 8000, 'peer exit').catch(() => s.peer.kill('SIGKILL'));
      }
      if (s.room !== null && !s.roomDestroyed && s.page) {
        try { await send({ request: 'destroy', room: s.room }); } catch { /* best effort */ }
      }
      if (s.ctx) await withTimeout(s.ctx.close(), 10000, 'context close').catch(() => {});
    });

    step('Janus.init, new Janus({server}), attach janus.plugin.audiobridge', async () => {
      await s.page.goto(`${g.origin}/`, { timeout: STEP_TIMEOUT_MS });
      const r = await ev(() => window.ab.init(), undefined, 'init');
      assert.equal(r.webrtc, true);
      const c = await ev((srv) => window.ab.create(srv), server, 'create');
      assert.ok(isPositiveSafeInteger(c.sessionId), `session id ${brief(c.sessionId)}`);
      const a = await ev(() => window.ab.attach(), undefined, 'attach');
      assert.ok(isPositiveSafeInteger(a.handleId), `handle id ${brief(a.handleId)}`);
      s.hid = a.handleId;
    });

    step('create a room of its own (48 kHz) → created; exists → true', async () => {
      const r = await send({ request: 'create', description: `jano audiobridge janus.js test ${tag} ${process.pid}`, sampling_rate: 48000 });
      note(`create → ${brief(r.data)}`);
      assert.ok(r.data, 'janus.js got no plugin data for the synchronous create');
      assert.equal(r.data.audiobridge, 'created', brief(r.data));
      assert.ok(isPositiveSafeInteger(r.data.room), `room id ${brief(r.data.room)}`);
      assert.equal(r.data.permanent, false);
      s.room = r.data.room;
      const x = await send({ request: 'exists', room: s.room });
      assert.deepEqual(x.data, { audiobridge: 'success', room: s.room, exists: true });
    });

    step('join (no JSEP) → joined {room, id, participants:[]}; as the demo: createOffer (fake microphone) + configure {muted:false} → result ok + answer', async () => {
      const t0 = Date.now();
      await send({ request: 'join', room: s.room, display: 'chromium' });
      const j = await waitEvent((m) => m.audiobridge === 'joined' || isError(m), STEP_TIMEOUT_MS, '{audiobridge:"joined"}', t0);
      note(`joined: ${brief(j.msg)}`);
      // Janus 1.1.2: exactly these keys (no display of one's own), no JSEP.
      assert.deepEqual(Object.keys(j.msg).sort(), ['audiobridge', 'id', 'participants', 'room'], brief(j.msg));
      assert.equal(j.msg.room, s.room);
      assert.ok(isPositiveSafeInteger(j.msg.id), `id ${brief(j.msg.id)}`);
      assert.deepEqual(j.msg.participants, []);
      assert.equal(j.jsep, null, 'a join without an offer gets no JSEP');
      s.myid = j.msg.id;
      // The harness answers `joined` with createOffer + configure, as the demo does.
      const e = await waitEvent((m, jsep) => !!jsep || isError(m), STEP_TIMEOUT_MS, 'the configure event with the answer', t0);
      const x = await st(true);
      note(`configure sent ${x.configureSent - j.t} ms after joined; answered ${e.t - x.configureSent} ms later: ${brief(e.msg)}`);
      // Janus 1.1.2: {"audiobridge":"event","result":"ok"} (no room).
      assert.deepEqual(e.msg, { audiobridge: 'event', result: 'ok' });
      assert.equal(e.jsep.type, 'answer');
      assert.match(x.offer.sdp, /\r\nm=audio /);
      assert.match(x.offer.sdp, /\r\na=sendrecv\r\n/, 'janus.js offers sendrecv audio');
      const ans = x.answer.sdp;
      assert.match(ans, /\r\nm=audio [1-9]\d* /, 'the answer accepts the audio m-line');
      assert.match(ans, /\r\na=rtpmap:\d+ opus\/48000\/2\r\n/i);
      assert.match(ans, /\r\na=fingerprint:sha-256 /);
      assert.match(ans, /\r\na=ice-ufrag:/);
      assert.ok(!/\r\na=(sendonly|recvonly|inactive)\r\n/.test(ans), 'a sendrecv answer');
      if (MEDIA_ADDR) assert.ok(ans.includes(` ${MEDIA_ADDR} `), `the answer carries no candidate on ${MEDIA_ADDR}`);
    });

    step('webrtcState(true), webrtcup, media {audio, receiving:true}; alone, the page receives silence while its microphone beeps', async () => {
      await waitFor(async () => (await st()).webrtcState.find((x) => x.on === true), 15000, 'webrtcState(true)');
      await waitFor2(async () => {
        await refreshWire();
        const msgs = serverMessages().filter((m) => m.sender === s.hid);
        return msgs.some((m) => m.janus === 'webrtcup') && msgs.some((m) => m.janus === 'media' && m.type === 'audio' && m.receiving === true);
      }, 10000, () => `webrtcup + media {type:"audio", receiving:true} (got ${brief(serverMessages().filter((m) => m.sender === s.hid && m.janus !== 'event').map((m) => m.janus))})`);
      // Let the first packets through, then measure.
      await new Promise((r) => setTimeout(r, 500));
      const h = await hearing();
      s.silent = h;
      note(`alone: ${brief({ packets: h.packets, level: h.level, power: h.power, duration: h.duration, outbound: h.outbound, source: h.source })}`);
      assert.ok(h.outbound && h.outbound.packetsSent > 0, `the page sends no audio: ${brief(h.outbound)}`);
      assert.ok(h.source && h.source.totalAudioEnergy > 0, `Chromium's fake microphone is silent: ${brief(h.source)}`);
      // Silence, whether the server sends encoded silence (Janus: ~50 packets/s) or nothing.
      assert.ok(!(h.level > SILENT_LEVEL), `alone in the room the page hears audioLevel ${h.level}`);
      assert.ok(!(h.power > SILENT_POWER), `alone in the room the page hears power ${h.power}`);
    }, { timeoutMs: 40000 });

    step(`an aiortc participant (${PEER_HZ} Hz) joins: its joined lists the page (setup:true); the page gets joined [peer setup:false], then event [peer setup:true]`, async () => {
      const t0 = Date.now();
      s.peer = spawn(PYTHON, [path.join(HERE, 'audiobridge_peer.py'), '--http', HTTP_URL, '--room', String(s.room),
        '--display', 'aiortc', '--hz', String(PEER_HZ), '--timeout', '60'], { stdio: ['pipe', 'pipe', 'pipe'] });
      readline.createInterface({ input: s.peer.stdout }).on('line', (l) => {
        try { s.peerLines.push(JSON.parse(l)); } catch { s.peerLines.push({ raw: l }); }
      });
      s.peer.stderr.on('data', (d) => { s.peerErr += d; });
      s.peer.on('exit', (code) => s.peerLines.push({ exit: code }));
      const j = await peerSays((l) => l.joined || l.error || l.exit !== undefined, STEP_TIMEOUT_MS, 'the peer\'s joined');
      assert.ok(j.joined, `the peer did not join: ${brief(j)}`);
      note(`peer joined: ${brief(j.joined)}`);
      assert.equal(j.joined.audiobridge, 'joined');
      assert.equal(j.joined.room, s.room);
      s.peerId = j.joined.id;
      assert.ok(isPositiveSafeInteger(s.peerId) && s.peerId !== s.myid, `peer id ${brief(s.peerId)}`);
      assert.deepEqual((j.joined.participants || []).map(noTalking), [entry(s.myid, 'chromium', true)]);
      const c = await peerSays((l) => l.state === 'connected' || l.state === 'failed' || l.error || l.exit !== undefined, 20000, 'the peer connected');
      assert.equal(c.state, 'connected', brief(c));
      const a = await waitEvent((m) => m.audiobridge === 'joined' && m.id === undefined, STEP_TIMEOUT_MS, 'joined [peer]', t0);
      note(`page told: ${brief(a.msg)}`);
      assert.deepEqual(a.msg, { audiobridge: 'joined', room: s.room, participants: [entry(s.peerId, 'aiortc', false)] });
      const b = await waitEvent((m) => m.audiobridge === 'event' && Array.isArray(m.participants), STEP_TIMEOUT_MS, 'event participants [peer setup:true]', t0);
      note(`page told: ${brief(b.msg)} (${b.t - a.t} ms after joined)`);
      assert.deepEqual(b.msg, { audiobridge: 'event', room: s.room, participants: [entry(s.peerId, 'aiortc', true)] });
    }, { timeoutMs: 60000 });

    step('the page hears the peer: inbound-rtp audio packets keep coming, audioLevel and the power from totalAudioEnergy rise above silence', async () => {
      let last = null;
      await waitFor2(async () => {
        last = await stats();
        const i = last.inbound[0];
        return i && i.audioLevel > HEARD_LEVEL;
      }, 15000, () => `inbound audioLevel > ${HEARD_LEVEL} (inbound ${brief(last && last.inbound)})`);
      const h = await hearing();
      note(`with the peer: ${brief({ packets: h.packets, level: h.level, power: h.power, duration: h.duration, codec: h.inbound.codec, lost: h.inbound.packetsLost, concealed: h.inbound.concealedSamples })}`);
      assert.ok(h.packets >= 0.6 * (MEASURE_MS / 20), `only ${h.packets} audio packets in ${MEASURE_MS} ms`);
      assert.ok(h.level > HEARD_LEVEL, `audioLevel ${h.level} (silence was ${s.silent.level})`);
      assert.ok(h.power > HEARD_POWER, `mean power ${h.power} from totalAudioEnergy (silence was ${s.silent.power})`);
      assert.ok(h.duration > 0.6 * (MEASURE_MS / 1000), `only ${h.duration} s of audio played out in ${MEASURE_MS} ms`);
      if (MEDIA_ADDR) {
        const p = (await stats()).pair;
        if (p && p.remote) assert.equal(p.remote.address, MEDIA_ADDR, `selected remote candidate ${brief(p.remote)}`);
      }
    }, { timeoutMs: 30000 });

    step('the peer hears the page: the fake microphone\'s beeps reach it through the mix', async () => {
      let lv = null;
      await waitFor2(async () => {
        const n = s.peerLines.length;
        toPeer({ levels: 2 });
        const l = await peerSays((x, i) => i >= n && (x.levels || x.error || x.exit !== undefined), 5000, 'levels');
        assert.ok(l.levels, `peer: ${brief(l)}`);
        lv = l.levels;
        return lv.frames >= 60 && lv.loud_frames >= 1 ? lv : null;
      }, 15000, () => `the peer to decode ≥ 60 frames in 2 s with at least one loud (RMS ≥ 300) frame: ${brief(lv)}`);
      note(`peer hears: ${brief(lv)}`);
    }, { timeoutMs: 30000 });

    step('listparticipants → the page and the peer, both setup:true', async () => {
      const r = await send({ request: 'listparticipants', room: s.room });
      assert.equal(r.data.audiobridge, 'participants', brief(r.data));
      assert.equal(r.data.room, s.room);
      const got = r.data.participants.map(noTalking).sort((a, b) => a.id - b.id);
      const want = [entry(s.myid, 'chromium', true), entry(s.peerId, 'aiortc', true)].sort((a, b) => a.id - b.id);
      assert.deepEqual(got, want);
    });

    step('the peer leaves (detach) → the page gets {"leaving": peer}; its mix falls back to silence', async () => {
      const t0 = Date.now();
      toPeer({ close: true });
      const c = await peerSays((l) => l.closed || l.error || l.exit !== undefined, STEP_TIMEOUT_MS, 'the peer closed');
      assert.ok(c.closed, `peer: ${brief(c)}`);
      s.peerGone = true;
      const l = await waitEvent((m) => m.leaving !== undefined, STEP_TIMEOUT_MS, '{leaving: peer}', t0);
      assert.deepEqual(l.msg, { audiobridge: 'event', room: s.room, leaving: s.peerId });
      let h = null;
      await waitFor2(async () => {
        h = await hearing(1000);
        return !(h.level > SILENT_LEVEL) && !(h.power > SILENT_POWER);
      }, 10000, () => `silence again (last: ${brief({ level: h && h.level, power: h && h.power, packets: h && h.packets })})`);
      note(`after the peer left: ${brief({ level: h.level, power: h.power, packets: h.packets })}`);
    }, { timeoutMs: 30000 });

    step('leave → left; destroy the room → destroyed; exists → false', async () => {
      const t0 = Date.now();
      await send({ request: 'leave' });
      const l = await waitEvent((m) => m.audiobridge === 'left' || isError(m), STEP_TIMEOUT_MS, '{audiobridge:"left"}', t0);
      assert.deepEqual(l.msg, { audiobridge: 'left', room: s.room, id: s.myid });
      const r = await send({ request: 'destroy', room: s.room });
      assert.deepEqual(r.data, { audiobridge: 'destroyed', room: s.room, permanent: false });
      s.roomDestroyed = true;
      const x = await send({ request: 'exists', room: s.room });
      assert.deepEqual(x.data, { audiobridge: 'success', room: s.room, exists: false });
    });

    step('detach, destroy the session; no janus.js errors', async () => {
      await ev(() => window.ab.detach(), undefined, 'detach');
      await ev(() => window.ab.destroy(), undefined, 'destroy');
      const x = await st();
      assert.deepEqual(x.errors, [], `janus.js reported errors: ${brief(x.errors)}`);
      assert.deepEqual(s.console.filter((l) => l.startsWith('[pageerror]')), []);
      console.error(`[janus.js audiobridge ${tag}] ${s.log.join(`\n[janus.js audiobridge ${tag}] `)}`);
    });
  });
}

audiobridgeFlow('ws', WS_URL);
audiobridgeFlow('http', HTTP_URL);
