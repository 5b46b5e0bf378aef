// Real-client test: meetecho/janode (npm `janode`) over the Janus WebSocket API, plus the
// WebSocket Admin API (janus-admin-protocol) when JANUS_ADMIN_WS_URL is set.
//
// Env: JANUS_WS_URL (required), JANUS_ADMIN_WS_URL + JANUS_ADMIN_SECRET (optional).
//
// Every frame janode sends and receives is recorded (the transport's send and the connection's
// message dispatcher are wrapped), so the assertions check the exact wire shapes the server
// produced, not only that janode's promises resolved. On a failing step the wire log is printed.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import Janode from 'janode';
import Handle from 'janode/handle';
import EchoTestPlugin from 'janode/plugins/echotest';

import { STEP_TIMEOUT_MS, withTimeout, waitFor, isPositiveSafeInteger, brief, requireEnv } from './lib/util.mjs';

const WS_URL = requireEnv('JANUS_WS_URL');
const ADMIN_WS_URL = process.env.JANUS_ADMIN_WS_URL || '';
const ADMIN_SECRET = process.env.JANUS_ADMIN_SECRET || 'janusoverlord';
const ECHOTEST = 'janus.plugin.echotest';

Janode.Logger.setLevel(process.env.JANODE_LOG || 'warn');

/**
 * A minimal plugin descriptor for a plugin janode has no class for: a Handle subclass whose
 * handleMessage() accepts any EchoTest event and closes the pending transaction with the raw
 * Janus message (so the test sees exactly what the server sent). Without an override the base
 * Handle rejects every asynchronous `event` with "unmanaged event".
 */
class RawEchoHandle extends Handle {
  constructor(session, id) {
    super(session, id);
    this.events = [];
  }

  handleMessage(msg) {
    const data = msg.plugindata && msg.plugindata.data;
    if (!data || typeof data.echotest === 'undefined') return null;
    this.events.push(msg);
    if (msg.transaction && this.ownsTransaction(msg.transaction)) {
      this.closeTransactionWithSuccess(msg.transaction, msg);
    }
    return msg; // truthy: handled
  }
}
const RawEchoTest = { id: ECHOTEST, Handle: RawEchoHandle };

/** Record the wire traffic of one janode connection. */
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
  admin: null,
  session: null,
  raw: null,
  echo: null,
  failed: null,
  connEvents: [],
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

/** The transaction of the last request of kind `janus` sent on `tag`. */
function lastTx(janus, tag = 'api') {
  const e = state.wire.filter((x) => x.dir === 'out' && x.tag === tag && x.msg.janus === janus).at(-1);
  assert.ok(e, `no "${janus}" request was sent on ${tag}`);
  return e.msg.transaction;
}

/** A test step: skipped if an earlier step failed, wire log printed when it fails. */
function step(name, fn, { needs = [] } = {}) {
  it(name, async (t) => {
    if (state.failed) {
      t.skip(`earlier step failed: ${state.failed}`);
      return;
    }
    for (const n of needs) {
      if (!state[n]) {
        t.skip(`needs ${n}`);
        return;
      }
    }
    try {
      await withTimeout(fn(t), STEP_TIMEOUT_MS, name);
    } catch (e) {
      // janode rejects some failures with a non-Error (e.g. the ws ErrorEvent): normalise.
      const err = e instanceof Error ? e : new Error(`${e && e.type || 'error'}: ${e && e.error && e.error.message || e && e.message || brief(e)}`);
      state.failed = name;
      console.error(`\n[janode] step "${name}" failed: ${err.stack}\n${dumpWire()}\n`);
      throw err;
    }
  });
}

