#!/usr/bin/env python3
"""NoSIP (janus.plugin.nosip) end to end: an aiortc WebRTC user bridged to a plain RTP/(S)RTP
"legacy" peer played by this script itself (UDP sockets bound on the namespace address).

The legacy peer has, for each medium, an RTP socket on an even port and its RTCP socket on the
next port (the plugin assumes RTCP = RTP + 1 and ignores a=rtcp). It sends real media (a 1000 Hz
tone as Opus or PCMU made with PyAV / numpy; 160x120 blue VP8 frames with a frame counter made
with aiortc's VP8 encoder, a key frame every second and on a PLI) and decodes what the server
sends it (the aiortc user's 440 Hz tone and 160x120 red frames). It answers or offers with its own
barebone SDP, and does SDES-SRTP with pylibsrtp when the SDP says so.

  A (HTTP, WebRTC user is the caller, Opus + VP8): aiortc offer -> generate -> generated
    {type:offer, sdp}: the plain SDP (RTP/AVP, c= the plugin's address, even ports in the range,
    the offer's payload types minus rtx, no ICE/DTLS/rtcp-mux/ssrc lines) -> the legacy answer ->
    process {type:answer} -> processed + JSEP answer -> connected -> media both ways (tone, colour,
    counter; RTP from the plugin's ports) -> RTP from another port to the plugin's audio port is
    not relayed -> RTCP reaches the legacy RTCP sockets; a PLI sent by the legacy peer reaches
    aiortc's video sender -> keyframe {user}/{peer} (Janus 1.1.2: 442 Unknown request) ->
    recording start/stop with a filename: four .mjr files (MJR00002, opus/vp8), a PLI to aiortc on
    start, no growth after stop -> hangup -> hangingup + core hangup, media stops -> the same handle
    calls again (audio only), media both ways, hangup (Janus 1.1.2 is racy here: see a_again).
  B (WebSocket, WebRTC user is the callee, PCMU + VP8): legacy offer -> process {type:offer} ->
    processed + JSEP offer (payload types kept) -> aiortc answer -> generate -> generated
    {type:answer, sdp} with the plugin's ports -> media both ways -> aiortc's PeerConnection closes
    -> core hangup, nothing more from the plugin, media to the legacy peer stops.
  D (SDES-SRTP): generate with srtp sdes_optional (RTP/AVP + a=crypto) / sdes_mandatory (RTP/SAVP +
    a=crypto) -> the legacy peer answers RTP/SAVP with its own key -> processed {srtp} -> media both
    ways, encrypted (every packet authenticates with the announced key, 10-byte tags, SRTCP too);
    then the other way round: a legacy RTP/SAVP offer with tag 7 -> processed {srtp} + JSEP offer ->
    generate answer -> a crypto line with tag 7 -> media both ways, encrypted.
  E: a table of request errors with Janus 1.1.2's exact codes and texts (each on a fresh handle).

The media checks are relative: the power within +-6 Hz of a tone as a share of the window's power
(>= 10 %), the mean colour of decoded frames within a tolerance, counters increasing.

Every message shape asserted here is what Janus 1.1.2 really sends (read in its source, then
observed); where shared/spec/plugin-nosip.md describes a later Janus (unique_id, keyframe), the
check is split on MEDIA_SERVER_IS_JANUS and a comment says "Janus 1.1.2:".

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`); exits 1
if anything failed. Usage:
  nosip_aiortc.py --http http://10.x.y.1:8088/janus --ws ws://10.x.y.1:8188 --addr 10.x.y.1
      [--dir <folder the server can write recordings to>]
"""

import argparse
import asyncio
import base64
import fractions
import json
import os
import random
import re
import shutil
import socket
import struct
import sys
import tempfile
import time

import av
import numpy as np
import pylibsrtp
from av import VideoFrame
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

from audiobridge_rtp import ULAW_DECODE, OpusDecoder, OpusTone, Udp, parse_rtp, rtp_header, tone, ulaw_encode
from echotest_aiortc import AssertionFailed, Runner, check, encode_counter, stepper
# videocall_aiortc also notes every PLI an aiortc sender is handed (sender.__dict__["jano_plis"]).
from videocall_aiortc import (ColourTrack, Tone, analyse, check_transport_sdp, db, read_frame, read_mjr,
                              vp8_keyframe_sizes, wait_connected)
from janus_client import HttpJanus, WsJanus, brief

NOSIP = "janus.plugin.nosip"
STEP = 12.0  # seconds: bound of one signalling exchange
SETTLE = 1.0  # seconds after media starts before a listening window
WINDOW = 1.5  # seconds of decoded media analysed per check
BAND_HZ = 6.0
MIN_SHARE = 0.10
MIN_RMS = 500.0
COLOUR_TOL = 60
MIN_FRAMES = 8  # decoded video frames of the other side per window
STOPPED_MAX = 3  # frames/packets allowed in a window where media must have stopped
STOP_AFTER = 1.0  # seconds after a hangup from which media must have stopped
LEGACY_FPS = 15
RANGE = (20000, 40000)  # the plugin's rtp_port_range (run.sh)

STRANGER_HZ = 2500.0
USER = {"rgb": (220, 30, 30), "size": (160, 120), "hz": 440.0}  # aiortc: red, 440 Hz
PEER = {"rgb": (30, 30, 220), "size": (160, 120), "hz": 1000.0}  # legacy peer: blue, 1000 Hz
FORBIDDEN = ("ice-ufrag", "ice-pwd", "ice-options", "fingerprint", "setup", "candidate", "end-of-candidates",
             "rtcp-mux", "ssrc", "ssrc-group", "group", "msid-semantic", "rtcp", "rtcp-rsize")

IS_JANUS = os.environ.get("MEDIA_SERVER_IS_JANUS") == "1"


def pdata(m):
    return m["plugindata"]["data"]


def ns_error(code, text):
    return {"nosip": "event", "error_code": code, "error": text}


def ns_result(**result):
    return {"nosip": "event", "result": result}


# ------------------------------------------------------------------------------------------------
# Barebone SDP
# ------------------------------------------------------------------------------------------------

def parse_sdp(sdp):
    """{'lines', 'o', 's', 'c', 'attrs', 'media': [{kind, port, proto, fmts, c, attrs, rtpmap, line}]}."""
    out = {"lines": [l for l in sdp.replace("\r\n", "\n").split("\n") if l], "o": None, "s": None, "c": None,
           "attrs": [], "media": []}
    cur = None
    for l in out["lines"]:
        key, _, val = l.partition("=")
        if key == "m":
            parts = val.split()
            cur = {"kind": parts[0], "port": int(parts[1]), "proto": parts[2], "fmts": [int(p) for p in parts[3:]],
                   "c": None, "attrs": [], "rtpmap": {}, "line": l}
            out["media"].append(cur)
        elif key == "c":
            (cur or out)["c"] = val
        elif key == "a":
            (cur or out)["attrs"].append(val)
            if cur is not None and val.startswith("rtpmap:"):
                pt, name = val[7:].split(" ", 1)
                cur["rtpmap"][int(pt)] = name
        elif key in ("o", "s") and cur is None:
            out[key] = val
    return out


def attr_names(attrs):
    return [a.split(":", 1)[0] for a in attrs]


def media_of(parsed, kind):
    ms = [m for m in parsed["media"] if m["kind"] == kind]
    return ms[0] if ms else None


def pt_of(m, name):
    for pt, n in m["rtpmap"].items():
        if n.split("/")[0].lower() == name.lower():
            return pt
    return None


def crypto_of(m):
    """[(tag, suite, key bytes)] of the m-line's a=crypto lines."""
    out = []
    for a in m["attrs"]:
        mm = re.fullmatch(r"crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)(\|.*)?", a)
        if mm:
            out.append((int(mm.group(1)), mm.group(2), base64.b64decode(mm.group(3))))
    return out


def check_plain_sdp(sdp, addr, kinds, proto, what):
    """The barebone SDP the plugin hands the application: returns the parsed SDP."""
    p = parse_sdp(sdp)
    check(p["lines"][0] == "v=0", f"{what}: first line {p['lines'][0]!r}")
    check(p["o"] is not None and p["s"] is not None and any(l.startswith("t=") for l in p["lines"]),
          f"{what}: o=/s=/t= lines missing:\n{sdp}")
    check([m["kind"] for m in p["media"]] == kinds, f"{what}: m-lines {[m['line'] for m in p['media']]}, expected {kinds}")
    ports = []
    for m in p["media"]:
        check(m["proto"] == proto, f"{what}: {m['line']!r}: protocol {m['proto']}, expected {proto}")
        c = m["c"] or p["c"]
        check(c == f"IN IP4 {addr}", f"{what}: m={m['kind']}: c={c}, expected IN IP4 {addr}")
        check(RANGE[0] <= m["port"] <= RANGE[1] and m["port"] % 2 == 0,
              f"{what}: m={m['kind']} port {m['port']}: expected an even port in {RANGE}")
        # (Janus 1.1.2 writes no a=rtcp; one naming RTP + 1 would be harmless, so it is allowed.)
        bad = [a for a in m["attrs"] if a.split(":", 1)[0] in FORBIDDEN
               and not re.fullmatch(rf"rtcp:{m['port'] + 1}( IN IP4 {re.escape(addr)})?", a)]
        check(not bad, f"{what}: m={m['kind']} carries WebRTC transport attributes: {bad}")
        check(m["fmts"] and all(pt in m["rtpmap"] or pt < 35 for pt in m["fmts"]),
              f"{what}: m={m['kind']} formats {m['fmts']} vs rtpmaps {m['rtpmap']}")
        ports.append(m["port"])
    check(len(set(ports)) == len(ports), f"{what}: ports {ports} not distinct")
    bad = [a for a in p["attrs"] if a.split(":", 1)[0] in FORBIDDEN]
    check(not bad, f"{what}: session-level WebRTC attributes: {bad}")
    return p


