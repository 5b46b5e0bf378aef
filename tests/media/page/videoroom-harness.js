// In-page driver for the janus.js VideoRoom media test (Chromium's fake camera + microphone).
// One Janus session per page and any number of named janus.plugin.videoroom handles on it, used
// the way Janus's own VideoRoom demo (videoroomtest.js) uses them: a publisher handle publishes
// with createOffer + {request:"configure"}; a subscriber handle answers the plugin's offer with
// createAnswer({tracks:[{type:"data"}]}) + {request:"start"} as soon as it arrives.
// Every method returns a Promise that settles with plain JSON and rejects on a janus.js error
// callback or after an in-page timeout, so a hang never blocks the test.
(function () {
  'use strict';
  const STEP_MS = Number(window.__STEP_MS || 15000);
  const st = { janus: null, handles: {}, errors: [] };

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

  function H(name) {
    const h = st.handles[name];
    if (!h) throw new Error('no handle named ' + name);
    return h;
  }

  // A remote video track rendered in its own <video>; every decoded frame is counted with
  // requestVideoFrameCallback, with its time and size (frame times are kept for freeze checks).
  function remoteVideo(h, track, mid) {
    let r = h.videos[mid];
    if (!r) {
      const v = document.createElement('video');
      v.autoplay = true; v.muted = true; v.playsInline = true;
      document.body.appendChild(v);
      r = h.videos[mid] = { el: v, trackId: null, frames: 0, frameSizes: {}, frameTimes: [], sizes: [], lastSize: null };
      const cb = function (now, meta) {
        r.frames++;
        const k = meta.width + 'x' + meta.height;
        r.frameSizes[k] = (r.frameSizes[k] || 0) + 1;
        const t = Date.now();
        r.frameTimes.push(t);
        if (r.frameTimes.length > 20000) r.frameTimes.splice(0, 10000);
        if (k !== r.lastSize) { r.lastSize = k; r.sizes.push({ t: t, size: k, frame: r.frames }); }
        v.requestVideoFrameCallback(cb);
      };
      v.requestVideoFrameCallback(cb);
    }
    if (r.trackId !== track.id) {
      r.trackId = track.id;
      r.el.srcObject = new MediaStream([track]);
      r.el.play().catch(function (e) { h.errors.push('video.play: ' + errText(e)); });
    }
  }

  window.vr = {
    init: function () {
      return timed('Janus.init', function (resolve) {
        Janus.init({
          debug: ['warn', 'error'],
          callback: function () { resolve({ webrtc: Janus.isWebrtcSupported() }); },
        });
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

    // Attach janus.plugin.videoroom as handle `name`.
    attach: function (name) {
      return timed('attach videoroom (' + name + ')', function (resolve, reject) {
        const h = st.handles[name] = {
          name: name, handle: null, room: null, events: [], webrtcState: [], iceState: [], mediaState: [],
          localTracks: [], remoteTracks: [], videos: {}, errors: [], cleanups: [], offer: null, answer: null,
          starts: [],
        };
        st.janus.attach({
          plugin: 'janus.plugin.videoroom',
          opaqueId: 'jano-videoroom-' + Janus.randomString(8),
          success: function (ph) { h.handle = ph; resolve({ handleId: ph.getId() }); },
          error: reject,
          webrtcState: function (on, reason) { h.webrtcState.push({ t: Date.now(), on: on, reason: reason || null }); },
          iceState: function (s) { h.iceState.push({ t: Date.now(), state: s }); },
          mediaState: function (medium, on, mid) { h.mediaState.push({ t: Date.now(), medium: medium, on: on, mid: mid }); },
          onmessage: function (msg, jsep) {
            h.events.push({ t: Date.now(), msg: msg, jsep: jsep || null });
            if (!jsep) return;
            if (jsep.type === 'answer') {
              // Publisher: the answer to our offer.
              h.answer = jsep;
              h.handle.handleRemoteJsep({
                jsep: jsep,
                error: function (e) { h.errors.push('handleRemoteJsep: ' + errText(e)); },
              });
              return;
            }
            // Subscriber: the plugin's offer. As the demo: accept data channels if offered, and
            // audio/video as recvonly; answer with {request:"start", room}.
            h.remoteOffer = jsep;
            h.handle.createAnswer({
              jsep: jsep,
              tracks: [{ type: 'data' }],
              success: function (ans) {
                h.answer = ans;
                const start = { t: Date.now() };
                h.starts.push(start);
                h.handle.send({
                  message: { request: 'start', room: h.room },
                  jsep: ans,
                  success: function () { start.acked = Date.now(); },
                  error: function (e) { h.errors.push('start: ' + errText(e)); },
                });
              },
              error: function (e) { h.errors.push('createAnswer: ' + errText(e)); },
            });
          },
          onlocaltrack: function (track, on) { h.localTracks.push({ t: Date.now(), kind: track ? track.kind : null, on: on }); },
          onremotetrack: function (track, mid, on, meta) {
            h.remoteTracks.push({ t: Date.now(), kind: track ? track.kind : null, mid: mid, on: on, reason: meta && meta.reason || null });
            if (on && track && track.kind === 'video') remoteVideo(h, track, mid);
          },
          oncleanup: function () { h.cleanups.push(Date.now()); },
          ondetached: function () {},
        });
      });
    },

    // A plugin request without JSEP. Resolves with what janus.js hands to `success`: the plugin
    // data of a synchronous request (e.g. create/destroy), nothing for an asynchronous one (its
    // ack; the plugin's event comes in onmessage: state(name).events).
    send: function (name, body) {
      const h = H(name);
      if (body && body.room !== undefined && (body.request === 'join' || body.request === 'joinandconfigure')) h.room = body.room;
      return timed(name + ' send(' + JSON.stringify(body) + ')', function (resolve, reject) {
        h.handle.send({
          message: body,
          success: function (data) { resolve({ t: Date.now(), data: data === undefined ? null : data }); },
          error: reject,
        });
      });
    },

    // As the demo's publishOwnFeed(true): createOffer with the fake microphone and camera (here
    // captured at 1280x720 so that Chromium sends three VP8 layers, janus.js's rid-based
    // simulcast h/m/l), then {request:"configure", audio:true, video:true} with the offer.
    // Resolves when the request was acked; the answer comes in onmessage.
    publish: function (name, opts) {
      opts = opts || {};
      const h = H(name);
      return timed(name + ' createOffer + configure', function (resolve, reject) {
        h.handle.createOffer({
          tracks: [
            { type: 'audio', capture: true, recv: false },
            // `svc` (e.g. 'L3T3_KEY'): one VP9 stream with spatial and temporal layers instead.
            opts.svc
              ? { type: 'video', capture: opts.capture || { width: { ideal: 1280 }, height: { ideal: 720 } }, recv: false, svc: opts.svc }
              : { type: 'video', capture: opts.capture || { width: { ideal: 1280 }, height: { ideal: 720 } }, recv: false, simulcast: true },
          ],
          success: function (jsep) {
            h.offer = jsep;
            h.handle.send({
              message: opts.body || { request: 'configure', audio: true, video: true },
              jsep: jsep,
              success: function () { resolve({ t: Date.now(), offerType: jsep.type, sdpLength: jsep.sdp.length }); },
              error: reject,
            });
          },
          error: reject,
        });
      });
    },

    // Decoded-video state of the remote video for `mid` (all of them when mid is omitted).
    video: function (name, mid, since) {
      const h = H(name);
      const one = function (m) {
        const r = h.videos[m];
        if (!r) return null;
        const v = r.el;
        return {
          mid: m, videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime,
          paused: v.paused, readyState: v.readyState, frames: r.frames, frameSizes: r.frameSizes,
          sizes: r.sizes.slice(-20),
          frameTimes: since !== undefined ? r.frameTimes.filter(function (t) { return t >= since; }) : undefined,
        };
      };
      if (mid !== undefined && mid !== null) return one(mid);
      const out = {};
      Object.keys(h.videos).forEach(function (m) { out[m] = one(m); });
      return out;
    },

    // Video RTP stats: what is sent per simulcast layer (outbound-rtp by rid) and what is decoded.
    stats: async function (name) {
      const h = H(name);
      const pc = h.handle && h.handle.webrtcStuff && h.handle.webrtcStuff.pc;
      if (!pc) return null;
      const report = await pc.getStats();
      const out = { t: Date.now(), outbound: [], inbound: [], audioIn: [], audioOut: [], pair: null };
      const byId = {};
      report.forEach(function (s) { byId[s.id] = s; });
      report.forEach(function (s) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.outbound.push({ rid: s.rid || null, mid: s.mid, ssrc: s.ssrc, scalabilityMode: s.scalabilityMode || null, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
            framesSent: s.framesSent || 0, framesEncoded: s.framesEncoded || 0, bytesSent: s.bytesSent || 0, active: s.active,
            qualityLimitationReason: s.qualityLimitationReason || null, targetBitrate: s.targetBitrate || 0,
            keyFramesEncoded: s.keyFramesEncoded || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0, nackCount: s.nackCount || 0 });
        }
        if (s.type === 'outbound-rtp' && s.kind === 'audio') out.audioOut.push({ mid: s.mid, packetsSent: s.packetsSent || 0 });
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.inbound.push({ mid: s.mid, ssrc: s.ssrc, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0, framesDecoded: s.framesDecoded || 0,
            keyFramesDecoded: s.keyFramesDecoded || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0, nackCount: s.nackCount || 0,
            packetsReceived: s.packetsReceived || 0, packetsLost: s.packetsLost || 0, freezeCount: s.freezeCount || 0,
            totalFreezesDuration: s.totalFreezesDuration || 0, bytesReceived: s.bytesReceived || 0 });
        }
        if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioIn.push({ mid: s.mid, packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0 });
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          const r = byId[s.remoteCandidateId];
          out.pair = { availableOutgoingBitrate: s.availableOutgoingBitrate || 0, availableIncomingBitrate: s.availableIncomingBitrate || 0,
            remote: r ? { address: r.address, port: r.port, type: r.candidateType, protocol: r.protocol } : null };
        }
      });
      return out;
    },

    hangup: function (name) {
      return timed(name + ' hangup', function (resolve) {
        H(name).handle.hangup(true);
        resolve({});
      });
    },

    detach: function (name) {
      return timed(name + ' detach', function (resolve, reject) {
        H(name).handle.detach({ success: function () { resolve({}); }, error: reject });
      });
    },

    destroy: function () {
      return timed('destroy session', function (resolve, reject) {
        st.janus.destroy({ success: function () { resolve({}); }, error: reject });
      });
    },

    // The handle's recorded callbacks (no SDPs unless `sdp`).
    state: function (name, sdp) {
      const h = H(name);
      const strip = function (j) { return j ? (sdp ? { type: j.type, sdp: j.sdp } : { type: j.type, sdpLength: (j.sdp || '').length }) : null; };
      return {
        handleId: h.handle ? h.handle.getId() : null, room: h.room,
        events: h.events.map(function (e) { return { t: e.t, msg: e.msg, jsep: strip(e.jsep) }; }),
        webrtcState: h.webrtcState, iceState: h.iceState, mediaState: h.mediaState,
        localTracks: h.localTracks, remoteTracks: h.remoteTracks, errors: h.errors.concat(st.errors), cleanups: h.cleanups,
        offer: strip(h.offer), answer: strip(h.answer), remoteOffer: strip(h.remoteOffer), starts: h.starts,
      };
    },

    sessionId: function () { return st.janus ? st.janus.getSessionId() : null; },
    wire: function () { return window.__wire; },
  };
})();
