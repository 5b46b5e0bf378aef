// End-to-end media test: janus.js (npm `janus-gateway`) in Debian's headless Chromium, with
// Chromium's fake camera and microphone, against the EchoTest plugin, over HTTP long poll
// (JANUS_HTTP_URL) and WebSocket (JANUS_WS_URL). Runs inside the test network namespace
// (tests/media/run.sh), so Chromium's host candidates are the namespace address.
//
// Proves: createOffer (audio + video + data channel) → send({audio,video}, jsep) → answer in
// onmessage → webrtcState(true) → remote video plays (videoWidth > 0, requestVideoFrameCallback
// counts frames, currentTime advances) → data channel answers → the server's `webrtcup` and
// `media` events → hangup → the server's `hangup` event → detach → destroy.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startBrowser } from './lib/browser.mjs';

import { STEP_TIMEOUT_MS, withTimeout, waitFor, isPositiveSafeInteger, brief, requireEnv } from '../clients/lib/util.mjs';

const HTTP_URL = requireEnv('JANUS_HTTP_URL').replace(/\/+$/, '');
const WS_URL = requireEnv('JANUS_WS_URL');
const MEDIA_ADDR = process.env.JANUS_MEDIA_ADDR || '';
const MIN_FRAMES = Number(process.env.JANO_MEDIA_MIN_FRAMES || 30);
const ECHO_TEXT_PREFIX = 'Janus EchoTest here! You wrote: ';

let g = null;

before(async () => {
  g = await startBrowser('jano janus.js media test', 'jano-media-janusjs-');
  console.error(`[janus.js media] chromium ${g.browser.version()}; page ${g.origin}; ${HTTP_URL} ${WS_URL}; media address ${MEDIA_ADDR || '(any)'}`);
});

after(async () => {
  if (g) await g.close();
});

