// In-page driver for janus.js. Each method returns a Promise that settles with plain JSON (so
// playwright can hand it back to Node) and rejects on the janus.js error callback or after an
// in-page timeout, so a hang never blocks the test.
(function () {
  'use strict';
  const STEP_MS = Number(window.__STEP_MS || 15000);
  const st = {
    janus: null,
    handle: null,
    events: [],        // onmessage(msg, jsep)
    detached: 0,       // ondetached() calls
    errors: [],        // new Janus({error}) calls (e.g. "Lost connection to the server")
    destroyedCalls: 0, // new Janus({destroyed}) calls
  };

  function errText(e) {
    if (typeof e === 'string') return e;
    if (e && e.message) return e.message;
    try { return JSON.stringify(e); } catch (x) { return String(e); }
  }

  function timed(label, executor) {
    return new Promise(function (resolve, reject) {
      const timer = setTimeout(function () { reject(new Error('in-page timeout after ' + STEP_MS + ' ms: ' + label)); }, STEP_MS);
      try {
        executor(function (v) { clearTimeout(timer); resolve(v); },
          function (e) { clearTimeout(timer); reject(new Error(label + ' failed: ' + errText(e))); });
      } catch (e) {
        clearTimeout(timer);
        reject(new Error(label + ' threw: ' + errText(e)));
      }
    });
  }

  window.jt = {
    init: function () {
      return timed('Janus.init', function (resolve) {
        Janus.init({
          debug: ['log', 'warn', 'error'],
          callback: function () {
            resolve({ webrtc: Janus.isWebrtcSupported(), adapterBrowser: adapter.browserDetails.browser });
          },
        });
      });
    },

    create: function (server, opts) {
      opts = opts || {};
      return timed('new Janus(' + server + ')', function (resolve, reject) {
        let settled = false;
        const cfg = {
          server: server,
          success: function () { settled = true; resolve({ sessionId: st.janus.getSessionId(), connected: st.janus.isConnected() }); },
          error: function (e) { st.errors.push(errText(e)); if (!settled) { settled = true; reject(e); } },
          destroyed: function () { st.destroyedCalls++; },
        };
        if (opts.keepAlivePeriod) cfg.keepAlivePeriod = opts.keepAlivePeriod;
        st.janus = new Janus(cfg);
      });
    },

    attach: function (plugin) {
      return timed('attach ' + plugin, function (resolve, reject) {
        st.janus.attach({
          plugin: plugin,
          opaqueId: 'jano-client-test-' + Janus.randomString(8),
          success: function (h) {
            st.handle = h;
            resolve({ handleId: h.getId(), plugin: h.getPlugin() });
          },
          error: reject,
          onmessage: function (msg, jsep) { st.events.push({ t: Date.now(), msg: msg, jsep: jsep || null }); },
          ondetached: function () { st.detached++; },
        });
      });
    },

    // send({message}) and wait for both the send success callback and the next onmessage.
    send: function (message) {
      return timed('send ' + JSON.stringify(message), function (resolve, reject) {
        const before = st.events.length;
        let sendDone = null;
        st.handle.send({
          message: message,
          success: function (data) { sendDone = { data: data === undefined ? null : data }; },
          error: reject,
        });
        const poll = setInterval(function () {
          if (sendDone && st.events.length > before) {
            clearInterval(poll);
            resolve({ sendSuccess: sendDone, event: st.events[before] });
          }
        }, 10);
      });
    },

    detach: function () {
      return timed('detach', function (resolve, reject) {
        st.handle.detach({ success: function () { resolve({}); }, error: reject });
      });
    },

    destroy: function () {
      return timed('destroy', function (resolve, reject) {
        st.janus.destroy({ success: function () { resolve({}); }, error: reject });
      });
    },

    state: function () {
      return {
        sessionId: st.janus ? st.janus.getSessionId() : null,
        connected: st.janus ? st.janus.isConnected() : null,
        events: st.events,
        detached: st.detached,
        errors: st.errors,
        destroyedCalls: st.destroyedCalls,
      };
    },

    wire: function () { return window.__wire; },
  };
})();
