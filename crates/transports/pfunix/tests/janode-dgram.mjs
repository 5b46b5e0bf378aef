// Janode (meetecho/janode) over its Unix DGRAM transport, against a jano started by
// tests/janode.rs. Every step is asserted on what janode delivered and on the wire frames it
// sent and received. Exit code 0 and a last line "JANODE-DGRAM OK" mean success.
//
// Usage: node janode-dgram.mjs <janus api socket> <admin socket> <admin secret>

import assert from 'node:assert/strict';

const NM = new URL('../../../../tests/clients/node_modules/', import.meta.url);
const { default: Janode } = await import(new URL('janode/src/janode.js', NM));
const { default: Handle } = await import(new URL('janode/src/handle.js', NM));

const [apiPath, adminPath, adminSecret] = process.argv.slice(2);
assert.ok(apiPath && adminPath && adminSecret, 'usage: janode-dgram.mjs <api> <admin> <secret>');
const ECHOTEST = 'janus.plugin.echotest';
const STEP_MS = 10000;

Janode.Logger.setLevel(process.env.JANODE_LOG || 'warn');

/** A Handle for a plugin janode has no class for: closes the transaction with the raw event. */
class RawEchoHandle extends Handle {
  handleMessage(msg) {
    const data = msg.plugindata && msg.plugindata.data;
    if (!data || typeof data.echotest === 'undefined') return null;
    if (msg.transaction && this.ownsTransaction(msg.transaction)) {
      this.closeTransactionWithSuccess(msg.transaction, msg);
    }
    return msg;
  }
}
const RawEchoTest = { id: ECHOTEST, Handle: RawEchoHandle };

const wire = [];
function record(connection, tag) {
  const t = connection._transport;
  const send = t.send.bind(t);
  t.send = async (req) => {
    wire.push({ tag, dir: 'out', msg: JSON.parse(JSON.stringify(req)) });
    return send(req);
  };
  const handle = connection._handleMessage.bind(connection);
  connection._handleMessage = (msg) => {
    wire.push({ tag, dir: 'in', msg: JSON.parse(JSON.stringify(msg)) });
    return handle(msg);
  };
}
const sentOf = (janus, tag = 'api') => wire.filter((e) => e.tag === tag && e.dir === 'out' && e.msg.janus === janus).at(-1).msg;
const repliesTo = (transaction) => wire.filter((e) => e.dir === 'in' && e.msg.transaction === transaction).map((e) => e.msg);

function within(promise, label) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${STEP_MS} ms: ${label}`)), STEP_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function step(name, fn) {
  try {
    const r = await within(fn(), name);
    console.log(`ok - ${name}`);
    return r;
  } catch (e) {
    console.log(`not ok - ${name}: ${e && e.stack || e}`);
    for (const w of wire.slice(-20)) console.log(`  ${w.tag} ${w.dir === 'out' ? '>>' : '<<'} ${JSON.stringify(w.msg)}`);
    process.exit(1);
  }
}

const conn = await step('connect over file://', async () => {
  const c = await Janode.connect({ address: { url: `file://${apiPath}` }, retry_time_secs: 1, max_retries: 0 });
  record(c, 'api');
  return c;
});

await step('info → server_info', async () => {
  const info = await conn.getInfo();
  assert.equal(info.janus, 'server_info');
  assert.equal(info.transaction, sentOf('info').transaction);
  assert.ok(info.plugins[ECHOTEST], 'echotest listed');
  assert.ok(info.transports['janus.transport.pfunix'], 'pfunix listed');
});

const session = await step('create session', async () => {
  const s = await conn.create();
  assert.ok(Number.isSafeInteger(s.id) && s.id > 0);
  const replies = repliesTo(sentOf('create').transaction);
  assert.equal(replies.length, 1);
  assert.equal(replies[0].janus, 'success');
  assert.equal(replies[0].session_id, undefined);
  return s;
});

const admin = await step('admin connect over file:// and list_sessions', async () => {
  const a = await Janode.connect({
    is_admin: true,
    address: { url: `file://${adminPath}`, apisecret: adminSecret },
    retry_time_secs: 1,
    max_retries: 0,
  });
  record(a, 'admin');
  const res = await a.listSessions();
  assert.ok(res.sessions.includes(session.id), `our session in ${JSON.stringify(res.sessions)}`);
  return a;
});

const handle = await step(`attach ${ECHOTEST}`, async () => {
  const h = await session.attach(RawEchoTest);
  assert.ok(h instanceof RawEchoHandle);
  const replies = repliesTo(sentOf('attach').transaction);
  assert.equal(replies[0].janus, 'success');
  assert.equal(replies[0].data.id, h.id);
  return h;
});

await step('message {audio:true} → ack + event with the same transaction', async () => {
  const ev = await handle.message({ audio: true });
  const sent = sentOf('message');
  assert.deepEqual(sent.body, { audio: true });
  assert.equal(ev.janus, 'event');
  assert.equal(ev.transaction, sent.transaction);
  assert.equal(ev.sender, handle.id);
  assert.equal(ev.session_id, session.id);
  assert.deepEqual(ev.plugindata, { plugin: ECHOTEST, data: { echotest: 'event', result: 'ok' } });
  const end = Date.now() + 2000;
  let kinds = [];
  while (Date.now() < end) {
    kinds = repliesTo(sent.transaction).map((m) => m.janus).sort();
    if (kinds.length >= 2) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(kinds, ['ack', 'event']);
});

await step('detach', async () => {
  await handle.detach();
  const replies = repliesTo(sentOf('detach').transaction);
  assert.equal(replies[0].janus, 'success');
});

await step('destroy', async () => {
  await session.destroy();
  const replies = repliesTo(sentOf('destroy').transaction);
  assert.equal(replies[0].janus, 'success');
  const res = await admin.listSessions();
  assert.ok(!res.sessions.includes(session.id));
});

await step('close', async () => {
  await conn.close();
  await admin.close();
});

console.log('JANODE-DGRAM OK');
process.exit(0);
