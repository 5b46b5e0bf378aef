#!/usr/bin/env python3
"""End-to-end VideoCall (janus.plugin.videocall) with aiortc: two peers call each other through the
server, with real audio and video relayed both ways.

Two Janus sessions: session A over HTTP long poll holds "alice" and "carol", session B over
WebSockets holds "bob" and "x" (a handle that never registers, for the error cases). The
usernames carry a random tag so that a long-running server's other users never collide.

  list (our users absent) -> alice and bob register -> list has both -> a table of request errors
  (exact code and text) -> call errors (missing/invalid username, unknown user, yourself, no JSEP)
  -> alice calls bob with an offer (a 440 Hz tone + 320x240 red frames with a frame counter):
  alice gets `calling`, bob `incomingcall` + the offer -> bob accepts with an answer (a 1000 Hz
  tone + 256x192 blue frames): bob gets `accepted`, alice `accepted` + the answer -> ICE/DTLS,
  webrtcup, media -> each side decodes the OTHER's video (size, colour, counter) and hears the
  other's tone and not its own -> carol calls bob: `hangup` "User busy" -> accept with no call: 481
  (in a call: 482) -> set bitrate: alice's video sender gets REMB with that bitrate and aiortc's
  encoder target drops -> set audio:false/true: bob stops/starts hearing alice -> set
  video:false/true: bob's video stops/resumes (alice gets a PLI) -> set record:true/false with a
  filename: <filename>-audio/-video.mjr of alice's media -> bob hangs up with a reason: both told
  (and told again "Remote WebRTC hangup"), media stops -> list still has both -> second call:
  alice calls carol in it: 480, and Janus closes alice's PC, ending the call -> third call:
  alice's PeerConnection closes: both told "Remote WebRTC hangup" -> fourth call: bob detaches in
  it: alice told, bob's name released -> alice detaches: name released, registrable again ->
  detach, destroy.

The media checks are relative and can fail: colours within a tolerance of the expected one, the
power in a +-6 Hz band around a tone as a share of the window's power (>= 10 % for the tone that
must be heard; a tone that must not be heard at least 20 dB below it, or no audio decoded at
all), frames counted in windows.

Every message shape asserted here is what Janus 1.1.2 really sends (read in its source, then
observed); where it differs from shared/spec/plugin-videocall.md a comment says so
("Janus 1.1.2:").

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`);
exits 1 if anything failed. Usage:
  videocall_aiortc.py --http http://10.x.y.1:8088/janus --ws ws://10.x.y.1:8188 --addr A
      --dir <folder the server can write to>
"""

import argparse
import asyncio
import fractions
import json
import os
import secrets
import struct
import sys
import tempfile
import time

import numpy as np
from av import AudioFrame, VideoFrame
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket, unpack_remb_fci

from echotest_aiortc import CONNECT_TIMEOUT, SAMPLE_RATE, AssertionFailed, Runner, check, encode_counter, stepper
from janus_client import HttpJanus, WsJanus, brief

VIDEOCALL = "janus.plugin.videocall"
STEP = 12.0  # seconds: bound of one signalling exchange
QUIET = 1.0  # seconds during which a peer that must be told nothing is watched
SETTLE = 1.0  # seconds after a change before a listening window starts
WINDOW = 2.0  # seconds of decoded media analysed per check
FPS = 30
FRAME_MS = 20
AMPLITUDE = 0.25
BAND_HZ = 6.0
MIN_SHARE = 0.10
MIN_DB = 20.0
MIN_RMS = 1000.0
COLOUR_TOL = 60
MIN_FRAMES = 30  # decoded video frames of the other side in the first media window
STOPPED_MAX_FRAMES = 3  # video frames allowed in a window where the video must have stopped
COUNTER_BITS = 16

ALICE = {"rgb": (220, 30, 30), "size": (320, 240), "hz": 440.0}  # red
BOB = {"rgb": (30, 30, 220), "size": (256, 192), "hz": 1000.0}  # blue
CAROL = {"rgb": (30, 200, 30), "size": (160, 120), "hz": 700.0}


# Where jano deliberately differs from Janus 1.1.2 (a defect not copied), the check says so.
IS_JANUS = os.environ.get("MEDIA_SERVER_IS_JANUS") == "1"

def pdata(m):
    return m["plugindata"]["data"]


def vc_error(code, text):
    return {"videocall": "event", "error_code": code, "error": text}


def vc_result(**result):
    return {"videocall": "event", "result": result}


# ------------------------------------------------------------------------------------------------
# REMB and PLI seen by aiortc senders (aiortc applies a REMB to its VP8 encoder's target bitrate,
# clamped to [250 kbps, 1.5 Mbps], and answers a PLI with a key frame; here every REMB and PLI a
# sender is handed is also noted)
# ------------------------------------------------------------------------------------------------

_orig_sender_rtcp = RTCRtpSender._handle_rtcp_packet


async def _noting_sender_rtcp(self, packet):
    if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
        self.__dict__.setdefault("jano_plis", []).append(time.monotonic())
    if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
        try:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
        except ValueError:
            pass
        else:
            self.__dict__.setdefault("jano_rembs", []).append((time.monotonic(), bitrate, self._ssrc in ssrcs))
    await _orig_sender_rtcp(self, packet)


RTCRtpSender._handle_rtcp_packet = _noting_sender_rtcp


def encoder_target(sender):
    enc = getattr(sender, "_RTCRtpSender__encoder", None)
    return getattr(enc, "target_bitrate", None)


# ------------------------------------------------------------------------------------------------
# Sources and sinks
# ------------------------------------------------------------------------------------------------

