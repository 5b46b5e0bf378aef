// In-page driver for the janus.js AudioBridge media test (Chromium's fake microphone).
// One Janus session and one janus.plugin.audiobridge handle, used the way Janus's own AudioBridge
// demo (audiobridgetest.js) uses it: {request:"join"} without JSEP; on `joined` (with our id)
// createOffer({tracks:[{type:"audio", capture:true, recv:true}]}) and send it with
// {request:"configure", muted:false}; the answer comes back in onmessage → handleRemoteJsep.
// Every method returns a Promise that settles with plain JSON and rejects on a janus.js error
// callback or after an in-page timeout, so a hang never blocks the test.
(function () {
  'use strict';
  const STEP_MS = Number(window.__STEP_MS || 15000);
  const st = {
    janus: null, handle: null, myid: null, offered: false, offer: null, answer: null,
    events: [], webrtcState: [], iceState: [], mediaState: [], localTracks: [], remoteTracks: [],
    errors: [], cleanups: [], configureSent: null, audio: null,
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

  // As the demo: on our own `joined`, publish the microphone with createOffer + configure.
  function publish() {
    st.offered = true;
    st.handle.createOffer({
      tracks: [{ type: 'audio', capture: true, recv: true }],
      success: function (jsep) {
        st.offer = jsep;
        st.configureSent = Date.now();
        st.handle.send({
          message: { request: 'configure', muted: false },
          jsep: jsep,
          error: function (e) { st.errors.push('configure: ' + errText(e)); },
        });
      },
      error: function (e) { st.errors.push('createOffer: ' + errText(e)); },
    });
  }

  window.ab = {
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
      return timed('attach audiobridge', function (resolve, reject) {
        st.janus.attach({
          plugin: 'janus.plugin.audiobridge',
          opaqueId: 'jano-audiobridge-' + Janus.randomString(8),
          success: function (h) { st.handle = h; resolve({ handleId: h.getId() }); },
          error: reject,
          webrtcState: function (on, reason) { st.webrtcState.push({ t: Date.now(), on: on, reason: reason || null }); },
          iceState: function (s) { st.iceState.push({ t: Date.now(), state: s }); },
          mediaState: function (medium, on, mid) { st.mediaState.push({ t: Date.now(), medium: medium, on: on, mid: mid }); },
          onmessage: function (msg, jsep) {
            st.events.push({ t: Date.now(), msg: msg, jsep: jsep ? { type: jsep.type, sdp: jsep.sdp } : null });
            if (msg && msg.audiobridge === 'joined' && msg.id !== undefined && msg.id !== null) {
              st.myid = msg.id;
              if (!st.offered) publish();
            }
            if (jsep) {
              st.answer = jsep;
              st.handle.handleRemoteJsep({
                jsep: jsep,
                error: function (e) { st.errors.push('handleRemoteJsep: ' + errText(e)); },
              });
            }
          },
          onlocaltrack: function (track, on) { st.localTracks.push({ t: Date.now(), kind: track ? track.kind : null, on: on }); },
          onremotetrack: function (track, mid, on) {
            st.remoteTracks.push({ t: Date.now(), kind: track ? track.kind : null, mid: mid, on: on });
            if (!on || !track || track.kind !== 'audio') return;
            // Play the mix. Not a muted element: Chromium computes the inbound-rtp audioLevel
            // and totalAudioEnergy after the track's playout gain, which a muted element sets to
            // 0 (the browser runs with --mute-audio, so nothing is heard anyway).
            if (!st.audio) {
              st.audio = document.createElement('audio');
              st.audio.autoplay = true; st.audio.muted = false; st.audio.volume = 1;
              document.body.appendChild(st.audio);
            }
            // janus.js reports the same track again when it unmutes: reloading the element
            // for it would only interrupt the play() already under way.
            if (st.audioTrack === track) return;
            st.audioTrack = track;
            st.audio.srcObject = new MediaStream([track]);
            st.audio.play().catch(function (e) {
              // A newer track replacing this one interrupts its play(): not an error.
              if (e && e.name === 'AbortError') return;
              st.errors.push('audio.play: ' + errText(e));
            });
          },
          oncleanup: function () { st.cleanups.push(Date.now()); },
          ondetached: function () {},
        });
      });
    },

    // A plugin request without JSEP. Resolves with what janus.js hands to `success`: the plugin
    // data of a synchronous request (create, listparticipants, destroy), nothing for an
    // asynchronous one (join, leave: the plugin's event comes in onmessage).
    send: function (body) {
      return timed('send(' + JSON.stringify(body) + ')', function (resolve, reject) {
        st.handle.send({
          message: body,
          success: function (data) { resolve({ t: Date.now(), data: data === undefined ? null : data }); },
          error: reject,
        });
      });
    },

    // Audio RTP stats of the PeerConnection: what comes in (the mix), what goes out, and the
    // microphone's level.
    stats: async function () {
      const pc = st.handle && st.handle.webrtcStuff && st.handle.webrtcStuff.pc;
      if (!pc) return null;
      const report = await pc.getStats();
      const out = { t: Date.now(), inbound: [], outbound: [], source: [], pair: null, codecs: {} };
      const byId = {};
      report.forEach(function (s) { byId[s.id] = s; });
      report.forEach(function (s) {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          const c = byId[s.codecId];
          out.inbound.push({ mid: s.mid, ssrc: s.ssrc, packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0,
            packetsLost: s.packetsLost || 0, jitter: s.jitter, audioLevel: s.audioLevel, totalAudioEnergy: s.totalAudioEnergy,
            totalSamplesReceived: s.totalSamplesReceived || 0, totalSamplesDuration: s.totalSamplesDuration || 0,
            concealedSamples: s.concealedSamples || 0, silentConcealedSamples: s.silentConcealedSamples || 0,
            codec: c ? c.mimeType + '/' + c.clockRate + '/' + (c.channels || 1) : null });
        }
        if (s.type === 'outbound-rtp' && s.kind === 'audio') {
          out.outbound.push({ mid: s.mid, ssrc: s.ssrc, packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0 });
        }
        if (s.type === 'media-source' && s.kind === 'audio') {
          out.source.push({ audioLevel: s.audioLevel, totalAudioEnergy: s.totalAudioEnergy, totalSamplesDuration: s.totalSamplesDuration });
        }
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          const r = byId[s.remoteCandidateId];
          out.pair = { remote: r ? { address: r.address, port: r.port, type: r.candidateType, protocol: r.protocol } : null };
        }
      });
      return out;
    },

    hangup: function () {
      return timed('hangup', function (resolve) {
        st.handle.hangup(true);
        resolve({});
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

    // The recorded callbacks (no SDPs unless `sdp`).
    state: function (sdp) {
      const strip = function (j) { return j ? (sdp ? { type: j.type, sdp: j.sdp } : { type: j.type, sdpLength: (j.sdp || '').length }) : null; };
      return {
        handleId: st.handle ? st.handle.getId() : null, myid: st.myid, configureSent: st.configureSent,
        events: st.events.map(function (e) { return { t: e.t, msg: e.msg, jsep: strip(e.jsep) }; }),
        webrtcState: st.webrtcState, iceState: st.iceState, mediaState: st.mediaState,
        localTracks: st.localTracks, remoteTracks: st.remoteTracks, errors: st.errors, cleanups: st.cleanups,
        offer: strip(st.offer), answer: strip(st.answer),
      };
    },

    wire: function () { return window.__wire; },
  };
})();
