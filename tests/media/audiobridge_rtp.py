#!/usr/bin/env python3
"""AudioBridge plain-RTP participants end to end: one aiortc WebRTC participant and two plain-RTP
participants (this script's own UDP sockets) in one room, the mix each of them hears, and what
the bridge does with garbage on its RTP ports.

One 16 kHz room created with `allow_rtp_participants: true` (and a second one without it):
  * alice: aiortc, sends a 440 Hz tone (Opus), joins with an offer;
  * rtp-opus: a UDP socket bound on the namespace address; `join` with
    `"rtp": {"ip": <addr>, "port": <its port>, "payload_type": 100}`; the `joined` reply carries
    `rtp: {ip, port, payload_type}` of the bridge; the socket sends there 20 ms Opus frames of a
    1000 Hz tone (PyAV's libopus encoder; seq +1, ts +960, fixed SSRC, PT 100);
  * rtp-pcmu: the same with `"codec": "pcmu"` (`payload_type` 0 in the reply): 160 µ-law bytes
    of a 1500 Hz tone at 8 kHz every 20 ms (ts +160, PT 0; the µ-law encoder is numpy).

  create (two rooms) -> join with `rtp` in the room without allow_rtp_participants -> 489 ->
  alice joins -> rtp-opus joins (rtp details; alice: joined [setup:false]) -> nothing happens
  until its first packet (no RTP from the bridge, setup:false) -> it sends: alice gets
  participants [setup:true], the bridge starts sending to the socket -> rtp-pcmu likewise ->
  listparticipants -> the mix: alice hears 1000 + 1500 Hz and not 440; rtp-opus (its RTP
  decoded by PyAV) hears 440 + 1500 and not 1000; rtp-pcmu (µ-law decoded) hears 440 + 1000 and
  not 1500; the RTP the bridge sends (PT, SSRC, seq +1, ts +960/+160, payload size) -> rtp-junk
  (a third socket) joins and sends only truncated headers, RTCP packet types and empty datagrams:
  still setup:false, nothing sent to it; then RTP version 0 (observed, not asserted); then
  well-formed headers with garbage payloads: setup:true; its handle detached -> garbage:
  for 1 s both sockets add random bytes, truncated headers, versions 0/1/3, CSRC count 15,
  a huge extension length, padding beyond the packet, RTCP packet types, empty and oversized
  datagrams, and well-formed headers with garbage payloads (foreign SSRCs and in-stream) to their
  valid streams; then the server and the room still answer and the mix is as before -> a valid
  2500 Hz Opus stream from another UDP port to rtp-opus's bridge port is not mixed -> rtp-opus
  `leave` (left; others told; the bridge stops sending to it and its RTP is no longer mixed) ->
  rtp-pcmu's handle detached (others get leaving) -> destroy (alice: destroyed + hangup).

The media checks are those of audiobridge_aiortc.py: the power within +-6 Hz of a tone as a share
of the window's power (>= 10 % for a tone that must be heard) and every tone that must not be
heard >= 20 dB below the weakest one heard, over a 2 s window starting 1 s after a change.

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`); exits
1 if anything failed. Usage: audiobridge_rtp.py --http http://10.x.y.1:8088/janus --addr 10.x.y.1
"""

import argparse
import asyncio
import fractions
import os
import random
import socket
import struct
import sys
import time

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from audiobridge_aiortc import AUDIOBRIDGE, Client, Sink, Tone, analyse, db, pdata
from echotest_aiortc import CONNECT_TIMEOUT, Runner, check, stepper
from janus_client import HttpJanus, brief

STEP = 12.0  # bound of one signalling exchange
ROOM_RATE = 16000
SETTLE = 1.0  # after a change, before a listening window starts
WINDOW = 2.0  # seconds analysed per check
MIN_SHARE = 0.10
MIN_DB = 20.0
MIN_RMS = 1000.0
FRAME_S = 0.020
QUIET = 1.5  # how long a plain-RTP participant that has sent nothing is watched
GARBAGE_S = 1.0
ALICE_HZ, OPUS_HZ, PCMU_HZ, STRANGER_HZ = 440.0, 1000.0, 1500.0, 2500.0
TONES = (ALICE_HZ, OPUS_HZ, PCMU_HZ)
OPUS_AMP, PCMU_AMP = 0.25, 0.35  # alice's Tone is 0.25 too; two of them stay below clipping


# ------------------------------------------------------------------------------------------------
# RTP, µ-law, tones
# ------------------------------------------------------------------------------------------------

def rtp_header(pt, seq, ts, ssrc, marker=False, version=2, cc=0, ext=False, pad=False):
    b0 = (version << 6) | (0x20 if pad else 0) | (0x10 if ext else 0) | (cc & 0x0F)
    b1 = (0x80 if marker else 0) | (pt & 0x7F)
    return struct.pack("!BBHII", b0, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)