def legacy_sdp(addr, media, proto="RTP/AVP", sess=None):
    """media: [(kind, port, [(pt, rtpmap)], extra attribute lines)]."""
    sess = sess or random.randint(1, 2 ** 31)
    lines = ["v=0", f"o=legacy {sess} 1 IN IP4 {addr}", "s=legacy peer", f"c=IN IP4 {addr}", "t=0 0"]
    for kind, port, fmts, extra in media:
        lines.append(f"m={kind} {port} {proto} " + " ".join(str(pt) for pt, _ in fmts))
        for pt, name in fmts:
            lines.append(f"a=rtpmap:{pt} {name}")
        lines.append(f"a=rtcp:{port + 1}")
        lines.extend(extra)
        lines.append("a=sendrecv")
    return "\r\n".join(lines) + "\r\n"


# ------------------------------------------------------------------------------------------------
# RTCP
# ------------------------------------------------------------------------------------------------

RTCP_NAMES = {200: "SR", 201: "RR", 202: "SDES", 203: "BYE", 204: "APP"}


def rtcp_kinds(data):
    """Labels of the packets of a compound RTCP datagram (PSFB/PLI, RTPFB/NACK, ...)."""
    out = []
    pos = 0
    while pos + 4 <= len(data):
        b0, pt, length = struct.unpack("!BBH", data[pos:pos + 4])
        if b0 >> 6 != 2:
            out.append("?")
            break
        fmt = b0 & 0x1F
        if pt == 206:
            out.append({1: "PSFB/PLI", 4: "PSFB/FIR", 15: "PSFB/REMB"}.get(fmt, f"PSFB/{fmt}"))
        elif pt == 205:
            out.append({1: "RTPFB/NACK", 15: "RTPFB/TWCC"}.get(fmt, f"RTPFB/{fmt}"))
        else:
            out.append(RTCP_NAMES.get(pt, str(pt)))
        pos += 4 + 4 * length
    return out


def srtp_session(key, suite, outbound):
    profile = {"AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
               "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32}[suite]
    policy = pylibsrtp.Policy(key=key, srtp_profile=profile,
                              ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND)
    return pylibsrtp.Session(policy)


# ------------------------------------------------------------------------------------------------
# The legacy (plain RTP) peer
# ------------------------------------------------------------------------------------------------


def rtpmaps_of(sdp, kind):
    """The a=rtpmap lines of the first m-section of a kind."""
    out, cur = [], None
    for l in sdp.split("\r\n"):
        if l.startswith("m="):
            cur = l[2:].split(" ", 1)[0]
            if out and cur != kind:
                break
        elif cur == kind and l.startswith("a=rtpmap:"):
            out.append(l)
    return out

class Stream:
    """One medium of the legacy peer: an RTP socket (even port) + an RTCP socket (port + 1)."""

    def __init__(self, kind):
        self.kind = kind
        self.rtp = self.rtcp = None  # (socket, transport, Udp)
        self.port = None
        self.remote = None  # (ip, rtp port) of the plugin
        self.pt = None
        self.codec = None  # "opus" | "pcmu" | "vp8"
        self.ssrc = random.randint(1, 2 ** 32 - 1)
        self.seq = random.randint(0, 65535)
        self.ts = random.randint(0, 2 ** 32 - 1)
        self.sent = 0
        self.tx_srtp = self.rx_srtp = None  # pylibsrtp sessions
        self.tx_key = None  # (tag, suite, key) we announce
        self.srtp_failures = 0
        self.srtp_overhead = set()
        self._decoded = 0
        self.audio = []  # (t, int16 samples)
        self.frames = []  # (t, counter, (w, h), colour)
        self._vp8 = None
        self._partial = {}  # ts -> [(seq, payload)]
        self.force_key = True
        self.last_key = 0.0
        self.rtcp_in = []  # (t, labels, src)

    async def open(self, addr):
        loop = asyncio.get_running_loop()
        for _ in range(200):
            port = random.randrange(41000, 59000, 2)
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                a.bind((addr, port))
                b.bind((addr, port + 1))
            except OSError:
                a.close()
                b.close()
                continue
            a.setblocking(False)
            b.setblocking(False)
            self.port = port
            ta, ua = await loop.create_datagram_endpoint(Udp, sock=a)
            tb, ub = await loop.create_datagram_endpoint(Udp, sock=b)
            self.rtp, self.rtcp = (a, ta, ua), (b, tb, ub)
            return
        raise AssertionFailed("could not bind an RTP/RTCP port pair")

    def close(self):
        for s in (self.rtp, self.rtcp):
            if s is not None:
                s[1].close()

    # -- sending --------------------------------------------------------------------------------
    def send_rtp(self, payload, marker=False, step=0):
        pkt = rtp_header(self.pt, self.seq, self.ts, self.ssrc, marker=marker) + payload
        if self.tx_srtp is not None:
            pkt = self.tx_srtp.protect(pkt)
        try:
            self.rtp[0].sendto(pkt, self.remote)
        except OSError:
            pass
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + step) & 0xFFFFFFFF
        self.sent += 1

    def send_rtcp(self, data):
        if self.tx_srtp is not None:
            data = self.tx_srtp.protect_rtcp(data)
        self.rtcp[0].sendto(data, (self.remote[0], self.remote[1] + 1))

    def send_pli(self, media_ssrc):
        self.send_rtcp(bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=self.ssrc, media_ssrc=media_ssrc)))

    # -- receiving ------------------------------------------------------------------------------
    def rtp_in(self, t0=None, t1=None):
        """[(t, datagram as received (still SRTP-protected if SRTP is on), src)] of the plugin's RTP."""
        out = []
        for t, data, src in self.rtp[2].packets:
            if (t0 is not None and t < t0) or (t1 is not None and t >= t1):
                continue
            out.append((t, data, src))
        return out

    def unprotect(self, data):
        if self.rx_srtp is None:
            return data
        try:
            out = self.rx_srtp.unprotect(data)
        except pylibsrtp.Error:
            self.srtp_failures += 1
            return None
        self.srtp_overhead.add(len(data) - len(out))
        return out

    def poll(self):
        """Decode what arrived since the last call (audio samples / video frames) and RTCP."""
        pk = self.rtp[2].packets
        while self._decoded < len(pk):
            t, data, _ = pk[self._decoded]
            self._decoded += 1
            data = self.unprotect(data)
            h = parse_rtp(data) if data else None
            if h is None or not h["payload"]:
                continue
            if self.codec == "opus":
                try:
                    self.audio.append((t, self.opus_dec.decode(h["payload"])))
                except av.error.FFmpegError:
                    pass
            elif self.codec == "pcmu":
                self.audio.append((t, ULAW_DECODE[np.frombuffer(h["payload"], dtype=np.uint8)]))
            elif self.codec == "vp8":
                self._vp8_packet(t, h)
        rt = self.rtcp[2].packets
        while len(self.rtcp_in) < len(rt):
            t, data, src = rt[len(self.rtcp_in)]
            if self.rx_srtp is not None:
                try:
                    data = self.rx_srtp.unprotect_rtcp(data)
                except pylibsrtp.Error:
                    self.srtp_failures += 1
                    self.rtcp_in.append((t, ["undecryptable"], src))
                    continue
            self.rtcp_in.append((t, rtcp_kinds(data), src))

    def _vp8_packet(self, t, h):
        self._partial.setdefault(h["ts"], []).append((h["seq"], h["payload"]))
        if not h["marker"]:
            return
        parts = sorted(self._partial.pop(h["ts"]), key=lambda x: x[0])
        for old in [k for k in self._partial if k != h["ts"]]:
            del self._partial[old]
        try:
            data = b"".join(vp8_depayload(p) for _, p in parts)
        except ValueError:
            return
        if self._vp8 is None:
            self._vp8 = av.CodecContext.create("libvpx", "r")
        try:
            for fr in self._vp8.decode(av.Packet(data)):
                counter, colour = read_frame(fr.to_ndarray(format="rgb24"))
                self.frames.append((t, counter, (fr.width, fr.height), colour))
        except av.error.FFmpegError:
            pass


