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

The media checks are relative and can fail: the power in a +-6 Hz band around a tone, as a
fraction of the window's total power, must be >= 10 % for every tone a participant should hear,
and each tone it must not hear (its own, a muted or departed participant's) must be at least
20 dB below the weakest tone it should hear.

Every message shape asserted here is what Janus 1.1.2 really sends (observed, then encoded);
where it differs from shared/spec/plugin-audiobridge.md a comment says so ("Janus 1.1.2:").

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`);
exits 1 if anything failed. Usage:
  audiobridge_aiortc.py --http http://10.x.y.1:8088/janus --ws ws://10.x.y.1:8188 [--only http|ws]
"""

import argparse
import asyncio
import fractions
import os
import sys
import time

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
    """A sine tone, 20 ms frames of mono s16 PCM at 48 kHz, paced in real time."""

    kind = "audio"
    SAMPLES = SAMPLE_RATE * FRAME_MS // 1000

    def __init__(self, hz):
        super().__init__()
        self.hz = hz
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
        pcm = (AMPLITUDE * 32767 * np.sin(2 * np.pi * self.hz * t)).astype(np.int16)
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
    def __init__(self, client, display, hz):
        self.cl = client
        self.display = display
        self.hz = hz
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
        p.tone = Tone(p.hz)
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
    ap.add_argument("--only", choices=("http", "ws"))
    args = ap.parse_args()
    runner = Runner()
    for kind, url, rate in (("http", args.http, 48000), ("ws", args.ws, 16000)):
        if args.only and args.only != kind:
            continue
        if not url:
            runner.fail(f"aiortc AudioBridge over {kind}", 0, f"no URL given for {kind}")
            continue
        await run_transport(runner, kind, url, args.addr, rate)
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