def parse_rtp(data):
    """The header fields and payload of an RTP packet, or None if it is not one."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    cc = data[0] & 0x0F
    off = 12 + 4 * cc
    if data[0] & 0x10:
        if len(data) < off + 4:
            return None
        off += 4 + 4 * struct.unpack("!H", data[off + 2:off + 4])[0]
    end = len(data)
    if data[0] & 0x20:
        end -= data[-1]
    if end < off:
        return None
    seq, ts, ssrc = struct.unpack("!HII", data[2:12])
    return {"pt": data[1] & 0x7F, "marker": bool(data[1] & 0x80), "seq": seq, "ts": ts, "ssrc": ssrc,
            "cc": cc, "ext": bool(data[0] & 0x10), "payload": data[off:end]}


def _ulaw_table():
    b = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exp, man = b & 0x80, (b >> 4) & 7, b & 0x0F
    x = (((man << 3) + 0x84) << exp) - 0x84
    return np.where(sign != 0, -x, x).astype(np.int16)


ULAW_DECODE = _ulaw_table()  # G.711 µ-law (the table every implementation uses)


def ulaw_encode(pcm):
    x = pcm.astype(np.int32)
    sign = (x < 0).astype(np.int32) << 7
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exp = np.floor(np.log2(mag)).astype(np.int32) - 7
    man = (mag >> (exp + 3)) & 0x0F
    return (~(sign | (exp << 4) | man) & 0xFF).astype(np.uint8)


def tone(hz, amp, rate, start, n):
    t = (np.arange(n) + start) / rate
    return (amp * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


class OpusTone:
    """20 ms Opus frames (48 kHz mono, PyAV's libopus) of a sine tone."""

    def __init__(self, hz, amp):
        self.hz, self.amp, self.pos = hz, amp, 0
        self.enc = av.CodecContext.create("libopus", "w")
        self.enc.sample_rate = 48000
        self.enc.layout = "mono"
        self.enc.format = "s16"
        self.enc.bit_rate = 64000
        self.enc.time_base = fractions.Fraction(1, 48000)
        self.enc.open()
        self.pending = []

    def next(self):
        while not self.pending:
            pcm = tone(self.hz, self.amp, 48000, self.pos, 960)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 48000
            frame.pts = self.pos
            frame.time_base = fractions.Fraction(1, 48000)
            self.pos += 960
            self.pending.extend(bytes(p) for p in self.enc.encode(frame))
        return self.pending.pop(0)


class PcmuTone:
    def __init__(self, hz, amp):
        self.hz, self.amp, self.pos = hz, amp, 0

    def next(self):
        pcm = tone(self.hz, self.amp, 8000, self.pos, 160)
        self.pos += 160
        return ulaw_encode(pcm).tobytes()


class OpusDecoder:
    def __init__(self):
        self.dec = av.CodecContext.create("libopus", "r")
        self.dec.sample_rate = 48000
        self.dec.layout = "mono"

    def decode(self, payload):
        out = []
        for fr in self.dec.decode(av.Packet(payload)):
            a = fr.to_ndarray()
            if a.dtype.kind == "f":
                a = np.clip(a * 32767, -32768, 32767)
            ch = len(fr.layout.channels)
            a = a.reshape(-1)[::ch] if a.shape[0] == 1 else a[0]
            out.append(a.astype(np.int16))
        return np.concatenate(out) if out else np.zeros(0, np.int16)


# ------------------------------------------------------------------------------------------------
# A plain-RTP participant: a UDP socket, a paced RTP sender, what the bridge sends back
# ------------------------------------------------------------------------------------------------

class Udp(asyncio.DatagramProtocol):
    def __init__(self):
        self.packets = []  # (monotonic time, bytes, (ip, port))
        self.errors = []

    def datagram_received(self, data, addr):
        self.packets.append((time.monotonic(), data, addr))

    def error_received(self, exc):
        self.errors.append(repr(exc))


class RtpPeer:
    def __init__(self, client, display, codec, hz, amp):
        self.cl = client
        self.display = display
        self.codec = codec  # "opus" | "pcmu"
        self.hz = hz
        self.pt = 100 if codec == "opus" else 0
        self.step = 960 if codec == "opus" else 160
        self.rate = 48000 if codec == "opus" else 8000
        self.source = OpusTone(hz, amp) if codec == "opus" else PcmuTone(hz, amp)
        self.ssrc = random.randint(1, 2 ** 32 - 1)
        self.seq = random.randint(0, 65535)
        self.ts = random.randint(0, 2 ** 32 - 1)
        self.hid = self.id = None
        self.transport = self.udp = self.sock = None
        self.local = None  # (ip, port) of our socket
        self.bridge = None  # (ip, port) from the joined reply
        self.sender = None
        self.sent = 0
        self.first_sent_at = None
        self.decoder = OpusDecoder() if codec == "opus" else None
        self.decoded = []  # (t, int16 samples), in arrival order
        self._decoded_upto = 0
        self.bad = []  # datagrams from the bridge that are not RTP

    async def open(self, addr):
        # Our own socket (asyncio's transport only reads it): sent to directly, empty
        # datagrams included.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((addr, 0))
        self.local = self.sock.getsockname()[:2]
        loop = asyncio.get_running_loop()
        self.transport, self.udp = await loop.create_datagram_endpoint(Udp, sock=self.sock)

    def check_sender(self):
        if self.sender is not None and self.sender.done() and not self.sender.cancelled():
            check(False, f"{self.display}: the RTP sender died: {self.sender.exception()!r}")

    def send_raw(self, data):
        try:
            self.sock.sendto(data, self.bridge)
        except (BlockingIOError, OSError):
            pass

    def send_frame(self, payload, pt=None):
        """One packet of our stream (advances seq and ts)."""
        self.send_raw(rtp_header(self.pt if pt is None else pt, self.seq, self.ts, self.ssrc) + payload)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + self.step) & 0xFFFFFFFF
        self.sent += 1
        if self.first_sent_at is None:
            self.first_sent_at = time.monotonic()

    def start(self):
        self.sender = asyncio.ensure_future(self._send_loop())

    async def _send_loop(self):
        start = time.monotonic()
        n = 0
        while True:
            self.send_frame(self.source.next())
            n += 1
            wait = start + n * FRAME_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def stop(self):
        if self.sender is not None:
            self.sender.cancel()
            try:
                await self.sender
            except BaseException:  # noqa: BLE001
                pass
            self.sender = None

    def received(self, t0=None, t1=None):
        """Parsed RTP the bridge sent us, [(t, hdr)], optionally within [t0, t1)."""
        out = []
        for t, data, src in self.udp.packets:
            if (t0 is not None and t < t0) or (t1 is not None and t >= t1):
                continue
            h = parse_rtp(data)
            if h is None:
                continue
            h["src"] = src
            h["len"] = len(data)
            out.append((t, h))
        return out

    def window(self, t0, t1):
        """Decoded audio (arrival time, samples) of what the bridge sent, within [t0, t1)."""
        pk = self.udp.packets
        while self._decoded_upto < len(pk):
            t, data, _ = pk[self._decoded_upto]
            self._decoded_upto += 1
            h = parse_rtp(data)
            if h is None or not h["payload"]:
                self.bad.append(data[:16])
                continue
            if self.codec == "opus":
                try:
                    pcm = self.decoder.decode(h["payload"])
                except av.error.FFmpegError:
                    self.bad.append(data[:16])
                    continue
            else:
                pcm = ULAW_DECODE[np.frombuffer(h["payload"], dtype=np.uint8)]
            self.decoded.append((t, pcm))
        return [s for t, s in self.decoded if t0 <= t < t1]

    def close(self):
        if self.transport is not None:
            self.transport.close()


