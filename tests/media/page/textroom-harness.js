// In-page driver for the janus.js TextRoom test (loaded into the media test page with
// page.addScriptTag after janus.js). One Janus session and one janus.plugin.textroom handle, used
// the way Janus's own TextRoom demo (textroomtest.js) uses it: {request:"setup"}; the plugin's
// event carries an offer, answered with createAnswer({jsep, tracks:[{type:"data"}]}) (janus.js
// creates its "JanusDataChannel" channel) and sent back with {request:"ack"}; chat requests then
// go over the data channel with handle.data({text}), and what arrives comes in ondata(data, label).
// Every method returns a Promise that settles with plain JSON and rejects on a janus.js error
// callback or after an in-page timeout, so a hang never blocks the test.
(function () {
  'use strict';
  const STEP_MS = Number(window.__STEP_MS || 15000);
  const st = {
    janus: null, handle: null, events: [], data: [], dataOpen: [], webrtcState: [], errors: [],
    offer: null, answer: null, ackSent: null, cleanups: [],
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

  // As the demo: answer the plugin's offer with a data-only answer, then `ack` it.
  function answer(jsep) {
    st.offer = { type: jsep.type, sdp: jsep.sdp };
    st.handle.createAnswer({
      jsep: jsep,
      tracks: [{ type: 'data' }],
      success: function (ours) {
        st.answer = { type: ours.type, sdp: ours.sdp };
        st.ackSent = Date.now();
        st.handle.send({
          message: { request: 'ack' },
          jsep: ours,
          error: function (e) { st.errors.push('ack: ' + errText(e)); },
        });
      },
      error: function (e) { st.errors.push('createAnswer: ' + errText(e)); },
    });
  }

  window.tr = {
    init: function () {
      return timed('Janus.init', function (resolve) {
        Janus.init({ debug: ['warn', 'error'], callback: function () { resolve({ webrtc: Janus.isWebrtcSupported() }); } });
      });
    },

    create: function (server) {
      return timed('new Janus(' + server + ')', function (resolve, reject) {
        let settled = false;
        st.janus = new Janus({
          server: server,
          iceServers: [],
          success: function () { settled = true; resolve({ sessionId: st.janus.getSessionId() }); },
          error: function (e) { st.errors.push('janus: ' + errText(e)); if (!settled) { settled = true; reject(e); } },
          destroyed: function () {},
        });
      });
    },

    attach: function () {
      return timed('attach textroom', function (resolve, reject) {
        st.janus.attach({
          plugin: 'janus.plugin.textroom',
          opaqueId: 'jano-textroom-' + Janus.randomString(8),
          success: function (h) { st.handle = h; resolve({ handleId: h.getId() }); },
          error: reject,
          webrtcState: function (on, reason) { st.webrtcState.push({ t: Date.now(), on: on, reason: reason || null }); },
          onmessage: function (msg, jsep) {
            st.events.push({ t: Date.now(), msg: msg, jsep: jsep ? { type: jsep.type, sdpLength: (jsep.sdp || '').length } : null });
            if (jsep && jsep.type === 'offer') answer(jsep);
          },
          ondataopen: function (label, protocol) { st.dataOpen.push({ t: Date.now(), label: label, protocol: protocol || '' }); },
          ondata: function (data, label) { st.data.push({ t: Date.now(), label: label, raw: data }); },
          oncleanup: function () { st.cleanups.push(Date.now()); },
          ondetached: function () {},
        });
      });
    },

    // A Janus-API plugin request. Resolves with what janus.js hands to `success`: the plugin data
    // of a synchronous request, nothing (null) for an asynchronous one (setup, ack).
    send: function (body) {
      return timed('send(' + JSON.stringify(body) + ')', function (resolve, reject) {
        st.handle.send({
          message: body,
          success: function (data) { resolve({ t: Date.now(), data: data === undefined ? null : data }); },
          error: reject,
        });
      });
    },

    // A request over the data channel (JSON text on janus.js's default channel).
    data: function (obj) {
      return timed('data(' + JSON.stringify(obj) + ')', function (resolve, reject) {
        st.handle.data({ text: JSON.stringify(obj), success: function () { resolve({ t: Date.now() }); }, error: reject });
      });
    },

    detach: function () {
      return timed('detach', function (resolve, reject) {
        st.handle.detach({ success: function () { resolve({}); }, error: reject });
      });
    },

    destroy: function () {
      return timed('destroy session', function (resolve, reject) {
        st.janus.destroy({ success: function () { resolve({}); }, error: reject });
      });
    },

    // The recorded callbacks (SDPs only when `sdp`).
    state: function (sdp) {
      const strip = function (j) { return j ? (sdp ? j : { type: j.type, sdpLength: (j.sdp || '').length }) : null; };
      return {
        handleId: st.handle ? st.handle.getId() : null, events: st.events, data: st.data, dataOpen: st.dataOpen,
        webrtcState: st.webrtcState, errors: st.errors, cleanups: st.cleanups, ackSent: st.ackSent,
        offer: strip(st.offer), answer: strip(st.answer),
      };
    },

    dataCount: function () { return st.data.length; },
  };
})();