class Legacy:
    """The plain RTP peer: an audio stream (Opus or PCMU) and optionally a VP8 video stream."""

    def __init__(self, addr, video=True):
        self.addr = addr
        self.audio = Stream("audio")
        self.video = Stream("video") if video else None
        self.tasks = []
        self.opus = None
        self.pcmu_pos = 0
        self.vcount = 0
        self.venc = None

    def streams(self):
        return [s for s in (self.audio, self.video) if s is not None]

    async def open(self):
        for s in self.streams():
            await s.open(self.addr)

    def set_codec(self, s, codec, pt):
        s.codec, s.pt = codec, pt
        if codec == "opus":
            s.opus_dec = OpusDecoder()

    def start(self):
        self.tasks.append(asyncio.ensure_future(self._audio_loop()))
        if self.video is not None:
            self.tasks.append(asyncio.ensure_future(self._video_loop()))
            self.tasks.append(asyncio.ensure_future(self._pli_watch()))

    async def stop(self):
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            try:
                await t
            except BaseException:  # noqa: BLE001
                pass
        self.tasks = []

    def check_senders(self):
        for t in self.tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                check(False, f"a legacy sender died: {t.exception()!r}")

    async def _audio_loop(self):
        s = self.audio
        start, n = time.monotonic(), 0
        while True:
            if s.codec == "opus":
                if self.opus is None:
                    self.opus = OpusTone(PEER["hz"], 0.3)
                s.send_rtp(self.opus.next(), step=960)
            else:
                pcm = tone(PEER["hz"], 0.3, 8000, self.pcmu_pos, 160)
                self.pcmu_pos += 160
                s.send_rtp(ulaw_encode(pcm).tobytes(), step=160)
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

    def _frame(self):
        w, h = PEER["size"]
        split = h * 2 // 3
        img = np.zeros((h, w, 3), dtype=np.uint8)
        img[:split] = PEER["rgb"]
        bw = w // 16
        for i, b in enumerate(encode_counter(self.vcount)):
            if b:
                img[split:, i * bw:(i + 1) * bw] = 255
        fr = VideoFrame.from_ndarray(img, format="rgb24")
        fr.pts = self.vcount * (90000 // LEGACY_FPS)
        fr.time_base = fractions.Fraction(1, 90000)
        self.vcount += 1
        return fr

    async def _video_loop(self):
        s = self.video
        self.venc = Vp8Encoder()
        start, n = time.monotonic(), 0
        while True:
            now = time.monotonic()
            key = s.force_key or now - s.last_key >= 1.0
            if key:
                s.force_key, s.last_key = False, now
            payloads, _ = self.venc.encode(self._frame(), force_keyframe=key)
            for i, p in enumerate(payloads):
                s.send_rtp(p, marker=(i == len(payloads) - 1))
            s.ts = (s.ts + 90000 // LEGACY_FPS) & 0xFFFFFFFF
            n += 1
            await asyncio.sleep(max(0.0, start + n / LEGACY_FPS - time.monotonic()))

    async def _pli_watch(self):
        """A key frame for every PLI/FIR the plugin sends us (the decoder of aiortc needs one)."""
        seen = 0
        while True:
            self.poll()
            v = self.video
            while seen < len(v.rtcp_in):
                if any(k in ("PSFB/PLI", "PSFB/FIR") for k in v.rtcp_in[seen][1]):
                    v.force_key = True
                seen += 1
            await asyncio.sleep(0.05)

    def poll(self):
        for s in self.streams():
            s.poll()

    def close(self):
        for s in self.streams():
            s.close()


# ------------------------------------------------------------------------------------------------
# The WebRTC user (aiortc)
# ------------------------------------------------------------------------------------------------

class WebUser:
    def __init__(self, video=True):
        self.video = video
        self.pc = None
        self.frames = []  # (t, counter, (w, h), colour)
        self.audio = []  # (t, int16 mono samples)
        self.rate = None
        self.tasks = []
        self.pcs = []

    def new_pc(self):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(self.pc)
        self.frames, self.audio = [], []
        self.pc.on("track", self._on_track)
        return self.pc

    def add_tracks(self):
        self.pc.addTrack(Tone(USER["hz"]))
        if self.video:
            self.pc.addTrack(ColourTrack(USER["rgb"], USER["size"]))

    def _on_track(self, track):
        self.tasks.append(asyncio.ensure_future(self._video(track) if track.kind == "video" else self._audio(track)))

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
            if arr.shape[0] == 1 and ch > 1:
                arr = arr.reshape(-1, ch).T
            self.rate = frame.sample_rate
            self.audio.append((time.monotonic(), arr[0].astype(np.int16)))

    def video_sender(self):
        return next(s for s in self.pc.getSenders() if s.track is not None and s.track.kind == "video")

    def plis(self):
        return list(self.video_sender().__dict__.get("jano_plis", []))

    async def close(self):
        for t in self.tasks:
            t.cancel()
        for pc in self.pcs:
            try:
                await asyncio.wait_for(pc.close(), 5)
            except Exception:  # noqa: BLE001
                pass


# ------------------------------------------------------------------------------------------------
# Media checks
# ------------------------------------------------------------------------------------------------

def hears(what, chunks, rate, hz, other_hz):
    check(chunks, f"{what}: no audio decoded")
    n = sum(len(c) for c in chunks)
    check(n >= rate * WINDOW * 0.6, f"{what}: only {n / rate:.2f} s of audio in a {WINDOW:.1f} s window")
    rms, share = analyse(chunks, rate, (hz, other_hz))
    check(rms >= MIN_RMS, f"{what}: (nearly) silence: RMS {rms:.0f}")
    check(share[hz] >= MIN_SHARE, f"{what}: {hz:.0f} Hz is {100 * share[hz]:.1f} % of the power (need "
          f"{100 * MIN_SHARE:.0f} %); {other_hz:.0f} Hz {100 * share[other_hz]:.1f} %")
    gap = db(share[hz], share[other_hz])
    check(gap >= 20, f"{what}: {other_hz:.0f} Hz only {gap:.1f} dB below {hz:.0f} Hz")
    return f"{hz:.0f} Hz {100 * share[hz]:.0f} %"


def sees(what, frames, look):
    check(len(frames) >= MIN_FRAMES, f"{what}: {len(frames)} frames decoded in {WINDOW:.1f} s (need {MIN_FRAMES})")
    sizes = {f[2] for f in frames}
    check(sizes == {look["size"]}, f"{what}: frame sizes {sizes}, expected {look['size']}")
    colours = [f[3] for f in frames]
    mean = tuple(int(np.mean([c[i] for c in colours])) for i in range(3))
    check(all(abs(a - b) <= COLOUR_TOL for a, b in zip(mean, look["rgb"])),
          f"{what}: mean colour {mean}, expected about {look['rgb']}")
    counters = [f[1] for f in frames if f[1] is not None]
    check(len(counters) >= len(frames) // 2, f"{what}: only {len(counters)}/{len(frames)} counters readable")
    check(all(b > a for a, b in zip(counters, counters[1:])), f"{what}: counters not increasing: {counters[:20]}")
    return f"{len(frames)} frames {look['size']} colour {mean}"


# ------------------------------------------------------------------------------------------------
# Signalling helpers
# ------------------------------------------------------------------------------------------------

class Client:
    """A janus_client session plus the NoSIP request pattern (every request is asynchronous)."""

    def __init__(self, c):
        self.c = c
        self.uids = {}  # handle -> unique_id (spec: later Janus versions)
        self.uid_problems = []
        self.uid_checked = 0

    def mark(self):
        return len(self.c.received)

    async def request(self, hid, body, what, jsep=None):
        r = await self.c.message(hid, body, jsep)
        check(r.get("janus") == "ack", f"{what}: every NoSIP request is asynchronous, expected ack, got {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx,
                                   STEP, f"the event answering {what}")
        check(ev.get("sender") == hid, f"{what}: event sender {ev.get('sender')} != handle {hid}")
        check(ev.get("plugindata", {}).get("plugin") == NOSIP, f"{what}: plugindata {brief(ev.get('plugindata'))}")
        return ev, pdata(ev)

    def strip_uid(self, hid, d, what):
        """Janus 1.1.2 sends no unique_id; the spec (later Janus) adds one to generated/processed."""
        res = d.get("result")
        if IS_JANUS or not isinstance(res, dict):
            return d
        uid = res.get("unique_id")
        # Checked (and reported) in a step of its own, so that its absence fails only that step.
        if not (isinstance(uid, str) and uid):
            self.uid_problems.append(f"{what}: result.unique_id (a string) missing: {brief(res, 120)}")
        elif self.uids.setdefault(hid, uid) != uid:
            self.uid_problems.append(f"{what}: unique_id changed on handle {hid}: {uid} vs {self.uids[hid]}")
        self.uid_checked += 1
        return dict(d, result={k: v for k, v in res.items() if k != "unique_id"})

    def since(self, mark, hid, kinds=("event", "hangup", "webrtcup", "media", "slowlink", "detached")):
        return [m for _, m in self.c.received[mark:] if m.get("janus") in kinds and m.get("sender") == hid]


def summarize(msgs):
    out = []
    for m in msgs:
        if m["janus"] == "event":
            out.append("event " + brief(pdata(m), 200))
        elif m["janus"] == "hangup":
            out.append(f"hangup({m.get('reason')})")
        elif m["janus"] == "media":
            out.append(f"media({m.get('type')},{m.get('receiving')})")
        else:
            out.append(m["janus"])
    return out


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------

class Run:
    def __init__(self, http, ws, addr, folder):
        self.addr = addr
        self.folder = folder
        self.H = Client(HttpJanus(http))
        self.W = Client(WsJanus(ws))
        self.observed = {}
        self.users = []
        self.legacies = []
        self.user_ssrcs = {}  # flow -> SSRCs of the aiortc user's SDP

    def dump(self):
        return "\n".join(cl.c.dump(20) for cl in (self.H, self.W))

    def new_user(self, video=True):
        u = WebUser(video)
        self.users.append(u)
        return u

    async def new_legacy(self, video=True):
        lg = Legacy(self.addr, video)
        self.legacies.append(lg)
        await lg.open()
        return lg

    async def setup(self):
        for cl in (self.H, self.W):
            await cl.c.connect()
            await cl.c.create()
        return f"sessions {self.H.c.session_id} (HTTP), {self.W.c.session_id} (WS)"

    # -- media windows --------------------------------------------------------------------------
    async def both_ways(self, user, lg, what, audio_rate_peer, video=True):
        """Wait SETTLE + WINDOW from now and check both directions in that window."""
        t0 = time.monotonic() + SETTLE
        await asyncio.sleep(SETTLE + WINDOW + 0.3)
        t1 = t0 + WINDOW
        lg.poll()
        lg.check_senders()
        out = []
        out.append("legacy hears " + hears(f"{what}: the legacy peer's audio", [a for t, a in lg.audio.audio if t0 <= t < t1],
                                           audio_rate_peer, USER["hz"], PEER["hz"]))
        check(user.rate, f"{what}: aiortc decoded no audio")
        out.append("aiortc hears " + hears(f"{what}: aiortc's audio", [a for t, a in user.audio if t0 <= t < t1],
                                           user.rate, PEER["hz"], USER["hz"]))
        if video:
            out.append("legacy sees " + sees(f"{what}: the legacy peer's video",
                                             [f for f in lg.video.frames if t0 <= f[0] < t1], USER))
            out.append("aiortc sees " + sees(f"{what}: aiortc's video", [f for f in user.frames if t0 <= f[0] < t1], PEER))
        return "; ".join(out)

    def check_rtp_from(self, lg, plugin, what):
        """The plugin sends each medium's RTP from the port it announced, with the negotiated PT."""
        lg.poll()
        for s in lg.streams():
            pk = s.rtp_in(time.monotonic() - WINDOW)
            check(len(pk) >= 10, f"{what}: {s.kind}: only {len(pk)} RTP packets from the plugin in {WINDOW:.1f} s")
            srcs = {src for _, _, src in pk}
            check(srcs == {(self.addr, plugin[s.kind])}, f"{what}: {s.kind} RTP came from {srcs}, "
                  f"expected ({self.addr}, {plugin[s.kind]}) (the port in the plugin's SDP)")
            hs = [parse_rtp(d) for _, d, _ in pk[-10:]]
            pts = {h["pt"] for h in hs if h}
            check(pts == {s.pt}, f"{what}: {s.kind} RTP payload types {pts}, expected {s.pt}")
            # Observed only: whose SSRC, and whether the WebRTC header extensions are passed on.
            ssrcs = sorted({h["ssrc"] for h in hs if h})
            self.observed[f"{what}_{s.kind}_rtp_to_legacy"] = {
                "ssrcs": ssrcs, "aiortc_ssrc": [x for x in ssrcs if x in self.user_ssrcs.get(what, ())],
                "header_extension": sorted({h["ext"] for h in hs if h})}

    # -- A: the WebRTC user calls ------------------------------------------------------------------
    async def a_generate(self):
        cl = self.H
        self.a_hid = await cl.c.attach(NOSIP)
        u = self.a_user = self.new_user()
        pc = u.new_pc()
        u.add_tracks()
        await pc.setLocalDescription(await pc.createOffer())
        offer = parse_sdp(pc.localDescription.sdp)
        self.user_ssrcs["A"] = {int(a.split()[0][5:]) for m in offer["media"] for a in m["attrs"] if a.startswith("ssrc:")}
        ev, d = await cl.request(self.a_hid, {"request": "generate", "info": "call A"}, "generate (offer)",
                                 {"type": "offer", "sdp": pc.localDescription.sdp})
        check("jsep" not in ev, f"generated: no jsep expected, got {brief(ev.get('jsep'))}")
        res = d.get("result", {})
        sdp = res.get("sdp")
        check(isinstance(sdp, str), f"generated: no sdp: {brief(d)}")
        # Janus 1.1.2: result = {event, type, sdp} exactly ("info" is not echoed).
        d = cl.strip_uid(self.a_hid, d, "generated")
        check(d == ns_result(event="generated", type="offer", sdp=sdp), f"generate: {brief(d)}")
        p = self.a_plain = check_plain_sdp(sdp, self.addr, ["audio", "video"], "RTP/AVP", "generated offer")
        for kind in ("audio", "video"):
            m, om = media_of(p, kind), media_of(offer, kind)
            rtx = [pt for pt, n in om["rtpmap"].items() if n.lower().startswith("rtx/")]
            want = [pt for pt in om["fmts"] if pt not in rtx]
            # Janus 1.1.2: the WebRTC offer's payload types are kept, in order, minus rtx.
            check(m["fmts"] == want, f"generated offer: m={kind} formats {m['fmts']}, expected {want} (offer {om['fmts']})")
            check("sendrecv" in m["attrs"], f"generated offer: m={kind} without a=sendrecv: {m['attrs']}")
        self.observed["plain_offer"] = sdp
        self.observed["plain_offer_shape"] = {
            "o": p["o"], "s": p["s"], "session_c": p["c"], "session_attrs": attr_names(p["attrs"]),
            "media": {m["kind"]: {"line": m["line"], "c": m["c"], "attrs": sorted(set(attr_names(m["attrs"])))}
                      for m in p["media"]}}
        return f"plain offer: {[m['line'] for m in p['media']]}"

    async def a_process(self):
        cl, u, p = self.H, self.a_user, self.a_plain
        lg = self.a_legacy = await self.new_legacy()
        am, vm = media_of(p, "audio"), media_of(p, "video")
        apt, vpt = pt_of(am, "opus"), pt_of(vm, "VP8")
        check(apt is not None and vpt is not None, f"the plain offer lacks opus or VP8: {am['rtpmap']} {vm['rtpmap']}")
        lg.set_codec(lg.audio, "opus", apt)
        lg.set_codec(lg.video, "vp8", vpt)
        lg.audio.remote = (self.addr, am["port"])
        lg.video.remote = (self.addr, vm["port"])
        answer = legacy_sdp(self.addr, [
            ("audio", lg.audio.port, [(apt, "opus/48000/2")], []),
            ("video", lg.video.port, [(vpt, "VP8/90000")], [f"a=rtcp-fb:{vpt} nack pli"]),
        ])
        self.observed["legacy_answer"] = answer
        ev, d = await cl.request(self.a_hid, {"request": "process", "type": "answer", "sdp": answer},
                                 "process (answer)")
        d = cl.strip_uid(self.a_hid, d, "processed")
        check(d == ns_result(event="processed"), f"process: {brief(d)}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "answer", f"processed: JSEP answer expected: {brief(jsep)}")
        check_transport_sdp(jsep["sdp"], self.addr, "JSEP answer")
        self.observed["jsep_answer_A"] = jsep["sdp"]
        lg.start()  # the plugin's sockets now send to / accept from the legacy ports
        mark = cl.mark()
        await u.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))
        await wait_connected(u.pc, "A")
        await cl.c.wait_for(lambda m: m["janus"] == "webrtcup" and m.get("sender") == self.a_hid, STEP, "webrtcup")
        self.a_plugin_ports = {"audio": am["port"], "video": vm["port"]}
        return f"connected; legacy ports {lg.audio.port}/{lg.video.port}, plugin {am['port']}/{vm['port']}"

    async def a_media(self):
        res = await self.both_ways(self.a_user, self.a_legacy, "A", 48000)
        self.check_rtp_from(self.a_legacy, self.a_plugin_ports, "A")
        return res

    async def a_rtcp(self):
        """RTCP reaches the legacy RTCP sockets (from the plugin's RTP port + 1); a PLI the legacy
        peer sends on its video RTCP socket reaches aiortc's video sender."""
        lg, u = self.a_legacy, self.a_user
        lg.poll()
        out = {}
        for s in lg.streams():
            srcs = {src for _, _, src in s.rtcp_in}
            check(s.rtcp_in, f"{s.kind}: no RTCP at the legacy RTCP port {s.port + 1}")
            check(srcs == {(self.addr, self.a_plugin_ports[s.kind] + 1)},
                  f"{s.kind}: RTCP from {srcs}, expected the plugin's RTP port + 1")
            out[s.kind] = sorted({k for _, ks, _ in s.rtcp_in for k in ks})
        self.observed["rtcp_to_legacy"] = out
        before = len(u.plis())
        video_ssrc = next((parse_rtp(d)["ssrc"] for _, d, _ in lg.video.rtp_in()[-1:]), 0)
        lg.video.send_pli(video_ssrc)
        end = time.monotonic() + 3
        while len(u.plis()) <= before and time.monotonic() < end:
            await asyncio.sleep(0.05)
        check(len(u.plis()) > before, "a PLI sent to the plugin's video RTCP port did not reach aiortc's video sender")
        return f"RTCP kinds at the legacy peer {out}; legacy PLI → aiortc"

    async def a_keyframe(self):
        cl, u, lg = self.H, self.a_user, self.a_legacy
        if IS_JANUS:
            # Janus 1.1.2 has no keyframe request (added in a later version, as in the spec).
            ev, d = await cl.request(self.a_hid, {"request": "keyframe", "user": True}, "keyframe")
            check(d == ns_error(442, "Unknown request (keyframe)"), f"keyframe: {brief(d)}")
            return "Janus 1.1.2: 442 Unknown request (keyframe)"
        before = len(u.plis())
        ev, d = await cl.request(self.a_hid, {"request": "keyframe", "user": True}, "keyframe user")
        check(d == ns_result(event="keyframesent"), f"keyframe user: {brief(d)}")
        end = time.monotonic() + 3
        while len(u.plis()) <= before and time.monotonic() < end:
            await asyncio.sleep(0.05)
        check(len(u.plis()) > before, "keyframe {user:true}: no PLI reached aiortc's video sender")
        lg.poll()
        n0 = len(lg.video.rtcp_in)
        ev, d = await cl.request(self.a_hid, {"request": "keyframe", "peer": True}, "keyframe peer")
        check(d == ns_result(event="keyframesent"), f"keyframe peer: {brief(d)}")
        end = time.monotonic() + 3
        while time.monotonic() < end:
            lg.poll()
            if any("PSFB/PLI" in ks or "PSFB/FIR" in ks for _, ks, _ in lg.video.rtcp_in[n0:]):
                break
            await asyncio.sleep(0.05)
        check(any("PSFB/PLI" in ks or "PSFB/FIR" in ks for _, ks, _ in lg.video.rtcp_in[n0:]),
              "keyframe {peer:true}: no PLI/FIR at the legacy video RTCP socket")
        return "user: PLI to aiortc; peer: PLI to the legacy RTCP socket"

    async def a_recording(self):
        cl, u = self.H, self.a_user
        base = os.path.join(self.folder, f"nosip-{random.getrandbits(32):08x}")
        before = len(u.plis())
        ev, d = await cl.request(self.a_hid, {"request": "recording", "action": "start", "audio": True, "video": True,
                                              "peer_audio": True, "peer_video": True, "filename": base},
                                 "recording start")
        check(d == ns_result(event="recordingupdated"), f"recording start: {brief(d)}")
        # Janus 1.1.2: starting to record the user's video sends the user a PLI.
        end = time.monotonic() + 3
        while len(u.plis()) <= before and time.monotonic() < end:
            await asyncio.sleep(0.05)
        check(len(u.plis()) > before, "recording video: no PLI reached aiortc's video sender")
        await asyncio.sleep(2.0)
        ev, d = await cl.request(self.a_hid, {"request": "recording", "action": "stop", "audio": True, "video": True,
                                              "peer_audio": True, "peer_video": True}, "recording stop")
        check(d == ns_result(event="recordingupdated"), f"recording stop: {brief(d)}")
        await asyncio.sleep(0.3)
        prefix = os.path.basename(base)
        names = sorted(n for n in os.listdir(self.folder) if n.startswith(prefix))
        # Janus 1.1.2: <filename>-user-audio/-user-video/-peer-audio/-peer-video.mjr
        want = sorted(f"{prefix}-{w}-{k}.mjr" for w in ("user", "peer") for k in ("audio", "video"))
        check(names == want, f"recordings {names}, expected {want}")
        out = []
        for who, look in (("user", USER), ("peer", PEER)):
            for kind, codec, least in (("audio", "opus", 50), ("video", "vp8", 10)):
                path = f"{base}-{who}-{kind}.mjr"
                header, packets = read_mjr(path)
                check(header.get("t") == kind[0] and header.get("c") == codec, f"{path}: header {header}")
                check(len(packets) >= least, f"{path}: {len(packets)} packets in 2 s, expected at least {least}")
                if kind == "video":
                    sizes = set(vp8_keyframe_sizes(packets))
                    check(sizes == {look["size"]}, f"{path}: key frames of size {sizes}, expected {look['size']}")
                out.append(f"{who}-{kind} {len(packets)}")
        sizes = {n: os.path.getsize(os.path.join(self.folder, n)) for n in names}
        await asyncio.sleep(0.5)
        grown = [n for n in names if os.path.getsize(os.path.join(self.folder, n)) != sizes[n]]
        check(not grown, f"recordings still grow after stop: {grown}")
        return ", ".join(out)

    async def a_hangup(self):
        cl, u, lg = self.H, self.a_user, self.a_legacy
        mark = cl.mark()
        ev, d = await cl.request(self.a_hid, {"request": "hangup"}, "hangup")
        t_h = time.monotonic()
        check(d == ns_result(event="hangingup"), f"hangup: {brief(d)}")
        check("jsep" not in ev, "hangingup: no jsep")
        # Janus 1.1.2: the core closes the PeerConnection: a core `hangup` "Close PC" follows; the
        # plugin sends nothing more.
        await cl.c.wait_for(lambda m: m["janus"] == "hangup" and m.get("sender") == self.a_hid, STEP, "core hangup")
        await asyncio.sleep(max(0.0, t_h + STOP_AFTER + WINDOW - time.monotonic()))
        got = summarize(cl.since(mark, self.a_hid))
        self.observed["A_after_hangup"] = got
        hang = [m for m in cl.since(mark, self.a_hid, ("hangup",))]
        check(len(hang) == 1 and hang[0].get("reason") == "Close PC", f"core hangup events: {brief(hang)}")
        extra = [m for m in cl.since(mark, self.a_hid, ("event",)) if m.get("transaction") != ev.get("transaction")]
        check(not extra, f"plugin events after hangingup: {brief(extra)}")
        lg.poll()
        last = max((t for s in lg.streams() for t, _, _ in s.rtp_in()), default=t_h)
        self.observed["A_last_rtp_after_hangup_s"] = round(last - t_h, 3)
        late = [x for s in lg.streams() for x in s.rtp_in(t_h + STOP_AFTER)]
        check(len(late) <= STOPPED_MAX, f"the legacy peer still got {len(late)} RTP packets {STOP_AFTER:.1f} s after "
              f"the hangup (the last {last - t_h:.2f} s after it)")
        nf = len([f for f in u.frames if f[0] >= t_h + STOP_AFTER])
        check(nf <= STOPPED_MAX, f"aiortc still decoded {nf} frames {STOP_AFTER:.1f} s after the hangup")
        self.observed["A_pc_after_hangup"] = u.pc.connectionState
        await lg.stop()
        return f"events {got}; media stopped; aiortc PC {u.pc.connectionState}"

    async def a_stranger(self):
        """RTP (a 2500 Hz tone, its own SSRC) from another port of the legacy address to the
        plugin's audio port is not relayed (Janus 1.1.2 connect()s its sockets to the addresses in
        the legacy SDP)."""
        u = self.a_user
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.addr, 0))
        src = OpusTone(STRANGER_HZ, 0.3)
        ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        dest = (self.addr, self.a_plugin_ports["audio"])

        async def send():
            n, start = 0, time.monotonic()
            while True:
                tr.sendto(rtp_header(self.a_legacy.audio.pt, seq + n, ts + 960 * n, ssrc) + src.next(), dest)
                n += 1
                await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

        task = asyncio.ensure_future(send())
        try:
            t0 = time.monotonic() + SETTLE
            await asyncio.sleep(SETTLE + WINDOW + 0.3)
            chunks = [a for t, a in u.audio if t0 <= t < t0 + WINDOW]
            check(u.rate and chunks, "aiortc decoded no audio")
            rms, share = analyse(chunks, u.rate, (PEER["hz"], STRANGER_HZ))
            check(share[PEER["hz"]] >= MIN_SHARE, f"aiortc no longer hears the legacy peer: {share}")
            gap = db(share[PEER["hz"]], share[STRANGER_HZ])
            check(gap >= 20, f"aiortc hears the stranger's {STRANGER_HZ:.0f} Hz only {gap:.1f} dB below the legacy tone")
        finally:
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001
                pass
            tr.close()
        return f"1000 Hz {100 * share[PEER['hz']]:.0f} %, the stranger's {STRANGER_HZ:.0f} Hz {gap:.0f} dB below"

    async def a_again(self):
        """The same handle after the hangup: a new aiortc offer, a new legacy peer, media again."""
        cl = self.H
        u = self.a2_user = self.new_user(video=False)
        pc = u.new_pc()
        u.add_tracks()
        await pc.setLocalDescription(await pc.createOffer())
        ev, d = await cl.request(self.a_hid, {"request": "generate"}, "generate (second call)",
                                 {"type": "offer", "sdp": pc.localDescription.sdp})
        sdp = d.get("result", {}).get("sdp", "")
        d = cl.strip_uid(self.a_hid, d, "generated")
        check(d == ns_result(event="generated", type="offer", sdp=sdp), f"generate: {brief(d)}")
        am = media_of(parse_sdp(sdp), "audio")
        self.observed["A_again_offer"] = am and am["line"]
        if IS_JANUS and am is not None and am["port"] == 0:
            # Janus 1.1.2: a race. `hangup` sets and then clears the session's `hangingup` flag
            # while the first call's relay thread is still polling, so the thread usually goes
            # on; the new `generate` then reallocates the sockets under it, the thread sees the
            # pipe gone, exits and cleans the media up, zeroing the ports just allocated: the
            # plain offer says port 0 (other runs: `processed` with update:true). Not asserted on
            # Janus; a new call on the same handle is what jano must do.
            ev, d = await cl.request(self.a_hid, {"request": "hangup"}, "hangup (second call)")
            return f"Janus 1.1.2 race: the second plain offer says {am['line']!r} (not asserted)"
        p = check_plain_sdp(sdp, self.addr, ["audio"], "RTP/AVP", "second plain offer")
        lg = self.a2_legacy = await self.new_legacy(video=False)
        apt = pt_of(am, "opus")
        lg.set_codec(lg.audio, "opus", apt)
        lg.audio.remote = (self.addr, am["port"])
        answer = legacy_sdp(self.addr, [("audio", lg.audio.port, [(apt, "opus/48000/2")], [])])
        ev, d = await cl.request(self.a_hid, {"request": "process", "type": "answer", "sdp": answer}, "process (second call)")
        d = cl.strip_uid(self.a_hid, d, "processed")
        self.observed["A_again_processed"] = d
        if IS_JANUS and d == ns_result(event="processed", update=True):
            # Janus 1.1.2: the hangup usually leaves the first call's relay thread running (it
            # clears its `hangingup` flag before the thread looks at it), so the new answer is
            # taken for an update of a running call. A fresh call is what is meant here.
            pass
        else:
            check(d == ns_result(event="processed"), f"process: {brief(d)}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "answer", f"processed: JSEP answer expected: {brief(jsep)}")
        lg.start()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))
        await wait_connected(pc, "A again")
        try:
            res = await self.both_ways(u, lg, "A again", 48000, video=False)
        except AssertionFailed as e:
            if not IS_JANUS:
                raise
            # Janus 1.1.2: the same race can also let the old relay thread clean up (close) the
            # sockets of the new call after its plain offer went out. Not asserted on Janus.
            res = f"Janus 1.1.2 race: no media ({e}) (not asserted)"
        ev, d = await cl.request(self.a_hid, {"request": "hangup"}, "hangup (second call)")
        check(d == ns_result(event="hangingup"), f"hangup: {brief(d)}")
        await lg.stop()
        return f"{am['line']!r}; {res}"

    # -- B: the WebRTC user is called --------------------------------------------------------------
    async def b_process(self):
        cl = self.W
        self.b_hid = await cl.c.attach(NOSIP)
        lg = self.b_legacy = await self.new_legacy()
        lg.set_codec(lg.audio, "pcmu", 0)
        lg.set_codec(lg.video, "vp8", 100)
        offer = legacy_sdp(self.addr, [
            ("audio", lg.audio.port, [(0, "PCMU/8000"), (101, "telephone-event/8000")], ["a=fmtp:101 0-16"]),
            ("video", lg.video.port, [(100, "VP8/90000")], ["a=rtcp-fb:100 nack pli"]),
        ])
        self.observed["legacy_offer"] = offer
        ev, d = await cl.request(self.b_hid, {"request": "process", "type": "offer", "sdp": offer}, "process (offer)")
        d = cl.strip_uid(self.b_hid, d, "processed")
        check(d == ns_result(event="processed"), f"process offer: {brief(d)}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "offer", f"processed: JSEP offer expected: {brief(jsep)}")
        check_transport_sdp(jsep["sdp"], self.addr, "JSEP offer")
        jp = parse_sdp(jsep["sdp"])
        if IS_JANUS:
            check(media_of(jp, "audio")["fmts"][:2] == [0, 101] and media_of(jp, "video")["fmts"][0] == 100,
                  f"JSEP offer: payload types not kept: {[m['line'] for m in jp['media']]}")
        else:
            # jano's engine writes the user's offer with its own payload types (it maps them by
            # codec both ways); the peer's codecs must be what is offered.
            rtpmaps = [l for l in jsep["sdp"].split("\r\n") if l.startswith("a=rtpmap:")]
            enc = lambda kind: [l.split(" ", 1)[1].split("/")[0].lower() for l in
                                rtpmaps_of(jsep["sdp"], kind)]
            check(enc("audio")[:1] == ["pcmu"] and enc("video")[:1] == ["vp8"],
                  f"JSEP offer: the peer's codecs not offered: {rtpmaps}")
        self.observed["jsep_offer_B"] = jsep["sdp"]
        self.b_offer = jsep["sdp"]
        return f"JSEP offer: {[m['line'] for m in jp['media']]}"

    async def b_generate(self):
        cl, lg = self.W, self.b_legacy
        u = self.b_user = self.new_user()
        pc = u.new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=self.b_offer, type="offer"))
        u.add_tracks()
        await pc.setLocalDescription(await pc.createAnswer())
        self.user_ssrcs["B"] = {int(a.split()[0][5:]) for m in parse_sdp(pc.localDescription.sdp)["media"]
                                for a in m["attrs"] if a.startswith("ssrc:")}
        ev, d = await cl.request(self.b_hid, {"request": "generate"}, "generate (answer)",
                                 {"type": "answer", "sdp": pc.localDescription.sdp})
        sdp = d.get("result", {}).get("sdp")
        check(isinstance(sdp, str), f"generated: no sdp: {brief(d)}")
        d = cl.strip_uid(self.b_hid, d, "generated")
        check(d == ns_result(event="generated", type="answer", sdp=sdp), f"generate answer: {brief(d)}")
        check("jsep" not in ev, "generated: no jsep")
        p = check_plain_sdp(sdp, self.addr, ["audio", "video"], "RTP/AVP", "generated answer")
        am, vm = media_of(p, "audio"), media_of(p, "video")
        check(am["fmts"][0] == 0 and vm["fmts"][0] == 100, f"generated answer: formats {am['fmts']} / {vm['fmts']}")
        self.observed["plain_answer"] = sdp
        lg.audio.remote = (self.addr, am["port"])
        lg.video.remote = (self.addr, vm["port"])
        self.b_plugin_ports = {"audio": am["port"], "video": vm["port"]}
        lg.start()
        await wait_connected(pc, "B")
        await cl.c.wait_for(lambda m: m["janus"] == "webrtcup" and m.get("sender") == self.b_hid, STEP, "webrtcup")
        return f"plain answer: {[m['line'] for m in p['media']]}; connected"

    async def b_media(self):
        res = await self.both_ways(self.b_user, self.b_legacy, "B", 8000)
        self.check_rtp_from(self.b_legacy, self.b_plugin_ports, "B")
        return res

    async def b_pc_close(self):
        cl, u, lg = self.W, self.b_user, self.b_legacy
        mark = cl.mark()
        await u.pc.close()
        t_c = time.monotonic()
        await cl.c.wait_for(lambda m: m["janus"] == "hangup" and m.get("sender") == self.b_hid, STEP, "core hangup")
        await asyncio.sleep(max(0.0, t_c + STOP_AFTER + WINDOW - time.monotonic()))
        got = summarize(cl.since(mark, self.b_hid))
        self.observed["B_after_pc_close"] = got
        # Janus 1.1.2: only the core's hangup (aiortc's DTLS close_notify: "DTLS alert"); the
        # plugin says nothing.
        ev = cl.since(mark, self.b_hid, ("event",))
        check(not ev, f"plugin events after the PeerConnection closed: {brief(ev)}")
        lg.poll()
        last = max((t for s in lg.streams() for t, _, _ in s.rtp_in()), default=t_c)
        self.observed["B_last_rtp_after_pc_close_s"] = round(last - t_c, 3)
        late = [x for s in lg.streams() for x in s.rtp_in(t_c + STOP_AFTER)]
        check(len(late) <= STOPPED_MAX, f"the legacy peer still got {len(late)} RTP packets {STOP_AFTER:.1f} s after "
              f"the PC closed (the last {last - t_c:.2f} s after it)")
        await lg.stop()
        return f"events {got}"

    # -- D: SDES-SRTP ------------------------------------------------------------------------------
    async def d_optional(self):
        cl = self.W
        hid = await cl.c.attach(NOSIP)
        u = self.new_user(video=False)
        pc = u.new_pc()
        u.add_tracks()
        await pc.setLocalDescription(await pc.createOffer())
        ev, d = await cl.request(hid, {"request": "generate", "srtp": "sdes_optional"}, "generate sdes_optional",
                                 {"type": "offer", "sdp": pc.localDescription.sdp})
        sdp = d.get("result", {}).get("sdp", "")
        # Janus 1.1.2: sdes_optional keeps RTP/AVP and adds the a=crypto line.
        p = check_plain_sdp(sdp, self.addr, ["audio"], "RTP/AVP", "sdes_optional offer")
        cr = crypto_of(media_of(p, "audio"))
        check(len(cr) == 1 and cr[0][0] == 1 and cr[0][1] == "AES_CM_128_HMAC_SHA1_80" and len(cr[0][2]) == 30,
              f"sdes_optional: crypto lines {cr}")
        r = await cl.c.detach(hid)
        check(r.get("janus") == "success", f"detach: {brief(r)}")
        await pc.close()
        return f"RTP/AVP + a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<{len(cr[0][2])} bytes>"

    async def d_caller(self):
        cl = self.W
        self.d_hid = await cl.c.attach(NOSIP)
        u = self.d_user = self.new_user(video=False)
        pc = u.new_pc()
        u.add_tracks()
        await pc.setLocalDescription(await pc.createOffer())
        ev, d = await cl.request(self.d_hid, {"request": "generate", "srtp": "sdes_mandatory"}, "generate sdes_mandatory",
                                 {"type": "offer", "sdp": pc.localDescription.sdp})
        sdp = d.get("result", {}).get("sdp", "")
        d = cl.strip_uid(self.d_hid, d, "generated")
        check(d == ns_result(event="generated", type="offer", sdp=sdp), f"generate: {brief(d)}")
        p = check_plain_sdp(sdp, self.addr, ["audio"], "RTP/SAVP", "sdes_mandatory offer")
        am = media_of(p, "audio")
        cr = crypto_of(am)
        check(len(cr) == 1 and cr[0][0] == 1 and cr[0][1] == "AES_CM_128_HMAC_SHA1_80" and len(cr[0][2]) == 30,
              f"sdes_mandatory: crypto lines {cr}")
        self.observed["plain_offer_srtp"] = sdp
        lg = self.d_legacy = await self.new_legacy(video=False)
        s = lg.audio
        apt = pt_of(am, "opus")
        lg.set_codec(s, "opus", apt)
        s.remote = (self.addr, am["port"])
        key = os.urandom(30)
        s.rx_srtp = srtp_session(cr[0][2], cr[0][1], outbound=False)
        s.tx_srtp = srtp_session(key, "AES_CM_128_HMAC_SHA1_80", outbound=True)
        answer = legacy_sdp(self.addr, [("audio", s.port, [(apt, "opus/48000/2")],
                                         [f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(key).decode()}"])],
                            proto="RTP/SAVP")
        ev, d = await cl.request(self.d_hid, {"request": "process", "type": "answer", "sdp": answer}, "process (SRTP answer)")
        d = cl.strip_uid(self.d_hid, d, "processed")
        # Janus 1.1.2: `srtp` says what the legacy SDP had (RTP/SAVP: mandatory).
        check(d == ns_result(event="processed", srtp="sdes_mandatory"), f"process: {brief(d)}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "answer", f"processed: JSEP answer expected: {brief(jsep)}")
        check("a=crypto" not in jsep["sdp"], "the JSEP answer must not carry the legacy crypto line")
        lg.start()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))
        await wait_connected(pc, "D")
        res = await self.srtp_media(u, lg, {"audio": am["port"]}, "D")
        return f"plain offer {am['line']!r} + crypto; {res}"

    async def srtp_media(self, u, lg, ports, what):
        s = lg.audio
        t0 = time.monotonic() + SETTLE
        await asyncio.sleep(SETTLE + WINDOW + 0.3)
        lg.poll()
        lg.check_senders()
        pk = s.rtp_in(t0)
        check(len(pk) >= 20, f"{what}: only {len(pk)} SRTP packets from the plugin")
        check({src for _, _, src in pk} == {(self.addr, ports["audio"])}, f"{what}: SRTP sources {set(src for _, _, src in pk)}")
        check(s.srtp_failures == 0, f"{what}: {s.srtp_failures} packets from the plugin did not authenticate with its key")
        # Encrypted for real: every packet authenticated with the plugin's key and lost the 10
        # bytes of its HMAC-SHA1-80 tag in decryption.
        check(s.srtp_overhead == {10}, f"{what}: SRTP overhead {s.srtp_overhead} bytes, expected {{10}}")
        out = [hears(f"{what}: the legacy peer's audio (decrypted)",
                     [a for t, a in s.audio if t0 <= t < t0 + WINDOW], 48000, USER["hz"], PEER["hz"])]
        check(u.rate, f"{what}: aiortc decoded no audio")
        out.append(hears(f"{what}: aiortc's audio", [a for t, a in u.audio if t0 <= t < t0 + WINDOW], u.rate,
                         PEER["hz"], USER["hz"]))
        rt = [ks for _, ks, _ in s.rtcp_in]
        check(rt and "undecryptable" not in sum(rt, []), f"{what}: SRTCP at the legacy peer: {rt[:5]}")
        self.observed[f"srtcp_{what}"] = sorted({k for ks in rt for k in ks})
        return f"legacy hears {out[0]}, aiortc hears {out[1]}, SRTCP {self.observed[f'srtcp_{what}']}"

    async def d_callee(self):
        cl = self.H
        self.d2_hid = await cl.c.attach(NOSIP)
        lg = self.d2_legacy = await self.new_legacy(video=False)
        s = lg.audio
        lg.set_codec(s, "opus", 111)
        key = os.urandom(30)
        s.tx_srtp = srtp_session(key, "AES_CM_128_HMAC_SHA1_80", outbound=True)
        offer = legacy_sdp(self.addr, [("audio", s.port, [(111, "opus/48000/2")],
                                        [f"a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(key).decode()}"])],
                           proto="RTP/SAVP")
        ev, d = await cl.request(self.d2_hid, {"request": "process", "type": "offer", "sdp": offer}, "process (SRTP offer)")
        d = cl.strip_uid(self.d2_hid, d, "processed")
        check(d == ns_result(event="processed", srtp="sdes_mandatory"), f"process: {brief(d)}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "offer", f"processed: JSEP offer expected: {brief(jsep)}")
        check("a=crypto" not in jsep["sdp"], "the JSEP offer must not carry the legacy crypto line")
        u = self.d2_user = self.new_user(video=False)
        pc = u.new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="offer"))
        u.add_tracks()
        await pc.setLocalDescription(await pc.createAnswer())
        ev, d = await cl.request(self.d2_hid, {"request": "generate"}, "generate (answer to an SRTP offer)",
                                 {"type": "answer", "sdp": pc.localDescription.sdp})
        sdp = d.get("result", {}).get("sdp", "")
        d = cl.strip_uid(self.d2_hid, d, "generated")
        check(d == ns_result(event="generated", type="answer", sdp=sdp), f"generate: {brief(d)}")
        self.observed["plain_answer_srtp"] = sdp
        p = parse_sdp(sdp)
        am = media_of(p, "audio")
        check(am is not None, f"no m=audio in {sdp}")
        # Janus 1.1.2: the answer's protocol follows the `srtp` of the generate request (none
        # here), so it says RTP/AVP even though it carries the crypto line answering tag 7.
        check_plain_sdp(sdp, self.addr, ["audio"], "RTP/AVP" if IS_JANUS else am["proto"], "generated SRTP answer")
        check(am["proto"] in ("RTP/AVP", "RTP/SAVP"), f"answer protocol {am['proto']}")
        cr = crypto_of(am)
        check(len(cr) == 1 and cr[0][0] == 7 and cr[0][1] == "AES_CM_128_HMAC_SHA1_80" and len(cr[0][2]) == 30,
              f"answer crypto lines {cr}: expected one with tag 7")
        s.rx_srtp = srtp_session(cr[0][2], cr[0][1], outbound=False)
        s.remote = (self.addr, am["port"])
        lg.start()
        await wait_connected(pc, "D2")
        res = await self.srtp_media(u, lg, {"audio": am["port"]}, "D2")
        return f"answer {am['line']!r} + crypto tag 7; {res}"

    async def d_hangup(self):
        out = []
        for cl, hid, lg in ((self.W, self.d_hid, self.d_legacy), (self.H, self.d2_hid, self.d2_legacy)):
            ev, d = await cl.request(hid, {"request": "hangup"}, "hangup")
            check(d == ns_result(event="hangingup"), f"hangup: {brief(d)}")
            await cl.c.wait_for(lambda m: m["janus"] == "hangup" and m.get("sender") == hid, STEP, "core hangup")
            await lg.stop()
            out.append("hangingup + core hangup")
        return "; ".join(out)

    # -- E: errors ---------------------------------------------------------------------------------
    async def errors(self):
        cl, a = self.H, self.addr
        plain = legacy_sdp(a, [("audio", 30000, [(0, "PCMU/8000")], [])])
        no_c = plain.replace(f"c=IN IP4 {a}\r\n", "")
        port0 = plain.replace("m=audio 30000", "m=audio 0")
        app = plain + "m=application 30010 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        text = plain.replace("m=audio 30000 RTP/AVP 0", "m=text 30000 RTP/AVP 98")
        table = [
            ({}, ns_error(443, "Missing mandatory element (request)")),
            ({"request": 1}, ns_error(444, "Invalid element type (request should be a string)")),
            ({"request": "dial"}, ns_error(442, "Unknown request (dial)")),
            ({"request": "generate"}, ns_error(446, "Missing SDP")),
            ({"request": "GENERATE"}, ns_error(446, "Missing SDP")),  # request names are case-insensitive
            ({"request": "generate", "srtp": 1}, ns_error(444, "Invalid element type (srtp should be a string)")),
            ({"request": "generate", "update": "x"}, ns_error(444, "Invalid element type (update should be a boolean)")),
            ({"request": "process"}, ns_error(443, "Missing mandatory element (type)")),
            ({"request": "process", "type": "offer"}, ns_error(443, "Missing mandatory element (sdp)")),
            ({"request": "process", "sdp": plain}, ns_error(443, "Missing mandatory element (type)")),
            ({"request": "process", "type": 1, "sdp": plain}, ns_error(444, "Invalid element type (type should be a string)")),
            ({"request": "process", "type": "pranswer", "sdp": plain}, ns_error(446, "Missing or invalid SDP type")),
            ({"request": "process", "type": "offer", "sdp": "garbage"},
             ns_error(446, "Error parsing SDP: Invalid SDP (doesn't start with v=)")),
            ({"request": "process", "type": "offer", "sdp": "v=0\r\n"},
             ns_error(446, "Error parsing SDP: Missing mandatory lines (o=, s= or m=)")),
            ({"request": "process", "type": "offer", "sdp": text},
             ns_error(446, "Error parsing SDP: Invalid m= line: m=text 30000 RTP/AVP 98")),
            ({"request": "process", "type": "offer", "sdp": app}, ns_error(446, "The NoSIP plugin does not support DataChannels")),
            ({"request": "process", "type": "offer", "sdp": port0}, ns_error(447, "No audio and no video being negotiated")),
            ({"request": "process", "type": "offer", "sdp": no_c}, ns_error(447, "No remote IP addresses")),
            ({"request": "process", "type": "offer", "sdp": plain, "srtp": "dtls"},
             ns_error(444, "Invalid element (srtp can only be sdes_optional or sdes_mandatory)")),
            ({"request": "process", "type": "offer", "sdp": plain, "srtp": "sdes_mandatory"},
             ns_error(450, "Can't process request: SDES-SRTP required, but caller didn't offer it")),
            ({"request": "recording"}, ns_error(443, "Missing mandatory element (action)")),
            ({"request": "recording", "action": 1}, ns_error(444, "Invalid element type (action should be a string)")),
            ({"request": "recording", "action": "pause"}, ns_error(444, "Invalid action (should be start|stop)")),
            ({"request": "recording", "action": "start", "audio": "yes"},
             ns_error(444, "Invalid element type (audio should be a boolean)")),
            ({"request": "recording", "action": "start"},
             ns_error(449, "Invalid request (at least one of audio, video, peer_audio and peer_video should be true)")),
            # Janus 1.1.2: stopping what is not being recorded is not an error; nor is a hangup
            # without a call.
            ({"request": "recording", "action": "stop", "audio": True}, ns_result(event="recordingupdated")),
            ({"request": "hangup"}, ns_result(event="hangingup")),
        ]
        if IS_JANUS:
            # Janus 1.1.2 has none of the later keyframe/rtp_forward requests of the spec.
            table += [({"request": r}, ns_error(442, f"Unknown request ({r})"))
                      for r in ("keyframe", "rtp_forward", "stop_rtp_forward", "listforwarders")]
        bad = []
        for body, want in table:
            hid = await cl.c.attach(NOSIP)  # fresh: an error must not depend on what came before
            ev, d = await cl.request(hid, body, f"request {brief(body, 60)}")
            if d != want or "jsep" in ev:
                bad.append(f"{brief(body, 90)}: got {brief(d)}{' + jsep' if 'jsep' in ev else ''}, expected {brief(want)}")
            await cl.c.detach(hid)
        # Errors that need a JSEP offer from the WebRTC user (each on a fresh handle).
        jtable = [
            ("a bad srtp_profile", {"request": "generate", "srtp": "sdes_optional", "srtp_profile": "AES_CM_256"}, {},
             False, ns_error(444, "Invalid element (unsupported SRTP profile)")),
            ("e2ee", {"request": "generate"}, {"e2ee": True}, False, ns_error(444, "Media encryption unsupported by this plugin")),
            ("a data channel", {"request": "generate"}, {}, True, ns_error(446, "The NoSIP plugin does not support DataChannels")),
        ]
        for what, body, extra, dc, want in jtable:
            hid = await cl.c.attach(NOSIP)
            u = self.new_user(video=False)
            pc = u.new_pc()
            u.add_tracks()
            if dc:
                pc.createDataChannel("chat")
            await pc.setLocalDescription(await pc.createOffer())
            ev, d = await cl.request(hid, body, f"generate with {what}", dict({"type": "offer", "sdp": pc.localDescription.sdp}, **extra))
            if d != want or "jsep" in ev:
                bad.append(f"generate with {what}: got {brief(d)}, expected {brief(want)}")
            await cl.c.detach(hid)
            await pc.close()
        check(not bad, f"{len(bad)} of {len(table) + len(jtable)} wrong:\n    " + "\n    ".join(bad))
        return f"{len(table) + len(jtable)} requests: exact codes and texts"

    async def unique_ids(self):
        if IS_JANUS:
            return "Janus 1.1.2 sends no unique_id (not checked)"
        problems = self.H.uid_problems + self.W.uid_problems
        check(not problems, "\n    ".join(problems))
        n = self.H.uid_checked + self.W.uid_checked
        return f"{n} generated/processed results carry one unique_id per handle"

    async def teardown(self):
        for cl, names in ((self.H, ["a_hid", "d2_hid"]), (self.W, ["b_hid", "d_hid"])):
            for hid in filter(None, (getattr(self, n, None) for n in names)):
                r = await cl.c.detach(hid)
                check(r.get("janus") == "success", f"detach: {brief(r)}")
            r = await cl.c.destroy()
            check(r.get("janus") == "success", f"destroy: {brief(r)}")
        return "ok"

    async def close(self):
        for lg in self.legacies:
            await lg.stop()
            lg.close()
        for u in self.users:
            await u.close()
        for cl in (self.H, self.W):
            await cl.c.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    ap.add_argument("--ws", default=os.environ.get("JANUS_WS_URL"))
    ap.add_argument("--addr", default=os.environ.get("JANUS_MEDIA_ADDR"),
                    help="the namespace address (the plugin's local_ip); the legacy sockets bind to it")
    ap.add_argument("--dir", help="a folder the server can write recordings to (default: a new temp folder)")
    args = ap.parse_args()
    runner = Runner()
    if not args.http or not args.ws or not args.addr:
        runner.fail("aiortc NoSIP", 0, "need --http, --ws and --addr")
        runner.summary()
        return 1
    own = args.dir is None
    folder = args.dir or tempfile.mkdtemp(prefix="jmedia-nosip-")
    run = Run(args.http, args.ws, args.addr, folder)
    print(f"▶ aiortc NoSIP: WebRTC user over HTTP ({args.http}) and WebSocket ({args.ws}), "
          f"legacy RTP peer on {args.addr}", flush=True)
    step = stepper(runner, run.dump)
    media_t = SETTLE + WINDOW + 5
    conn_t = 2 * STEP + 15
    try:
        await step("connect 2 sessions (HTTP, WS)", run.setup, 15)
        await step("A (HTTP): aiortc offer → generate → generated {type:offer, sdp}: RTP/AVP, c= the plugin's "
                   "address, even ports, the offer's payload types minus rtx, no ICE/DTLS lines", run.a_generate, STEP)
        await step("A: legacy answer → process {type:answer} → processed + JSEP answer → connected, webrtcup",
                   run.a_process, conn_t)
        await step("A: media both ways: legacy hears 440 Hz (Opus) and sees red VP8, aiortc hears 1000 Hz and sees "
                   "blue; RTP from the announced ports", run.a_media, media_t, essential=False)
        await step("A: RTP from another port (a 2500 Hz stranger) to the plugin's audio port is not relayed",
                   run.a_stranger, media_t, essential=False)
        await step("A: RTCP reaches the legacy RTCP ports; a legacy PLI reaches aiortc's video sender", run.a_rtcp, 10,
                   essential=False)
        await step("A: keyframe {user} / {peer}" + (" (Janus 1.1.2: 442 Unknown request)" if IS_JANUS else
                                                    " → keyframesent, PLI to aiortc / to the legacy RTCP port"),
                   run.a_keyframe, 15, essential=False)
        await step("A: recording start/stop with a filename → recordingupdated; 4 .mjr files (MJR00002, opus/vp8), "
                   "a PLI to aiortc, nothing more after stop", run.a_recording, 20, essential=False)
        await step("A: hangup → hangingup + core hangup 'Close PC'; media stops both ways", run.a_hangup, 20,
                   essential=False)
        await step("A: the same handle after the hangup: generate/process again (audio only), media both ways, hangup",
                   run.a_again, conn_t + media_t, essential=False)
        await step("B (WS): legacy offer (PCMU + VP8) → process {type:offer} → processed + JSEP offer, payload types kept",
                   run.b_process, STEP)
        await step("B: aiortc answer → generate → generated {type:answer, sdp} with the plugin's ports → connected",
                   run.b_generate, conn_t)
        await step("B: media both ways (PCMU 8 kHz + VP8)", run.b_media, media_t, essential=False)
        await step("B: aiortc's PeerConnection closes → core hangup only; RTP to the legacy peer stops",
                   run.b_pc_close, 20, essential=False)
        await step("D: generate srtp sdes_optional → RTP/AVP + a=crypto:1 AES_CM_128_HMAC_SHA1_80", run.d_optional, STEP,
                   essential=False)
        await step("D: generate srtp sdes_mandatory → RTP/SAVP + a=crypto; legacy SRTP answer → processed "
                   "{srtp:sdes_mandatory}; SRTP media both ways", run.d_caller, conn_t + media_t, essential=False)
        await step("D: legacy RTP/SAVP offer (crypto tag 7) → processed {srtp} + JSEP offer → generate answer → "
                   "crypto tag 7; SRTP media both ways", run.d_callee, conn_t + media_t, essential=False)
        await step("D: hangup both SRTP calls", run.d_hangup, 20, essential=False)
        await step("E: request errors: exact codes and texts", run.errors, 40, essential=False)
        await step("generated/processed carry result.unique_id, one per handle (spec; Janus 1.1.2 has none)",
                   run.unique_ids, 5, essential=False)
        await step("detach handles + destroy sessions", run.teardown, 15)
    finally:
        await run.close()
        if own:
            shutil.rmtree(folder, ignore_errors=True)
    obs = {k: v for k, v in run.observed.items() if not k.startswith(("plain_", "jsep_", "legacy_"))}
    print(f"observed: {json.dumps(obs, default=str)}", flush=True)
    if os.environ.get("NOSIP_SHOW_SDP") == "1":
        for k, v in run.observed.items():
            if k.startswith(("plain_", "jsep_", "legacy_")):
                print(f"---- {k}\n{v}", flush=True)
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