class WebRtcPeer:
    def __init__(self, client, display, hz):
        self.cl = client
        self.display = display
        self.hz = hz
        self.hid = self.id = self.pc = None
        self.sink = Sink()
        self.connected_at = None


def entry(p, setup, muted=False):
    return {"id": p.id, "display": p.display, "setup": setup, "muted": muted}


def no_talking(e):
    # Janus 1.1.2 adds "talking" to an entry of a joined reply / listparticipants when that
    # participant negotiated the audio-level extension (aiortc does); optional here.
    e = dict(e)
    if "talking" in e:
        check(isinstance(e["talking"], bool), f"talking must be a boolean: {brief(e)}")
        del e["talking"]
    return e


def hear(what, name, chunks, rate, heard, silent, tones, need):
    """Check one listener's window; returns a summary."""
    check(len(chunks) >= need, f"{what}: {name} decoded {len(chunks)} frames in {WINDOW:.1f} s (need {need})")
    rms, share = analyse(chunks, rate, tones)
    shares = ", ".join(f"{hz:.0f} Hz {100 * share[hz]:.1f} %" for hz in tones)
    check(rms >= MIN_RMS, f"{what}: {name} hears (nearly) silence: RMS {rms:.0f}; {shares}")
    for hz in heard:
        check(share[hz] >= MIN_SHARE, f"{what}: {name} should hear {hz:.0f} Hz: {shares}")
    weakest = min(share[hz] for hz in heard)
    for hz in silent:
        gap = db(weakest, share[hz])
        check(gap >= MIN_DB, f"{what}: {name} should not hear {hz:.0f} Hz: only {gap:.1f} dB below the weakest "
              f"tone it should hear (need {MIN_DB:.0f}); {shares}")
    gaps = min(db(weakest, share[hz]) for hz in silent)
    return (f"{name}: {len(chunks)} frames, hears {'+'.join(f'{h:.0f}' for h in heard)} (≥{100 * weakest:.0f} %), "
            f"{'/'.join(f'{h:.0f}' for h in silent)} ≥{gaps:.0f} dB down")


# ------------------------------------------------------------------------------------------------
# The conversation
# ------------------------------------------------------------------------------------------------

