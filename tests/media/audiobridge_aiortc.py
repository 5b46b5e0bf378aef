#!/usr/bin/env python3
"""End-to-end AudioBridge (janus.plugin.audiobridge) with aiortc: three participants whose audio
goes through the server's mixer, and the room notifications around them.

For each transport (HTTP long poll with a 48 kHz room, WebSocket with a 16 kHz room), with three
Janus sessions: session A holds an admin handle and participant A ("alice"), session B holds
participant B ("bob") and a probe handle (error cases), session C holds participant C ("carol").
A sends a 440 Hz tone, B 1000 Hz, C 1800 Hz (20 ms frames of 48 kHz s16 PCM, so aiortc encodes
Opus). The room is created here (id chosen by the server) and destroyed at the end.

  create -> exists, list -> A joins with an offer (joined + answer, ICE/DTLS, webrtcup) -> B
  joins (B's joined lists A; A gets joined [B, setup:false] then event [B, setup:true]) -> C
  joins (likewise, for A and B) -> listparticipants (3) -> the mix: everyone hears the two
  others' tones and not their own (FFT over a window starting 1 s after the last change) ->
  B configure muted:true (result ok; A and C get participants [B muted:true]) -> A and C no
  longer hear 1000 Hz -> B unmuted -> 1000 Hz is back -> C leave (left; A and B get leaving)
  -> A and B no longer hear 1800 Hz -> errors 487 (configure before join), 485 (join a room
  that does not exist), 486 (create an existing room), 482 (unknown request), 483 (no
  request), a body that is not an object (core error 467) -> destroy (A and B get destroyed,
  their PeerConnections are closed: hangup) -> exists:false -> detach, destroy sessions.

Then a second room, over WebSocket only (16 kHz), created with a `secret`, talk detection
(audiolevel_event, audio_active_packets 25, audio_level_average 40) and WAV recording
(record_dir/record_file in --dir): session D holds the admin handle and "dave" (500 Hz), session
E "erin" (digital silence throughout) and a probe handle, session F "frank" (1300 Hz, kicked).

  create -> list (record:true) -> dave, erin, frank join (dave and frank silent at first) ->
  dave and frank start their tones: talking [dave], [frank] to all three (the speakers
  included), listparticipants talking flags -> dave silent: stopped-talking [dave] to all
  three; never a talk event about erin -> kick frank: success; kicked -> all three; frank gets
  `hangup`; dave and erin then get leaving -> play_file (660 Hz Ogg Opus, file_id):
  announcement-started, is_playing true, both hear 660 Hz, 499 for a missing file, 490 for a
  file_id in use; stop_file: announcement-stopped, is_playing false -> play_file of 1 s without
  file_id: started, then stopped by itself -> enable_recording false: the WAV (16-bit mono at
  16 kHz) holds 500, 1300 and 660 Hz -> a table of 31 error cases (exact code and text) ->
  destroy (secret) -> detach, destroy sessions.

Talk detection needs the ssrc-audio-level RTP header extension with real levels: aiortc 1.16
sends it on every audio packet (rtcrtpsender.py: rtp.compute_audio_level_dbov, the RFC 6465
level of the frame it encodes: -15 dBov for the tones here, -127 for digital silence), so the
test needs no patch; a silent source is level 127, which Janus 1.1.2 also treats as silence.
The Ogg Opus files are written with PyAV's libopus (`av`, already needed): no GStreamer/ffmpeg.

The media checks are relative and can fail: the power in a +-6 Hz band around a tone, as a
fraction of the window's total power, must be >= 10 % for every tone a participant should hear,
and each tone it must not hear (its own, a muted or departed participant's) must be at least
20 dB below the weakest tone it should hear.

Every message shape asserted here is what Janus 1.1.2 really sends (observed, then encoded);
where it differs from shared/spec/plugin-audiobridge.md a comment says so ("Janus 1.1.2:").

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`);
exits 1 if anything failed. Usage:
  audiobridge_aiortc.py --http http://10.x.y.1:8088/janus --ws ws://10.x.y.1:8188 [--addr A]
      [--dir <folder the server can read and write>] [--only http|ws|extras]
(--only ws runs the WebSocket room and the second room; --only extras just the second room.)
"""

import argparse
import asyncio
import fractions
import os
import shutil
import struct
import sys
import tempfile
import time
import wave

import numpy as np
from av import AudioFrame
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from echotest_aiortc import CONNECT_TIMEOUT, SAMPLE_RATE, Runner, check, stepper
from janus_client import HttpJanus, WsJanus, brief

AUDIOBRIDGE = "janus.plugin.audiobridge"
STEP = 12.0  # seconds: bound of one signalling exchange (request -> event/notification)
SETTLE = 1.0  # seconds after a change (connect, mute, leave) before a listening window starts
WINDOW = 2.0  # seconds of decoded audio analysed per check
AMPLITUDE = 0.25  # of full scale, per tone (the mix of two stays below clipping)
BAND_HZ = 6.0  # half-width of the band measured around a tone
MIN_SHARE = 0.10  # a tone that must be heard: at least this share of the window's power
MIN_DB = 20.0  # a tone that must not be heard: at least this far below the weakest heard one
MIN_RMS = 1000.0
MIN_FRAMES = 100  # decoded by each participant from its connection to the end of the first window
FRAME_MS = 20


def pdata(m):
    return m["plugindata"]["data"]


# ------------------------------------------------------------------------------------------------
# Sources, sinks, spectrum
# ------------------------------------------------------------------------------------------------