function mediaFlow(kind, server) {
  describe(`janus.js EchoTest media over ${kind === 'ws' ? 'WebSocket' : 'HTTP long poll'} (${server})`, () => {
    const s = { page: null, ctx: null, console: [], failed: null, sid: null, hid: null, wire: [] };

    const ev = (fn, arg, label) => withTimeout(s.page.evaluate(fn, arg), STEP_TIMEOUT_MS + 2000, label);
    const st = () => ev(() => window.jm.state(), undefined, 'state');
    async function refreshWire() {
      s.wire = await withTimeout(s.page.evaluate(() => window.jm.wire()), 3000, 'read wire log');
      return s.wire;
    }
    /** Every Janus message the server sent: WS frames in, HTTP replies and long-poll arrays. */
    function serverMessages() {
      const out = [];
      for (const e of s.wire) {
        if (e.kind === 'ws' && e.dir === 'in') out.push(e.msg);
        if (e.kind === 'http' && e.res !== undefined) for (const m of Array.isArray(e.res) ? e.res : [e.res]) out.push(m);
      }
      return out;
    }
    const stripSdp = (m) => (m && m.jsep && m.jsep.sdp ? { ...m, jsep: { ...m.jsep, sdp: `<${m.jsep.sdp.length} chars>` } } : m);
    function dump() {
      const wire = s.wire.slice(-40).map((e) => e.kind === 'http'
        ? `  ${e.method} ${e.url} ${e.req ? brief(stripSdp(e.req), 300) : ''} → ${e.status ?? e.error ?? 'pending'} ${e.res !== undefined ? brief(Array.isArray(e.res) ? e.res.map(stripSdp) : stripSdp(e.res), 500) : ''}`
        : `  ws ${e.dir} ${brief(stripSdp(e.msg) ?? { protocol: e.protocol, code: e.code }, 500)}`);
      return `browser console (last 40):\n${s.console.slice(-40).map((l) => '  ' + l).join('\n')}\nwire (last ${wire.length}):\n${wire.join('\n')}`;
    }
    function step(name, fn, { timeoutMs = STEP_TIMEOUT_MS + 5000 } = {}) {
      it(name, async (t) => {
        if (s.failed) { t.skip(`earlier step failed: ${s.failed}`); return; }
        try {
          await withTimeout(fn(t), timeoutMs, name);
        } catch (err) {
          s.failed = name;
          try { await refreshWire(); } catch { /* page gone */ }
          let extra = '';
          try { extra = `\nstate: ${brief({ ...(await st()), offerSdp: undefined, events: undefined }, 2000)}`; } catch { /* ignore */ }
          console.error(`\n[janus.js media ${kind}] step "${name}" failed: ${err && err.stack || err}\n${dump()}${extra}\n`);
          throw err;
        }
      });
    }

    before(async () => {
      s.ctx = await g.browser.newContext();
      s.page = await s.ctx.newPage();
      s.page.on('console', (m) => s.console.push(`[${m.type()}] ${m.text()}`));
      s.page.on('pageerror', (e) => s.console.push(`[pageerror] ${e.message}`));
    });
    after(async () => {
      if (s.ctx) await withTimeout(s.ctx.close(), 5000, 'context.close').catch(() => {});
    });

    step('load page; Janus.init; new Janus({server}); attach echotest', async () => {
      await s.page.goto(`${g.origin}/`, { timeout: STEP_TIMEOUT_MS });
      const r = await ev(() => window.jm.init(), undefined, 'init');
      assert.equal(r.webrtc, true);
      const c = await ev((srv) => window.jm.create(srv), server, 'create');
      assert.ok(isPositiveSafeInteger(c.sessionId), `session id ${brief(c.sessionId)}`);
      s.sid = c.sessionId;
      const a = await ev(() => window.jm.attach(), undefined, 'attach');
      assert.ok(isPositiveSafeInteger(a.handleId), `handle id ${brief(a.handleId)}`);
      s.hid = a.handleId;
    });

    step('createOffer (fake camera + mic + data channel) → send({audio,video}, jsep) → answer', async () => {
      const r = await ev(() => window.jm.call(), undefined, 'call');
      assert.equal(r.offerType, 'offer');
      const e = await waitFor(async () => (await st()).events.find((x) => x.jsep), STEP_TIMEOUT_MS, 'onmessage with a jsep');
      assert.deepEqual(e.msg, { echotest: 'event', result: 'ok' });
      assert.equal(e.jsep.type, 'answer');
      assert.match(e.jsep.sdp, /\r\na=fingerprint:sha-256 /);
      assert.match(e.jsep.sdp, /\r\na=ice-ufrag:/);
      assert.match(e.jsep.sdp, /\r\nm=audio /);
      assert.match(e.jsep.sdp, /\r\nm=video /);
      assert.match(e.jsep.sdp, /\r\nm=application /);
      if (MEDIA_ADDR) {
        // janus.js trickles its own candidates; the server (half-trickle) puts its candidates
        // in the answer.
        assert.ok(e.jsep.sdp.includes(` ${MEDIA_ADDR} `), `the answer carries no candidate on ${MEDIA_ADDR}`);
      }
      const offer = (await st()).offerSdp;
      assert.ok(!/\.local /.test(offer || ''), 'Chromium must not use mDNS candidates (flag missing?)');
    });

    step('webrtcState(true) and the server\'s webrtcup + media {receiving:true} events', async () => {
      const w = await waitFor(async () => (await st()).webrtcState.find((x) => x.on === true), 15000, 'webrtcState(true)');
      assert.equal(w.on, true);
      await waitFor(async () => {
        await refreshWire();
        const msgs = serverMessages().filter((m) => m.sender === s.hid);
        return msgs.some((m) => m.janus === 'webrtcup') &&
          ['audio', 'video'].every((k) => msgs.some((m) => m.janus === 'media' && m.type === k && m.receiving === true));
      }, 10000, 'webrtcup + media events for audio and video');
      for (const m of serverMessages().filter((x) => x.janus === 'media' && x.sender === s.hid)) {
        assert.equal(m.session_id, s.sid);
        assert.equal(typeof m.mid, 'string', `media event mid: ${brief(m)}`);
      }
      const ms = (await st()).mediaState;
      assert.ok(ms.some((x) => x.medium === 'audio' && x.on) && ms.some((x) => x.medium === 'video' && x.on),
        `janus.js mediaState callbacks: ${brief(ms)}`);
    }, { timeoutMs: 30000 });

    step(`remote video plays: videoWidth > 0, ≥ ${MIN_FRAMES} frames, currentTime advancing`, async () => {
      const v0 = await waitFor(async () => {
        const v = await ev(() => window.jm.videoState(), undefined, 'videoState');
        return v && v.videoWidth > 0 ? v : null;
      }, 10000, 'remote video with videoWidth > 0');
      const v1 = await waitFor(async () => {
        const v = await ev(() => window.jm.videoState(), undefined, 'videoState');
        return v.frames >= v0.frames + MIN_FRAMES ? v : null;
      }, 15000, `${MIN_FRAMES} more decoded frames (requestVideoFrameCallback)`, 100);
      assert.ok(v1.videoWidth > 0 && v1.videoHeight > 0, `video size ${v1.videoWidth}x${v1.videoHeight}`);
      assert.ok(v1.currentTime > v0.currentTime, `currentTime did not advance: ${v0.currentTime} → ${v1.currentTime}`);
      assert.equal(v1.paused, false);
      const stats = await ev(() => window.jm.pcStats(), undefined, 'stats');
      const inVideo = stats.inbound.find((x) => x.kind === 'video');
      const inAudio = stats.inbound.find((x) => x.kind === 'audio');
      assert.ok(inVideo && inVideo.framesDecoded > 0, `inbound video stats: ${brief(stats.inbound)}`);
      assert.ok(inAudio && inAudio.packetsReceived > 0, `inbound audio stats: ${brief(stats.inbound)}`);
      if (MEDIA_ADDR && stats.remoteCandidate) {
        assert.equal(stats.remoteCandidate.address, MEDIA_ADDR, `selected remote candidate ${brief(stats.remoteCandidate)}`);
      }
      console.error(`[janus.js media ${kind}] video ${v1.videoWidth}x${v1.videoHeight}, ${v1.frames} frames ${brief(v1.frameSizes)}, currentTime ${v1.currentTime.toFixed(2)}; pair ${brief(stats.remoteCandidate)}`);
    }, { timeoutMs: 30000 });

    step('data channel: ondataopen, a text message comes back from the EchoTest', async () => {
      await waitFor(async () => (await st()).dataOpen.length > 0, 10000, 'ondataopen');
      const text = `jano-media-${kind}-${Date.now()}`;
      await ev((t) => window.jm.sendData(t), text, 'sendData');
      const got = await waitFor(async () => (await st()).data.find((d) => typeof d.data === 'string' && d.data.includes(text)), 10000, 'data echo');
      assert.equal(got.data, ECHO_TEXT_PREFIX + text);
    });

    step('hangup → the server\'s hangup event', async () => {
      await ev(() => window.jm.hangup(), undefined, 'hangup');
      // janus.js closes its PeerConnection before it sends {"janus":"hangup"}, so the server's
      // `hangup` event (reason "DTLS alert") may come before or after the `success` reply to
      // the request: wait for both, in either order.
      const hangupEvent = () => serverMessages().find((m) => m.janus === 'hangup' && m.sender === s.hid);
      const hangupReply = () => serverMessages().find((m) => m.janus === 'success' && s.wire.some((e) =>
        ((e.kind === 'ws' && e.dir === 'out' && e.msg.janus === 'hangup') || (e.kind === 'http' && e.req && e.req.janus === 'hangup')) &&
        (e.kind === 'ws' ? e.msg.transaction : e.req.transaction) === m.transaction));
      await waitFor(async () => {
        await refreshWire();
        return hangupEvent() && hangupReply();
      }, STEP_TIMEOUT_MS, 'a hangup event for the handle and the success reply to the hangup request (either order)');
      const h = hangupEvent();
      assert.equal(h.session_id, s.sid);
      assert.equal(typeof h.reason, 'string');
      assert.ok(hangupReply(), 'the hangup request must be answered with success');
    });

    step('detach + destroy', async () => {
      await ev(() => window.jm.detach(), undefined, 'detach');
      await ev(() => window.jm.destroy(), undefined, 'destroy');
      const state = await st();
      assert.deepEqual(state.errors, [], `janus.js reported errors: ${brief(state.errors)}`);
      assert.deepEqual(s.console.filter((l) => l.startsWith('[pageerror]')), []);
    });
  });
}

mediaFlow('http', HTTP_URL);
mediaFlow('ws', WS_URL);