class ColourTrack(MediaStreamTrack):
    """Frames of one solid colour (top two thirds) over a 16-block frame counter (bottom third)."""

    kind = "video"

    def __init__(self, rgb, size):
        super().__init__()
        self.w, self.h = size
        self.split = self.h * 2 // 3
        self.base = np.zeros((self.h, self.w, 3), dtype=np.uint8)
        self.base[:self.split] = rgb
        self.count = 0
        self._start = None

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self.count / FPS - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        img = self.base.copy()
        bw = self.w // COUNTER_BITS
        for i, b in enumerate(encode_counter(self.count)):
            if b:
                img[self.split:, i * bw:(i + 1) * bw] = 255
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = int(self.count * 90000 / FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        self.count += 1
        return frame


def read_frame(rgb):
    """(counter or None, mean colour of the solid part) of a decoded frame of any size."""
    h, w = rgb.shape[:2]
    split = h * 2 // 3
    colour = tuple(int(v) for v in rgb[h // 10:split - h // 10, w // 10:w - w // 10].reshape(-1, 3).mean(axis=0))
    bw = w // COUNTER_BITS
    y0, y1 = split + (h - split) // 4, h - (h - split) // 4
    bits = [1 if rgb[y0:y1, i * bw + bw // 4:(i + 1) * bw - bw // 4].mean() > 128 else 0 for i in range(COUNTER_BITS)]
    if sum(bits[:15]) & 1 != bits[15]:
        return None, colour
    n = 0
    for b in bits[:15]:
        n = (n << 1) | b
    return n, colour


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


class Peer:
    """One user: a Janus handle, a PeerConnection sending its colour and tone, and what it decodes."""

    def __init__(self, cl, name, look):
        self.cl = cl
        self.c = cl.c
        self.name = name
        self.look = look
        self.hid = None
        self.pc = None
        self.video = self.tone = None
        self.frames = []  # (monotonic time, counter or None, (w, h), colour)
        self.audio = []  # (monotonic time, int16 mono samples)
        self.rate = None
        self.tasks = []
        self.old_pcs = []

    def new_pc(self):
        if self.pc is not None:
            self.old_pcs.append(self.pc)
        for t in self.tasks:
            t.cancel()
        self.tasks = []
        self.frames, self.audio = [], []
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = ColourTrack(self.look["rgb"], self.look["size"])
        self.tone = Tone(self.look["hz"])
        self.pc.on("track", self.on_track)
        return self.pc

    def on_track(self, track):
        if track.kind == "video":
            self.tasks.append(asyncio.ensure_future(self._video(track)))
        else:
            self.tasks.append(asyncio.ensure_future(self._audio(track)))

    async def _video(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            counter, colour = read_frame(frame.to_ndarray(format="rgb24"))
            self.frames.append((time.monotonic(), counter, (frame.width, frame.height), colour))

    async def _audio(self, track):
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
            self.audio.append((time.monotonic(), arr[0].astype(np.int16)))

    def video_sender(self):
        return next(s for s in self.pc.getSenders() if s.track is not None and s.track.kind == "video")

    def frames_between(self, t0, t1):
        return [f for f in self.frames if t0 <= f[0] < t1]

    def audio_between(self, t0, t1):
        return [a for t, a in self.audio if t0 <= t < t1]

    async def close(self):
        for t in self.tasks:
            t.cancel()
        for pc in self.old_pcs + [self.pc]:
            if pc is not None:
                try:
                    await asyncio.wait_for(pc.close(), 5)
                except Exception:  # noqa: BLE001
                    pass


class Client:
    """A janus_client session plus the VideoCall request pattern (every request is asynchronous)."""

    def __init__(self, c):
        self.c = c

    def mark(self):
        return len(self.c.received)

    async def request(self, hid, body, what, jsep=None):
        """ack, then an `event` with the request's transaction (either order on the wire)."""
        r = await self.c.message(hid, body, jsep)
        check(r.get("janus") == "ack", f"{what}: every VideoCall request is asynchronous, expected ack, got {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx,
                                   STEP, f"the event answering {what}")
        check(ev.get("sender") == hid, f"{what}: event sender {ev.get('sender')} != handle {hid}")
        check(ev.get("session_id") == self.c.session_id, f"{what}: event session_id {brief(ev)}")
        check(ev.get("plugindata", {}).get("plugin") == VIDEOCALL, f"{what}: plugindata {brief(ev.get('plugindata'))}")
        return ev, pdata(ev)

    def since(self, mark, hid=None, kinds=("event",)):
        return [m for _, m in self.c.received[mark:]
                if m.get("janus") in kinds and (hid is None or m.get("sender") == hid)]

    async def notification(self, mark, hid, pred, what, timeout=STEP):
        """An unsolicited plugin event for `hid` after `mark` whose data matches `pred`."""
        old = {id(m) for _, m in self.c.received[:mark]}
        m = await self.c.wait_for(
            lambda m: id(m) not in old and m["janus"] == "event" and m.get("sender") == hid
            and pred(pdata(m)), timeout, f"{what} (handle {hid})")
        check("transaction" not in m, f"{what}: an unsolicited event must not carry a transaction: {brief(m)}")
        check(m["plugindata"].get("plugin") == VIDEOCALL, f"{what}: plugindata {brief(m['plugindata'])}")
        return m

    async def core_event(self, mark, hid, kind, what, timeout=STEP):
        old = {id(m) for _, m in self.c.received[:mark]}
        return await self.c.wait_for(
            lambda m: id(m) not in old and m["janus"] == kind and m.get("sender") == hid, timeout, what)


def check_transport_sdp(sdp, addr, what):
    check("a=fingerprint:" in sdp, f"{what}: no a=fingerprint")
    check("a=ice-ufrag:" in sdp and "a=ice-pwd:" in sdp, f"{what}: no ICE credentials")
    cands = [l for l in sdp.splitlines() if l.startswith("a=candidate:")]
    check(cands, f"{what}: aiortc does not trickle, the SDP must carry the server's candidates (none)")
    if addr:
        check(any(f" {addr} " in l for l in cands), f"{what}: no candidate on the namespace address {addr}: {cands}")


def media_kinds(sdp):
    return [l[2:].split(" ", 1)[0] for l in sdp.splitlines() if l.startswith("m=")]


def own_candidates(sdp):
    return [l for l in sdp.splitlines() if l.startswith("a=candidate:")]


async def wait_connected(pc, what):
    end = time.monotonic() + CONNECT_TIMEOUT
    while pc.connectionState != "connected":
        check(pc.connectionState not in ("failed", "closed"),
              f"{what}: peer connection {pc.connectionState} (ICE {pc.iceConnectionState})")
        if time.monotonic() > end:
            raise AssertionFailed(f"{what}: not connected after {CONNECT_TIMEOUT:.0f} s: "
                                  f"connectionState={pc.connectionState} ICE={pc.iceConnectionState}")
        await asyncio.sleep(0.05)


def read_mjr(path):
    """(header dict, [RTP packet bytes]) of a Janus .mjr recording (MJR00002)."""
    blob = open(path, "rb").read()
    check(blob[:8] == b"MJR00002", f"{path}: starts with {blob[:8]!r}, expected b'MJR00002'")
    (hlen,) = struct.unpack("!H", blob[8:10])
    header = json.loads(blob[10:10 + hlen])
    pos = 10 + hlen
    packets = []
    while pos + 10 <= len(blob):
        check(blob[pos:pos + 4] == b"MEET", f"{path}: no frame marker at offset {pos}")
        (length,) = struct.unpack("!H", blob[pos + 8:pos + 10])
        packets.append(blob[pos + 10:pos + 10 + length])
        pos += 10 + length
    return header, packets


def vp8_keyframe_sizes(packets):
    """The (width, height) of every VP8 key frame starting in these RTP packets."""
    out = []
    for p in packets:
        if len(p) < 12:
            continue
        cc = p[0] & 0x0F
        off = 12 + 4 * cc
        if p[0] & 0x10:  # header extension
            (words,) = struct.unpack("!H", p[off + 2:off + 4])
            off += 4 + 4 * words
        d = p[off:]
        if not d:
            continue
        # VP8 payload descriptor (RFC 7741)
        i = 1
        if d[0] & 0x80:
            x = d[1]
            i = 2
            if x & 0x80:
                i += 2 if d[i] & 0x80 else 1
            if x & 0x40:
                i += 1
            if x & 0x30:
                i += 1
        start = bool(d[0] & 0x10) and (d[0] & 0x07) == 0
        vp8 = d[i:]
        if start and len(vp8) >= 10 and not (vp8[0] & 0x01) and vp8[3:6] == b"\x9d\x01\x2a":
            w, h = struct.unpack("<HH", vp8[6:10])
            out.append((w & 0x3FFF, h & 0x3FFF))
    return out


# ------------------------------------------------------------------------------------------------
# The conversation
# ------------------------------------------------------------------------------------------------

class CallRun:
    def __init__(self, http_url, ws_url, addr, folder):
        self.A = Client(HttpJanus(http_url))  # alice, carol
        self.B = Client(WsJanus(ws_url))  # bob, x
        self.addr = addr
        self.folder = folder
        tag = secrets.token_hex(3)
        self.alice = Peer(self.A, f"alice-{tag}", ALICE)
        self.carol = Peer(self.A, f"carol-{tag}", CAROL)
        self.bob = Peer(self.B, f"bob-{tag}", BOB)
        self.x = Peer(self.B, f"x-{tag}", CAROL)  # never registers
        self.nobody = f"nobody-{tag}"
        self.connected_at = None
        self.rec_base = None

    def dump(self):
        return (f"  session A (HTTP: alice, carol):\n{self.A.c.dump(25)}\n"
                f"  session B (WS: bob, x):\n{self.B.c.dump(25)}")

    async def list_users(self, p, what):
        ev, d = await p.cl.request(p.hid, {"request": "list"}, what)
        # Janus 1.1.2: {"videocall":"event","result":{"list":[...]}} (no "event" key in result).
        check(set(d) == {"videocall", "result"} and d["videocall"] == "event", f"{what}: {brief(d)}")
        check(set(d["result"]) == {"list"} and isinstance(d["result"]["list"], list), f"{what}: {brief(d)}")
        check(ev.get("jsep") is None, f"{what}: a list carries no jsep")
        lst = d["result"]["list"]
        check(all(isinstance(u, str) for u in lst) and len(lst) == len(set(lst)), f"{what}: list {lst}")
        return lst

    # -- steps -----------------------------------------------------------------------------
    async def setup(self):
        for cl in (self.A, self.B):
            await cl.c.connect()
            sid = await cl.c.create()
            check(isinstance(sid, int) and sid > 0, f"session id {sid!r}")
        for p in (self.alice, self.carol, self.bob, self.x):
            p.hid = await p.c.attach(VIDEOCALL)
        return f"sessions {self.A.c.session_id} (HTTP) and {self.B.c.session_id} (WS)"

    async def list_before(self):
        lst = await self.list_users(self.x, "list")
        ours = [u for u in lst if u in (self.alice.name, self.bob.name, self.carol.name, self.x.name)]
        check(not ours, f"list before anyone registered names {ours}")
        return f"list {lst}"

    async def register(self):
        for p in (self.alice, self.bob):
            ev, d = await p.cl.request(p.hid, {"request": "register", "username": p.name}, f"{p.name} register")
            check(d == vc_result(event="registered", username=p.name), f"{p.name} register: {brief(d)}")
            check(ev.get("jsep") is None, "register carries no jsep")
        return "registered"

    async def list_both(self):
        lst = await self.list_users(self.x, "list")
        check(self.alice.name in lst and self.bob.name in lst, f"list {lst} lacks {self.alice.name} or {self.bob.name}")
        check(self.carol.name not in lst and self.x.name not in lst, f"list {lst} names an unregistered handle")
        # `list` is answered to a handle that is not registered too, and the request name is
        # matched case-insensitively (Janus 1.1.2 uses strcasecmp for every request name).
        lst2 = await self.list_users(self.alice, "list as LiSt")
        check(sorted(lst2) == sorted(lst), f"LiSt {lst2} != list {lst}")
        return f"list {lst}"

    async def request_errors(self):
        x, a = self.x, self.alice
        rows = [
            # (peer, body, expected plugin data)
            # Janus 1.1.2: a body without "request" is 475 (the spec's 470 NO_MESSAGE is for a
            # missing body, which the core already refuses before the plugin sees it).
            (x, {}, vc_error(475, "Missing mandatory element (request)")),
            (x, {"request": 42}, vc_error(474, "Invalid element type (request should be a string)")),
            (x, {"request": "dance"}, vc_error(472, "Unknown request (dance)")),
            (x, {"request": "register"}, vc_error(475, "Missing mandatory element (username)")),
            (x, {"request": "register", "username": 7},
             vc_error(474, "Invalid element type (username should be a string)")),
            (x, {"request": "register", "username": a.name}, vc_error(476, f"Username '{a.name}' already taken")),
            (a, {"request": "register", "username": self.nobody}, vc_error(477, f"Already registered ({a.name})")),
            (a, {"request": "register", "username": a.name}, vc_error(477, f"Already registered ({a.name})")),
            # Janus 1.1.2: "Register a username first" comes before any other check of `call`.
            (x, {"request": "call", "username": self.bob.name}, vc_error(473, "Register a username first")),
            (x, {"request": "call"}, vc_error(473, "Register a username first")),
            (x, {"request": "accept"}, vc_error(481, "No incoming call to accept")),
            (x, {"request": "set", "audio": "yes"}, vc_error(474, "Invalid element type (audio should be a boolean)")),
            (x, {"request": "set", "video": 1}, vc_error(474, "Invalid element type (video should be a boolean)")),
            (x, {"request": "set", "bitrate": -5},
             vc_error(474, "Invalid element type (bitrate should be a positive integer)")),
            (x, {"request": "set", "bitrate": "100"},
             vc_error(474, "Invalid element type (bitrate should be a positive integer)")),
            (x, {"request": "set", "record": "on"}, vc_error(474, "Invalid element type (record should be a boolean)")),
            (x, {"request": "set", "filename": 3}, vc_error(474, "Invalid element type (filename should be a string)")),
            (x, {"request": "set", "substream": 3}, vc_error(474, "Invalid value (substream should be 0, 1 or 2)")),
            (x, {"request": "set", "temporal": -1}, vc_error(474, "Invalid value (temporal should be 0, 1 or 2)")),
            (x, {"request": "set", "fallback": -1},
             vc_error(474, "Invalid value (fallback should be a positive integer)")),
            # Not errors: `set` needs no call; `hangup` needs no call (nor a registration: the
            # unregistered handle's hangup event has no "username" at all, Janus 1.1.2), and the
            # requester is always told the reason "Explicit hangup", whatever reason it gave.
            (x, {"request": "set", "audio": True, "video": True, "bitrate": 0}, vc_result(event="set")),
            (x, {"request": "hangup", "reason": "nothing to hang up"}, vc_result(event="hangup", reason="Explicit hangup")),
            (x, {"request": "hangup", "reason": 5}, vc_result(event="hangup", reason="Explicit hangup")),
        ]
        bad = []
        for p, body, want in rows:
            ev, d = await p.cl.request(p.hid, body, f"{p.name} {brief(body)}")
            if d != want or ev.get("jsep") is not None:
                bad.append(f"{p.name} {brief(body)} → {brief(d)}, expected {brief(want)}")
        check(not bad, f"{len(bad)} of {len(rows)} rows wrong:\n    " + "\n    ".join(bad))
        return f"{len(rows)} rows"

    async def call_errors(self):
        a, b = self.alice, self.bob
        mb = self.B.mark()
        rows = [
            (a, {"request": "call"}, vc_error(475, "Missing mandatory element (username)")),
            (a, {"request": "call", "username": 5}, vc_error(474, "Invalid element type (username should be a string)")),
            (a, {"request": "call", "username": self.nobody}, vc_error(478, f"Username '{self.nobody}' doesn't exist")),
            (a, {"request": "call", "username": a.name}, vc_error(479, "You can't call yourself... use the EchoTest for that")),
            # Janus 1.1.2: a call to an idle user without a JSEP is 482 "Missing SDP", and it
            # leaves both users idle (the real call below still works).
            (a, {"request": "call", "username": b.name}, vc_error(482, "Missing SDP")),
        ]
        bad = []
        for p, body, want in rows:
            ev, d = await p.cl.request(p.hid, body, f"{p.name} {brief(body)}")
            if d != want or ev.get("jsep") is not None:
                bad.append(f"{p.name} {brief(body)} → {brief(d)}, expected {brief(want)}")
        check(not bad, f"{len(bad)} of {len(rows)} rows wrong:\n    " + "\n    ".join(bad))
        await asyncio.sleep(QUIET)
        told = self.B.since(mb, b.hid, kinds=("event", "hangup", "webrtcup"))
        check(not told, f"bob must be told nothing of failed calls: {brief(told)}")
        return f"{len(rows)} rows; bob told nothing"

    async def call(self, caller, callee, what):
        """caller `call`s callee with an offer; the callee gets `incomingcall` + the offer."""
        pc = caller.new_pc()
        pc.addTrack(caller.tone)
        pc.addTrack(caller.video)
        await pc.setLocalDescription(await pc.createOffer())  # gathers all candidates
        offer = pc.localDescription.sdp
        mc = callee.cl.mark()
        ev, d = await caller.cl.request(caller.hid, {"request": "call", "username": callee.name}, what,
                                        jsep={"type": "offer", "sdp": offer, "trickle": False})
        # Janus 1.1.2: the caller's result is {"event":"calling"} only (the spec shows a username).
        check(d == vc_result(event="calling"), f"{what}: caller got {brief(d)}")
        check(ev.get("jsep") is None, f"{what}: `calling` carries no jsep")
        m = await callee.cl.notification(mc, callee.hid, lambda d: d.get("result", {}).get("event") == "incomingcall",
                                         f"{what}: incomingcall")
        check(pdata(m) == vc_result(event="incomingcall", username=caller.name), f"{what}: callee got {brief(pdata(m))}")
        jsep = m.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "offer" and isinstance(jsep.get("sdp"), str),
              f"{what}: incomingcall must carry the offer as jsep: {brief(jsep)}")
        sdp = jsep["sdp"]
        # The offer the callee gets is the server's own (its ICE credentials, fingerprint and
        # candidates), with the caller's m-lines.
        check_transport_sdp(sdp, self.addr, f"{what}: offer to the callee")
        check(media_kinds(sdp) == media_kinds(offer), f"{what}: m-lines {media_kinds(sdp)} != caller's {media_kinds(offer)}")
        check(not set(own_candidates(offer)) & set(own_candidates(sdp)),
              f"{what}: the callee's offer carries the caller's own candidates")
        return sdp

    async def accept(self, caller, callee, offer_sdp, what):
        pc = callee.new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        pc.addTrack(callee.tone)
        pc.addTrack(callee.video)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription.sdp
        ma = caller.cl.mark()
        mb = callee.cl.mark()
        ev, d = await callee.cl.request(callee.hid, {"request": "accept"}, what,
                                        jsep={"type": "answer", "sdp": answer, "trickle": False})
        # Janus 1.1.2: the callee (who accepted) gets {"event":"accepted"} without a username; the
        # caller gets {"event":"accepted","username":<callee>} + the answer. The spec says both
        # get the caller's username.
        check(d == vc_result(event="accepted"), f"{what}: callee got {brief(d)}")
        check(ev.get("jsep") is None, f"{what}: the callee's `accepted` carries no jsep")
        m = await caller.cl.notification(ma, caller.hid, lambda d: d.get("result", {}).get("event") == "accepted",
                                         f"{what}: caller accepted")
        check(pdata(m) == vc_result(event="accepted", username=callee.name), f"{what}: caller got {brief(pdata(m))}")
        jsep = m.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "answer" and isinstance(jsep.get("sdp"), str),
              f"{what}: the caller's accepted must carry the answer: {brief(jsep)}")
        check_transport_sdp(jsep["sdp"], self.addr, f"{what}: answer to the caller")
        check(media_kinds(jsep["sdp"]) == media_kinds(answer), f"{what}: answer m-lines {media_kinds(jsep['sdp'])}")
        await caller.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))
        await wait_connected(caller.pc, f"{what}: {caller.name}")
        await wait_connected(callee.pc, f"{what}: {callee.name}")
        for p, mark in ((caller, ma), (callee, mb)):
            await p.cl.core_event(mark, p.hid, "webrtcup", f"{what}: {p.name} webrtcup")
        return time.monotonic()

    async def first_call(self):
        offer = await self.call(self.alice, self.bob, "alice calls bob")
        self.offer_for_bob = offer
        return "calling; incomingcall + offer"

    async def first_accept(self):
        self.connected_at = await self.accept(self.alice, self.bob, self.offer_for_bob, "bob accepts")
        return "accepted both sides, connected, webrtcup"

    async def collect(self):
        end = time.monotonic() + 12
        while time.monotonic() < end:
            ok = True
            for p in (self.alice, self.bob):
                audio_s = sum(len(a) for _, a in p.audio) / (p.rate or SAMPLE_RATE)
                good = [f for f in p.frames if f[1] is not None]
                ok = ok and len(good) >= MIN_FRAMES + 15 and audio_s >= 2.5
            if ok:
                return
            await asyncio.sleep(0.1)

    def check_video_of(self, me, other, frames, what):
        n = len(frames)
        check(n >= MIN_FRAMES, f"{what}: {me.name} decoded only {n} video frames (need {MIN_FRAMES}); "
              f"{other.name} sent {other.video.count}")
        sizes = {f[2] for f in frames}
        check(sizes == {other.look["size"]}, f"{what}: {me.name} decoded sizes {sizes}, expected {other.look['size']}")
        counters = [f[1] for f in frames if f[1] is not None]
        check(len(counters) >= 0.8 * n, f"{what}: only {len(counters)} of {n} frames had a readable counter")
        check(all(c < other.video.count for c in counters), f"{what}: counters never sent: {counters[-10:]}")
        inc = sum(1 for p, q in zip(counters, counters[1:]) if q > p)
        dec = sum(1 for p, q in zip(counters, counters[1:]) if q < p)
        check(inc >= 0.8 * (len(counters) - 1) and dec <= 2, f"{what}: counters not increasing: {counters[:8]}…{counters[-8:]}")
        late = [f[3] for f in frames[len(frames) // 2:]]
        want = other.look["rgb"]
        good = sum(1 for c in late if max(abs(x - y) for x, y in zip(c, want)) <= COLOUR_TOL)
        check(good >= 0.8 * len(late), f"{what}: colour off in {len(late) - good}/{len(late)} late frames: "
              f"last {late[-1]}, expected {want} (own colour {me.look['rgb']})")
        return f"{me.name} sees {n} frames {other.look['size']} colour {late[-1]}"

    def check_video(self):
        out = []
        for me, other in ((self.alice, self.bob), (self.bob, self.alice)):
            out.append(self.check_video_of(me, other, me.frames, "video"))
        return "; ".join(out)

    def listen(self, me, t0, t1, heard, silent, what):
        """me must hear `heard` (Hz) in [t0, t1] and not `silent`; heard=None: me must hear
        neither (no audio decoded at all, or both tones weak)."""
        chunks = me.audio_between(t0, t1)
        need = int(0.6 * (t1 - t0) * 1000 / FRAME_MS)
        tones = [ALICE["hz"], BOB["hz"]]
        if heard is None:
            if len(chunks) < 0.1 * need:
                return f"{me.name}: {len(chunks)} audio frames (silent)"
            rms, share = analyse(chunks, me.rate, tones)
            check(rms < MIN_RMS / 4 or share[silent] < 0.01,
                  f"{what}: {me.name} should not hear {silent:.0f} Hz: {len(chunks)} frames, RMS {rms:.0f}, "
                  f"share {100 * share[silent]:.1f} %")
            return f"{me.name}: {len(chunks)} frames, {silent:.0f} Hz {100 * share[silent]:.2f} %, RMS {rms:.0f}"
        check(len(chunks) >= need, f"{what}: {me.name} decoded {len(chunks)} audio frames in {t1 - t0:.1f} s (need {need})")
        rms, share = analyse(chunks, me.rate, tones)
        shares = ", ".join(f"{hz:.0f} Hz {100 * share[hz]:.1f} %" for hz in tones)
        check(rms >= MIN_RMS, f"{what}: {me.name} hears (nearly) silence: RMS {rms:.0f}; {shares}")
        check(share[heard] >= MIN_SHARE, f"{what}: {me.name} should hear {heard:.0f} Hz: {shares}")
        gap = db(share[heard], share[silent])
        check(gap >= MIN_DB, f"{what}: {me.name} should not hear {silent:.0f} Hz: only {gap:.1f} dB below "
              f"{heard:.0f} Hz (need {MIN_DB:.0f}); {shares}")
        return f"{me.name} hears {heard:.0f} Hz ({100 * share[heard]:.0f} %), {silent:.0f} Hz {gap:.0f} dB down"

    def check_audio(self):
        t1 = time.monotonic()
        t0 = t1 - WINDOW
        a = self.listen(self.alice, t0, t1, BOB["hz"], ALICE["hz"], "audio")
        b = self.listen(self.bob, t0, t1, ALICE["hz"], BOB["hz"], "audio")
        return f"{a}; {b}"

    async def busy(self):
        c, b, a = self.carol, self.bob, self.alice
        ev, d = await c.cl.request(c.hid, {"request": "register", "username": c.name}, "carol register")
        check(d == vc_result(event="registered", username=c.name), f"carol register: {brief(d)}")
        ma, mb = self.A.mark(), self.B.mark()
        pc = c.new_pc()
        pc.addTrack(c.tone)
        pc.addTrack(c.video)
        await pc.setLocalDescription(await pc.createOffer())
        ev, d = await c.cl.request(c.hid, {"request": "call", "username": b.name}, "carol calls busy bob",
                                   jsep={"type": "offer", "sdp": pc.localDescription.sdp, "trickle": False})
        # Janus 1.1.2: the busy answer is the call's own event (it carries the request's
        # transaction), and its username is the CALLER's (carol), not the busy callee's.
        check(d == vc_result(event="hangup", username=c.name, reason="User busy"), f"busy: {brief(d)}")
        check(ev.get("jsep") is None, "busy: no jsep")
        await asyncio.sleep(QUIET)
        told_b = self.B.since(mb, b.hid, kinds=("event", "hangup"))
        told_a = [m for m in self.A.since(ma, a.hid, kinds=("event", "hangup"))]
        check(not told_b and not told_a, f"alice and bob must be told nothing: bob {brief(told_b)}, alice {brief(told_a)}")
        # Janus 1.1.2 closes the PeerConnection carol's offer had started.
        hung = [m.get("reason") for m in self.A.since(ma, c.hid, kinds=("hangup",))]
        check(hung == ["Close PC"], f"carol: core hangup events {hung}, expected ['Close PC']")
        # Still in the call: bob keeps decoding alice.
        n = len(b.frames_between(time.monotonic() - QUIET, time.monotonic()))
        check(n >= 10, f"bob decoded only {n} frames of alice in the last {QUIET:.0f} s")
        await c.pc.close()
        return "carol: hangup User busy; alice and bob told nothing"

    async def accept_without_call(self):
        c = self.carol
        ev, d = await c.cl.request(c.hid, {"request": "accept"}, "carol accept")
        check(d == vc_error(481, "No incoming call to accept"), f"carol accept: {brief(d)}")
        # Janus 1.1.2: `accept` inside an established call is not 481: it goes on to the SDP
        # check, so without a JSEP it is 482 "Missing SDP" (and changes nothing).
        ev, d = await self.bob.cl.request(self.bob.hid, {"request": "accept"}, "bob accept again")
        check(d == vc_error(482, "Missing SDP"), f"bob accept in a call: {brief(d)}")
        return "481; in a call: 482"

    async def bitrate(self):
        a = self.alice
        sender = a.video_sender()
        rembs = sender.__dict__.get("jano_rembs", [])
        before = encoder_target(sender)
        t_set = time.monotonic()
        ev, d = await a.cl.request(a.hid, {"request": "set", "bitrate": 100000}, "alice set bitrate")
        check(d == vc_result(event="set"), f"set bitrate: {brief(d)}")
        check(ev.get("jsep") is None, "set: no jsep")
        end = time.monotonic() + 5
        while time.monotonic() < end:
            rembs = sender.__dict__.get("jano_rembs", [])
            if any(t >= t_set and br == 100000 and mine for t, br, mine in rembs):
                break
            await asyncio.sleep(0.1)
        after_set = [(br, mine) for t, br, mine in rembs if t >= t_set]
        check((100000, True) in after_set,
              f"alice's video sender got no REMB of 100000 bps for its SSRC after `set` (got {after_set[:10]})")
        await asyncio.sleep(1.5)
        rembs = sender.__dict__.get("jano_rembs", [])
        late = [br for t, br, mine in rembs if t >= t_set + 0.5 and mine]
        check(all(br <= 100000 for br in late), f"REMBs above the cap after `set`: {late}")
        target = encoder_target(sender)
        # aiortc clamps the REMB to its VP8 encoder's minimum of 250 kbps.
        check(target is not None and target <= 250000 and (before is None or target < before),
              f"aiortc's encoder target bitrate {target} (before the set {before}): expected it to drop to 250000")
        # Janus 1.1.2 answers every REMB alice's receiver sends with one of its own to alice: the
        # cap, or 10000000 ("no limit") before any bitrate was set.
        pre = sorted({br for t, br, mine in rembs if t < t_set})
        check(pre == [10000000], f"REMBs to alice before the set: {pre}, expected [10000000]")
        return f"REMB 100000 received, encoder target {before} → {target}; REMB before the set {pre}"

    async def audio_off_on(self):
        a, b = self.alice, self.bob
        ev, d = await a.cl.request(a.hid, {"request": "set", "audio": False}, "alice set audio:false")
        check(d == vc_result(event="set"), f"set audio:false: {brief(d)}")
        t0 = time.monotonic() + SETTLE
        await asyncio.sleep(SETTLE + WINDOW + 0.1)
        # Janus 1.1.2: `audio:false` on alice's handle stops relaying the audio alice SENDS
        # (bob no longer hears her); alice still hears bob.
        r1 = self.listen(b, t0, t0 + WINDOW, None, ALICE["hz"], "audio:false")
        r2 = self.listen(a, t0, t0 + WINDOW, BOB["hz"], ALICE["hz"], "audio:false")
        ev, d = await a.cl.request(a.hid, {"request": "set", "audio": True}, "alice set audio:true")
        check(d == vc_result(event="set"), f"set audio:true: {brief(d)}")
        t0 = time.monotonic() + SETTLE
        await asyncio.sleep(SETTLE + WINDOW + 0.1)
        r3 = self.listen(b, t0, t0 + WINDOW, ALICE["hz"], BOB["hz"], "audio:true")
        return f"off: {r1}; {r2}; on: {r3}"

    async def video_packets(self, p):
        """Video RTP packets p's PeerConnection has received so far."""
        st = await p.pc.getStats()
        return sum(v.packetsReceived for v in st.values() if v.type == "inbound-rtp" and v.kind == "video")

    async def video_off_on(self):
        a, b = self.alice, self.bob
        sender = a.video_sender()
        ev, d = await a.cl.request(a.hid, {"request": "set", "video": False}, "alice set video:false")
        check(d == vc_result(event="set"), f"set video:false: {brief(d)}")
        t0 = time.monotonic() + 0.5
        await asyncio.sleep(0.5)
        p0 = await self.video_packets(b)
        await asyncio.sleep(1.5)
        p1 = await self.video_packets(b)
        n_off = len(b.frames_between(t0, t0 + 1.5))
        n_alice = len(a.frames_between(t0, t0 + 1.5))
        # Janus 1.1.2: `video:false` on alice's handle stops relaying the video alice SENDS.
        check(p1 - p0 <= 2 and n_off <= STOPPED_MAX_FRAMES,
              f"video:false: bob still got {p1 - p0} video packets / decoded {n_off} frames of alice in 1.5 s")
        check(n_alice >= 20, f"video:false: alice must still see bob: {n_alice} frames in 1.5 s")
        t_on = time.monotonic()
        ev, d = await a.cl.request(a.hid, {"request": "set", "video": True}, "alice set video:true")
        check(d == vc_result(event="set"), f"set video:true: {brief(d)}")
        # Janus 1.1.2 sends alice a PLI when her video is re-enabled (so that bob gets a key frame).
        end = time.monotonic() + 2
        while time.monotonic() < end and not any(t >= t_on for t in sender.__dict__.get("jano_plis", [])):
            await asyncio.sleep(0.05)
        plis = [round(t - t_on, 2) for t in sender.__dict__.get("jano_plis", []) if t >= t_on]
        check(plis, "video:true: no PLI reached alice's video sender within 2 s")
        # Janus 1.1.2 relays alice's packets again with their own sequence numbers: bob's receiver
        # sees a gap, and aiortc's video jitter buffer (512 packets) would not decode again until
        # the gap leaves it (~15 s), so resumption is checked at the RTP level.
        q0 = await self.video_packets(b)
        await asyncio.sleep(1.5)
        q1 = await self.video_packets(b)
        check(q1 - q0 >= 20, f"video:true: bob got only {q1 - q0} video packets in 1.5 s")
        return (f"off: bob {p1 - p0} packets, {n_off} frames; alice {n_alice} frames; on: PLI to alice after "
                f"{plis[0]} s, bob {q1 - q0} packets in 1.5 s")

    async def record(self):
        a = self.alice
        self.rec_base = os.path.join(self.folder, f"vc-{a.name}")
        ev, d = await a.cl.request(a.hid, {"request": "set", "record": True, "filename": self.rec_base},
                                   "alice set record:true")
        check(d == vc_result(event="set"), f"set record:true: {brief(d)}")
        await asyncio.sleep(2.0)
        ev, d = await a.cl.request(a.hid, {"request": "set", "record": False}, "alice set record:false")
        check(d == vc_result(event="set"), f"set record:false: {brief(d)}")
        await asyncio.sleep(0.5)
        prefix = os.path.basename(self.rec_base)
        names = sorted(n for n in os.listdir(self.folder) if n.startswith(prefix))
        # Janus 1.1.2: <filename>-audio.mjr and <filename>-video.mjr (no -data: no data channel
        # was negotiated), holding only alice's own media.
        want = [f"{prefix}-audio.mjr", f"{prefix}-video.mjr"]
        check(names == want, f"recordings {names}, expected {want}")
        out = []
        for kind, codec, least in (("audio", "opus", 50), ("video", "vp8", 20)):
            path = f"{self.rec_base}-{kind}.mjr"
            header, packets = read_mjr(path)
            check(header.get("t") == kind[0] and header.get("c") == codec, f"{path}: header {header}")
            check(len(packets) >= least, f"{path}: {len(packets)} packets in 2 s, expected at least {least}")
            out.append(f"{kind} {len(packets)} packets")
            if kind == "video":
                sizes = set(vp8_keyframe_sizes(packets))
                check(sizes == {ALICE["size"]}, f"{path}: key frames of size {sizes}, expected alice's {ALICE['size']}")
                out.append(f"key frame {ALICE['size']}")
        # No more packets once recording stopped.
        sizes = [os.path.getsize(f"{self.rec_base}-{k}.mjr") for k in ("audio", "video")]
        await asyncio.sleep(0.5)
        check(sizes == [os.path.getsize(f"{self.rec_base}-{k}.mjr") for k in ("audio", "video")],
              "the recordings still grow after record:false")
        return ", ".join(out)

    async def hangup(self):
        a, b = self.alice, self.bob
        marks = [(a, self.A.mark()), (b, self.B.mark())]
        ev, d = await b.cl.request(b.hid, {"request": "hangup", "reason": "Bye from bob"}, "bob hangup")
        t_hang = time.monotonic()
        # Janus 1.1.2: the one hanging up is told {"event":"hangup","username":<self>,
        # "reason":"Explicit hangup"} (the reason it gave is overwritten); the peer gets
        # {"event":"hangup","username":<bob>,"reason":<bob's reason>}. Both PCs are then closed
        # ("Close PC"), and since the hangup request leaves each side's peer link in place, each
        # PC going away ALSO tells the other side "Remote WebRTC hangup" (with the username of
        # the side whose PC went away): alice gets two hangup events, bob one more.
        check(d == vc_result(event="hangup", username=b.name, reason="Explicit hangup"), f"bob: {brief(d)}")
        check(ev.get("jsep") is None, "hangup: no jsep")
        if IS_JANUS:
            expected = {
                a.name: [vc_result(event="hangup", username=b.name, reason="Bye from bob"),
                         vc_result(event="hangup", username=b.name, reason="Remote WebRTC hangup"), "core hangup: Close PC"],
                b.name: [d, vc_result(event="hangup", username=a.name, reason="Remote WebRTC hangup"), "core hangup: Close PC"],
            }
        else:
            # jano: the explicit hangup already told both sides; the PeerConnections closing
            # after it do not tell them again (Janus's second "Remote WebRTC hangup" is a
            # duplicate of the call ending they already heard of).
            expected = {
                a.name: [vc_result(event="hangup", username=b.name, reason="Bye from bob"), "core hangup: Close PC"],
                b.name: [d, "core hangup: Close PC"],
            }
        await self.expect_events(marks, expected, "after bob's hangup")
        await asyncio.sleep(max(0.0, t_hang + 2.5 - time.monotonic()))
        for p, other in ((a, b), (b, a)):
            n = len(p.frames_between(t_hang + 1.0, t_hang + 2.5))
            check(n <= STOPPED_MAX_FRAMES, f"{p.name} still decoded {n} frames of {other.name} after the hangup")
        # The peer's "Bye from bob" comes first (it is sent before the PCs are closed).
        first = [pdata(m) for m in a.cl.since(marks[0][1], a.hid)][0]
        check(first == vc_result(event="hangup", username=b.name, reason="Bye from bob"),
              f"alice's first event after the hangup: {brief(first)}")
        return "both told; media stopped"

    async def list_after_hangup(self):
        lst = await self.list_users(self.carol, "list")
        check(self.alice.name in lst and self.bob.name in lst and self.carol.name in lst,
              f"usernames are kept until detach: {lst}")
        return f"list {lst}"

    def events_since(self, marks):
        """{name: [plugin data, or "core hangup: <reason>"]} received by each peer's handle after its mark."""
        out = {}
        for p, mark in marks:
            out[p.name] = [("core hangup: " + str(m.get("reason"))) if m["janus"] == "hangup" else pdata(m)
                           for m in p.cl.since(mark, p.hid, kinds=("event", "hangup"))]
        return out

    async def expect_events(self, marks, want, what):
        """Each peer's handle gets exactly `want[name]` (in any order) after its mark: waits for
        as many, then QUIET more for extra ones."""
        end = time.monotonic() + STEP
        while time.monotonic() < end:
            got = self.events_since(marks)
            if all(len(got[n]) >= len(w) for n, w in want.items()):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(QUIET)
        got = self.events_since(marks)
        key = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731
        bad = [f"{n}: got {brief(got[n], 800)}, expected {brief(w, 800)}" for n, w in want.items()
               if sorted(map(key, got[n])) != sorted(map(key, w))]
        check(not bad, f"{what}:\n    " + "\n    ".join(bad))
        return got

    async def connected_call(self, caller, callee, what):
        offer = await self.call(caller, callee, f"{what}: call")
        await self.accept(caller, callee, offer, f"{what}: accept")
        end = time.monotonic() + 5
        while len(callee.frames) < 10 and time.monotonic() < end:
            await asyncio.sleep(0.1)
        check(len(callee.frames) >= 10, f"{what}: {callee.name} decoded only {len(callee.frames)} frames")

    async def already_in_call(self):
        a, b, c = self.alice, self.bob, self.carol
        await self.connected_call(a, b, "second call")
        marks = [(a, self.A.mark()), (b, self.B.mark()), (c, self.A.mark())]
        ev, d = await a.cl.request(a.hid, {"request": "call", "username": c.name}, "alice calls carol in a call")
        # Janus 1.1.2: 480, and it also closes the PeerConnection of the one who asked ("hang up
        # the call attempt"), which ends the call it is in: from there on it is a PC loss, each
        # side told "Remote WebRTC hangup" with the other's username.
        check(d == vc_error(480, "Already in a call"), f"alice calls carol: {brief(d)}")
        await self.expect_events(marks, {
            a.name: [d, vc_result(event="hangup", username=b.name, reason="Remote WebRTC hangup"), "core hangup: Close PC"],
            b.name: [vc_result(event="hangup", username=a.name, reason="Remote WebRTC hangup"), "core hangup: Close PC"],
            c.name: [],
        }, "after the 480")
        end = time.monotonic() + 3
        while a.pc.connectionState != "closed" and time.monotonic() < end:
            await asyncio.sleep(0.05)
        check(a.pc.connectionState == "closed", f"alice's PeerConnection is {a.pc.connectionState}, expected closed")
        return "480; the call ended: both told Remote WebRTC hangup, both PCs closed"

    async def pc_loss(self):
        a, b = self.alice, self.bob
        await self.connected_call(a, b, "third call")
        marks = [(a, self.A.mark()), (b, self.B.mark())]
        await a.pc.close()
        # Janus 1.1.2: alice's PeerConnection going away (aiortc sends a DTLS close_notify: the
        # core hangs up with "DTLS alert") makes the plugin tell bob {"event":"hangup",
        # "username":<alice>,"reason":"Remote WebRTC hangup"} and close bob's PC ("Close PC");
        # bob's PC going away then tells alice the same with bob's username.
        await self.expect_events(marks, {
            a.name: [vc_result(event="hangup", username=b.name, reason="Remote WebRTC hangup"), "core hangup: DTLS alert"],
            b.name: [vc_result(event="hangup", username=a.name, reason="Remote WebRTC hangup"), "core hangup: Close PC"],
        }, "after alice's PC closed")
        return "both told Remote WebRTC hangup"

    async def detach_in_call(self):
        a, b = self.alice, self.bob
        await self.connected_call(a, b, "fourth call")
        marks = [(a, self.A.mark())]
        r = await b.c.detach(b.hid)
        check(r.get("janus") == "success", f"detach: {brief(r)}")
        b.hid = None
        # Janus 1.1.2: detaching in a call is a PC loss for the peer.
        await self.expect_events(marks, {
            a.name: [vc_result(event="hangup", username=b.name, reason="Remote WebRTC hangup"), "core hangup: Close PC"],
        }, "after bob detached")
        lst = await self.list_users(a, "list")
        check(b.name not in lst and a.name in lst, f"after bob detached: list {lst}")
        return f"alice told Remote WebRTC hangup; list {lst}"

    async def detach(self):
        a = self.alice
        r = await a.c.detach(a.hid)
        check(r.get("janus") == "success", f"detach: {brief(r)}")
        a.hid = None
        lst = await self.list_users(self.carol, "list")
        check(a.name not in lst and self.carol.name in lst, f"after alice detached: list {lst}")
        # The username is free again.
        ev, d = await self.x.cl.request(self.x.hid, {"request": "register", "username": a.name}, "x takes alice's name")
        check(d == vc_result(event="registered", username=a.name), f"x register {a.name}: {brief(d)}")
        return f"list {lst}; name reusable"

    async def teardown(self):
        for p in (self.carol, self.bob, self.x):
            if p.hid is None:
                continue
            r = await p.c.detach(p.hid)
            check(r.get("janus") == "success", f"detach {p.name}: {brief(r)}")
        for cl in (self.A, self.B):
            sid = cl.c.session_id
            r = await cl.c.destroy()
            check(r.get("session_id") == sid, f"destroy reply {brief(r)}")
        return "ok"

    async def close(self):
        for p in (self.alice, self.bob, self.carol, self.x):
            await p.close()
        for cl in (self.A, self.B):
            await cl.c.close()


async def _sync(fn):
    return fn()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    ap.add_argument("--ws", default=os.environ.get("JANUS_WS_URL"))
    ap.add_argument("--addr", default=os.environ.get("JANUS_MEDIA_ADDR"),
                    help="the address the server's candidates must use")
    ap.add_argument("--dir", help="a folder the server can write recordings to")
    args = ap.parse_args()
    runner = Runner()
    if not args.http or not args.ws:
        runner.fail("aiortc VideoCall", 0, "need --http and --ws")
        runner.summary()
        return 1
    folder = args.dir or tempfile.mkdtemp(prefix="jmedia-vc-")
    run = CallRun(args.http, args.ws, args.addr, folder)
    print(f"▶ aiortc VideoCall: alice over HTTP ({args.http}), bob over WebSocket ({args.ws})", flush=True)
    step = stepper(runner, run.dump)
    try:
        await step("connect 2 sessions (HTTP, WS), attach 4 videocall handles", run.setup, 15)
        await step("list → result.list without our users", run.list_before, 15)
        await step("alice and bob register → registered {username}", run.register, 15)
        await step("list → both (request names are case-insensitive)", run.list_both, 15)
        await step("request errors: exact codes and texts (470s), set/hangup without a call",
                   run.request_errors, 30, essential=False)
        await step("call errors: 475/474 username, 478 unknown, 479 yourself, 482 no JSEP; bob told nothing",
                   run.call_errors, 20, essential=False)
        await step("alice calls bob with an offer → calling; bob: incomingcall {username:alice} + offer",
                   run.first_call, 2 * STEP)
        await step("bob accepts with an answer → accepted (no username); alice: accepted {username:bob} + answer; "
                   "ICE/DTLS, webrtcup", run.first_accept, CONNECT_TIMEOUT * 2 + 2 * STEP)
        await run.collect()  # bounded; judged by the two checks below
        await step("each side decodes the other's video: size, colour, increasing counter",
                   lambda: _sync(run.check_video), 5, essential=False)
        await step("each side hears the other's tone and not its own", lambda: _sync(run.check_audio), 5,
                   essential=False)
        await step("carol calls bob while busy → carol: hangup {username:carol, reason:'User busy'}",
                   run.busy, 20, essential=False)
        await step("accept without an incoming call → 481", run.accept_without_call, 15, essential=False)
        await step("set bitrate 100000 → set; REMB 100000 reaches alice's sender, encoder target drops",
                   run.bitrate, 15, essential=False)
        await step("set audio:false → bob stops hearing alice; audio:true → back", run.audio_off_on, 20,
                   essential=False)
        await step("set video:false → bob gets no video; video:true → PLI to alice, bob gets video packets again",
                   run.video_off_on, 20, essential=False)
        await step("set record:true/false + filename → <filename>-audio/-video.mjr of alice's media",
                   run.record, 15, essential=False)
        await step("bob hangup {reason} → bob: Explicit hangup; alice: {username:bob, reason}; media stops",
                   run.hangup, 20)
        await step("list after the hangup → names kept", run.list_after_hangup, 15, essential=False)
        await step("second call; alice calls carol in it → 480, and alice's PC is closed: call over",
                   run.already_in_call,
                   CONNECT_TIMEOUT * 2 + 4 * STEP, essential=False)
        await step("third call; alice's PC closes → both: hangup Remote WebRTC hangup", run.pc_loss,
                   CONNECT_TIMEOUT * 2 + 4 * STEP, essential=False)
        await step("fourth call; bob detaches in it → alice: hangup Remote WebRTC hangup; list without bob",
                   run.detach_in_call,
                   CONNECT_TIMEOUT * 2 + 4 * STEP, essential=False)
        await step("alice detaches → name released (list, register again)", run.detach, 15)
        await step("detach handles + destroy sessions", run.teardown, 15)
    finally:
        await run.close()
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
