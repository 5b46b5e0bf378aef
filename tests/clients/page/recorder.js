// Loaded BEFORE adapter.js and janus.js: wraps window.fetch and window.WebSocket so the test can
// check the exact HTTP exchanges and WebSocket frames janus.js produced and received.
// (janus.js captures `fetch` and `WebSocket` when Janus.init runs, so this must come first.)
(function () {
  'use strict';
  const wire = [];
  window.__wire = wire;

  function parse(text) {
    if (typeof text !== 'string') return text;
    try { return JSON.parse(text); } catch (e) { return { __unparsed: text }; }
  }

  const origFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    init = init || {};
    const url = typeof input === 'string' ? input : input.url;
    const entry = {
      t: Date.now(),
      kind: 'http',
      method: init.method || 'GET',
      url: String(url),
      req: init.body !== undefined ? parse(init.body) : undefined,
    };
    wire.push(entry);
    return origFetch(input, init).then(function (resp) {
      entry.status = resp.status;
      entry.contentType = resp.headers.get('content-type');
      entry.allowOrigin = resp.headers.get('access-control-allow-origin');
      resp.clone().text().then(function (text) {
        entry.res = parse(text);
        entry.tDone = Date.now();
      }, function (err) {
        entry.bodyError = String(err);
      });
      return resp;
    }, function (err) {
      entry.error = String(err && err.message || err);
      entry.tDone = Date.now();
      throw err;
    });
  };

  const OrigWebSocket = window.WebSocket;
  class RecordingWebSocket extends OrigWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      const ws = this;
      wire.push({ t: Date.now(), kind: 'ws', dir: 'connect', url: String(url), protocols: protocols });
      this.addEventListener('open', function () {
        wire.push({ t: Date.now(), kind: 'ws', dir: 'open', protocol: ws.protocol });
      });
      this.addEventListener('message', function (ev) {
        wire.push({ t: Date.now(), kind: 'ws', dir: 'in', msg: parse(ev.data) });
      });
      this.addEventListener('error', function () {
        wire.push({ t: Date.now(), kind: 'ws', dir: 'error' });
      });
      this.addEventListener('close', function (ev) {
        wire.push({ t: Date.now(), kind: 'ws', dir: 'close', code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
      });
    }
    send(data) {
      wire.push({ t: Date.now(), kind: 'ws', dir: 'out', msg: parse(data) });
      return super.send(data);
    }
  }
  window.WebSocket = RecordingWebSocket;
})();
