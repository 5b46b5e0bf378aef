// Real-client test: meetecho/janode's VideoRoom wrapper (`janode/plugins/videoroom`) over the
// Janus WebSocket API, against `janus.plugin.videoroom`. No media: nothing here needs a
// PeerConnection to come up.
//
// Env: JANUS_WS_URL (required). Same style as janode.test.mjs: every frame janode sends and
// receives is recorded, the assertions check both what janode hands to the application (its
// mapped fields: `feed`, `private_id`, `list`, ...) and the exact plugin payloads on the wire.
// On a failing step the tail of the wire log is printed; JANO_CLIENT_DUMP=1 prints the whole log
// and the table of (request → error code → error text) the server answered.
//
// Groups:
//   1. room life cycle through janode's own methods (create … destroy, events to the others);
//   2. every VideoRoom error code reachable without media, through janode's rejected promises
//      (janode's generic Handle#message() for requests its wrapper cannot express); the codes
//      the plugin cannot reach through the Janus API are asserted as what the core answers;
//   3. errors that need an *active* publisher, which needs no media thanks to a remote publisher
//      (`add_remote_publisher`, spec §7: it counts as publishing): 432, 433 (private_id), 431,
//      subscriber 425/423/428/430, and the subscriber `attached` offer.
// Expected values are what Janus 1.1.2 sends (checked with tests/clients/with-janus.sh).
//
// If the server does not list janus.plugin.videoroom in `info`, the whole file is skipped
// (loudly), so that a server without the plugin does not fail the rest of the suite.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import Janode from 'janode';
import VideoRoomPlugin from 'janode/plugins/videoroom';

import { STEP_TIMEOUT_MS, withTimeout, waitFor, isPositiveSafeInteger, brief, requireEnv } from './lib/util.mjs';

const WS_URL = requireEnv('JANUS_WS_URL');
const VIDEOROOM = 'janus.plugin.videoroom';
const EV = VideoRoomPlugin.EVENT;
const EVENT_MS = Math.min(5000, STEP_TIMEOUT_MS); // bound on waiting for a notification

Janode.Logger.setLevel(process.env.JANODE_LOG || 'warn');

// Room and participant ids of our own (random, JS-safe), so that a long-running server is fine.
const BASE = 10_000_000 + Math.floor(Math.random() * 1_000_000) * 10;
const ROOM = BASE + 1; // life cycle room
const PRIV = BASE + 2; // is_private room
const EROOM = BASE + 3; // error-code room
const RROOM = BASE + 4; // remote publisher room, publishers: 1
const PROOM = BASE + 5; // remote publisher room, require_pvtid
const XROOM = BASE + 6; // require_e2ee room
const DROOM = BASE + 7; // dummy_publisher room
const UNKNOWN_ROOM = BASE + 9; // never created
const BOB_ID = BASE + 101;
const ERIN_ID = BASE + 103;
const REMOTE_ID = BASE + 201;
const REMOTE2_ID = BASE + 202;
const SECRET = 'jano-secret';
const PIN = 'jano-pin';

/** A syntactically complete audio-only offer (no candidates: nothing will ever connect). */
function audioOffer() {
  const fp = Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 255).toString(16).padStart(2, '0').toUpperCase()).join(':');
  const sdp = [
    'v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0', 'a=msid-semantic: WMS jano',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=rtcp:9 IN IP4 0.0.0.0',
    'a=ice-ufrag:jAnO', 'a=ice-pwd:janoclienttestpassword01', 'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${fp}`, 'a=setup:actpass', 'a=mid:0', 'a=sendonly', 'a=msid:jano a0', 'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1', 'a=ssrc:11111111 cname:jano', '',
  ].join('\r\n');
  return { type: 'offer', sdp };
}

/** Record the wire traffic of one janode connection (same technique as janode.test.mjs). */
function recordWire(connection, tag, wire = []) {
  const transport = connection._transport;
  const origSend = transport.send.bind(transport);
  transport.send = async (request) => {
    wire.push({ t: Date.now(), dir: 'out', tag, msg: JSON.parse(JSON.stringify(request)) });
    return origSend(request);
  };
  const origHandle = connection._handleMessage.bind(connection);
  connection._handleMessage = (msg) => {
    wire.push({ t: Date.now(), dir: 'in', tag, msg: JSON.parse(JSON.stringify(msg)) });
    return origHandle(msg);
  };
  return wire;
}

const state = {
  wire: [],
  conn: null,
  session: null,
  handles: [], // every VideoRoom handle attached (detached at the end)
  failed: {}, // group → name of the first failed step
  observed: [], // [label, code, text, kind]
  // life cycle
  mgr: null, alice: null, bob: null, carol: null, tok: null, free: null,
  aliceFeed: null, carolFeed: null,
  // errors
  erin: null, ereq: null,
  // remote publisher groups
  rmgr: null, watcher: null, late: null, sub: null, pvtWatcher: null, remoteUp: false,
};

function dumpWire(last = 40) {
  const lines = state.wire.slice(-last).map((e) => `  ${e.tag} ${e.dir === 'out' ? '>>' : '<<'} ${brief(e.msg)}`);
  return `last ${lines.length} frames on the wire:\n${lines.join('\n')}`;
}

/** The frames sent/received for one transaction. */
function tx(transaction) {
  return {
    out: state.wire.filter((e) => e.dir === 'out' && e.msg.transaction === transaction).map((e) => e.msg),
    in: state.wire.filter((e) => e.dir === 'in' && e.msg.transaction === transaction).map((e) => e.msg),
  };
}

/** The transaction of the last request of kind `janus` sent (optionally on a given handle). */
function lastTx(janus, handle) {
  const e = state.wire.filter((x) => x.dir === 'out' && x.msg.janus === janus && (!handle || x.msg.handle_id === handle.id)).at(-1);
  assert.ok(e, `no "${janus}" request was sent${handle ? ` on handle ${handle.id}` : ''}`);
  return e.msg.transaction;
}

/** The last request body sent on a handle. */
function lastBody(handle) {
  return tx(lastTx('message', handle)).out[0].body;
}

/** Unsolicited plugin events (no transaction) received for a handle, as plugindata.data. */
function notifications(handle, pred = () => true) {
  return state.wire
    .filter((e) => e.dir === 'in' && e.msg.janus === 'event' && e.msg.sender === handle.id && !e.msg.transaction && e.msg.plugindata)
    .map((e) => e.msg.plugindata.data)
    .filter(pred);
}

/**
 * A test step. Steps of one `group` run in order and are skipped after the first failure of
 * that group; `needs` names state fields that must be set (else skipped).
 */
function step(group, name, fn, { needs = [], session = true } = {}) {
  it(name, async (t) => {
    if (state.failed[group]) {
      t.skip(`earlier step of "${group}" failed: ${state.failed[group]}`);
      return;
    }
    for (const n of [...(session ? ['session'] : []), ...needs]) {
      if (!state[n]) {
        t.skip(`needs ${n}`);
        return;
      }
    }
    try {
      await withTimeout(fn(t), STEP_TIMEOUT_MS, name);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(`${e && e.type || 'error'}: ${e && e.error && e.error.message || e && e.message || brief(e)}`);
      if (group !== 'check') state.failed[group] = name;
      console.error(`\n[janode-videoroom] step "${name}" failed: ${err.stack}\n${dumpWire()}\n`);
      throw err;
    }
  });
}
/** An independent check: its failure does not skip the others. */
const check = (name, fn, opts) => step('check', name, fn, opts);

/** Attach a new janode VideoRoom handle. */
async function attachVR() {
  const h = await state.session.attach(VideoRoomPlugin);
  assert.ok(isPositiveSafeInteger(h.id), `handle id must be a positive JS-safe integer, got ${brief(h.id)}`);
  state.handles.push(h);
  return h;
}

/**
 * Wait (bounded) for the next janode plugin event `event` on `handle` that satisfies `pred`.
 * Create it BEFORE triggering the action; the returned promise never causes an unhandled
 * rejection if the test fails earlier.
 */