class RtpRun:
    def __init__(self, url, addr):
        self.url = url
        self.addr = addr
        self.SA = Client(HttpJanus(url), "A")  # admin handle + alice
        self.SR = Client(HttpJanus(url), "R")  # the plain-RTP participants' handles + a probe
        self.A = WebRtcPeer(self.SA, "alice", ALICE_HZ)
        self.O = RtpPeer(self.SR, "rtp-opus", "opus", OPUS_HZ, OPUS_AMP)
        self.U = RtpPeer(self.SR, "rtp-pcmu", "pcmu", PCMU_HZ, PCMU_AMP)
        self.J = RtpPeer(self.SR, "rtp-junk", "opus", 0.0, 0.0)  # sends nothing but junk
        self.adm = self.probe = None
        self.room = self.room2 = None
        self.destroyed = set()
        self.detached = set()
        self.stranger = None
        self.observed = {}
        self.mix_at = self.garbage_end = self.stranger_at = self.leave_at = None

    def dump(self):
        return "\n".join(f"  session {cl.name}:\n{cl.c.dump(20)}" for cl in (self.SA, self.SR))

    # -- steps -----------------------------------------------------------------------------
    async def setup(self):
        for cl in (self.SA, self.SR):
            await cl.c.connect()
            await cl.c.create()
        self.adm = await self.SA.c.attach(AUDIOBRIDGE)
        out = []
        for allow in (True, False):
            body = {"request": "create", "description": f"jano audiobridge rtp test {os.getpid()} {allow}",
                    "sampling_rate": ROOM_RATE}
            if allow:
                body["allow_rtp_participants"] = True
            d = await self.SA.sync(self.adm, body, f"create (allow_rtp_participants {allow})")
            check(d.get("audiobridge") == "created" and isinstance(d.get("room"), int) and d.get("permanent") is False,
                  f"create: {brief(d)}")
            if allow:
                self.room = d["room"]
            else:
                self.room2 = d["room"]
            out.append(f"room {d['room']} (allow_rtp_participants {allow})")
        for p in (self.O, self.U, self.J):
            await p.open(self.addr)
        return ", ".join(out) + f"; sockets {self.O.local}, {self.U.local}, {self.J.local}"

    async def not_allowed(self):
        self.probe = await self.SR.c.attach(AUDIOBRIDGE)
        ev, d = await self.SR.async_(self.probe, {
            "request": "join", "room": self.room2, "display": "nope",
            "rtp": {"ip": self.O.local[0], "port": self.O.local[1], "payload_type": 100}},
            "join with rtp, room without allow_rtp_participants", expect_error=True)
        want = {"audiobridge": "event", "error_code": 489, "error": "Plain RTP participants not allowed in this room"}
        check(d == want, f"expected {brief(want)}, got {brief(d)}")
        check(ev.get("jsep") is None, f"an error carries no jsep: {brief(ev.get('jsep'))}")
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room2}, "listparticipants")
        check(d.get("participants") == [], f"the refused join left a participant behind: {brief(d)}")
        d = await self.SA.sync(self.adm, {"request": "destroy", "room": self.room2}, "destroy room 2")
        check(d.get("audiobridge") == "destroyed", f"destroy: {brief(d)}")
        self.destroyed.add(self.room2)
        return f"489 {want['error']!r}; nobody joined"

    async def join_alice(self):
        p = self.A
        cl = p.cl
        p.hid = await cl.c.attach(AUDIOBRIDGE)
        p.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        p.pc.on("track", p.sink.on_track)
        p.pc.addTrack(Tone(p.hz))
        await p.pc.setLocalDescription(await p.pc.createOffer())
        mark = cl.mark()
        ev, d = await cl.async_(p.hid, {"request": "join", "room": self.room, "display": p.display}, "alice join",
                                jsep={"type": "offer", "sdp": p.pc.localDescription.sdp, "trickle": False})
        check(d.get("audiobridge") == "joined" and d.get("participants") == [] and "rtp" not in d,
              f"alice joined: {brief(d)}")
        p.id = d["id"]
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "answer", f"no answer: {brief(jsep)}")
        await p.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))
        end = time.monotonic() + CONNECT_TIMEOUT
        while p.pc.connectionState != "connected":
            check(p.pc.connectionState not in ("failed", "closed"), f"alice: peer connection {p.pc.connectionState}")
            check(time.monotonic() < end, f"alice: not connected after {CONNECT_TIMEOUT:.0f} s")
            await asyncio.sleep(0.05)
        p.connected_at = time.monotonic()
        await cl.core_event(mark, p.hid, "webrtcup", "alice: webrtcup")
        return f"id {p.id}"

    async def join_rtp(self, p, earlier_rtp):
        """A plain-RTP participant joins; checks the reply and what the others are told, then
        that nothing happens before it sends, then what its first packet changes."""
        cl = p.cl
        p.hid = await cl.c.attach(AUDIOBRIDGE)
        others = [self.A] + earlier_rtp
        marks = {q.display: q.cl.mark() for q in others}
        rtp = {"ip": p.local[0], "port": p.local[1], "payload_type": p.pt}
        body = {"request": "join", "room": self.room, "display": p.display, "rtp": rtp}
        if p.codec != "opus":
            body["codec"] = p.codec
        ev, d = await cl.async_(p.hid, body, f"{p.display} join")
        joined_at = time.monotonic()
        # Janus 1.1.2: {"audiobridge":"joined","room":R,"id":ID,"participants":[..],
        # "rtp":{"ip":<the plugin's local_ip>,"port":<its UDP port>,"payload_type":<PT>}}, no jsep.
        check(d.get("audiobridge") == "joined" and d.get("room") == self.room
              and set(d) == {"audiobridge", "room", "id", "participants", "rtp"}, f"{p.display} joined: {brief(d)}")
        check(ev.get("jsep") is None, f"a plain-RTP join carries no jsep: {brief(ev.get('jsep'))}")
        p.id = d["id"]
        check(isinstance(p.id, int) and p.id > 0 and p.id not in [q.id for q in others], f"id {p.id!r}")
        got = sorted((no_talking(e) for e in d["participants"]), key=lambda e: e["id"])
        want = sorted((entry(q, True) for q in others), key=lambda e: e["id"])
        check(got == want, f"{p.display} joined: participants {brief(got)}, expected {brief(want)}")
        r = d["rtp"]
        check(isinstance(r, dict) and set(r) == {"ip", "port", "payload_type"}, f"rtp: {brief(r)}")
        check(isinstance(r["ip"], str) and isinstance(r["port"], int) and 0 < r["port"] < 65536,
              f"rtp ip/port: {brief(r)}")
        check(r["payload_type"] == p.pt, f"rtp payload_type {r['payload_type']!r}, expected {p.pt}")
        try:
            socket.inet_aton(r["ip"])
        except OSError:
            check(False, f"rtp.ip is not an IPv4 address: {r['ip']!r}")
        p.bridge = (r["ip"], r["port"])
        for q in others:
            n = await q.cl.notification(marks[q.display], q.hid, lambda x: x.get("audiobridge") == "joined",
                                        f"{q.display}: joined <{p.display}>")
            want = {"audiobridge": "joined", "room": self.room, "participants": [entry(p, False)]}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        # Before it sends anything: no setup:true for it, and the bridge sends it nothing.
        await asyncio.sleep(max(0.0, joined_at + QUIET - time.monotonic()))
        for q in others:
            early = [m for _, m in q.cl.c.received[marks[q.display]:] if m.get("janus") == "event"
                     and m.get("sender") == q.hid and any(e.get("id") == p.id and e.get("setup") is True
                                                          for e in pdata(m).get("participants", []))]
            check(not early, f"{q.display} was told {p.display} is set up before it sent anything: {brief(early)}")
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        mine = [no_talking(e) for e in d.get("participants", []) if e.get("id") == p.id]
        check(mine == [entry(p, False)], f"listparticipants before any RTP: {brief(mine)}, expected setup:false")
        check(not p.udp.packets, f"the bridge sent {len(p.udp.packets)} datagrams to {p.display} before it sent any "
              f"(first from {p.udp.packets[0][2] if p.udp.packets else None})")
        # The first packets: setup:true for the others, and the bridge starts sending.
        p.start()
        for q in others:
            n = await q.cl.notification(
                marks[q.display], q.hid,
                lambda x: x.get("audiobridge") == "event" and any(e.get("id") == p.id for e in x.get("participants", [])),
                f"{q.display}: participants [<{p.display}> setup:true]")
            want = {"audiobridge": "event", "room": self.room, "participants": [entry(p, True)]}
            check(n == want, f"{q.display}: {brief(n)}, expected {brief(want)}")
        setup_t = max(t for t, m in self.A.cl.c.received if m.get("janus") == "event" and m.get("sender") == self.A.hid
                      and any(e.get("id") == p.id and e.get("setup") for e in pdata(m).get("participants", [])))
        end = time.monotonic() + STEP
        while not p.received():
            p.check_sender()
            check(time.monotonic() < end, f"{p.display}: no RTP from the bridge within {STEP:.0f} s of sending "
                  f"({p.sent} packets sent; {len(p.udp.packets)} datagrams received; errors {p.udp.errors})")
            await asyncio.sleep(0.05)
        t_rx, first = p.received()[0]
        check(first["src"] == p.bridge, f"{p.display}: RTP came from {first['src']}, the joined reply said {p.bridge}")
        self.observed[p.display] = {"rtp": r, "setup_after_ms": round(1000 * (setup_t - p.first_sent_at)),
                                    "first_rx_after_ms": round(1000 * (t_rx - p.first_sent_at))}
        return (f"id {p.id}, bridge {r}; nothing for {QUIET:.1f} s; setup:true "
                f"{1000 * (setup_t - p.first_sent_at):.0f} ms and first RTP back {1000 * (t_rx - p.first_sent_at):.0f} ms "
                f"after its first packet")

    async def listparticipants(self):
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        check(d.get("audiobridge") == "participants" and d.get("room") == self.room, f"listparticipants: {brief(d)}")
        got = sorted((no_talking(e) for e in d.get("participants", [])), key=lambda e: e["id"])
        want = sorted((entry(q, True) for q in (self.A, self.O, self.U)), key=lambda e: e["id"])
        check(got == want, f"participants {brief(got)}, expected {brief(want)}")
        return ", ".join(f"{e['display']} setup:{e['setup']}" for e in got)

    async def listen(self, since, expect, what, tones=TONES):
        """expect: {peer: (heard, not heard)} over [since + SETTLE, + WINDOW]."""
        t0 = since + SETTLE
        t1 = t0 + WINDOW
        await asyncio.sleep(max(0.0, t1 - time.monotonic()) + 0.1)
        need = int(0.6 * WINDOW / FRAME_S)
        out = []
        for p, (heard, silent) in expect.items():
            if isinstance(p, WebRtcPeer):
                chunks, rate = p.sink.window(t0, t1), p.sink.rate
            else:
                p.check_sender()
                chunks, rate = p.window(t0, t1), p.rate
            out.append(hear(what, p.display, chunks, rate, heard, silent, tones, need))
        return "; ".join(out)

    async def mix(self):
        self.mix_at = max(self.O.first_sent_at, self.U.first_sent_at)
        return await self.listen(self.mix_at, {
            self.A: ((OPUS_HZ, PCMU_HZ), (ALICE_HZ,)),
            self.O: ((ALICE_HZ, PCMU_HZ), (OPUS_HZ,)),
            self.U: ((ALICE_HZ, OPUS_HZ), (PCMU_HZ,)),
        }, "all three")

    async def rtp_out(self):
        """What the bridge sends each plain-RTP participant."""
        out = []
        for p in (self.O, self.U):
            rx = p.received()
            check(len(rx) >= 100, f"{p.display}: only {len(rx)} RTP packets from the bridge")
            span = rx[-1][0] - rx[0][0]
            rate = (len(rx) - 1) / span if span > 0 else 0
            check(35 <= rate <= 65, f"{p.display}: {rate:.1f} packets/s from the bridge (expected ~50)")
            pts = {h["pt"] for _, h in rx}
            check(pts == {p.pt}, f"{p.display}: payload types {sorted(pts)}, expected {p.pt}")
            ssrcs = {h["ssrc"] for _, h in rx}
            check(len(ssrcs) == 1, f"{p.display}: {len(ssrcs)} SSRCs: {sorted(ssrcs)[:5]}")
            srcs = {h["src"] for _, h in rx}
            check(srcs == {p.bridge}, f"{p.display}: RTP from {srcs}, expected {p.bridge}")
            dseq = [((b["seq"] - a["seq"]) & 0xFFFF) for (_, a), (_, b) in zip(rx, rx[1:])]
            dts = [((b["ts"] - a["ts"]) & 0xFFFFFFFF) for (_, a), (_, b) in zip(rx, rx[1:])]
            back = [d for d in dseq if d == 0 or d > 0x8000]
            check(not back, f"{p.display}: sequence numbers repeat or go back ({len(back)} times)")
            ones = sum(1 for d in dseq if d == 1)
            check(ones >= 0.9 * len(dseq), f"{p.display}: seq steps {sorted(set(dseq))[:8]}, only {ones}/{len(dseq)} are +1")
            bad_ts = [(ds, dt) for ds, dt in zip(dseq, dts) if dt != ds * p.step]
            check(len(bad_ts) <= 0.1 * len(dts), f"{p.display}: ts steps not {p.step} per packet: {bad_ts[:8]}")
            sizes = sorted({len(h["payload"]) for _, h in rx})
            if p.codec == "pcmu":
                check(sizes == [160], f"{p.display}: µ-law payload sizes {sizes}, expected 160")
            markers = sum(1 for _, h in rx if h["marker"])
            ext = sum(1 for _, h in rx if h["ext"] or h["cc"])
            first = rx[0][1]
            self.observed[p.display].update(ssrc=first["ssrc"], first_seq=first["seq"], first_ts=first["ts"],
                                            markers=markers, ext_or_csrc=ext, sizes=(sizes[0], sizes[-1]))
            out.append(f"{p.display}: {len(rx)} packets, {rate:.0f}/s, PT {p.pt}, SSRC {first['ssrc']}, first seq "
                       f"{first['seq']} ts {first['ts']}, seq +1 ({ones}/{len(dseq)}), ts +{p.step}, "
                       f"{markers} marked, payload {sizes[0]}..{sizes[-1]} B")
        return "; ".join(out)

    async def junk_setup(self):
        """What makes `setup` true: a fourth plain-RTP participant that sends only junk."""
        p = self.J
        p.hid = await p.cl.c.attach(AUDIOBRIDGE)
        mark = self.A.cl.mark()
        ev, d = await p.cl.async_(p.hid, {"request": "join", "room": self.room, "display": p.display, "rtp": {
            "ip": p.local[0], "port": p.local[1], "payload_type": 100}}, f"{p.display} join")
        check(d.get("audiobridge") == "joined" and isinstance(d.get("rtp"), dict), f"{p.display} joined: {brief(d)}")
        p.id = d["id"]
        p.bridge = (d["rtp"]["ip"], d["rtp"]["port"])
        await self.A.cl.notification(mark, self.A.hid, lambda x: x.get("audiobridge") == "joined",
                                     f"alice: joined <{p.display}>")

        async def setup_now():
            d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
            mine = [e for e in d.get("participants", []) if e.get("id") == p.id]
            check(len(mine) == 1, f"{p.display} not listed: {brief(d)}")
            return mine[0].get("setup")

        # Nothing here is RTP: shorter than a header, RTCP packet types, empty datagrams.
        rng = random.Random(7)
        t0 = time.monotonic()
        kinds = {}
        while time.monotonic() < t0 + 1.0:
            k = rng.randrange(3)
            if k == 0:
                data = rtp_header(100, p.seq, p.ts, p.ssrc)[:rng.randint(1, 11)]
            elif k == 1:
                data = bytes([0x80, rng.choice((200, 201, 202, 203, 205, 206))]) + bytes(26)
            else:
                data = b""
            p.send_raw(data)
            kinds[k] = kinds.get(k, 0) + 1
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        check(await setup_now() is False, f"{p.display} is set up after truncated headers, RTCP types and empty "
              f"datagrams only ({kinds})")
        check(not p.udp.packets, f"{p.display}: the bridge sent it {len(p.udp.packets)} datagrams already")
        # RTP version 0 (PT 100, a 12-byte header and 160 bytes): observed, not asserted.
        for i in range(3):
            p.send_raw(rtp_header(100, p.seq + i, p.ts + 960 * i, p.ssrc, version=0) + bytes(160))
        await asyncio.sleep(0.5)
        v0 = await setup_now()
        v0_rx = len(p.udp.packets)
        # A well-formed header with a garbage payload: that is RTP.
        for i in range(3):
            p.send_frame(bytes(rng.getrandbits(8) for _ in range(60)))
            await asyncio.sleep(0.02)
        end = time.monotonic() + STEP
        while not await setup_now():
            check(time.monotonic() < end, f"{p.display}: still setup:false {STEP:.0f} s after valid RTP headers")
            await asyncio.sleep(0.1)
        self.observed["junk"] = {"version0_sets_up": v0, "version0_rx": v0_rx}
        marks = {q.display: q.cl.mark() for q in (self.A, self.O, self.U)}
        r = await p.cl.c.detach(p.hid)
        check(r.get("janus") == "success", f"detach: {brief(r)}")
        self.detached.add(p.hid)
        for q in (self.A, self.O, self.U):
            n = await q.cl.notification(marks[q.display], q.hid, lambda x: x.get("leaving") == p.id,
                                        f"{q.display}: leaving <{p.display}>")
            check(n == {"audiobridge": "event", "room": self.room, "leaving": p.id}, f"{q.display}: {brief(n)}")
        await p.cl.core_event(marks[self.O.display], p.hid, "detached", f"{p.display}: detached")
        return (f"truncated/RTCP/empty for 1 s: setup:false, nothing sent to it; then RTP version 0: "
                f"setup:{str(v0).lower()} ({v0_rx} datagrams back); a valid header + garbage payload: setup:true; "
                f"detached → the others: leaving")

    def garbage(self, p, rng):
        """One malformed or hostile datagram for p's bridge port (cycled through the kinds)."""
        kind = rng.randrange(13)
        rnd = lambda n: bytes(rng.getrandbits(8) for _ in range(n))  # noqa: E731
        hdr = lambda **kw: rtp_header(kw.pop("pt", p.pt), rng.getrandbits(16), rng.getrandbits(32),  # noqa: E731
                                      kw.pop("ssrc", rng.getrandbits(32)), **kw)
        if kind == 0:
            return "random", rnd(rng.randint(1, 400))
        if kind == 1:
            return "truncated header", hdr()[:rng.randint(1, 11)]
        if kind == 2:
            return "version 0/1/3", hdr(version=rng.choice((0, 1, 3))) + rnd(160)
        if kind == 3:
            return "CSRC count 15, short", hdr(cc=15) + rnd(8)
        if kind == 4:
            return "CSRC count 15, long", hdr(cc=15) + rnd(200)
        if kind == 5:
            return "extension length 0xffff", hdr(ext=True) + b"\xbe\xde\xff\xff" + rnd(8)
        if kind == 6:
            return "padding beyond the packet", hdr(pad=True) + rnd(3) + b"\xff"
        if kind == 7:
            return "RTCP packet type", bytes([0x80, rng.choice((200, 201, 203))]) + rnd(26)
        if kind == 8:
            return "empty", b""
        if kind == 9:
            return "oversized", hdr() + rnd(rng.choice((1400, 1600, 4000)))
        if kind == 10:
            return "garbage payload, foreign SSRC", hdr() + rnd(rng.choice((1, 3, 80, 160, 300)))
        if kind == 11:
            return "other payload type", hdr(pt=rng.choice((8, 9, 96, 111, 127))) + rnd(160)
        return "garbage payload, in-stream", None  # p.send_frame(<garbage>): takes one slot of its stream

    async def send_garbage(self):
        rng = random.Random(0x6A616E6F)
        counts = {}
        marks = {self.A.display: self.SA.mark(), "R": self.SR.mark()}
        t0 = time.monotonic()
        while time.monotonic() < t0 + GARBAGE_S:
            for p in (self.O, self.U):
                what, data = self.garbage(p, rng)
                if data is None:
                    p.send_frame(bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 20, 160, 400)))))
                else:
                    p.send_raw(data)
                counts[what] = counts.get(what, 0) + 1
            await asyncio.sleep(0.004)
        self.garbage_end = time.monotonic()
        # The server still answers, and the room is as it was.
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants after garbage")
        got = sorted((no_talking(e) for e in d.get("participants", [])), key=lambda e: e["id"])
        want = sorted((entry(q, True) for q in (self.A, self.O, self.U)), key=lambda e: e["id"])
        check(got == want, f"after the garbage: participants {brief(got)}, expected {brief(want)}")
        # Nothing was said about it to anyone (no leaving/kicked/participants events).
        said = [m for cl, k in ((self.SA, self.A.display), (self.SR, "R")) for _, m in cl.c.received[marks[k]:]
                if m.get("janus") not in ("ack", "success")]
        check(not said, f"events during the garbage: {brief(said)}")
        self.observed["garbage"] = counts
        return f"{sum(counts.values())} datagrams to the two bridge ports in {GARBAGE_S:.0f} s ({len(counts)} kinds); " \
               f"listparticipants unchanged, no events"

    async def mix_after_garbage(self):
        res = await self.listen(self.garbage_end, {
            self.A: ((OPUS_HZ, PCMU_HZ), (ALICE_HZ,)),
            self.O: ((ALICE_HZ, PCMU_HZ), (OPUS_HZ,)),
            self.U: ((ALICE_HZ, OPUS_HZ), (PCMU_HZ,)),
        }, "after the garbage")
        for p in (self.O, self.U):
            rx = p.received(self.garbage_end)
            check(len(rx) >= 0.6 * (time.monotonic() - self.garbage_end) / FRAME_S,
                  f"{p.display}: only {len(rx)} packets from the bridge since the garbage ended")
            ssrcs = {h["ssrc"] for _, h in p.received()}
            check(len(ssrcs) == 1, f"{p.display}: the bridge's SSRC changed: {sorted(ssrcs)}")
        return res

    async def stranger_ignored(self):
        """A valid 2500 Hz Opus stream from another UDP port of ours to rtp-opus's bridge port."""
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.addr, 0))
        src = OpusTone(STRANGER_HZ, 0.3)
        ssrc, seq, ts = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)

        async def run():
            n = 0
            start = time.monotonic()
            while True:
                tr.sendto(rtp_header(100, seq + n, ts + 960 * n, ssrc) + src.next(), self.O.bridge)
                n += 1
                await asyncio.sleep(max(0.0, start + n * FRAME_S - time.monotonic()))

        self.stranger = (tr, asyncio.ensure_future(run()))
        self.stranger_at = time.monotonic()
        try:
            tones = TONES + (STRANGER_HZ,)
            return await self.listen(self.stranger_at, {
                self.A: ((OPUS_HZ, PCMU_HZ), (ALICE_HZ, STRANGER_HZ)),
                self.U: ((ALICE_HZ, OPUS_HZ), (PCMU_HZ, STRANGER_HZ)),
            }, "a stranger sends to rtp-opus's bridge port", tones)
        finally:
            await self.stop_stranger()

    async def stop_stranger(self):
        if self.stranger:
            tr, task = self.stranger
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001
                pass
            tr.close()
            self.stranger = None

    async def leave(self):
        p = self.O
        marks = {q.display: q.cl.mark() for q in (self.A, self.U)}
        ev, d = await p.cl.async_(p.hid, {"request": "leave"}, "rtp-opus leave")
        check(d == {"audiobridge": "left", "room": self.room, "id": p.id}, f"leave: {brief(d)}")
        self.leave_at = time.monotonic()
        for q in (self.A, self.U):
            n = await q.cl.notification(marks[q.display], q.hid, lambda x: "leaving" in x, f"{q.display}: leaving <rtp-opus>")
            check(n == {"audiobridge": "event", "room": self.room, "leaving": p.id}, f"{q.display}: {brief(n)}")
        # rtp-opus keeps sending its 1000 Hz: it must no longer be mixed, and gets nothing back.
        res = await self.listen(self.leave_at, {
            self.A: ((PCMU_HZ,), (ALICE_HZ, OPUS_HZ)),
            self.U: ((ALICE_HZ,), (OPUS_HZ, PCMU_HZ)),
        }, "rtp-opus left (still sending)")
        late = p.received(self.leave_at + 0.5)
        check(not late, f"rtp-opus still got {len(late)} RTP packets from the bridge more than 0.5 s after leaving")
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        ids = sorted(e["id"] for e in d.get("participants", []))
        check(ids == sorted([self.A.id, self.U.id]), f"after leave: participants {ids}")
        self.observed["after_leave_rx"] = len(p.received(self.leave_at))
        return f"left; alice, rtp-pcmu told; nothing sent to it after leave; {res}"

    async def detach_pcmu(self):
        p = self.U
        mark = self.A.cl.mark()
        await p.stop()
        r = await p.cl.c.detach(p.hid)
        check(r.get("janus") == "success", f"detach: {brief(r)}")
        self.detached.add(p.hid)
        n = await self.A.cl.notification(mark, self.A.hid, lambda x: "leaving" in x, "alice: leaving <rtp-pcmu>")
        check(n == {"audiobridge": "event", "room": self.room, "leaving": p.id}, f"alice: {brief(n)}")
        d = await self.SA.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        ids = [e["id"] for e in d.get("participants", [])]
        check(ids == [self.A.id], f"after detach: participants {ids}")
        return "alice: leaving; only alice left"

    async def destroy_room(self):
        await self.O.stop()
        mark = self.A.cl.mark()
        d = await self.SA.sync(self.adm, {"request": "destroy", "room": self.room}, "destroy")
        self.destroyed.add(self.room)
        check(d == {"audiobridge": "destroyed", "room": self.room, "permanent": False}, f"destroy: {brief(d)}")
        n = await self.A.cl.notification(mark, self.A.hid, lambda x: x.get("audiobridge") == "destroyed", "alice: destroyed")
        check(n == {"audiobridge": "destroyed", "room": self.room}, f"alice: {brief(n)}")
        await self.A.cl.core_event(mark, self.A.hid, "hangup", "alice: hangup after destroy")
        for cl, hids in ((self.SA, (self.adm, self.A.hid)), (self.SR, (self.probe, self.O.hid))):
            for hid in hids:
                r = await cl.c.detach(hid)
                check(r.get("janus") == "success", f"detach: {brief(r)}")
                self.detached.add(hid)
            r = await cl.c.destroy()
            check(r.get("janus") == "success", f"destroy session: {brief(r)}")
        return "destroyed; alice told + hangup; handles detached, sessions destroyed"

    async def close(self):
        await self.stop_stranger()
        for p in (self.O, self.U):
            await p.stop()
        for room in (self.room, self.room2):
            if room is not None and room not in self.destroyed and self.adm is not None:
                try:
                    await asyncio.wait_for(self.SA.c.message(self.adm, {"request": "destroy", "room": room}), 5)
                except Exception:  # noqa: BLE001
                    pass
        if self.A.sink.task is not None:
            self.A.sink.task.cancel()
        if self.A.pc is not None:
            try:
                await asyncio.wait_for(self.A.pc.close(), 5)
            except Exception:  # noqa: BLE001
                pass
        for p in (self.O, self.U, self.J):
            p.close()
        for cl in (self.SA, self.SR):
            await cl.c.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    ap.add_argument("--addr", default=os.environ.get("JANUS_MEDIA_ADDR"),
                    help="the namespace address: the plain-RTP sockets bind to it")
    ap.add_argument("--ws", default=None, help="ignored (HTTP only)")
    args = ap.parse_args()
    runner = Runner()
    if not args.http or not args.addr:
        runner.fail("audiobridge plain RTP", 0, "--http and --addr are needed")
        runner.summary()
        return 1
    run = RtpRun(args.http, args.addr)
    print(f"▶ AudioBridge plain-RTP participants ({args.http}), room at {ROOM_RATE} Hz", flush=True)
    step = stepper(runner, run.dump)
    media_t = SETTLE + WINDOW + 10
    try:
        await step("2 sessions; create a room with allow_rtp_participants and one without; 3 UDP sockets",
                   run.setup, 20)
        await step("join with rtp in the room without allow_rtp_participants → 489 "
                   "'Plain RTP participants not allowed in this room'", run.not_allowed, 3 * STEP, essential=False)
        await step("alice joins + offer (440 Hz) → joined, answer, connected, webrtcup", run.join_alice,
                   CONNECT_TIMEOUT + 2 * STEP)
        await step("rtp-opus joins with rtp {ip, port, payload_type:100} → joined + rtp {ip, port, payload_type}; "
                   "alice: joined [setup:false]; nothing until it sends; then setup:true and RTP back",
                   lambda: run.join_rtp(run.O, []), 4 * STEP + QUIET)
        await step("rtp-pcmu joins with codec pcmu → rtp.payload_type 0; alice and rtp-opus told; likewise",
                   lambda: run.join_rtp(run.U, [run.O]), 4 * STEP + QUIET)
        await step("listparticipants → alice, rtp-opus, rtp-pcmu (setup:true)", run.listparticipants, STEP,
                   essential=False)
        await step("mix: alice hears 1000 + 1500 Hz; rtp-opus (Opus RTP) 440 + 1500; rtp-pcmu (µ-law) 440 + 1000; "
                   "nobody its own tone", run.mix, media_t, essential=False)
        await step("RTP from the bridge: PT 100 / 0, one SSRC, seq +1, ts +960 / +160, ~50 packets/s, from the "
                   "joined rtp address", run.rtp_out, 5, essential=False)
        await step("rtp-junk joins and sends no RTP (truncated headers, RTCP types, empty datagrams) → setup:false, "
                   "nothing sent to it; a valid header with a garbage payload → setup:true", run.junk_setup,
                   3 * STEP + 3, essential=False)
        await step(f"garbage for {GARBAGE_S:.0f} s on both bridge ports (random, truncated, bad version, CSRC 15, "
                   "bad extension/padding, RTCP, empty, oversized, garbage payloads) → room unchanged, no events",
                   run.send_garbage, GARBAGE_S + STEP)
        await step("after the garbage: the same mix, RTP still flowing, same SSRC", run.mix_after_garbage, media_t,
                   essential=False)
        await step("valid RTP (2500 Hz) from another port to rtp-opus's bridge port is not mixed",
                   run.stranger_ignored, media_t, essential=False)
        await step("rtp-opus leave → left; alice, rtp-pcmu: leaving; its RTP no longer mixed, nothing sent to it",
                   run.leave, 2 * STEP + media_t, essential=False)
        await step("detach rtp-pcmu's handle → alice: leaving", run.detach_pcmu, 2 * STEP, essential=False)
        await step("destroy → alice: destroyed + hangup; detach, destroy sessions", run.destroy_room, 3 * STEP)
    finally:
        await run.close()
    print(f"observed: {brief(run.observed, 2000)}", flush=True)
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