class Tone(MediaStreamTrack):
    """A sine tone, 20 ms frames of mono s16 PCM at 48 kHz, paced in real time. While `on` is
    false it sends digital silence instead (the frames keep flowing)."""

    kind = "audio"
    SAMPLES = SAMPLE_RATE * FRAME_MS // 1000

    def __init__(self, hz, on=True):
        super().__init__()
        self.hz = hz
        self.on = on
        self.pos = 0
        self._start = None

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self.pos / SAMPLE_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(self.SAMPLES) + self.pos) / SAMPLE_RATE
        amp = AMPLITUDE if self.on else 0.0
        pcm = (amp * 32767 * np.sin(2 * np.pi * self.hz * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.pos
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.pos += self.SAMPLES
        return frame


class Sink:
    """Every decoded frame of the mix a participant receives, with its arrival time."""

    def __init__(self):
        self.frames = []  # (monotonic time, int16 mono samples)
        self.rate = None
        self.task = None

    def on_track(self, track):
        if track.kind == "audio" and self.task is None:
            self.task = asyncio.ensure_future(self._consume(track))

    async def _consume(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            arr = frame.to_ndarray()
            ch = len(frame.layout.channels)
            if arr.shape[0] == 1 and ch > 1:  # packed: (1, samples*channels)
                arr = arr.reshape(-1, ch).T
            self.rate = frame.sample_rate
            self.frames.append((time.monotonic(), arr[0].astype(np.int16)))

    def window(self, t0, t1):
        return [s for t, s in self.frames if t0 <= t < t1]


def analyse(chunks, rate, tones):
    """(rms, {hz: share of the window's power in hz +- BAND_HZ})."""
    x = np.concatenate(chunks).astype(np.float64)
    rms = float(np.sqrt(np.mean(x ** 2)))
    x = (x - x.mean()) * np.hanning(len(x))
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    total = float(power[1:].sum()) or 1.0
    return rms, {hz: float(power[np.abs(freqs - hz) <= BAND_HZ].sum()) / total for hz in tones}


def analyse_long(x, rate, tones, seg_s=1.0):
    """Like analyse(), for a long recording whose tones come and go: the power spectra of
    consecutive Hann-windowed 1 s segments, summed (one window over the whole file would all but
    hide its beginning and its end)."""
    n = int(rate * seg_s)
    win = np.hanning(n)
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    band = {hz: 0.0 for hz in tones}
    total = 0.0
    for i in range(0, len(x) - n + 1, n):
        s = x[i:i + n].astype(np.float64)
        power = np.abs(np.fft.rfft((s - s.mean()) * win)) ** 2
        total += float(power[1:].sum())
        for hz in tones:
            band[hz] += float(power[np.abs(freqs - hz) <= BAND_HZ].sum())
    return {hz: band[hz] / (total or 1.0) for hz in tones}


def db(a, b):
    return 10 * np.log10(max(a, 1e-15) / max(b, 1e-15))


# ------------------------------------------------------------------------------------------------
# Janus sessions and participants
# ------------------------------------------------------------------------------------------------

class Client:
    """A janus_client session plus the AudioBridge request patterns used here."""

    def __init__(self, c, name):
        self.c = c
        self.name = name

    def mark(self):
        return len(self.c.received)

    async def sync_raw(self, hid, body, what):
        """A synchronous plugin request: the reply is `success` carrying plugindata."""
        r = await self.c.message(hid, body)
        check(r.get("janus") == "success", f"{what}: synchronous request, expected success, got {brief(r)}")
        check(r.get("sender") == hid, f"{what}: reply sender {r.get('sender')} != handle {hid}")
        check(r.get("plugindata", {}).get("plugin") == AUDIOBRIDGE, f"{what}: plugindata {brief(r.get('plugindata'))}")
        return pdata(r)

    async def sync(self, hid, body, what):
        data = await self.sync_raw(hid, body, what)
        check("error_code" not in data, f"{what}: plugin error {brief(data)}")
        return data

    async def async_(self, hid, body, what, jsep=None, expect_error=False):
        """An asynchronous plugin request: `ack`, then an `event` with the same transaction
        (either order on the wire)."""
        r = await self.c.message(hid, body, jsep)
        check(r.get("janus") == "ack", f"{what}: asynchronous request, expected ack, got {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx,
                                   STEP, f"the event answering {what}")
        check(ev.get("sender") == hid, f"{what}: event sender {ev.get('sender')} != handle {hid}")
        check(ev.get("session_id") == self.c.session_id, f"{what}: event session_id {brief(ev)}")
        check(ev.get("plugindata", {}).get("plugin") == AUDIOBRIDGE, f"{what}: plugindata {brief(ev.get('plugindata'))}")
        data = pdata(ev)
        if not expect_error:
            check("error_code" not in data, f"{what}: plugin error {brief(data)}")
        return ev, data

    async def notification(self, mark, hid, pred, what, timeout=STEP):
        """An unsolicited plugin event for `hid` received after `mark` whose data matches `pred`.
        Unsolicited events carry no transaction."""
        old = {id(m) for _, m in self.c.received[:mark]}
        m = await self.c.wait_for(
            lambda m: id(m) not in old and m["janus"] == "event" and m.get("sender") == hid
            and pred(pdata(m)), timeout, f"{what} (handle {hid})")
        check("transaction" not in m, f"{what}: an unsolicited event must not carry a transaction: {brief(m)}")
        check(m["plugindata"].get("plugin") == AUDIOBRIDGE, f"{what}: plugindata {brief(m['plugindata'])}")
        return pdata(m)

    async def core_event(self, mark, hid, kind, what, timeout=STEP):
        old = {id(m) for _, m in self.c.received[:mark]}
        return await self.c.wait_for(
            lambda m: id(m) not in old and m["janus"] == kind and m.get("sender") == hid, timeout, what)


class Peer:
    def __init__(self, client, display, hz, on=True):
        self.cl = client
        self.display = display
        self.hz = hz
        self.on = on  # whether its Tone starts with the tone (else with silence)
        self.hid = None
        self.id = None
        self.pc = None
        self.sink = Sink()
        self.connected_at = None


def entry(p, setup, muted=False):
    """A participant entry the way Janus 1.1.2 lists it (without the optional `talking`)."""
    return {"id": p.id, "display": p.display, "setup": setup, "muted": muted}


def strip_talking(e):
    # Janus 1.1.2 adds "talking":false to an entry in a `joined` reply and in `listparticipants`
    # when that participant negotiated the audio-level extension (aiortc offers it) — not in the
    # notifications. Optional here; a boolean when present.
    e = dict(e)
    if "talking" in e:
        check(isinstance(e["talking"], bool), f"talking must be a boolean: {brief(e)}")
        del e["talking"]
    return e


# ------------------------------------------------------------------------------------------------
# One room conversation
# ------------------------------------------------------------------------------------------------

class BridgeRun:
    def __init__(self, kind, url, addr, rate):
        mk = HttpJanus if kind == "http" else WsJanus
        self.kind = kind
        self.addr = addr
        self.rate = rate
        self.SA, self.SB, self.SC = Client(mk(url), "A"), Client(mk(url), "B"), Client(mk(url), "C")
        self.A = Peer(self.SA, "alice", 440.0)
        self.B = Peer(self.SB, "bob", 1000.0)
        self.C = Peer(self.SC, "carol", 1800.0)
        self.peers = (self.A, self.B, self.C)
        self.tones = tuple(p.hz for p in self.peers)
        self.description = f"jano audiobridge test {kind} {os.getpid()}"
        self.adm = self.probe = None
        self.room = None
        self.room_destroyed = False
        self.mute_at = self.unmute_at = self.leave_at = None

    def dump(self):
        return "\n".join(f"  session {cl.name}:\n{cl.c.dump(20)}" for cl in (self.SA, self.SB, self.SC))

    # -- steps -----------------------------------------------------------------------------
    async def setup(self):
        for cl in (self.SA, self.SB, self.SC):
            await cl.c.connect()
            sid = await cl.c.create()
            check(isinstance(sid, int) and sid > 0, f"session id {sid!r}")
        self.adm = await self.SA.c.attach(AUDIOBRIDGE)
        d = await self.SA.sync(self.adm, {"request": "create", "description": self.description,
                                          "sampling_rate": self.rate}, "create")
        # Janus 1.1.2: {"audiobridge":"created","room":R,"permanent":false}; R random, JS-safe.
        check(d.get("audiobridge") == "created" and d.get("permanent") is False and set(d) == {
            "audiobridge", "room", "permanent"}, f"create: {brief(d)}")
        room = d.get("room")
        check(isinstance(room, int) and 0 < room <= 2 ** 53 - 1, f"create: room id {room!r}")
        self.room = room
        d = await self.SA.sync(self.adm, {"request": "exists", "room": room}, "exists")
        check(d == {"audiobridge": "success", "room": room, "exists": True}, f"exists: {brief(d)}")
        d = await self.SA.sync(self.adm, {"request": "list"}, "list")
        # Janus 1.1.2: {"audiobridge":"success","list":[{room, description, sampling_rate,
        # spatial_audio, pin_required, record, muted, num_participants}]} (`list`, not `rooms`).
        check(d.get("audiobridge") == "success" and isinstance(d.get("list"), list), f"list: {brief(d)}")
        mine = [r for r in d["list"] if r.get("room") == room]
        check(len(mine) == 1, f"list: room {room} listed {len(mine)} times: {brief(d)}")
        want = {"room": room, "description": self.description, "sampling_rate": self.rate,
                "spatial_audio": False, "pin_required": False, "record": False, "muted": False,
                "num_participants": 0}
        check(mine[0] == want, f"list entry {brief(mine[0])}, expected {brief(want)}")
        return f"room {room} at {self.rate} Hz, {len(d['list'])} room(s) listed"

    async def join(self, p, earlier):
        """`p` joins with an offer; `earlier` (already in the room, connected) are told."""
        cl = p.cl
        p.hid = await cl.c.attach(AUDIOBRIDGE)
        p.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        p.pc.on("track", p.sink.on_track)
        p.tone = Tone(p.hz, p.on)
        p.pc.addTrack(p.tone)
        await p.pc.setLocalDescription(await p.pc.createOffer())  # gathers all candidates
        offer = {"type": "offer", "sdp": p.pc.localDescription.sdp, "trickle": False}
        marks = {q.display: q.cl.mark() for q in earlier}
        mark = cl.mark()
        ev, d = await cl.async_(p.hid, {"request": "join", "room": self.room, "display": p.display},
                                f"{p.display} join", jsep=offer)
        # Janus 1.1.2: {"audiobridge":"joined","room":R,"id":ID,"participants":[the others]}
        # (no display of one's own), the answer in the same event.
        check(d.get("audiobridge") == "joined" and d.get("room") == self.room and set(d) == {
            "audiobridge", "room", "id", "participants"}, f"{p.display} joined: {brief(d)}")
        check(isinstance(d["id"], int) and 0 < d["id"] <= 2 ** 53 - 1, f"joined: id {d['id']!r}")
        check(d["id"] not in [q.id for q in earlier], f"joined: id {d['id']} already taken")
        p.id = d["id"]
        got = sorted((strip_talking(e) for e in d["participants"]), key=lambda e: e.get("id"))
        want = sorted((entry(q, True) for q in earlier), key=lambda e: e["id"])
        check(got == want, f"{p.display} joined: participants {brief(got)}, expected {brief(want)}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "answer", f"joined must carry a jsep answer: {brief(jsep)}")
        sdp = jsep["sdp"]
        check("m=audio" in sdp and "opus/48000" in sdp.lower(), f"the answer must accept Opus audio:\n{sdp}")
        cands = [l for l in sdp.splitlines() if l.startswith("a=candidate:")]
        check(cands, "aiortc does not trickle: the answer must carry the server's candidates (none)")
        if self.addr:
            check(any(f" {self.addr} " in l for l in cands), f"no answer candidate on {self.addr}: {cands}")
        await p.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        end = time.monotonic() + CONNECT_TIMEOUT
        while p.pc.connectionState != "connected":
            check(p.pc.connectionState not in ("failed", "closed"),
                  f"{p.display}: peer connection {p.pc.connectionState} (ICE {p.pc.iceConnectionState})")
            check(time.monotonic() < end, f"{p.display}: not connected after {CONNECT_TIMEOUT:.0f} s "
                  f"(ICE {p.pc.iceConnectionState})")
            await asyncio.sleep(0.05)
        p.connected_at = time.monotonic()
        await cl.core_event(mark, p.hid, "webrtcup", f"{p.display}: webrtcup")
        m = await cl.c.wait_for(lambda m: m["janus"] == "media" and m.get("sender") == p.hid
                                and m.get("type") == "audio" and m.get("receiving") is True, STEP,
                                f"{p.display}: media {{audio, receiving:true}}")
        # Those already in the room: {"audiobridge":"joined","room":R,"participants":[{id,
        # display, setup:false, muted:false}]} at once, then (when the newcomer's PeerConnection
        # is up) {"audiobridge":"event","room":R,"participants":[{.., setup:true, ..}]} — the
        # second one is not in the spec.
        for q in earlier:
            n = await q.cl.notification(marks[q.display], q.hid, lambda d: d.get("audiobridge") == "joined",
                                        f"{q.display}: joined <{p.display}>")
            want = {"audiobridge": "joined", "room": self.room, "participants": [entry(p, False)]}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
            n = await q.cl.notification(
                marks[q.display], q.hid,
                lambda d: d.get("audiobridge") == "event" and any(e.get("id") == p.id for e in d.get("participants", [])),
                f"{q.display}: participants [<{p.display}> setup:true]")
            want = {"audiobridge": "event", "room": self.room, "participants": [entry(p, True)]}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        return f"id {p.id}, sees {[q.display for q in earlier]}, media mid {m.get('mid')!r}"

    async def listparticipants(self):
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        check(d.get("audiobridge") == "participants" and d.get("room") == self.room, f"listparticipants: {brief(d)}")
        got = sorted((strip_talking(e) for e in d.get("participants", [])), key=lambda e: e.get("id"))
        want = sorted((entry(p, True) for p in self.peers), key=lambda e: e["id"])
        check(got == want, f"participants {brief(got)}, expected {brief(want)}")
        return f"{[(e['id'], e['display']) for e in got]}"

    async def listen(self, since, expect, what):
        """Wait until the window [since + SETTLE, + WINDOW] is over, then check each listener:
        expect = {peer: (tones heard, tones not heard)}."""
        t0 = since + SETTLE
        t1 = t0 + WINDOW
        await asyncio.sleep(max(0.0, t1 - time.monotonic()) + 0.1)
        out = []
        for p, (heard, silent) in expect.items():
            chunks = p.sink.window(t0, t1)
            need = int(0.6 * WINDOW * 1000 / FRAME_MS)
            check(len(chunks) >= need, f"{what}: {p.display} decoded {len(chunks)} frames in {WINDOW:.1f} s "
                  f"(need {need}; {len(p.sink.frames)} in all)")
            rms, share = analyse(chunks, p.sink.rate, self.tones)
            shares = ", ".join(f"{hz:.0f} Hz {100 * share[hz]:.1f} %" for hz in self.tones)
            check(rms >= MIN_RMS, f"{what}: {p.display} hears (nearly) silence: RMS {rms:.0f}; {shares}")
            for hz in heard:
                check(share[hz] >= MIN_SHARE, f"{what}: {p.display} should hear {hz:.0f} Hz: {shares}")
            weakest = min(share[hz] for hz in heard)
            for hz in silent:
                gap = db(weakest, share[hz])
                check(gap >= MIN_DB, f"{what}: {p.display} should not hear {hz:.0f} Hz: only {gap:.1f} dB below "
                      f"the weakest tone it should hear (need {MIN_DB:.0f}); {shares}")
            gaps = min(db(weakest, share[hz]) for hz in silent)
            out.append(f"{p.display}: {len(chunks)} frames, hears {'+'.join(f'{h:.0f}' for h in heard)} "
                       f"(≥{100 * weakest:.0f} %), others ≥{gaps:.0f} dB down")
        return "; ".join(out)

    async def mix_all(self):
        A, B, C = self.peers
        since = max(p.connected_at for p in self.peers)
        res = await self.listen(since, {A: ((B.hz, C.hz), (A.hz,)), B: ((A.hz, C.hz), (B.hz,)),
                                        C: ((A.hz, B.hz), (C.hz,))}, "all three")
        # Everyone has been connected for >= SETTLE + WINDOW (3 s): 150 frames of 20 ms at most.
        for p in self.peers:
            check(len(p.sink.frames) >= MIN_FRAMES, f"{p.display} decoded only {len(p.sink.frames)} frames in "
                  f"{time.monotonic() - p.connected_at:.1f} s (need {MIN_FRAMES})")
        return res + f"; in all {', '.join(str(len(p.sink.frames)) for p in self.peers)} frames"

    async def set_muted(self, muted):
        A, B, C = self.peers
        marks = {q.display: q.cl.mark() for q in (A, C)}
        ev, d = await B.cl.async_(B.hid, {"request": "configure", "muted": muted}, f"bob configure muted:{muted}")
        # Janus 1.1.2: {"audiobridge":"event","result":"ok"} (no room), no jsep.
        check(d == {"audiobridge": "event", "result": "ok"}, f"configure: {brief(d)}")
        check(ev.get("jsep") is None, f"configure without an offer carries no jsep: {brief(ev.get('jsep'))}")
        at = time.monotonic()
        for q in (A, C):
            n = await q.cl.notification(
                marks[q.display], q.hid,
                lambda d: d.get("audiobridge") == "event" and any(
                    e.get("id") == B.id and e.get("muted") is muted for e in d.get("participants", [])),
                f"{q.display}: participants [bob muted:{muted}]")
            want = {"audiobridge": "event", "room": self.room, "participants": [entry(B, True, muted)]}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        return at

    async def mute(self):
        self.mute_at = await self.set_muted(True)
        return "result ok; alice and carol told"

    async def mix_muted(self):
        A, B, C = self.peers
        return await self.listen(self.mute_at, {A: ((C.hz,), (A.hz, B.hz)), C: ((A.hz,), (B.hz, C.hz)),
                                                B: ((A.hz, C.hz), (B.hz,))}, "bob muted")

    async def unmute(self):
        self.unmute_at = await self.set_muted(False)
        return "result ok; alice and carol told"

    async def mix_unmuted(self):
        A, B, C = self.peers
        return await self.listen(self.unmute_at, {A: ((B.hz, C.hz), (A.hz,)), C: ((A.hz, B.hz), (C.hz,))},
                                 "bob unmuted")

    async def leave(self):
        A, B, C = self.peers
        marks = {q.display: q.cl.mark() for q in (A, B)}
        ev, d = await C.cl.async_(C.hid, {"request": "leave"}, "carol leave")
        check(d == {"audiobridge": "left", "room": self.room, "id": C.id}, f"leave: {brief(d)}")
        self.leave_at = time.monotonic()
        for q in (A, B):
            n = await q.cl.notification(marks[q.display], q.hid, lambda d: "leaving" in d, f"{q.display}: leaving <carol>")
            want = {"audiobridge": "event", "room": self.room, "leaving": C.id}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        return "left; alice and bob told"

    async def mix_after_leave(self):
        A, B, C = self.peers
        return await self.listen(self.leave_at, {A: ((B.hz,), (A.hz, C.hz)), B: ((A.hz,), (B.hz, C.hz))},
                                 "carol gone")

    async def errors(self):
        A, B = self.A, self.B
        out = []
        self.probe = await self.SB.c.attach(AUDIOBRIDGE)

        def err(d, code, what):
            check(d.get("audiobridge") == "event" and d.get("error_code") == code and isinstance(d.get("error"), str)
                  and set(d) == {"audiobridge", "error_code", "error"}, f"{what}: expected error_code {code}, got {brief(d)}")
            out.append(f"{code} {d['error']!r}")

        # Asynchronous requests answer errors in the event: ack, then {"audiobridge":"event",
        # "error_code":N,"error":".."}.
        ev, d = await self.SB.async_(self.probe, {"request": "configure", "muted": True}, "configure before join",
                                     expect_error=True)
        err(d, 487, "configure before join")
        missing = self.room ^ 0x5A5A5A or 1
        ev, d = await self.SB.async_(self.probe, {"request": "join", "room": missing, "display": "nobody"},
                                     "join a room that does not exist", expect_error=True)
        err(d, 485, "join a room that does not exist")
        check(ev.get("jsep") is None, "an error carries no jsep")
        # Synchronous requests answer them in the `success` reply's plugindata.
        d = await self.SA.sync_raw(self.adm, {"request": "create", "room": self.room}, "create an existing room")
        err(d, 486, "create an existing room")
        d = await self.SA.sync_raw(self.adm, {"request": "nonsense"}, "unknown request")
        err(d, 482, "unknown request")
        d = await self.SA.sync_raw(self.adm, {"room": self.room}, "no request")
        err(d, 483, "no request")
        # A body that is not an object never reaches the plugin (so not its 481 INVALID_JSON):
        # Janus 1.1.2's core answers {"janus":"error","session_id":S,"transaction":T,"error":
        # {"code":467,"reason":"Invalid element type (body should be an object)"}}.
        r = await self.SA.c._request({"janus": "message", "body": ["request", "list"]}, session=True, handle=self.adm)
        check(r.get("janus") == "error" and isinstance(r.get("error"), dict) and r["error"].get("code") == 467
              and isinstance(r["error"].get("reason"), str),
              f"body not an object: expected the core's error 467, got {brief(r)}")
        out.append(f"body [..] → core 467 {r['error']['reason']!r}")
        # The room is unchanged: still two participants.
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        ids = sorted(e.get("id") for e in d.get("participants", []))
        check(ids == sorted([A.id, B.id]), f"after the errors: participants {ids}, expected {[A.id, B.id]}")
        return "; ".join(out)

    async def destroy_room(self):
        A, B = self.A, self.B
        marks = {q.display: q.cl.mark() for q in (A, B)}
        d = await self.SA.sync(self.adm, {"request": "destroy", "room": self.room}, "destroy")
        self.room_destroyed = True
        check(d == {"audiobridge": "destroyed", "room": self.room, "permanent": False}, f"destroy: {brief(d)}")
        reasons = []
        for q in (A, B):
            n = await q.cl.notification(marks[q.display], q.hid, lambda d: d.get("audiobridge") == "destroyed",
                                        f"{q.display}: destroyed")
            check(n == {"audiobridge": "destroyed", "room": self.room}, f"{q.display}: {brief(n)}")
            # Janus 1.1.2 closes the PeerConnections of those still in the room.
            h = await q.cl.core_event(marks[q.display], q.hid, "hangup", f"{q.display}: hangup after destroy")
            check(isinstance(h.get("reason"), str), f"hangup needs a string reason: {brief(h)}")
            reasons.append(h["reason"])
        d = await self.SA.sync(self.adm, {"request": "exists", "room": self.room}, "exists after destroy")
        check(d == {"audiobridge": "success", "room": self.room, "exists": False}, f"exists: {brief(d)}")
        return f"alice and bob told, hangup {reasons}, exists:false"

    async def teardown(self):
        for cl, hids in ((self.SA, (self.adm, self.A.hid)), (self.SB, (self.B.hid, self.probe)), (self.SC, (self.C.hid,))):
            for hid in hids:
                r = await cl.c.detach(hid)
                check(r.get("session_id") == cl.c.session_id, f"detach reply {brief(r)}")
            sid = cl.c.session_id
            r = await cl.c.destroy()
            check(r.get("session_id") == sid, f"destroy reply {brief(r)}")
        return "ok"

    async def close(self):
        if self.room is not None and not self.room_destroyed and self.adm is not None:
            try:  # best effort: leave no room behind on a long-running server
                await asyncio.wait_for(self.SA.c.message(self.adm, {"request": "destroy", "room": self.room}), 5)
            except Exception:  # noqa: BLE001
                pass
        for p in self.peers:
            if p.sink.task is not None:
                p.sink.task.cancel()
            if p.pc is not None:
                try:
                    await asyncio.wait_for(p.pc.close(), 5)
                except Exception:  # noqa: BLE001
                    pass
        for cl in (self.SA, self.SB, self.SC):
            await cl.c.close()


# ------------------------------------------------------------------------------------------------
# A second room: talk detection, kick, announcements (play_file), the WAV recording, error table
# ------------------------------------------------------------------------------------------------

SECRET = "jano-room-secret"
PIN = "jano-room-pin"
ACTIVE_PACKETS = 25  # talk detection window: 25 packets (0.5 s)
LEVEL_AVERAGE = 40  # talking when the window's average level (dBov magnitude) is below this
ANNC_HZ = 660.0
ANNC_SECONDS = 6.0  # long enough for a listening window; stopped with stop_file before its end
SHORT_SECONDS = 1.0  # the announcement that ends by itself
ABSENT_HZ = 1800.0  # nobody sends it in the second room: the recording's noise reference
REC_MIN_SHARE = 0.05  # each tone's share of the whole recording's power (they play for 1.5..3 s each)


def write_ogg_opus(path, hz, seconds):
    """An Ogg Opus file (48 kHz mono, 20 ms packets) of a tone at AMPLITUDE. PyAV's libopus (the
    `av` the test already needs) writes it, so neither GStreamer nor ffmpeg is required."""
    import av
    rate = 48000
    t = np.arange(int(rate * seconds)) / rate
    pcm = (AMPLITUDE * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    with av.open(path, "w", format="ogg") as out:
        s = out.add_stream("libopus", rate=rate)
        s.layout = "mono"
        for i in range(0, len(pcm) - 959, 960):
            f = AudioFrame.from_ndarray(pcm[i:i + 960].reshape(1, -1), format="s16", layout="mono")
            f.sample_rate = rate
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def plugin_events(cl, hid, mark=0):
    """The plugin data of every event for handle `hid` received after `mark`, with its index."""
    return [(i, pdata(m)) for i, (_, m) in enumerate(cl.c.received)
            if i >= mark and m.get("janus") == "event" and m.get("sender") == hid and "plugindata" in m]


class ExtrasRun(BridgeRun):
    """One room with a `secret`, talk detection (audiolevel_event, audio_active_packets 25,
    audio_level_average 40) and WAV recording (record_dir/record_file), over one transport.
    Session D holds the admin handle and `dave` (500 Hz, silent at first), session E holds
    `erin` (always silent) and a probe handle, session F holds `frank` (1300 Hz, silent at
    first; kicked)."""

    def __init__(self, kind, url, addr, rate, folder):
        mk = HttpJanus if kind == "http" else WsJanus
        self.kind = kind
        self.addr = addr
        self.rate = rate
        self.dir = folder
        self.SA, self.SB, self.SC = Client(mk(url), "D"), Client(mk(url), "E"), Client(mk(url), "F")
        self.D = Peer(self.SA, "dave", 500.0, on=False)
        self.E = Peer(self.SB, "erin", 0.0, on=False)
        self.F = Peer(self.SC, "frank", 1300.0, on=False)
        self.peers = (self.D, self.E, self.F)
        self.tones = (self.D.hz, self.F.hz, ANNC_HZ, ABSENT_HZ)
        self.description = f"jano audiobridge extras {kind} {os.getpid()}"
        self.adm = self.probe = None
        self.room = self.room3 = None
        self.room_destroyed = False
        self.rec_dir = os.path.join(folder, f"ab-rec-{os.getpid()}")
        self.rec_name = f"jano-ab-{os.getpid()}.wav"
        self.annc = os.path.join(folder, f"ab-tone660-{os.getpid()}.opus")
        self.short = os.path.join(folder, f"ab-tone660-short-{os.getpid()}.opus")
        self.annc_at = None

    async def setup(self):
        write_ogg_opus(self.annc, ANNC_HZ, ANNC_SECONDS)
        write_ogg_opus(self.short, ANNC_HZ, SHORT_SECONDS)
        os.makedirs(self.rec_dir, exist_ok=True)
        for cl in (self.SA, self.SB, self.SC):
            await cl.c.connect()
            await cl.c.create()
        self.adm = await self.SA.c.attach(AUDIOBRIDGE)
        d = await self.SA.sync(self.adm, {
            "request": "create", "description": self.description, "sampling_rate": self.rate, "secret": SECRET,
            "audiolevel_event": True, "audio_active_packets": ACTIVE_PACKETS, "audio_level_average": LEVEL_AVERAGE,
            "record": True, "record_dir": self.rec_dir, "record_file": self.rec_name}, "create")
        check(d.get("audiobridge") == "created" and d.get("permanent") is False and set(d) == {
            "audiobridge", "room", "permanent"}, f"create: {brief(d)}")
        self.room = d["room"]
        d = await self.SA.sync(self.adm, {"request": "list"}, "list")
        mine = [r for r in d.get("list", []) if r.get("room") == self.room]
        want = {"room": self.room, "description": self.description, "sampling_rate": self.rate,
                "spatial_audio": False, "pin_required": False, "record": True, "muted": False,
                "num_participants": 0}
        check(mine == [want], f"list entry {brief(mine)}, expected [{brief(want)}]")
        return (f"room {self.room} at {self.rate} Hz, record → {self.rec_dir}/{self.rec_name}; "
                f"Ogg Opus {os.path.getsize(self.annc)} + {os.path.getsize(self.short)} B")

    async def talking(self):
        """aiortc 1.16 sends the ssrc-audio-level extension on every audio packet (RFC 6465 level
        of the frame it encodes: -15 dBov for the tones here, -127 for digital silence), so
        nothing needs patching: a silent Tone is heard as level 127."""
        D, E, F = self.peers
        marks = {p.display: p.cl.mark() for p in self.peers}
        D.tone.on = F.tone.on = True
        on_at = time.monotonic()
        # Janus 1.1.2: {"audiobridge":"talking","room":R,"id":ID} to everyone in the room,
        # the speaker included, once per change (evaluated every audio_active_packets packets).
        for q in self.peers:
            for p in (D, F):
                n = await q.cl.notification(
                    marks[q.display], q.hid, lambda d, p=p: d.get("audiobridge") == "talking" and d.get("id") == p.id,
                    f"{q.display}: talking <{p.display}>")
                want = {"audiobridge": "talking", "room": self.room, "id": p.id}
                check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        flags = {e.get("id"): e.get("talking") for e in d.get("participants", [])}
        want = {D.id: True, E.id: False, F.id: True}
        check(flags == want, f"listparticipants talking flags {flags}, expected {want}: {brief(d)}")
        # Let dave's tone last 2 s in all, so that it is a fair part of the recording.
        await asyncio.sleep(max(0.0, on_at + 2.0 - time.monotonic()))
        return "dave and frank: talking → dave, erin, frank; listparticipants talking true, true, erin false"

    async def stopped_talking(self):
        D, E, F = self.peers
        marks = {p.display: p.cl.mark() for p in self.peers}
        D.tone.on = False
        for q in self.peers:
            n = await q.cl.notification(
                marks[q.display], q.hid, lambda d: d.get("audiobridge") == "stopped-talking" and d.get("id") == D.id,
                f"{q.display}: stopped-talking <dave>")
            want = {"audiobridge": "stopped-talking", "room": self.room, "id": D.id}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        for q in self.peers:
            talk = [d for _, d in plugin_events(q.cl, q.hid) if d.get("audiobridge") in ("talking", "stopped-talking")]
            # erin has only ever sent silence: nobody is told anything about her.
            check(not [d for d in talk if d.get("id") == E.id], f"{q.display} got talk events about erin: {brief(talk)}")
            # frank still talks.
            check(not [d for d in talk if d.get("id") == F.id and d["audiobridge"] == "stopped-talking"],
                  f"{q.display}: stopped-talking about frank, who still sends his tone: {brief(talk)}")
        return "dave silent → stopped-talking to all three; no talk event ever about erin"

    async def kick(self):
        D, E, F = self.peers
        marks = {p.display: p.cl.mark() for p in self.peers}
        d = await self.SA.sync(self.adm, {"request": "kick", "room": self.room, "secret": SECRET, "id": F.id}, "kick")
        # Janus 1.1.2: {"audiobridge":"success"} (no room).
        check(d == {"audiobridge": "success"}, f"kick: {brief(d)}")
        # Everyone, the kicked one included, gets {"audiobridge":"event","room":R,"kicked":F}.
        for q in self.peers:
            n = await q.cl.notification(marks[q.display], q.hid, lambda d: "kicked" in d, f"{q.display}: kicked <frank>")
            want = {"audiobridge": "event", "room": self.room, "kicked": F.id}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        # Then the server closes frank's PeerConnection (core `hangup`)...
        h = await F.cl.core_event(marks[F.display], F.hid, "hangup", "frank: hangup after kick")
        check(isinstance(h.get("reason"), str), f"hangup needs a string reason: {brief(h)}")
        kicked_at = next(i for i, d in plugin_events(F.cl, F.hid, marks[F.display]) if "kicked" in d)
        hangup_at = next(i for i, (_, m) in enumerate(F.cl.c.received) if m is h)
        check(kicked_at < hangup_at, "frank: the hangup came before the kicked event")
        # ... and that removes him from the room: the others get `leaving`, after `kicked`.
        for q in (D, E):
            n = await q.cl.notification(marks[q.display], q.hid, lambda d: "leaving" in d, f"{q.display}: leaving <frank>")
            want = {"audiobridge": "event", "room": self.room, "leaving": F.id}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
            order = ["kicked" if "kicked" in d else "leaving" for _, d in plugin_events(q.cl, q.hid, marks[q.display])
                     if "kicked" in d or "leaving" in d]
            check(order == ["kicked", "leaving"], f"{q.display}: kicked/leaving order {order}")
        await asyncio.sleep(0.5)  # a grace period for a (wrong) `leaving` about frank to frank himself
        mine = [d for _, d in plugin_events(F.cl, F.hid, marks[F.display]) if "leaving" in d]
        check(not mine, f"frank was told about his own leaving: {brief(mine)}")
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        ids = sorted(e.get("id") for e in d.get("participants", []))
        check(ids == sorted([D.id, E.id]), f"after the kick: participants {ids}, expected dave and erin")
        return f"success; kicked → all three; frank: hangup {h['reason']!r}; dave, erin: then leaving"

    async def play_file(self):
        D, E = self.D, self.E
        fid = f"jano-annc-{os.getpid()}"
        base = {"room": self.room, "secret": SECRET}
        d = await self.SA.sync_raw(self.adm, dict(base, request="play_file", filename=self.annc + ".missing",
                                                  file_id="nope"), "play_file of a missing file")
        want = {"audiobridge": "event", "error_code": 499, "error": "Error opening file"}
        check(d == want, f"play_file of a missing file: {brief(d)}, expected {brief(want)}")
        marks = {p.display: p.cl.mark() for p in (D, E)}
        d = await self.SA.sync(self.adm, dict(base, request="play_file", filename=self.annc, file_id=fid), "play_file")
        check(d == {"audiobridge": "success", "room": self.room, "file_id": fid}, f"play_file: {brief(d)}")
        for q in (D, E):
            n = await q.cl.notification(marks[q.display], q.hid, lambda d: d.get("audiobridge") == "announcement-started",
                                        f"{q.display}: announcement-started")
            want = {"audiobridge": "announcement-started", "room": self.room, "file_id": fid}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        self.annc_at = time.monotonic()
        d = await self.SA.sync(self.adm, dict(base, request="is_playing", file_id=fid), "is_playing")
        check(d == {"audiobridge": "success", "room": self.room, "file_id": fid, "playing": True}, f"is_playing: {brief(d)}")
        d = await self.SA.sync_raw(self.adm, dict(base, request="play_file", filename=self.annc, file_id=fid),
                                   "play_file with a file_id in use")
        want = {"audiobridge": "event", "error_code": 490, "error": f"File ID exists ({fid})"}
        check(d == want, f"play_file with a file_id in use: {brief(d)}, expected {brief(want)}")
        others = (D.hz, self.F.hz)  # dave is silent again, frank is gone
        heard = await self.listen(self.annc_at, {D: ((ANNC_HZ,), others), E: ((ANNC_HZ,), others)}, "announcement")
        marks = {p.display: p.cl.mark() for p in (D, E)}
        d = await self.SA.sync(self.adm, dict(base, request="stop_file", file_id=fid), "stop_file")
        check(d == {"audiobridge": "success", "room": self.room, "file_id": fid}, f"stop_file: {brief(d)}")
        for q in (D, E):
            n = await q.cl.notification(marks[q.display], q.hid, lambda d: d.get("audiobridge") == "announcement-stopped",
                                        f"{q.display}: announcement-stopped")
            want = {"audiobridge": "announcement-stopped", "room": self.room, "file_id": fid}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        d = await self.SA.sync(self.adm, dict(base, request="is_playing", file_id=fid), "is_playing after stop_file")
        check(d == {"audiobridge": "success", "room": self.room, "file_id": fid, "playing": False}, f"is_playing: {brief(d)}")
        return f"499 missing file; 490 id in use; {heard}"

    async def play_short(self):
        D, E = self.D, self.E
        marks = {p.display: p.cl.mark() for p in (D, E)}
        d = await self.SA.sync(self.adm, {"request": "play_file", "room": self.room, "secret": SECRET,
                                          "filename": self.short}, "play_file without file_id")
        fid = d.get("file_id")
        check(isinstance(fid, str) and fid, f"play_file without file_id: the server picks one: {brief(d)}")
        check(d == {"audiobridge": "success", "room": self.room, "file_id": fid}, f"play_file: {brief(d)}")
        for q in (D, E):
            for ev in ("announcement-started", "announcement-stopped"):
                n = await q.cl.notification(marks[q.display], q.hid, lambda d, ev=ev: d.get("audiobridge") == ev,
                                            f"{q.display}: {ev}", timeout=STEP + SHORT_SECONDS)
                want = {"audiobridge": ev, "room": self.room, "file_id": fid}
                check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        d = await self.SA.sync(self.adm, {"request": "is_playing", "room": self.room, "secret": SECRET, "file_id": fid},
                               "is_playing after the end")
        check(d.get("playing") is False, f"is_playing after the end: {brief(d)}")
        return f"file_id {fid!r}: started, stopped by itself, playing:false"

    async def recording(self):
        D, E, F = self.peers
        d = await self.SA.sync(self.adm, {"request": "enable_recording", "room": self.room, "secret": SECRET,
                                          "record": False}, "enable_recording false")
        # Janus 1.1.2: {"audiobridge":"success","record":false} (no room).
        check(d == {"audiobridge": "success", "record": False}, f"enable_recording: {brief(d)}")
        # The mixer closes the file on its next tick. Janus 1.1.2 (with record_tmp_ext unset, as in
        # the sample configuration) writes <record_dir>/<record_file> directly, no temp name; the
        # header's sizes are rewritten every 5 s and when the file is closed. Complete = the RIFF
        # size matches and the file no longer grows.
        path = os.path.join(self.rec_dir, self.rec_name)
        end = time.monotonic() + 10
        last = -1
        while True:
            files = sorted(os.listdir(self.rec_dir))
            if files == [self.rec_name]:
                size = os.path.getsize(path)
                with open(path, "rb") as f:
                    hdr = f.read(44)
                if len(hdr) == 44 and struct.unpack_from("<I", hdr, 4)[0] == size - 8 and size == last:
                    break
                last = size
            check(time.monotonic() < end, f"{self.rec_dir}: {files} (want [{self.rec_name}], complete) after 10 s")
            await asyncio.sleep(0.3)
        check(hdr[0:4] == b"RIFF" and hdr[8:16] == b"WAVEfmt " and hdr[36:40] == b"data", f"WAV header {hdr!r}")
        fmt_len, fmt, channels, rate, byte_rate, align, bits = struct.unpack_from("<IHHIIHH", hdr, 16)
        check((fmt_len, fmt, channels, rate, byte_rate, align, bits) == (16, 1, 1, self.rate, 2 * self.rate, 2, 16),
              f"fmt chunk: len {fmt_len}, format {fmt}, {channels} ch, {rate} Hz, {byte_rate} B/s, align {align}, {bits} bits")
        data_len = struct.unpack_from("<I", hdr, 40)[0]
        # Janus 1.1.2 writes the whole file's size as the data chunk's size (44 bytes too many).
        check(data_len in (size - 44, size), f"data chunk size {data_len} for a {size} B file")
        with wave.open(path, "rb") as w:
            check((w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getcomptype()) == (1, 2, self.rate, "NONE"),
                  f"wave: {w.getparams()}")
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        seconds = len(x) / self.rate
        check(seconds >= 5, f"only {seconds:.1f} s recorded")
        share = analyse_long(x, self.rate, self.tones)
        shares = ", ".join(f"{hz:.0f} Hz {100 * share[hz]:.1f} %" for hz in self.tones)
        heard = (D.hz, F.hz, ANNC_HZ)
        for hz in heard:
            check(share[hz] >= REC_MIN_SHARE, f"the recording should contain {hz:.0f} Hz: {shares}")
        gap = db(min(share[hz] for hz in heard), share[ABSENT_HZ])
        check(gap >= MIN_DB, f"the recording: {ABSENT_HZ:.0f} Hz (nobody sent it) only {gap:.1f} dB below; {shares}")
        return f"{self.rec_name}: {seconds:.1f} s, {rate} Hz mono s16; {shares}"

    async def errors_table(self):
        D = self.D
        R = self.room
        self.probe = await self.SB.c.attach(AUDIOBRIDGE)
        d = await self.SA.sync(self.adm, {"request": "create", "description": self.description + " (pin, groups)",
                                          "secret": SECRET, "pin": PIN, "groups": ["alpha", "beta"]}, "create room 3")
        R3 = self.room3 = d.get("room")
        check(isinstance(R3, int) and R3 != R, f"create room 3: {brief(d)}")
        missing = R ^ 0x5A5A5A or 1
        unknown = (D.id ^ 0x3C3C3C) or 1
        # (request sync/async, body, jsep, error_code, error). Exactly what Janus 1.1.2 answers.
        before_join = [
            ("async", {"request": "leave"}, None, 487, "Can't leave (not in a room)"),
            ("async", {"request": "configure", "muted": True}, None, 487, "Can't configure (not in a room)"),
            ("async", {"request": "changeroom", "room": R}, None, 487, "Can't change room (not in a room in the first place)"),
            ("async", {"request": "join"}, None, 483, "Missing mandatory element (room)"),
            ("async", {"request": "join", "room": str(R)}, None, 484, "Invalid element type (room should be a positive integer)"),
            ("async", {"request": "join", "room": R, "muted": "yes"}, None, 484, "Invalid element type (muted should be a boolean)"),
            ("async", {"request": "join", "room": missing}, None, 485, f"No such room ({missing})"),
            ("async", {"request": "join", "room": R3, "group": "alpha"}, None, 483, "Missing mandatory element (pin)"),
            ("async", {"request": "join", "room": R3, "pin": "nope", "group": "alpha"}, None, 489, "Unauthorized (wrong pin)"),
            ("async", {"request": "join", "room": R3, "pin": PIN}, None, 483, "Missing mandatory element (group)"),
            ("async", {"request": "join", "room": R3, "pin": PIN, "group": "gamma"}, None, 494, "No such group (gamma)"),
            ("async", {"request": "join", "room": R, "secret": "nope"}, None, 489, "Unauthorized (wrong secret)"),
            ("async", {"request": "join", "room": R, "id": D.id}, None, 490, f"User ID {D.id} already exists"),
            ("sync", {"request": "nonsense"}, None, 482, "Unknown request 'nonsense'"),
            ("sync", {"request": 42}, None, 484, "Invalid element type (request should be a string)"),
            ("sync", {"request": "create", "room": R}, None, 486, f"Room {R} already exists"),
            ("sync", {"request": "destroy", "room": missing}, None, 485, f"No such room ({missing})"),
            ("sync", {"request": "destroy", "room": R3}, None, 483, "Missing mandatory element (secret)"),
            ("sync", {"request": "destroy", "room": R3, "secret": "nope"}, None, 489, "Unauthorized (wrong secret)"),
            ("sync", {"request": "kick", "room": R, "id": unknown}, None, 483, "Missing mandatory element (secret)"),
            ("sync", {"request": "kick", "room": R, "secret": SECRET, "id": unknown}, None, 492, f"No such user {unknown} in room {R}"),
            ("sync", {"request": "mute", "room": R, "secret": SECRET, "id": unknown}, None, 492, f"No such user {unknown} in room {R}"),
            ("sync", {"request": "is_playing", "room": R, "secret": SECRET}, None, 483, "Missing mandatory element (file_id)"),
            ("sync", {"request": "play_file", "room": R, "secret": SECRET}, None, 483, "Missing mandatory element (filename)"),
        ]
        answer = {"type": "answer", "sdp": (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
            "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n")}
        after_join = [
            ("async", {"request": "join", "room": R3, "pin": PIN, "group": "alpha"}, None, 491,
             "Already in a room (use changeroom to join another one)"),
            ("async", {"request": "changeroom", "room": R3}, None, 491, "Already in this room"),
            ("async", {"request": "configure", "muted": "yes"}, None, 484, "Invalid element type (muted should be a boolean)"),
            ("async", {"request": "configure", "group": "gamma"}, None, 494, "No such group (gamma)"),
            ("async", {"request": "configure", "quality": 11}, None, 484,
             "Invalid element (quality should be a positive integer between 1 and 10)"),
            # Janus 1.1.2's core stops an answer the plugin never asked for before the plugin sees it
            # (so the plugin's 493 "Received an answer when we didn't send an offer" is unreachable):
            # {"janus":"error","error":{"code":469,"reason":"Unexpected ANSWER (did we offer?)"}}.
            ("core", {"request": "configure"}, answer, 469, "Unexpected ANSWER (did we offer?)"),
        ]
        out = []

        async def run_rows(rows):
            for kind, body, jsep, code, text in rows:
                what = f"{brief(body, 120)}{' + answer' if jsep else ''}"
                if kind == "core":
                    req = {"janus": "message", "body": body}
                    if jsep is not None:
                        req["jsep"] = jsep
                    r = await self.SB.c._request(req, session=True, handle=self.probe)
                    want = {"code": code, "reason": text}
                    check(r.get("janus") == "error" and r.get("error") == want,
                          f"{what}: expected the core's error {brief(want)}, got {brief(r)}")
                    out.append(f"core {code}")
                    continue
                if kind in ("async", "erin"):
                    hid = self.probe if kind == "async" else self.E.hid
                    ev, d = await self.SB.async_(hid, body, what, jsep=jsep, expect_error=True)
                    check(ev.get("jsep") is None, f"{what}: an error carries no jsep")
                else:
                    d = await self.SA.sync_raw(self.adm, body, what)
                want = {"audiobridge": "event", "error_code": code, "error": text}
                check(d == want, f"{what}: {brief(d)}, expected {brief(want)}")
                out.append(str(code))

        await run_rows(before_join)
        ev, d = await self.SB.async_(self.probe, {"request": "join", "room": R3, "pin": PIN, "group": "alpha",
                                                  "display": "probe"}, "probe joins room 3 (no offer)")
        check(d.get("audiobridge") == "joined" and d.get("room") == R3 and d.get("participants") == [],
              f"probe joined: {brief(d)}")
        await run_rows(after_join)
        # The plugin's 493 is reachable when the handle's PeerConnection was negotiated already
        # (the core then takes an answer as a renegotiation and passes it on): erin's own SDP,
        # sent as an answer (same ICE credentials and fingerprint, so the core changes nothing).
        # jano's core refuses any answer it did not ask for, renegotiation or not (469 as above):
        # the stray answer never reaches a PeerConnection it could disturb.
        if os.environ.get("MEDIA_SERVER_IS_JANUS") == "1":
            await run_rows([("erin", {"request": "configure"}, {"type": "answer", "sdp": self.E.pc.localDescription.sdp},
                             493, "Received an answer when we didn't send an offer")])
        else:
            saved, self.probe = self.probe, self.E.hid
            try:
                await run_rows([("core", {"request": "configure"},
                                 {"type": "answer", "sdp": self.E.pc.localDescription.sdp},
                                 469, "Unexpected ANSWER (did we offer?)")])
            finally:
                self.probe = saved
        ev, d = await self.SB.async_(self.probe, {"request": "leave"}, "probe leave")
        check(d == {"audiobridge": "left", "room": R3, "id": d.get("id")}, f"probe leave: {brief(d)}")
        d = await self.SA.sync(self.adm, {"request": "destroy", "room": R3, "secret": SECRET}, "destroy room 3")
        check(d == {"audiobridge": "destroyed", "room": R3, "permanent": False}, f"destroy room 3: {brief(d)}")
        self.room3 = None
        # Nothing changed in the main room.
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": R}, "listparticipants")
        ids = sorted(e.get("id") for e in d.get("participants", []))
        check(ids == sorted([D.id, self.E.id]), f"after the errors: participants {ids}")
        return f"{len(out)} cases: {' '.join(out)}"

    async def destroy_room(self):
        D, E = self.D, self.E
        marks = {q.display: q.cl.mark() for q in (D, E)}
        d = await self.SA.sync(self.adm, {"request": "destroy", "room": self.room, "secret": SECRET}, "destroy")
        self.room_destroyed = True
        check(d == {"audiobridge": "destroyed", "room": self.room, "permanent": False}, f"destroy: {brief(d)}")
        for q in (D, E):
            n = await q.cl.notification(marks[q.display], q.hid, lambda d: d.get("audiobridge") == "destroyed",
                                        f"{q.display}: destroyed")
            check(n == {"audiobridge": "destroyed", "room": self.room}, f"{q.display}: {brief(n)}")
            await q.cl.core_event(marks[q.display], q.hid, "hangup", f"{q.display}: hangup after destroy")
        # The recording was closed before; destroying the room leaves it alone.
        check(sorted(os.listdir(self.rec_dir)) == [self.rec_name], f"{self.rec_dir}: {os.listdir(self.rec_dir)}")
        return "dave and erin told + hangup"

    async def teardown(self):
        for cl, hids in ((self.SA, (self.adm, self.D.hid)), (self.SB, (self.E.hid, self.probe)), (self.SC, (self.F.hid,))):
            for hid in hids:
                await cl.c.detach(hid)
            await cl.c.destroy()
        return "ok"

    async def close(self):
        for room in (self.room3, None if self.room_destroyed else self.room):
            if room is not None and self.adm is not None:
                try:
                    await asyncio.wait_for(self.SA.c.message(
                        self.adm, {"request": "destroy", "room": room, "secret": SECRET}), 5)
                except Exception:  # noqa: BLE001
                    pass
        self.room_destroyed = True
        await super().close()


async def run_extras(runner, kind, url, addr, rate, folder):
    run = ExtrasRun(kind, url, addr, rate, folder)
    print(f"▶ aiortc AudioBridge, second room over {'HTTP long poll' if kind == 'http' else 'WebSocket'} ({url}) "
          f"at {rate} Hz: secret, talk detection, kick, play_file, recording, error table", flush=True)
    step = stepper(runner, run.dump)
    D, E, F = run.peers
    join_t = CONNECT_TIMEOUT + 4 * STEP
    try:
        await step(f"create room (secret, audiolevel_event, audio_active_packets {ACTIVE_PACKETS}, audio_level_average "
                   f"{LEVEL_AVERAGE}, record) → created; list: record:true", run.setup, 30)
        await step("dave joins + offer (silent for now) → joined, connected", lambda: run.join(D, []), join_t)
        await step("erin joins + offer (silent throughout) → joined [dave]", lambda: run.join(E, [D]), join_t)
        await step("frank joins + offer (silent for now) → joined [dave, erin]", lambda: run.join(F, [D, E]), join_t)
        await step("dave (500 Hz) and frank (1300 Hz) start → talking [dave], [frank] to all three; "
                   "listparticipants talking flags", run.talking, 2 * STEP)
        await step("dave goes silent → stopped-talking [dave] to all three; never a talk event about erin",
                   run.stopped_talking, 2 * STEP, essential=False)
        await step("kick frank (secret) → success; kicked → all three; frank: hangup; dave, erin: leaving",
                   run.kick, 3 * STEP)
        await step("play_file 660 Hz (file_id) → success; announcement-started; is_playing true; dave and erin "
                   "hear 660 Hz; stop_file → announcement-stopped; is_playing false; 499 missing file, 490 id in use",
                   run.play_file, 4 * STEP + SETTLE + WINDOW)
        await step("play_file 1 s (no file_id) → generated id; announcement-started, then -stopped by itself",
                   run.play_short, 3 * STEP, essential=False)
        await step("enable_recording false → the WAV: 16-bit mono at the room rate, holds 500, 1300 and 660 Hz",
                   run.recording, 2 * STEP, essential=False)
        await step("error table: 487 ×3, 483, 484 ×2, 485, 483 pin, 489 pin, 483 group, 494, 489 secret, 490, 482, "
                   "484, 486, 485, 483, 489, 483, 492 ×2, 483 ×2; after a join: 491 ×2, 484, 494, 484, core 469 (answer); "
                   "493 (an answer on a negotiated handle)",
                   run.errors_table, 6 * STEP, essential=False)
        await step("destroy (secret) → destroyed; dave, erin: destroyed + hangup", run.destroy_room, 3 * STEP)
        await step("detach handles + destroy sessions", run.teardown, 15)
    finally:
        await run.close()


async def run_transport(runner, kind, url, addr, rate):
    run = BridgeRun(kind, url, addr, rate)
    print(f"▶ aiortc AudioBridge over {'HTTP long poll' if kind == 'http' else 'WebSocket'} ({url}), "
          f"room at {rate} Hz", flush=True)
    step = stepper(runner, run.dump)
    A, B, C = run.peers
    join_t = CONNECT_TIMEOUT + 4 * STEP
    media_t = SETTLE + WINDOW + 10
    try:
        await step("3 sessions, create room → created; exists → true; list has it", run.setup, 20)
        await step("alice joins + offer (440 Hz) → joined [], answer, connected, webrtcup",
                   lambda: run.join(A, []), join_t)
        await step("bob joins + offer (1000 Hz) → joined [alice]; alice: joined [bob setup:false], "
                   "event [bob setup:true]", lambda: run.join(B, [A]), join_t)
        await step("carol joins + offer (1800 Hz) → joined [alice, bob]; both told",
                   lambda: run.join(C, [A, B]), join_t)
        await step("listparticipants → alice, bob, carol (setup:true, muted:false)", run.listparticipants, 15,
                   essential=False)
        await step("mix: each hears the two others' tones and not its own", run.mix_all, media_t, essential=False)
        await step("bob configure muted:true → result ok; alice, carol: participants [bob muted:true]", run.mute,
                   3 * STEP)
        await step("mix: nobody hears bob's 1000 Hz (bob still hears the others)", run.mix_muted, media_t,
                   essential=False)
        await step("bob configure muted:false → result ok; alice, carol told", run.unmute, 3 * STEP)
        await step("mix: alice and carol hear 1000 Hz again", run.mix_unmuted, media_t, essential=False)
        await step("carol leave → left; alice, bob: leaving <carol>", run.leave, 3 * STEP)
        await step("mix: alice and bob no longer hear carol's 1800 Hz", run.mix_after_leave, media_t,
                   essential=False)
        await step("errors: 487 configure before join, 485 no such room, 486 room exists, 482 unknown "
                   "request, 483 no request, core 467 body not an object", run.errors, 4 * STEP, essential=False)
        await step("destroy → destroyed; alice, bob: destroyed + hangup; exists → false", run.destroy_room,
                   3 * STEP)
        await step("detach handles + destroy sessions → success", run.teardown, 15)
    finally:
        await run.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    ap.add_argument("--ws", default=os.environ.get("JANUS_WS_URL"))
    ap.add_argument("--addr", default=os.environ.get("JANUS_MEDIA_ADDR"),
                    help="the address the server's candidates must use")
    ap.add_argument("--only", choices=("http", "ws", "extras"))
    ap.add_argument("--dir", help="a folder the server can read and write (the announcement files, the "
                    "recording); default: a new one under the system temp folder, removed at the end")
    args = ap.parse_args()
    runner = Runner()
    for kind, url, rate in (("http", args.http, 48000), ("ws", args.ws, 16000)):
        if args.only and args.only != kind:
            continue
        if not url:
            runner.fail(f"aiortc AudioBridge over {kind}", 0, f"no URL given for {kind}")
            continue
        await run_transport(runner, kind, url, args.addr, rate)
    # The second room (talk detection, kick, play_file, recording, error table) over WebSocket.
    if args.only in (None, "ws", "extras"):
        folder = args.dir or tempfile.mkdtemp(prefix="jano-audiobridge-")
        try:
            if not args.ws:
                runner.fail("aiortc AudioBridge second room", 0, "no URL given for ws")
            else:
                await run_extras(runner, "ws", args.ws, args.addr, 16000, folder)
        finally:
            if not args.dir:
                shutil.rmtree(folder, ignore_errors=True)
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