function nextEvent(handle, event, pred = () => true, ms = EVENT_MS) {
  let listener;
  const p = withTimeout(new Promise((resolve) => {
    listener = (data) => {
      if (pred(data)) {
        handle.removeListener(event, listener);
        resolve(data);
      }
    };
    handle.on(event, listener);
  }), ms, `janode event ${event} on handle ${handle.id}`).finally(() => handle.removeListener(event, listener));
  p.catch(() => {});
  return p;
}

/**
 * Assert that `promise` (a janode request) is rejected with `<code> <text>` and check the wire:
 *   kind 'sync'  — one Janus `success` whose plugindata.data is exactly the VideoRoom error object;
 *   kind 'async' — one `ack` and one `event` (same transaction) carrying exactly the error object;
 *   kind 'core'  — one Janus `error` {code, reason} (the core refused the message: no plugin payload).
 */
async function expectError(handle, promise, code, text, kind, label) {
  let err = null;
  try {
    const res = await promise;
    assert.fail(`expected "${code} ${text}", the request succeeded with ${brief(res)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  const t = lastTx('message', handle);
  const body = tx(t).out[0].body;
  const got = `${err && err.message}`;
  state.observed.push([label || brief(body, 160), code, text, kind, got]);
  assert.equal(got, `${code} ${text}`, `janode must reject with "${code} ${text}"`);
  if (kind === 'core') {
    const replies = await waitFor(() => (tx(t).in.length >= 1 ? tx(t).in : null), 2000, 'core error');
    assert.equal(replies.length, 1, `one reply: ${brief(replies)}`);
    assert.equal(replies[0].janus, 'error');
    assert.equal(replies[0].session_id, state.session.id);
    assert.deepEqual(replies[0].error, { code, reason: text });
    assert.equal(replies[0].plugindata, undefined);
    return;
  }
  assert.equal(err._code, code, 'janode sets _code from the plugin error_code');
  const errorData = { videoroom: 'event', error_code: code, error: text };
  if (kind === 'sync') {
    const replies = await waitFor(() => (tx(t).in.length >= 1 ? tx(t).in : null), 2000, 'sync reply');
    assert.equal(replies.length, 1, `one reply to a synchronous request: ${brief(replies)}`);
    assert.equal(replies[0].janus, 'success', 'a synchronous plugin error is wrapped in a Janus success');
    assert.equal(replies[0].sender, handle.id);
    assert.equal(replies[0].plugindata.plugin, VIDEOROOM);
    assert.deepEqual(replies[0].plugindata.data, errorData);
  } else {
    const replies = await waitFor(() => (tx(t).in.length >= 2 ? tx(t).in : null), 2000, 'ack and event');
    assert.deepEqual(replies.map((m) => m.janus).sort(), ['ack', 'event'], `one ack and one event: ${brief(replies)}`);
    const ev = replies.find((m) => m.janus === 'event');
    assert.equal(ev.sender, handle.id);
    assert.equal(ev.plugindata.plugin, VIDEOROOM);
    assert.deepEqual(ev.plugindata.data, errorData);
    assert.equal(ev.jsep, undefined);
  }
}

/** The plugindata.data of the (single) final reply to the last message on a handle. */
async function lastReplyData(handle) {
  const t = lastTx('message', handle);
  const r = await waitFor(() => tx(t).in.find((m) => m.janus === 'success' || m.janus === 'event'), 2000, 'reply');
  return r.plugindata.data;
}

/** Probe the server once (bounded): is the VideoRoom plugin loaded at all? */
async function probe() {
  let conn = null;
  try {
    conn = await withTimeout(Janode.connect({ address: { url: WS_URL }, retry_time_secs: 1, max_retries: 0 }), 5000, 'probe connect');
    const info = await withTimeout(conn.getInfo(), 5000, 'probe info');
    const vr = info.plugins && info.plugins[VIDEOROOM];
    return { listed: !!vr, version: vr ? vr.version : 0 };
  } catch (e) {
    return { listed: true, error: e && e.message }; // let the steps fail with a clear message
  } finally {
    if (conn) { try { await withTimeout(conn.close(), 3000, 'probe close'); } catch { /* gone */ } }
  }
}
const probed = await probe();
const SKIP = probed.listed ? false : `the server does not list ${VIDEOROOM} in info`;
// Dummy publishers and the 438 e2ee checks came with VideoRoom 10 (Janus 1.2); Janus 1.1.2 has 9.
const NO_DUMMY = (probed.version || 0) < 10 ? `VideoRoom ${probed.version} has no dummy publisher (needs 10)` : false;
if (SKIP) console.error(`[janode-videoroom] SKIPPING the whole file: ${SKIP}`);

describe(`janode VideoRoom over WebSocket (${WS_URL})`, { skip: SKIP }, () => {
  before(() => {
    console.error(`[janode-videoroom] JANUS_WS_URL=${WS_URL} rooms ${ROOM}..${UNKNOWN_ROOM}`);
  });

  after(async () => {
    if (process.env.JANO_CLIENT_DUMP) {
      console.error(`[janode-videoroom] full wire log:\n${dumpWire(5000)}`);
      console.error('[janode-videoroom] observed errors (request → code → text [kind]):');
      for (const [label, code, text, kind, got] of state.observed) {
        console.error(`  ${label} → ${code} → ${text} [${kind}]${got === `${code} ${text}` ? '' : `  (got: ${got})`}`);
      }
    }
    // Best effort: destroy our rooms, detach, destroy the session, close.
    if (state.session && !state.conn._transport._closed) {
      const h = state.handles.find((x) => !x._detached);
      if (h) {
        for (const room of [ROOM, PRIV, EROOM, RROOM, PROOM]) {
          try { await withTimeout(h.message({ request: 'destroy', room, secret: SECRET }), 3000, 'cleanup destroy'); } catch { /* gone */ }
        }
      }
      try { await withTimeout(state.session.destroy(), 3000, 'cleanup session'); } catch { /* gone */ }
    }
    if (state.conn && !state.conn._transport._closed) {
      try { await withTimeout(state.conn.close(), 3000, 'close'); } catch { /* closed */ }
    }
  });

  describe('setup', () => {
    step('setup', 'connect, create a session', async () => {
      state.conn = await Janode.connect({ address: { url: WS_URL }, retry_time_secs: 1, max_retries: 0 });
      state.wire = recordWire(state.conn, 'api');
      const session = await state.conn.create();
      assert.ok(isPositiveSafeInteger(session.id));
      state.session = session;
    }, { session: false });

    step('setup', `attach ${VIDEOROOM} with janode's VideoRoom class`, async () => {
      state.mgr = await attachVR();
      const { in: replies } = tx(lastTx('attach'));
      assert.equal(replies.length, 1);
      assert.equal(replies[0].janus, 'success');
      assert.equal(replies[0].data.id, state.mgr.id);
      assert.equal(state.mgr.feed, null);
      assert.equal(state.mgr.room, null);
    });
  });

  // ----------------------------------------------------------------------------------------
  describe('room life cycle through janode', () => {
    const s = (name, fn, opts = {}) => step('life', name, fn, { needs: ['mgr', ...(opts.needs || [])] });

    s('create (description, secret, pin, publishers, bitrate, notify_joining) → created', async () => {
      const res = await state.mgr.create({
        room: ROOM, description: 'jano videoroom', secret: SECRET, pin: PIN, max_publishers: 3,
        bitrate: 256000, notify_joining: true, permanent: false,
      });
      assert.deepEqual(lastBody(state.mgr), {
        request: 'create', room: ROOM, description: 'jano videoroom', publishers: 3, permanent: false,
        secret: SECRET, pin: PIN, bitrate: 256000, notify_joining: true,
      });
      assert.deepEqual(res, { room: ROOM, permanent: false }, 'janode maps room and permanent');
      const { in: replies } = tx(lastTx('message', state.mgr));
      assert.equal(replies.length, 1, 'create is synchronous: exactly one reply');
      assert.equal(replies[0].janus, 'success');
      assert.equal(replies[0].sender, state.mgr.id);
      assert.deepEqual(replies[0].plugindata, { plugin: VIDEOROOM, data: { videoroom: 'created', room: ROOM, permanent: false } });
    });

    s('exists on the new room → true', async () => {
      const res = await state.mgr.exists({ room: ROOM });
      assert.deepEqual(res, { room: ROOM, exists: true });
      assert.deepEqual(await lastReplyData(state.mgr), { videoroom: 'success', room: ROOM, exists: true });
    });

    s('exists on an unknown room → false (not an error)', async () => {
      const res = await state.mgr.exists({ room: UNKNOWN_ROOM });
      assert.deepEqual(res, { room: UNKNOWN_ROOM, exists: false });
      assert.deepEqual(await lastReplyData(state.mgr), { videoroom: 'success', room: UNKNOWN_ROOM, exists: false });
    });

    s('create is_private room → exists, but not listed', async () => {
      const res = await state.mgr.create({ room: PRIV, is_private: true, secret: SECRET });
      assert.deepEqual(res, { room: PRIV, permanent: false });
      assert.deepEqual(await state.mgr.exists({ room: PRIV }), { room: PRIV, exists: true });
    });

    s('list → our room with every field Janus lists (no secret, no pin)', async () => {
      const res = await state.mgr.list();
      assert.deepEqual(Object.keys(res), ['list'], 'janode maps only list');
      assert.ok(Array.isArray(res.list));
      const mine = res.list.filter((r) => r.room === ROOM);
      assert.equal(mine.length, 1, `room ${ROOM} listed once: ${brief(res.list.map((r) => r.room))}`);
      assert.ok(!res.list.some((r) => r.room === PRIV), 'is_private rooms are not listed');
      assert.deepEqual(mine[0], {
        room: ROOM, description: 'jano videoroom', pin_required: true, is_private: false, max_publishers: 3,
        bitrate: 256000, fir_freq: 0, require_pvtid: false, require_e2ee: false, dummy_publisher: false,
        notify_joining: true, audiocodec: 'opus', videocodec: 'vp8', opus_fec: true, record: false,
        lock_record: false, num_participants: 0, audiolevel_ext: true, audiolevel_event: false,
        videoorient_ext: true, playoutdelay_ext: true, transport_wide_cc_ext: true,
      });
      for (const r of res.list) {
        assert.equal(r.secret, undefined, 'list never shows a secret');
        assert.equal(r.pin, undefined, 'list never shows a pin');
      }
      const data = await lastReplyData(state.mgr);
      assert.deepEqual(Object.keys(data).sort(), ['list', 'videoroom']);
      assert.equal(data.videoroom, 'success');
    });

    s('alice joinPublisher (display, pin) → joined: feed, private_id, no publishers, attendees []', async () => {
      state.alice = await attachVR();
      const res = await state.alice.joinPublisher({ room: ROOM, pin: PIN, display: 'alice' });
      assert.deepEqual(lastBody(state.alice), { request: 'join', ptype: 'publisher', room: ROOM, display: 'alice', pin: PIN });
      assert.ok(isPositiveSafeInteger(res.feed), `feed must be a positive JS-safe integer: ${brief(res.feed)}`);
      assert.ok(Number.isInteger(res.private_id) && res.private_id > 0 && res.private_id <= 0xffffffff,
        `private_id must be a 32-bit integer: ${brief(res.private_id)}`);
      // janode: {room, feed, description, private_id, publishers} + display copied from the request.
      assert.deepEqual(res, {
        room: ROOM, feed: res.feed, description: 'jano videoroom', private_id: res.private_id, publishers: [], display: 'alice',
      });
      assert.equal(state.alice.feed, res.feed, 'janode stores the feed on the handle');
      assert.equal(state.alice.room, ROOM, 'janode stores the room on the handle');
      state.aliceFeed = res.feed;
      const t = lastTx('message', state.alice);
      const replies = await waitFor(() => (tx(t).in.length >= 2 ? tx(t).in : null), 2000, 'ack and event');
      assert.deepEqual(replies.map((m) => m.janus).sort(), ['ack', 'event'], 'join is asynchronous: ack + event');
      const ev = replies.find((m) => m.janus === 'event');
      assert.equal(ev.sender, state.alice.id);
      // notify_joining ⇒ attendees (the other non-publishing participants): none yet.
      assert.deepEqual(ev.plugindata.data, {
        videoroom: 'joined', room: ROOM, description: 'jano videoroom', id: res.feed, private_id: res.private_id,
        publishers: [], attendees: [],
      });
    });

    s('bob joinPublisher with his own feed id → attendees [alice]; alice gets the joining event', async () => {
      state.bob = await attachVR();
      const joining = nextEvent(state.alice, EV.VIDEOROOM_PUB_PEER_JOINED);
      const res = await state.bob.joinPublisher({ room: ROOM, pin: PIN, display: 'bob', feed: BOB_ID });
      assert.deepEqual(lastBody(state.bob), { request: 'join', ptype: 'publisher', room: ROOM, id: BOB_ID, display: 'bob', pin: PIN });
      assert.equal(res.feed, BOB_ID);
      assert.deepEqual(res.publishers, [], 'alice is not publishing: not in publishers');
      const ev = tx(lastTx('message', state.bob)).in.find((m) => m.janus === 'event');
      assert.deepEqual(ev.plugindata.data.attendees, [{ id: state.aliceFeed, display: 'alice' }]);
      // janode maps {joining:{id,display}} to videoroom_publisher_joined {room, feed, display}.
      assert.deepEqual(await joining, { room: ROOM, feed: BOB_ID, display: 'bob' });
      assert.deepEqual(notifications(state.alice, (d) => d.joining),
        [{ videoroom: 'event', room: ROOM, joining: { id: BOB_ID, display: 'bob' } }]);
    }, { needs: ['alice'] });

    s('listParticipants → both, publisher:false', async () => {
      const res = await state.mgr.listParticipants({ room: ROOM });
      assert.deepEqual(lastBody(state.mgr), { request: 'listparticipants', room: ROOM });
      const byFeed = (a, b) => a.feed - b.feed;
      assert.deepEqual({ ...res, participants: [...res.participants].sort(byFeed) }, {
        room: ROOM,
        participants: [
          { feed: state.aliceFeed, display: 'alice', publisher: false },
          { feed: BOB_ID, display: 'bob', publisher: false },
        ].sort(byFeed),
      });
      const data = await lastReplyData(state.mgr);
      assert.equal(data.videoroom, 'participants');
      assert.equal(data.room, ROOM);
      for (const p of data.participants) {
        assert.deepEqual(Object.keys(p).sort(), ['display', 'id', 'publisher'], `participant fields: ${brief(p)}`);
      }
    }, { needs: ['bob'] });

    s('alice configure {display} → configured; bob gets the display event (no room in it)', async () => {
      const display = nextEvent(state.bob, EV.VIDEOROOM_DISPLAY);
      const res = await state.alice.configure({ display: 'alice2' });
      assert.deepEqual(lastBody(state.alice), { request: 'configure', display: 'alice2' });
      assert.deepEqual(res, { room: ROOM, feed: state.aliceFeed, configured: 'ok', display: 'alice2' });
      assert.deepEqual(await lastReplyData(state.alice), { videoroom: 'event', room: ROOM, configured: 'ok' });
      // Janus 1.1.2 sends {"videoroom":"event","id":ID,"display":"..."} without "room".
      assert.deepEqual(await display, { feed: state.aliceFeed, display: 'alice2' });
      assert.deepEqual(notifications(state.bob, (d) => d.display), [{ videoroom: 'event', id: state.aliceFeed, display: 'alice2' }]);
      assert.deepEqual(notifications(state.alice, (d) => d.display), [], 'the sender is not notified of its own change');
    }, { needs: ['bob'] });

    s('bob leave → leaving ok (janode feed = his); alice gets videoroom_leaving {feed: bob}', async () => {
      const leaving = nextEvent(state.alice, EV.VIDEOROOM_LEAVING);
      const res = await state.bob.leave();
      assert.deepEqual(lastBody(state.bob), { request: 'leave' });
      assert.deepEqual(res, { room: ROOM, feed: BOB_ID });
      assert.deepEqual(await lastReplyData(state.bob), { videoroom: 'event', room: ROOM, leaving: 'ok' });
      assert.deepEqual(await leaving, { room: ROOM, feed: BOB_ID });
      // Janus 1.1.2: no display/metadata in the leaving notification.
      assert.deepEqual(notifications(state.alice, (d) => d.leaving !== undefined), [{ videoroom: 'event', room: ROOM, leaving: BOB_ID }]);
      const list = await state.mgr.listParticipants({ room: ROOM });
      assert.deepEqual(list.participants.map((p) => p.feed), [state.aliceFeed]);
    }, { needs: ['bob'] });

    s('kick carol (with secret) → success; carol gets leaving+reason kicked, alice gets kicked', async () => {
      state.carol = await attachVR();
      const joined = await state.carol.joinPublisher({ room: ROOM, pin: PIN, display: 'carol' });
      state.carolFeed = joined.feed;
      const kickedSelf = nextEvent(state.carol, EV.VIDEOROOM_LEAVING);
      const kickedOther = nextEvent(state.alice, EV.VIDEOROOM_KICKED);
      const res = await state.mgr.kick({ room: ROOM, feed: state.carolFeed, secret: SECRET });
      assert.deepEqual(lastBody(state.mgr), { request: 'kick', room: ROOM, id: state.carolFeed, secret: SECRET });
      assert.deepEqual(res, { room: ROOM, feed: state.carolFeed }, 'janode fills room/feed from the request');
      assert.deepEqual(await lastReplyData(state.mgr), { videoroom: 'success' });
      assert.deepEqual(await kickedSelf, { room: ROOM, feed: state.carolFeed, reason: 'kicked' });
      assert.deepEqual(await kickedOther, { room: ROOM, feed: state.carolFeed });
      assert.deepEqual(notifications(state.carol, (d) => d.leaving !== undefined),
        [{ videoroom: 'event', room: ROOM, leaving: 'ok', reason: 'kicked' }]);
      assert.deepEqual(notifications(state.alice, (d) => d.kicked !== undefined), [{ videoroom: 'event', room: ROOM, kicked: state.carolFeed }]);
      const list = await state.mgr.listParticipants({ room: ROOM });
      assert.deepEqual(list.participants.map((p) => p.feed), [state.aliceFeed], 'a kicked participant is gone');
    }, { needs: ['alice'] });

    s('allow enable → allowed []; add → both; join without token → 433; with token → joined', async () => {
      const en = await state.mgr.allow({ room: ROOM, action: 'enable', secret: SECRET });
      assert.deepEqual(lastBody(state.mgr), { request: 'allowed', room: ROOM, action: 'enable', secret: SECRET });
      assert.deepEqual(en, { room: ROOM, list: [] });
      assert.deepEqual(await lastReplyData(state.mgr), { videoroom: 'success', room: ROOM, allowed: [] });

      const add = await state.mgr.allow({ room: ROOM, action: 'add', list: ['tok-a', 'tok-b'], secret: SECRET });
      assert.deepEqual(lastBody(state.mgr), { request: 'allowed', room: ROOM, action: 'add', allowed: ['tok-a', 'tok-b'], secret: SECRET });
      assert.deepEqual({ ...add, list: [...add.list].sort() }, { room: ROOM, list: ['tok-a', 'tok-b'] });

      state.tok = await attachVR();
      await expectError(state.tok, state.tok.joinPublisher({ room: ROOM, pin: PIN, display: 'dave' }),
        433, 'Unauthorized (not in the allowed list)', 'async', 'join, ACL enabled, no token');
      const ok = await state.tok.joinPublisher({ room: ROOM, pin: PIN, display: 'dave', token: 'tok-a' });
      assert.deepEqual(lastBody(state.tok), { request: 'join', ptype: 'publisher', room: ROOM, display: 'dave', token: 'tok-a', pin: PIN });
      assert.ok(isPositiveSafeInteger(ok.feed));
    }, { needs: ['alice'] });

    s('allow remove → remaining token; allow disable → no allowed list (janode rejects it)', async () => {
      const rm = await state.mgr.allow({ room: ROOM, action: 'remove', list: ['tok-a'], secret: SECRET });
      assert.deepEqual(rm, { room: ROOM, list: ['tok-b'] });
      // "disable" answers {"videoroom":"success","room":R} without "allowed": janode 1.8.0 cannot
      // classify that as its ALLOWED event and rejects the promise — a janode limitation.
      await assert.rejects(state.mgr.allow({ room: ROOM, action: 'disable', secret: SECRET }),
        (e) => e.message === 'unexpected response to allowed request');
      assert.deepEqual(lastBody(state.mgr), { request: 'allowed', room: ROOM, action: 'disable', secret: SECRET });
      assert.deepEqual(await lastReplyData(state.mgr), { videoroom: 'success', room: ROOM });
      state.free = await attachVR();
      const ok = await state.free.joinPublisher({ room: ROOM, pin: PIN, display: 'erik' });
      assert.ok(isPositiveSafeInteger(ok.feed), 'ACL disabled: no token needed');
    }, { needs: ['tok'] });

    s('destroy (with secret) → destroyed; every participant gets videoroom_destroyed', async () => {
      const participants = [state.alice, state.tok, state.free];
      const events = participants.map((h) => nextEvent(h, EV.VIDEOROOM_DESTROYED));
      const res = await state.mgr.destroy({ room: ROOM, secret: SECRET });
      assert.deepEqual(lastBody(state.mgr), { request: 'destroy', room: ROOM, secret: SECRET });
      assert.deepEqual(res, { room: ROOM }, 'janode 1.8.0 maps only room (not permanent)');
      assert.deepEqual(await lastReplyData(state.mgr), { videoroom: 'destroyed', room: ROOM, permanent: false });
      for (const [i, p] of events.entries()) {
        assert.deepEqual(await p, { room: ROOM });
        assert.deepEqual(notifications(participants[i], (d) => d.videoroom === 'destroyed'), [{ videoroom: 'destroyed', room: ROOM }]);
      }
      assert.deepEqual(notifications(state.bob, (d) => d.videoroom === 'destroyed'), [], 'bob had left: not notified');
      assert.deepEqual(notifications(state.carol, (d) => d.videoroom === 'destroyed'), [], 'carol was kicked: not notified');
    }, { needs: ['free'] });

    s('exists after destroy → false; the private room is destroyed too', async () => {
      assert.deepEqual(await state.mgr.exists({ room: ROOM }), { room: ROOM, exists: false });
      assert.deepEqual(await state.mgr.destroy({ room: PRIV, secret: SECRET }), { room: PRIV });
      assert.deepEqual(await state.mgr.exists({ room: PRIV }), { room: PRIV, exists: false });
    });
  });

  // ----------------------------------------------------------------------------------------
  describe('error codes (no media)', () => {
    const E = (name, fn, opts = {}) => check(name, fn, { needs: ['erin', ...(opts.needs || [])] });

    step('errors', `setup: room ${EROOM} (secret, pin), erin joined as publisher with a fixed id`, async () => {
      const m = state.mgr || await attachVR();
      const res = await m.create({ room: EROOM, secret: SECRET, pin: PIN, description: 'errors' });
      assert.equal(res.room, EROOM);
      state.erin = await attachVR();
      const j = await state.erin.joinPublisher({ room: EROOM, pin: PIN, display: 'erin', feed: ERIN_ID });
      assert.equal(j.feed, ERIN_ID);
      state.ereq = m;
    });

    // -- the Janus core refuses these before the plugin sees them (plugin 421/422 unreachable) --
    E('421 NO_MESSAGE unreachable: message without body → core 456', async () => {
      await expectError(state.ereq, state.ereq.message(undefined), 456, 'Missing mandatory element (body)', 'core', 'message, no body');
    });
    E('422 INVALID_JSON unreachable: body not an object → core 467', async () => {
      await expectError(state.ereq, state.ereq.message('hello'), 467, 'Invalid element type (body should be an object)', 'core', 'message, body "hello"');
      await expectError(state.ereq, state.ereq.message([1]), 467, 'Invalid element type (body should be an object)', 'core', 'message, body [1]');
    });

    // -- request validation (synchronous, in a Janus success) --
    E('429 body without request', async () => {
      await expectError(state.ereq, state.ereq.message({}), 429, 'Missing mandatory element (request)', 'sync', '{}');
    });
    E('430 request not a string', async () => {
      await expectError(state.ereq, state.ereq.message({ request: 5 }), 430, 'Invalid element type (request should be a string)', 'sync', '{request:5}');
    });
    E('423 unknown request (synchronous)', async () => {
      await expectError(state.ereq, state.ereq.message({ request: 'foo' }), 423, "Unknown request 'foo'", 'sync', '{request:"foo"}');
    });

    // -- synchronous room requests --
    E('427 create an existing room', async () => {
      await expectError(state.ereq, state.ereq.create({ room: EROOM }), 427, `Room ${EROOM} already exists`, 'sync', 'create existing room');
    });
    E('430 create with wrong types / values', async () => {
      await expectError(state.ereq, state.ereq.message({ request: 'create', publishers: 'x' }),
        430, 'Invalid element type (publishers should be a positive integer)', 'sync', 'create publishers:"x"');
      await expectError(state.ereq, state.ereq.message({ request: 'create', bitrate: -1 }),
        430, 'Invalid element type (bitrate should be a positive integer)', 'sync', 'create bitrate:-1');
      await expectError(state.ereq, state.ereq.message({ request: 'create', room: 'abc' }),
        430, 'Invalid element type (room should be a positive integer)', 'sync', 'create room:"abc"');
      await expectError(state.ereq, state.ereq.create({ videocodec: 'foo' }),
        430, 'Invalid element (videocodec can only be or contain vp8, vp9, av1, h264 or h265)', 'sync', 'create videocodec:"foo"');
      await expectError(state.ereq, state.ereq.create({ audiocodec: 'foo' }),
        430, 'Invalid element (audiocodec can only be or contain opus, isac32, isac16, pcmu, pcma or g722)', 'sync', 'create audiocodec:"foo"');
      await expectError(state.ereq, state.ereq.message({ request: 'create', allowed: [1] }),
        430, 'Invalid element in the allowed array (not a string)', 'sync', 'create allowed:[1]');
    });
    E('426 no such room (synchronous requests)', async () => {
      await expectError(state.ereq, state.ereq.destroy({ room: UNKNOWN_ROOM, secret: SECRET }), 426, `No such room (${UNKNOWN_ROOM})`, 'sync', 'destroy unknown room');
      await expectError(state.ereq, state.ereq.listParticipants({ room: UNKNOWN_ROOM }), 426, `No such room (${UNKNOWN_ROOM})`, 'sync', 'listparticipants unknown room');
      await expectError(state.ereq, state.ereq.allow({ room: UNKNOWN_ROOM, action: 'enable', secret: SECRET }), 426, `No such room (${UNKNOWN_ROOM})`, 'sync', 'allowed unknown room');
      // Janus 1.1.2 defect: a missing room on kick is looked up as room 0 (426); jano answers
      // what every other request does without its room (429).
      if (process.env.CLIENT_SERVER_IS_JANUS) {
        await expectError(state.ereq, state.ereq.message({ request: 'kick', id: 5, secret: SECRET }), 426, 'No such room (0)', 'sync', 'kick without room');
      } else {
        await expectError(state.ereq, state.ereq.message({ request: 'kick', id: 5, secret: SECRET }), 429, 'Missing mandatory element (room)', 'sync', 'kick without room');
      }
    });
    E('429/430 room missing / of the wrong type (synchronous)', async () => {
      await expectError(state.ereq, state.ereq.exists({ room: 'abc' }), 430, 'Invalid element type (room should be a positive integer)', 'sync', 'exists room:"abc"');
      await expectError(state.ereq, state.ereq.message({ request: 'listparticipants' }), 429, 'Missing mandatory element (room)', 'sync', 'listparticipants without room');
    });
    E('429/433 secret: missing → 429, wrong → 433 (destroy, kick, allowed)', async () => {
      await expectError(state.ereq, state.ereq.destroy({ room: EROOM }), 429, 'Missing mandatory element (secret)', 'sync', 'destroy without secret');
      await expectError(state.ereq, state.ereq.destroy({ room: EROOM, secret: 'wrong' }), 433, 'Unauthorized (wrong secret)', 'sync', 'destroy wrong secret');
      await expectError(state.ereq, state.ereq.kick({ room: EROOM, feed: ERIN_ID }), 429, 'Missing mandatory element (secret)', 'sync', 'kick without secret');
      await expectError(state.ereq, state.ereq.kick({ room: EROOM, feed: ERIN_ID, secret: 'wrong' }), 433, 'Unauthorized (wrong secret)', 'sync', 'kick wrong secret');
      await expectError(state.ereq, state.ereq.allow({ room: EROOM, action: 'enable', secret: 'wrong' }), 433, 'Unauthorized (wrong secret)', 'sync', 'allowed wrong secret');
      await expectError(state.ereq, state.ereq.message({ request: 'destroy', room: EROOM, secret: 5 }), 430, 'Invalid element type (secret should be a string)', 'sync', 'destroy secret:5');
    });
    E('428/429 kick: unknown participant, missing id', async () => {
      await expectError(state.ereq, state.ereq.kick({ room: EROOM, feed: 5, secret: SECRET }), 428, `No such user 5 in room ${EROOM}`, 'sync', 'kick unknown id');
      await expectError(state.ereq, state.ereq.message({ request: 'kick', room: EROOM, secret: SECRET }), 429, 'Missing mandatory element (id)', 'sync', 'kick without id');
    });
    E('430 rtp_forward with an SRTP suite other than 32/80', async () => {
      await expectError(state.ereq, state.ereq.message({
        request: 'rtp_forward', room: EROOM, secret: SECRET, publisher_id: ERIN_ID, host: '127.0.0.1',
        srtp_suite: 64, srtp_crypto: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      }), 430, 'Invalid SRTP suite (64)', 'sync', 'rtp_forward srtp_suite:64');
    });
    E('429/430 allowed: missing action, unsupported action, non-string token', async () => {
      await expectError(state.ereq, state.ereq.message({ request: 'allowed', room: EROOM, secret: SECRET }),
        429, 'Missing mandatory element (action)', 'sync', 'allowed without action');
      await expectError(state.ereq, state.ereq.allow({ room: EROOM, action: 'zap', secret: SECRET }),
        430, "Unsupported action 'zap' (allowed)", 'sync', 'allowed action:"zap"');
      await expectError(state.ereq, state.ereq.message({ request: 'allowed', room: EROOM, secret: SECRET, action: 'add', allowed: [1] }),
        430, 'Invalid element in the allowed array (not a string)', 'sync', 'allowed add [1]');
    });

    // -- asynchronous requests (ack, then an event carrying the error) --
    E('424 request on an unconfigured handle (configure, leave, start)', async () => {
      const h = await attachVR();
      await expectError(h, h.configure({ display: 'x' }), 424, 'Invalid request on unconfigured participant', 'async', 'configure on a fresh handle');
      await expectError(h, h.leave(), 424, 'Invalid request on unconfigured participant', 'async', 'leave on a fresh handle');
      await expectError(h, h.message({ request: 'start' }), 424, 'Invalid request on unconfigured participant', 'async', 'start on a fresh handle');
    });
    E('429/430 join: missing room, room not an integer, missing ptype, unknown ptype', async () => {
      const h = await attachVR();
      await expectError(h, h.message({ request: 'join', ptype: 'publisher' }), 429, 'Missing mandatory element (room)', 'async', 'join without room');
      await expectError(h, h.joinPublisher({ room: 'abc' }), 430, 'Invalid element type (room should be a positive integer)', 'async', 'join room:"abc"');
      await expectError(h, h.message({ request: 'join', room: EROOM, pin: PIN }), 429, 'Missing mandatory element (ptype)', 'async', 'join without ptype');
      await expectError(h, h.message({ request: 'join', room: EROOM, pin: PIN, ptype: 'lurker' }), 430, 'Invalid element (ptype)', 'async', 'join ptype:"lurker"');
    });
    E('426 join an unknown room', async () => {
      const h = await attachVR();
      await expectError(h, h.joinPublisher({ room: UNKNOWN_ROOM, display: 'x' }), 426, `No such room (${UNKNOWN_ROOM})`, 'async', 'join unknown room');
    });
    E('429/433/430 pin: missing, wrong, not a string', async () => {
      const h = await attachVR();
      await expectError(h, h.joinPublisher({ room: EROOM, display: 'x' }), 429, 'Missing mandatory element (pin)', 'async', 'join without pin');
      await expectError(h, h.joinPublisher({ room: EROOM, display: 'x', pin: 'wrong' }), 433, 'Unauthorized (wrong pin)', 'async', 'join wrong pin');
      await expectError(h, h.message({ request: 'join', ptype: 'publisher', room: EROOM, pin: 5 }), 430, 'Invalid element type (pin should be a string)', 'async', 'join pin:5');
    });
    E('436 join with an id already in the room', async () => {
      const h = await attachVR();
      await expectError(h, h.joinPublisher({ room: EROOM, pin: PIN, feed: ERIN_ID }), 436, `User ID ${ERIN_ID} already exists`, 'async', 'join id taken');
    });
    E('425 join twice on one handle', async () => {
      await expectError(state.erin, state.erin.joinPublisher({ room: EROOM, pin: PIN }), 425, 'Already in as a publisher on this handle', 'async', 'join again (publisher)');
    });
    E('423 unknown request for a publisher (asynchronous)', async () => {
      await expectError(state.erin, state.erin.message({ request: 'start' }), 423, "Unknown request 'start'", 'async', 'start on a publisher');
    });
    E('435 unpublish when not published', async () => {
      await expectError(state.erin, state.erin.unpublish(), 435, "Can't unpublish, not published", 'async', 'unpublish, not published');
    });
    E('428/429 subscriber join: unknown feed, participant not publishing, no streams/feed', async () => {
      const h = await attachVR();
      await expectError(h, h.joinSubscriber({ room: EROOM, pin: PIN, streams: [{ feed: 424242 }] }), 428, 'No such feed (424242)', 'async', 'subscribe unknown feed');
      await expectError(h, h.joinSubscriber({ room: EROOM, pin: PIN, streams: [{ feed: ERIN_ID }] }), 428, `No such feed (${ERIN_ID})`, 'async', 'subscribe non-publishing participant');
      await expectError(h, h.message({ request: 'join', ptype: 'subscriber', room: EROOM, pin: PIN }), 429, 'Missing mandatory element (feed)', 'async', 'subscribe without streams/feed');
      await expectError(h, h.message({ request: 'join', ptype: 'subscriber', room: EROOM, pin: 'wrong', streams: [{ feed: ERIN_ID }] }), 433, 'Unauthorized (wrong pin)', 'async', 'subscribe wrong pin');
    });
    E('after leave: join → 425 "Not in a room", anything else → 426 "No such room"', async () => {
      const h = await attachVR();
      await h.joinPublisher({ room: EROOM, pin: PIN, display: 'leaver' });
      await h.leave();
      await expectError(h, h.joinPublisher({ room: EROOM, pin: PIN }), 425, 'Not in a room (create a new handle)', 'async', 'join after leave');
      await expectError(h, h.configure({ display: 'y' }), 426, 'No such room', 'async', 'configure after leave');
      await expectError(h, h.leave(), 426, 'No such room', 'async', 'leave after leave');
    });
    E('after kick: publish → 426 "No such room" (not 433 "kicked"), join → 425; kick again → 428', async () => {
      const h = await attachVR();
      const j = await h.joinPublisher({ room: EROOM, pin: PIN, display: 'kickme' });
      await state.ereq.kick({ room: EROOM, feed: j.feed, secret: SECRET });
      await expectError(h, h.publish({}), 426, 'No such room', 'async', 'publish after being kicked');
      await expectError(h, h.joinPublisher({ room: EROOM, pin: PIN }), 425, 'Not in a room (create a new handle)', 'async', 'join after being kicked');
      await expectError(state.ereq, state.ereq.kick({ room: EROOM, feed: j.feed, secret: SECRET }), 428, `No such user ${j.feed} in room ${EROOM}`, 'sync', 'kick again');
    });
    E('437/431 unreachable: bad JSEP on publish is refused by the core (465/464/456)', async () => {
      await expectError(state.erin, state.erin.publish({ jsep: { type: 'offer', sdp: 'garbage' } }),
        465, "Invalid SDP (doesn't start with v=)", 'core', 'publish, jsep offer sdp "garbage"');
      await expectError(state.erin, state.erin.message({ request: 'publish' }, { type: 'pranswer', sdp: audioOffer().sdp }),
        464, "JSEP error: unknown message type 'pranswer'", 'core', 'publish, jsep type "pranswer"');
      await expectError(state.erin, state.erin.message({ request: 'publish' }, { type: 'offer' }),
        456, 'JSEP error: missing mandatory element (sdp)', 'core', 'publish, jsep without sdp');
    });
    it('434 ALREADY_PUBLISHED', { skip: 'needs a publisher whose PeerConnection is up (webrtcup): media' }, () => {});
    it('438 INVALID_FEED', { skip: 'not in Janus 1.1.2 (the code does not exist there)' }, () => {});
  });

  // ----------------------------------------------------------------------------------------
  describe('active publisher without media: remote publisher (add_remote_publisher)', () => {
    const r = (name, fn, opts = {}) => step('remote', name, fn, { needs: ['rmgr', ...(opts.needs || [])] });
    const remoteStreams = [
      { type: 'audio', mindex: 0, mid: '0', codec: 'opus' },
      { type: 'video', mindex: 1, mid: '1', codec: 'vp8' },
    ];

    step('remote', `setup: room ${RROOM} (publishers: 1), a watcher joined`, async () => {
      const m = await attachVR();
      assert.deepEqual(await m.create({ room: RROOM, max_publishers: 1, secret: SECRET }), { room: RROOM, permanent: false });
      state.watcher = await attachVR();
      const j = await state.watcher.joinPublisher({ room: RROOM, display: 'watcher' });
      assert.deepEqual(j.publishers, []);
      state.rmgr = m;
    });

    r('add_remote_publisher: missing secret → 429; ok → success; watcher gets videoroom_publisher_list', async () => {
      await expectError(state.rmgr, state.rmgr.message({ request: 'add_remote_publisher', room: RROOM, id: REMOTE_ID, streams: remoteStreams }),
        429, 'Missing mandatory element (secret)', 'sync', 'add_remote_publisher without secret');
      const list = nextEvent(state.watcher, EV.VIDEOROOM_PUB_LIST);
      const res = await state.rmgr.message({
        request: 'add_remote_publisher', room: RROOM, secret: SECRET, id: REMOTE_ID, display: 'remote',
        iface: '127.0.0.1', streams: remoteStreams,
      });
      assert.equal(res.janus, 'success');
      const d = res.plugindata.data;
      assert.equal(d.videoroom, 'success');
      assert.equal(d.room, RROOM);
      assert.equal(d.id, REMOTE_ID);
      assert.equal(typeof d.ip, 'string');
      assert.ok(Number.isInteger(d.port) && d.port > 0, `port: ${brief(d.port)}`);
      assert.ok(Number.isInteger(d.rtcp_port) && d.rtcp_port > 0, `rtcp_port: ${brief(d.rtcp_port)}`);
      assert.deepEqual(Object.keys(d).sort(), ['id', 'ip', 'port', 'room', 'rtcp_port', 'videoroom']);
      state.remoteUp = true;
      // (Janus 1.1.2 inserts the remote publisher into the room after this reply, from the remote
      // publisher's thread; the notification below is the sign that it is in.)
      // janode maps publishers[] to {feed, display, audiocodec, videocodec, streams}.
      assert.deepEqual(await list, {
        room: RROOM,
        publishers: [{ feed: REMOTE_ID, display: 'remote', audiocodec: 'opus', videocodec: 'vp8', streams: remoteStreams }],
      });
      assert.deepEqual(notifications(state.watcher, (x) => x.publishers), [{
        videoroom: 'event', room: RROOM,
        publishers: [{ id: REMOTE_ID, display: 'remote', audio_codec: 'opus', video_codec: 'vp8', streams: remoteStreams }],
      }]);
    });

    r('436 add_remote_publisher with an id in use', async () => {
      await expectError(state.rmgr, state.rmgr.message({
        request: 'add_remote_publisher', room: RROOM, secret: SECRET, id: REMOTE_ID, iface: '127.0.0.1', streams: remoteStreams,
      }), 436, `User ID ${REMOTE_ID} already exists`, 'sync', 'add_remote_publisher id taken');
    }, { needs: ['remoteUp'] });

    r('listParticipants → the remote one is a publisher (remote:true on the wire)', async () => {
      const res = await state.rmgr.listParticipants({ room: RROOM });
      const remote = res.participants.find((p) => p.feed === REMOTE_ID);
      assert.deepEqual(remote, { feed: REMOTE_ID, display: 'remote', publisher: true });
      const data = await lastReplyData(state.rmgr);
      assert.deepEqual(data.participants.find((p) => p.id === REMOTE_ID), { id: REMOTE_ID, display: 'remote', remote: true, publisher: true });
    }, { needs: ['remoteUp'] });

    r('a late publisher joins: joined.publishers lists the remote publisher (janode mapping)', async () => {
      state.late = await attachVR();
      const res = await state.late.joinPublisher({ room: RROOM, display: 'late' });
      assert.deepEqual(res.publishers, [{ feed: REMOTE_ID, display: 'remote', audiocodec: 'opus', videocodec: 'vp8', streams: remoteStreams }]);
      const ev = tx(lastTx('message', state.late)).in.find((m) => m.janus === 'event');
      assert.deepEqual(ev.plugindata.data.publishers, [{ id: REMOTE_ID, display: 'remote', audio_codec: 'opus', video_codec: 'vp8', streams: remoteStreams }]);
      assert.equal(ev.plugindata.data.attendees, undefined, 'no attendees without notify_joining');
    }, { needs: ['remoteUp'] });

    r('432 publish an offer when the room is full', async () => {
      await expectError(state.late, state.late.publish({ jsep: audioOffer() }),
        432, 'Maximum number of publishers (1) already reached', 'async', 'publish offer, room full (publishers:1)');
    }, { needs: ['late'] });

    r('subscriber: 428 unknown mid, 430 bad substream; then attached + JSEP offer', async () => {
      state.sub = await attachVR();
      await expectError(state.sub, state.sub.joinSubscriber({ room: RROOM, streams: [{ feed: REMOTE_ID, mid: '7' }] }),
        428, `No such mid '7' in feed (${REMOTE_ID})`, 'async', 'subscribe unknown mid');
      await expectError(state.sub, state.sub.joinSubscriber({ room: RROOM, streams: [{ feed: REMOTE_ID, substream: 5 }] }),
        430, 'Invalid value (substream/spatial_layer should be 0, 1 or 2)', 'async', 'subscribe substream:5');
      const res = await state.sub.joinSubscriber({ room: RROOM, streams: [{ feed: REMOTE_ID }] });
      assert.deepEqual(lastBody(state.sub), { request: 'join', ptype: 'subscriber', room: RROOM, streams: [{ feed: REMOTE_ID }] });
      // The subscriber's mids are the server's choice (Janus numbers them "0", "1"; jano's engine
      // names them itself): they must be strings and match the offer's m-lines in order.
      const sdpMids = [...res.jsep.sdp.matchAll(/\r\na=mid:([^\r]+)/g)].map((m) => m[1]);
      assert.equal(sdpMids.length, 2, 'two m-lines in the offer');
      const expectedStreams = [
        { type: 'audio', active: true, mindex: 0, mid: sdpMids[0], ready: false, send: true, feed_id: REMOTE_ID, feed_display: 'remote', feed_mid: '0', codec: 'opus' },
        { type: 'video', active: true, mindex: 1, mid: sdpMids[1], ready: false, send: true, feed_id: REMOTE_ID, feed_display: 'remote', feed_mid: '1', codec: 'vp8' },
      ];
      if (process.env.CLIENT_SERVER_IS_JANUS) assert.deepEqual(sdpMids, ['0', '1'], 'Janus numbers the mids');
      assert.deepEqual(Object.keys(res).sort(), ['jsep', 'room', 'streams']);
      assert.equal(res.room, RROOM);
      assert.deepEqual(res.streams, expectedStreams);
      assert.equal(res.jsep.type, 'offer');
      assert.match(res.jsep.sdp, /^v=0\r\n/);
      assert.match(res.jsep.sdp, /\r\nm=audio /);
      assert.match(res.jsep.sdp, /\r\nm=video /);
      assert.equal(state.sub.room, RROOM);
      assert.deepEqual(state.sub.streams, expectedStreams, 'janode stores the streams on the handle');
      const ev = tx(lastTx('message', state.sub)).in.find((m) => m.janus === 'event');
      assert.deepEqual(ev.plugindata.data, { videoroom: 'attached', room: RROOM, streams: expectedStreams });
    }, { needs: ['remoteUp'] });

    r('subscriber: 425 join again, 423 unpublish; pause → paused; leave → left', async () => {
      await expectError(state.sub, state.sub.joinSubscriber({ room: RROOM, streams: [{ feed: REMOTE_ID }] }),
        425, 'Already in as a subscriber on this handle', 'async', 'join again (subscriber)');
      await expectError(state.sub, state.sub.unpublish(), 423, "Unknown request 'unpublish'", 'async', 'unpublish on a subscriber');
      assert.deepEqual(await state.sub.pause(), { room: RROOM, paused: 'ok' });
      assert.deepEqual(await lastReplyData(state.sub), { videoroom: 'event', room: RROOM, paused: 'ok' });
      // {"left":"ok"} is janode's videoroom_leaving for a subscriber (no feed for multistream joins).
      assert.deepEqual(await state.sub.leave(), { room: RROOM });
      assert.deepEqual(await lastReplyData(state.sub), { videoroom: 'event', room: RROOM, left: 'ok' });
    }, { needs: ['sub'] });

    r('431 an offer from a subscriber handle (after its leave)', async () => {
      // The real Janus frees the subscriber's ICE agent asynchronously after `leave`; an offer
      // arriving before that is refused by the core (490 "Error setting ICE locally"). So retry
      // (bounded) while the core says 490; only the plugin's 431 is accepted in the end.
      const attempt = async () => {
        const deadline = Date.now() + 4000;
        for (;;) {
          try {
            return await state.sub.configure({ jsep: audioOffer() });
          } catch (e) {
            if (!(e && e.message === '490 Error setting ICE locally' && Date.now() < deadline)) throw e;
          }
          await new Promise((res) => setTimeout(res, 200));
        }
      };
      await expectError(state.sub, attempt(), 431, 'Only publishers send offers', 'async', 'subscriber configure with an offer (after leave)');
    }, { needs: ['sub'] });

    r(`require_pvtid room ${PROOM}: subscribe without/with a wrong private_id → 433; with the owner's → attached`, async () => {
      assert.deepEqual(await state.rmgr.create({ room: PROOM, require_pvtid: true, secret: SECRET }), { room: PROOM, permanent: false });
      state.pvtWatcher = await attachVR();
      const owner = await state.pvtWatcher.joinPublisher({ room: PROOM, display: 'owner' });
      // Janus 1.1.2 adds a remote publisher to the room from its own thread, after the success
      // reply: wait for the room's publishers notification before subscribing.
      const announced = nextEvent(state.pvtWatcher, EV.VIDEOROOM_PUB_LIST, (d) => d.publishers.some((p) => p.feed === REMOTE2_ID));
      const res = await state.rmgr.message({
        request: 'add_remote_publisher', room: PROOM, secret: SECRET, id: REMOTE2_ID, iface: '127.0.0.1',
        streams: [{ type: 'audio', mindex: 0, mid: '0', codec: 'opus' }],
      });
      assert.equal(res.plugindata.data.videoroom, 'success');
      await announced;
      const h = await attachVR();
      await expectError(h, h.joinSubscriber({ room: PROOM, streams: [{ feed: REMOTE2_ID }] }),
        433, 'Unauthorized (this room requires a valid private_id)', 'async', 'subscribe, require_pvtid, no private_id');
      const wrong = owner.private_id === 1 ? 2 : 1;
      await expectError(h, h.joinSubscriber({ room: PROOM, streams: [{ feed: REMOTE2_ID }], private_id: wrong }),
        433, 'Unauthorized (this room requires a valid private_id)', 'async', 'subscribe, require_pvtid, wrong private_id');
      const ok = await h.joinSubscriber({ room: PROOM, streams: [{ feed: REMOTE2_ID }], private_id: owner.private_id });
      assert.deepEqual(lastBody(h), { request: 'join', ptype: 'subscriber', room: PROOM, streams: [{ feed: REMOTE2_ID }], private_id: owner.private_id });
      assert.equal(ok.jsep.type, 'offer');
      assert.equal(ok.streams.length, 1);
      assert.equal(ok.streams[0].feed_id, REMOTE2_ID);
    }, { needs: ['remoteUp'] });

    r('remove_remote_publisher → success; the others get videoroom_leaving {feed: remote}; again → 428', async () => {
      const leaving = nextEvent(state.watcher, EV.VIDEOROOM_LEAVING, (d) => d.feed === REMOTE_ID);
      const res = await state.rmgr.message({ request: 'remove_remote_publisher', room: RROOM, secret: SECRET, id: REMOTE_ID });
      assert.deepEqual(res.plugindata.data, { videoroom: 'success' });
      assert.deepEqual(await leaving, { room: RROOM, feed: REMOTE_ID });
      assert.deepEqual(notifications(state.watcher, (d) => d.leaving !== undefined), [{ videoroom: 'event', room: RROOM, leaving: REMOTE_ID }]);
      await expectError(state.rmgr, state.rmgr.message({ request: 'remove_remote_publisher', room: RROOM, secret: SECRET, id: REMOTE_ID }),
        428, `No such remote publisher (${REMOTE_ID})`, 'sync', 'remove_remote_publisher unknown id');
      state.remoteUp = false;
    }, { needs: ['remoteUp'] });

    r('destroy the rooms', async () => {
      assert.deepEqual(await state.rmgr.destroy({ room: RROOM, secret: SECRET }), { room: RROOM });
      assert.deepEqual(await state.rmgr.destroy({ room: PROOM, secret: SECRET }), { room: PROOM });
      assert.deepEqual(await state.rmgr.destroy({ room: EROOM, secret: SECRET }), { room: EROOM });
    });
  });

  // ----------------------------------------------------------------------------------------
  describe('end-to-end encryption and the dummy publisher', () => {
    step('e2ee', `require_e2ee room ${XROOM}: a publisher without e2ee → 433`, async () => {
      const m = await attachVR();
      const res = await m.message({ request: 'create', room: XROOM, secret: SECRET, require_e2ee: true });
      assert.equal(res.plugindata.data.videoroom, 'created');
      const listed = (await m.message({ request: 'list' })).plugindata.data.list.find((r) => r.room === XROOM);
      assert.equal(listed.require_e2ee, true);
      const h = await attachVR();
      await h.joinPublisher({ room: XROOM, display: 'plain' });
      await expectError(h, h.publish({ jsep: audioOffer() }), 433, 'Room requires end-to-end encrypted media', 'async', 'publish without e2ee');
      assert.deepEqual(await m.destroy({ room: XROOM, secret: SECRET }), { room: XROOM });
    });

    it(`dummy_publisher room ${DROOM}: listed, joinable, subscribable, not kickable`, { skip: SKIP || NO_DUMMY }, async () => {
      await withTimeout((async () => {
        const m = await attachVR();
        const res = await m.message({
          request: 'create', room: DROOM, secret: SECRET, audiocodec: 'opus,pcmu', videocodec: 'vp8',
          dummy_publisher: true, dummy_streams: [{ codec: 'opus', fmtp: 'useinbandfec=1' }, { codec: 'vp8' }],
        });
        assert.equal(res.plugindata.data.videoroom, 'created');
        await m.listParticipants({ room: DROOM });
        const parts = (await lastReplyData(m)).participants;
        assert.equal(parts.length, 1, brief(parts));
        const dummyId = parts[0].id;
        assert.deepEqual(parts[0], { id: dummyId, display: 'Dummy publisher', dummy: true, publisher: true });
        const streams = [
          { type: 'audio', mindex: 0, mid: '0', codec: 'opus', fec: true },
          { type: 'video', mindex: 1, mid: '1', codec: 'vp8' },
        ];
        const p = await attachVR();
        await p.joinPublisher({ room: DROOM, display: 'real' });
        const ev = tx(lastTx('message', p)).in.find((x) => x.janus === 'event');
        assert.deepEqual(ev.plugindata.data.publishers, [{
          id: dummyId, display: 'Dummy publisher', dummy: true, audio_codec: 'opus', video_codec: 'vp8', streams,
        }]);
        // A subscription to the placeholder: an offer with its m-lines.
        const s = await attachVR();
        const att = await s.joinSubscriber({ room: DROOM, streams: [{ feed: dummyId }] });
        assert.ok(att.jsep && att.jsep.type === 'offer', `offer: ${brief(att.jsep)}`);
        assert.equal((att.jsep.sdp.match(/^m=/gm) || []).length, 2, 'one m-line per dummy stream');
        const a = tx(lastTx('message', s)).in.find((x) => x.janus === 'event').plugindata.data;
        assert.equal(a.videoroom, 'attached');
        assert.deepEqual(a.streams.map((x) => [x.type, x.feed_id, x.feed_mid, x.codec]),
          [['audio', dummyId, '0', 'opus'], ['video', dummyId, '1', 'vp8']]);
        await expectError(m, m.kick({ room: DROOM, feed: dummyId, secret: SECRET }), 428, "Can't kick dummy users", 'sync', 'kick the dummy');
        assert.deepEqual(await m.destroy({ room: DROOM, secret: SECRET }), { room: DROOM });
      })(), STEP_TIMEOUT_MS, 'dummy publisher');
    });
  });

  // ----------------------------------------------------------------------------------------
  describe('teardown', () => {
    step('teardown', 'detach every handle, destroy the session, close', async () => {
      for (const h of state.handles) {
        if (h._detached) continue;
        const detached = new Promise((resolve) => h.once(Janode.EVENT.HANDLE_DETACHED, resolve));
        await h.detach();
        await withTimeout(detached, 3000, `HANDLE_DETACHED for ${h.id}`);
        // Janus may send the `detached` event before the `success` (janode then settles on the
        // event): wait (bounded) for the reply itself.
        const t = lastTx('detach', h);
        const replies = await waitFor(() => (tx(t).in.length >= 1 ? tx(t).in : null), 2000, `reply to detach ${h.id}`);
        assert.equal(replies.length, 1, `one reply to detach: ${brief(replies)}`);
        assert.equal(replies[0].janus, 'success');
      }
      const destroyed = new Promise((resolve) => state.session.once(Janode.EVENT.SESSION_DESTROYED, resolve));
      await state.session.destroy();
      await withTimeout(destroyed, 3000, 'SESSION_DESTROYED');
      const closed = new Promise((resolve) => state.conn.once(Janode.EVENT.CONNECTION_CLOSED, resolve));
      await state.conn.close();
      await withTimeout(closed, 3000, 'CONNECTION_CLOSED');
      state.session = null;
    });
  });
});
