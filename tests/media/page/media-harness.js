// In-page driver for the janus.js EchoTest media test (Chromium's fake camera + microphone).
// Every method returns a Promise that settles with plain JSON and rejects on a janus.js error
// callback or after an in-page timeout, so a hang never blocks the test.
(function () {
  'use strict';
  const STEP_MS = Number(window.__STEP_MS || 15000);
  const st = {
    janus: null,
    handle: null,
    events: [],          // onmessage(msg, jsep)
    webrtcState: [],     // webrtcState(on, reason)
    iceState: [],        // iceState(state)
    mediaState: [],      // mediaState(medium, on, mid)
    localTracks: [],     // onlocaltrack(track, on)
    remoteTracks: [],    // onremotetrack(track, mid, on)
    dataOpen: [],        // ondataopen(label, protocol)
    data: [],            // ondata(data, label)
    errors: [],
    hangups: [],         // oncleanup() calls
    video: null,         // remote <video>
    frames: 0,           // requestVideoFrameCallback count
    frameSizes: {},      // "WxH" -> count
    audio: null,
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

  function countFrames(video) {
    const cb = function (now, meta) {
      st.frames++;
      const k = meta.width + 'x' + meta.height;
      st.frameSizes[k] = (st.frameSizes[k] || 0) + 1;
      video.requestVideoFrameCallback(cb);
    };
    video.requestVideoFrameCallback(cb);
  }

  function onRemoteTrack(track, mid, on) {
    st.remoteTracks.push({ t: Date.now(), kind: track ? track.kind : null, mid: mid, on: on });
    if (!on || !track) return;
    if (track.kind === 'video' && !st.video) {
      const v = document.createElement('video');
      v.autoplay = true; v.muted = true; v.playsInline = true;
      v.srcObject = new MediaStream([track]);
      document.body.appendChild(v);
      st.video = v;
      countFrames(v);
      v.play().catch(function (e) { st.errors.push('video.play: ' + errText(e)); });
    } else if (track.kind === 'audio' && !st.audio) {
      const a = document.createElement('audio');
      a.autoplay = true; a.muted = true;
      a.srcObject = new MediaStream([track]);
      document.body.appendChild(a);
      st.audio = a;
      a.play().catch(function (e) { st.errors.push('audio.play: ' + errText(e)); });
    }
  }

  window.jm = {
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

    attach: function () {
      return timed('attach echotest', function (resolve, reject) {
        st.janus.attach({
          plugin: 'janus.plugin.echotest',
          opaqueId: 'jano-media-' + Janus.randomString(8),
          success: function (h) { st.handle = h; resolve({ handleId: h.getId() }); },
          error: reject,
          webrtcState: function (on, reason) { st.webrtcState.push({ t: Date.now(), on: on, reason: reason || null }); },
          iceState: function (s) { st.iceState.push(s); },
          mediaState: function (medium, on, mid) { st.mediaState.push({ medium: medium, on: on, mid: mid }); },
          onmessage: function (msg, jsep) {
            st.events.push({ t: Date.now(), msg: msg, jsep: jsep || null });
            if (jsep) {
              st.handle.handleRemoteJsep({
                jsep: jsep,
                error: function (e) { st.errors.push('handleRemoteJsep: ' + errText(e)); },
              });
            }
          },
          onlocaltrack: function (track, on) { st.localTracks.push({ kind: track ? track.kind : null, on: on }); },
          onremotetrack: onRemoteTrack,
          ondataopen: function (label, protocol) { st.dataOpen.push({ label: label, protocol: protocol || null }); },
          ondata: function (data, label) { st.data.push({ data: data, label: label }); },
          oncleanup: function () { st.hangups.push(Date.now()); },
          ondetached: function () {},
        });
      });
    },

    // createOffer with the fake camera + microphone and a data channel, then send it with
    // {audio:true, video:true}; resolves when the offer was sent (the answer comes in onmessage).
    call: function () {
      return timed('createOffer + send', function (resolve, reject) {
        st.handle.createOffer({
          tracks: [
            { type: 'audio', capture: true, recv: true },
            { type: 'video', capture: true, recv: true },
            { type: 'data' },
          ],
          success: function (jsep) {
            st.offer = jsep;
            st.handle.send({
              message: { audio: true, video: true },
              jsep: jsep,
              success: function () { resolve({ offerType: jsep.type, sdpLength: jsep.sdp.length }); },
              error: reject,
            });
          },
          error: reject,
        });
      });
    },

    // Simulcast variant of call(): the fake camera only (no audio, no data channel), captured at
    // `capture` (default 1280x720 ideal, so that Chromium can send all three layers) with
    // janus.js's rid-based simulcast (h/m/l, scaleResolutionDownBy 1/2/4); sends `body`
    // (default {audio:false, video:true}) with the offer.
    callSimulcast: function (opts) {
      opts = opts || {};
      return timed('createOffer(simulcast) + send', function (resolve, reject) {
        st.handle.createOffer({
          tracks: [
            { type: 'video', capture: opts.capture || { width: { ideal: 1280 }, height: { ideal: 720 } }, recv: true, simulcast: true },
          ],
          success: function (jsep) {
            st.offer = jsep;
            st.handle.send({
              message: opts.body || { audio: false, video: true },
              jsep: jsep,
              success: function () { resolve({ offerType: jsep.type, sdpLength: jsep.sdp.length }); },
              error: reject,
            });
          },
          error: reject,
        });
      });
    },

    // A plugin message without JSEP (e.g. {substream: 0}); resolves when the request was sent
    // (janus.js: the ack); the plugin's answer comes in onmessage (state().events).
    message: function (body) {
      return timed('send(' + JSON.stringify(body) + ')', function (resolve, reject) {
        st.handle.send({ message: body, success: function () { resolve({ t: Date.now() }); }, error: reject });
      });
    },

    // What Chromium sends per simulcast layer (outbound-rtp by rid) and what it decodes.
    simulcastStats: async function () {
      const pc = st.handle && st.handle.webrtcStuff && st.handle.webrtcStuff.pc;
      if (!pc) return null;
      const report = await pc.getStats();
      const out = { t: Date.now(), outbound: [], inbound: null };
      report.forEach(function (s) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.outbound.push({ rid: s.rid || null, ssrc: s.ssrc, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
            framesSent: s.framesSent || 0, framesEncoded: s.framesEncoded || 0, bytesSent: s.bytesSent || 0, active: s.active,
            qualityLimitationReason: s.qualityLimitationReason || null, targetBitrate: s.targetBitrate || 0,
            keyFramesEncoded: s.keyFramesEncoded || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0, nackCount: s.nackCount || 0 });
        }
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.inbound = { ssrc: s.ssrc, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0, framesDecoded: s.framesDecoded || 0,
            keyFramesDecoded: s.keyFramesDecoded || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0, nackCount: s.nackCount || 0,
            packetsLost: s.packetsLost || 0, freezeCount: s.freezeCount || 0, totalFreezesDuration: s.totalFreezesDuration || 0 };
        }
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          out.availableOutgoingBitrate = s.availableOutgoingBitrate || 0;
        }
      });
      return out;
    },

    sendData: function (text) {
      return timed('data(' + text + ')', function (resolve, reject) {
        st.handle.data({ text: text, success: function () { resolve({}); }, error: reject });
      });
    },

    hangup: function () {
      return timed('hangup', function (resolve) {
        st.handle.hangup(true); // sendRequest=true: janus.js sends {"janus":"hangup"}
        resolve({});
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

    videoState: function () {
      const v = st.video;
      return v ? {
        videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime,
        paused: v.paused, readyState: v.readyState, frames: st.frames, frameSizes: st.frameSizes,
      } : null;
    },

    pcStats: async function () {
      const pc = st.handle && st.handle.webrtcStuff && st.handle.webrtcStuff.pc;
      if (!pc) return null;
      const report = await pc.getStats();
      const out = { inbound: [], outbound: [], pair: null, localCandidate: null, remoteCandidate: null };
      const byId = {};
      report.forEach(function (s) { byId[s.id] = s; });
      report.forEach(function (s) {
        if (s.type === 'inbound-rtp') out.inbound.push({ kind: s.kind, packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived, framesDecoded: s.framesDecoded });
        if (s.type === 'outbound-rtp') out.outbound.push({ kind: s.kind, packetsSent: s.packetsSent });
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          out.pair = { state: s.state };
          const l = byId[s.localCandidateId]; const r = byId[s.remoteCandidateId];
          out.localCandidate = l ? { address: l.address, port: l.port, type: l.candidateType, protocol: l.protocol } : null;
          out.remoteCandidate = r ? { address: r.address, port: r.port, type: r.candidateType, protocol: r.protocol } : null;
        }
      });
      return out;
    },

    state: function () {
      return {
        sessionId: st.janus ? st.janus.getSessionId() : null,
        events: st.events, webrtcState: st.webrtcState, iceState: st.iceState,
        mediaState: st.mediaState, localTracks: st.localTracks, remoteTracks: st.remoteTracks,
        dataOpen: st.dataOpen, data: st.data, errors: st.errors, hangups: st.hangups,
        offerSdp: st.offer ? st.offer.sdp : null,
      };
    },

    wire: function () { return window.__wire; },
  };
})();