describe(`janode over WebSocket (${WS_URL})`, () => {
  before(() => {
    console.error(`[janode] JANUS_WS_URL=${WS_URL} JANUS_ADMIN_WS_URL=${ADMIN_WS_URL || '(unset: admin steps skipped)'}`);
  });

  after(async () => {
    if (process.env.JANO_CLIENT_DUMP) console.error(`[janode] full wire log:\n${dumpWire(1000)}`);
    // Best-effort cleanup so the process can exit (janode's ping task keeps the loop alive).
    for (const c of [state.conn, state.admin]) {
      if (!c || c._transport._closed) continue;
      try { await withTimeout(c.close(), 3000, 'close'); } catch { /* already closed */ }
    }
  });

  step('connect (sub-protocol janus-protocol)', async () => {
    state.conn = await Janode.connect({ address: { url: WS_URL }, retry_time_secs: 1, max_retries: 0 });
    state.wire = recordWire(state.conn, 'api');
    state.conn.on(Janode.EVENT.CONNECTION_ERROR, (e) => state.connEvents.push(`error: ${e.message}`));
    state.conn.on(Janode.EVENT.CONNECTION_CLOSED, () => state.connEvents.push('closed'));
    assert.equal(state.conn._transport._ws.protocol, 'janus-protocol', 'server must select the janus-protocol sub-protocol');
  });

  step('info → server_info', async () => {
    const info = await state.conn.getInfo();
    const t = lastTx('info');
    assert.equal(info.janus, 'server_info');
    assert.equal(info.transaction, t, 'server_info must echo the transaction');
    assert.equal(info.session_id, undefined, 'server_info must not carry session_id');
    assert.equal(typeof info.name, 'string');
    assert.ok(Number.isInteger(info.version), `version must be an integer, got ${brief(info.version)}`);
    assert.equal(typeof info.version_string, 'string');
    assert.equal(typeof info.plugins, 'object');
    assert.ok(info.plugins && info.plugins[ECHOTEST], `plugins must list ${ECHOTEST}: ${brief(info.plugins && Object.keys(info.plugins))}`);
    assert.equal(typeof info.plugins[ECHOTEST].name, 'string');
    console.error(`[janode] server: ${info.name} ${info.version_string}; transports: ${brief(Object.keys(info.transports || {}))}`);
  });

  step('WebSocket ping is answered with a pong within 5 s', async () => {
    // janode pings every 10 s and terminates the socket if no pong comes within 5 s.
    await state.conn._transport._ping();
  });

  step('create session', async () => {
    state.session = await state.conn.create();
    const id = state.session.id;
    assert.ok(isPositiveSafeInteger(id), `session id must be a positive JS-safe integer, got ${brief(id)}`);
    const { in: replies } = tx(lastTx('create'));
    assert.equal(replies.length, 1, `exactly one reply to create: ${brief(replies)}`);
    assert.equal(replies[0].janus, 'success');
    assert.equal(replies[0].data.id, id);
    // janode routes any frame that has session_id to its session map; the create reply must not
    // carry one, or janode drops it (the session is not known yet) and create() hangs.
    assert.equal(replies[0].session_id, undefined, 'create reply must not carry top-level session_id');
  });

  step('keepalive → ack', async () => {
    await state.session._sendKeepAlive(5000);
    const { in: replies } = tx(lastTx('keepalive'));
    assert.equal(replies.length, 1, `one reply to keepalive: ${brief(replies)}`);
    assert.equal(replies[0].janus, 'ack');
    assert.equal(replies[0].session_id, state.session.id);
  }, { needs: ['session'] });

  step(`attach ${ECHOTEST} with a generic Handle subclass`, async () => {
    state.raw = await state.session.attach(RawEchoTest);
    assert.ok(state.raw instanceof RawEchoHandle);
    assert.ok(isPositiveSafeInteger(state.raw.id), `handle id must be a positive JS-safe integer, got ${brief(state.raw.id)}`);
    const { in: replies } = tx(lastTx('attach'));
    assert.equal(replies.length, 1);
    assert.equal(replies[0].janus, 'success');
    assert.equal(replies[0].session_id, state.session.id);
    assert.equal(replies[0].data.id, state.raw.id);
  }, { needs: ['session'] });

  step('message {audio:true} → ack + event {echotest:"event", result:"ok"} with the same transaction', async () => {
    const ev = await state.raw.message({ audio: true });
    const t = lastTx('message');
    const sent = tx(t).out[0];
    assert.equal(sent.session_id, state.session.id);
    assert.equal(sent.handle_id, state.raw.id);
    assert.deepEqual(sent.body, { audio: true });

    assert.equal(ev.janus, 'event');
    assert.equal(ev.transaction, t, 'the async event must echo the request transaction');
    assert.equal(ev.session_id, state.session.id);
    assert.equal(ev.sender, state.raw.id);
    assert.equal(ev.plugindata.plugin, ECHOTEST);
    assert.equal(ev.plugindata.data.echotest, 'event');
    assert.equal(ev.plugindata.data.result, 'ok');
    assert.equal(ev.jsep, undefined, 'no jsep was sent, none must come back');

    // EchoTest is asynchronous: one ack and one event for the transaction. The order is not
    // asserted: the real Janus races them (event before ack happens), janode copes with both.
    const replies = await waitFor(() => (tx(t).in.length >= 2 ? tx(t).in : null), 2000, 'ack and event');
    assert.deepEqual(replies.map((m) => m.janus).sort(), ['ack', 'event'], `one ack and one event: ${brief(replies)}`);
    const ack = replies.find((m) => m.janus === 'ack');
    assert.equal(ack.session_id, state.session.id, 'ack must carry session_id');
  }, { needs: ['raw'] });

  step('message {} → event with error_code 413', async () => {
    const ev = await state.raw.message({});
    const t = lastTx('message');
    assert.equal(ev.janus, 'event');
    assert.equal(ev.transaction, t);
    assert.equal(ev.sender, state.raw.id);
    assert.equal(ev.plugindata.plugin, ECHOTEST);
    assert.equal(ev.plugindata.data.echotest, 'event');
    assert.equal(ev.plugindata.data.error_code, 413);
    assert.equal(typeof ev.plugindata.data.error, 'string');
    const replies = await waitFor(() => (tx(t).in.length >= 2 ? tx(t).in : null), 2000, 'ack and event');
    assert.deepEqual(replies.map((m) => m.janus).sort(), ['ack', 'event']);
  }, { needs: ['raw'] });

  step(`janode's own EchoTest plugin class: attach + start({audio:true})`, async () => {
    state.echo = await state.session.attach(EchoTestPlugin);
    assert.ok(isPositiveSafeInteger(state.echo.id));
    assert.notEqual(state.echo.id, state.raw.id, 'two handles must get distinct ids');
    // janode 1.8.0 quirk: start() defaults jsep to null and then reads null.type; `false` skips
    // both the offer check and the jsep field.
    const res = await state.echo.start({ audio: true, jsep: false });
    assert.equal(res.result, 'ok');
    const t = lastTx('message');
    assert.deepEqual(tx(t).out[0].body, { audio: true, video: false, record: false, bitrate: 0 });
  }, { needs: ['session', 'raw'] });

  describe('admin API over WebSocket (janus-admin-protocol)', { skip: ADMIN_WS_URL ? false : 'JANUS_ADMIN_WS_URL not set' }, () => {
    step('admin connect', async () => {
      state.admin = await Janode.connect({
        is_admin: true,
        address: { url: ADMIN_WS_URL, apisecret: ADMIN_SECRET },
        retry_time_secs: 1,
        max_retries: 0,
      });
      recordWire(state.admin, 'admin', state.wire); // one timeline for both connections
      assert.equal(state.admin._transport._ws.protocol, 'janus-admin-protocol');
    });

    step('list_sessions contains our session', async () => {
      const res = await state.admin.listSessions();
      const t = lastTx('list_sessions', 'admin');
      const out = tx(t).out[0];
      assert.equal(out.admin_secret, ADMIN_SECRET, 'janode sends the secret as admin_secret');
      assert.equal(res.janus, 'success');
      assert.equal(res.transaction, t);
      assert.ok(Array.isArray(res.sessions), `sessions must be an array: ${brief(res)}`);
      assert.ok(res.sessions.includes(state.session.id), `session ${state.session.id} not in ${brief(res.sessions)}`);
    }, { needs: ['admin', 'session'] });

    step('list_handles contains both handles', async () => {
      const res = await state.admin.listHandles(state.session.id);
      assert.equal(res.janus, 'success');
      assert.equal(res.session_id, state.session.id);
      assert.ok(Array.isArray(res.handles), `handles must be an array: ${brief(res)}`);
      assert.deepEqual([...res.handles].sort(), [state.raw.id, state.echo.id].sort());
    }, { needs: ['admin', 'raw', 'echo'] });

    step('handle_info names the plugin', async () => {
      const res = await state.admin.handleInfo(state.session.id, state.raw.id);
      assert.equal(res.janus, 'success');
      assert.equal(res.session_id, state.session.id);
      assert.equal(res.handle_id, state.raw.id);
      assert.equal(typeof res.info, 'object');
      assert.equal(res.info.plugin, ECHOTEST);
      assert.equal(res.info.handle_id, state.raw.id);
      assert.equal(res.info.session_id, state.session.id);
    }, { needs: ['admin', 'raw'] });

    step('admin request with a wrong secret → error 403', async () => {
      await assert.rejects(
        state.admin.sendRequest({ janus: 'list_sessions', admin_secret: 'wrong-secret' }),
        (err) => /^403\b/.test(err.message),
      );
    }, { needs: ['admin'] });
  });

  step('detach both handles → success', async () => {
    for (const h of [state.raw, state.echo]) {
      const detached = new Promise((resolve) => h.once(Janode.EVENT.HANDLE_DETACHED, resolve));
      await h.detach(); // janode swallows detach errors: check the wire and the event
      await withTimeout(detached, 2000, `HANDLE_DETACHED for ${h.id}`);
      const { in: replies } = tx(lastTx('detach'));
      assert.equal(replies.length, 1, `one reply to detach: ${brief(replies)}`);
      assert.equal(replies[0].janus, 'success');
      assert.equal(replies[0].session_id, state.session.id);
    }
    if (state.admin) {
      const res = await state.admin.listHandles(state.session.id);
      assert.deepEqual(res.handles, [], 'no handles left after detach');
    }
  }, { needs: ['session', 'raw', 'echo'] });

  step('destroy session → success', async () => {
    const id = state.session.id;
    const destroyed = new Promise((resolve) => state.session.once(Janode.EVENT.SESSION_DESTROYED, resolve));
    await state.session.destroy();
    await withTimeout(destroyed, 2000, 'SESSION_DESTROYED');
    const { in: replies } = tx(lastTx('destroy'));
    assert.equal(replies.length, 1);
    assert.equal(replies[0].janus, 'success');
    assert.equal(replies[0].session_id, id);
    if (state.admin) {
      const res = await state.admin.listSessions();
      assert.ok(!res.sessions.includes(id), `session ${id} still listed after destroy: ${brief(res.sessions)}`);
    }
  }, { needs: ['session'] });

  step('close connections gracefully', async () => {
    for (const c of [state.conn, state.admin]) {
      if (!c) continue;
      const closed = new Promise((resolve) => c.once(Janode.EVENT.CONNECTION_CLOSED, resolve));
      await c.close();
      await withTimeout(closed, 3000, 'CONNECTION_CLOSED');
    }
    assert.ok(!state.connEvents.some((e) => e.startsWith('error')), `unexpected connection errors: ${brief(state.connEvents)}`);
  }, { needs: ['conn'] });
});
