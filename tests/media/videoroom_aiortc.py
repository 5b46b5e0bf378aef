#!/usr/bin/env python3
"""End-to-end VideoRoom (janus.plugin.videoroom) with aiortc: a publisher, a subscriber and the
room notifications around them, with real audio and video through the server.

For each transport (HTTP long poll, WebSocket), with two Janus sessions: session A holds the
publisher ("alice") and a short-lived participant ("leaver"); session B holds an admin handle
(create/listparticipants/kick/destroy), a participant that never publishes ("watcher") and the
subscriber. The room is created here (random id, secret, require_pvtid) and destroyed at the end,
so runs never collide with each other or with the sample rooms.

  create room -> watcher joins -> alice joins -> alice publishes (offer: 440 Hz tone + 320x240
  colour bars with a frame counter) -> configured + answer, ICE/DTLS, webrtcup, media -> watcher
  gets `publishers` -> subscriber with a wrong private_id is refused (433) -> subscriber joins
  with streams:[{feed}] and the watcher's private_id -> attached + offer -> start + answer ->
  started, webrtcup -> the subscriber decodes alice's video and audio (same checks as the
  EchoTest) -> listparticipants -> alice unpublishes: unpublished ok, hangup, watcher gets
  `unpublished`, subscriber gets `updated` + an offer with inactive m-lines, no more frames ->
  start -> alice publishes again -> leaver joins (sees alice) -> kick alice -> leaver leaves ->
  destroy (watcher gets `destroyed`) -> exists:false -> detach, destroy sessions.

Every message shape asserted here is what Janus 1.1.2 really sends (observed, then encoded);
where it differs from shared/spec/plugin-videoroom.md a comment says so ("Janus 1.1.2:").

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`);
exits 1 if anything failed. Usage:
  videoroom_aiortc.py --http http://10.x.y.1:8088/janus --ws ws://10.x.y.1:8188 [--only http|ws]
"""

import argparse
import asyncio
import base64
import os
import secrets
import socket
import sys
import time
import traceback

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

# The synthetic sources, the decoders and the video/audio checks are the EchoTest's.
from echotest_aiortc import (
    AssertionFailed, BarsTrack, CONNECT_TIMEOUT, EchoRun, H, MEDIA_TIMEOUT, MIN_FRAMES, Runner,
    SAMPLE_RATE, ToneTrack, W, bar_colours, check, decode_counter,
)
from janus_client import HttpJanus, WsJanus, brief

VIDEOROOM = "janus.plugin.videoroom"
STEP = 12.0  # seconds: bound of one signalling exchange (request -> event/notification)
# After the subscriber's `updated`, frames decoded in [0.5 s, 2.0 s] after it must be at most this
# many (a jitter buffer may still release one or two).
STOPPED_WINDOW = (0.5, 2.0)
STOPPED_MAX_FRAMES = 3


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------

def pdata(m):
    return m["plugindata"]["data"]


def sdp_sections(sdp):
    """[(kind, [lines])] for each m= section."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            out.append((line[2:].split(" ", 1)[0], [line]))
        elif out:
            out[-1][1].append(line)
    return out


def section_mid(lines):
    for l in lines:
        if l.startswith("a=mid:"):
            return l[6:].strip()
    return None


def section_direction(lines):
    for l in lines:
        if l in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            return l[2:]
    return "sendrecv"


def check_transport_sdp(sdp, addr, what):
    check("a=fingerprint:" in sdp, f"{what}: no a=fingerprint")
    check("a=ice-ufrag:" in sdp and "a=ice-pwd:" in sdp, f"{what}: no ICE credentials")
    cands = [l for l in sdp.splitlines() if l.startswith("a=candidate:")]
    check(cands, f"{what}: aiortc does not trickle, the SDP must carry the server's candidates (none)")
    if addr:
        check(any(f" {addr} " in l for l in cands), f"{what}: no candidate on the namespace address {addr}: {cands}")


def stream_summary(streams):
    return [(s.get("type"), s.get("mindex"), s.get("mid"), s.get("codec")) for s in streams]


async def wait_connected(pc, what):
    end = time.monotonic() + CONNECT_TIMEOUT
    while pc.connectionState != "connected":
        check(pc.connectionState not in ("failed", "closed"),
              f"{what}: peer connection {pc.connectionState} (ICE {pc.iceConnectionState})")
        if time.monotonic() > end:
            raise AssertionFailed(f"{what}: not connected after {CONNECT_TIMEOUT:.0f} s: "
                                  f"connectionState={pc.connectionState} ICE={pc.iceConnectionState}")
        await asyncio.sleep(0.05)


class Client:
    """A janus_client session plus the VideoRoom request patterns used here."""

    def __init__(self, c, name):
        self.c = c
        self.name = name

    def mark(self):
        return len(self.c.received)

    async def sync(self, hid, body, what):
        """A synchronous plugin request: the reply is `success` carrying plugindata."""
        r = await self.c.message(hid, body)
        check(r.get("janus") == "success", f"{what}: synchronous request, expected success, got {brief(r)}")
        check(r.get("sender") == hid, f"{what}: reply sender {r.get('sender')} != handle {hid}")
        check(r.get("plugindata", {}).get("plugin") == VIDEOROOM, f"{what}: plugindata {brief(r.get('plugindata'))}")
        data = pdata(r)
        check("error_code" not in data, f"{what}: plugin error {brief(data)}")
        return data

    async def async_(self, hid, body, what, jsep=None, expect_error=False):
        """An asynchronous plugin request: `ack`, then an `event` with the same transaction
        (either order on the wire: Janus races them on both transports)."""
        r = await self.c.message(hid, body, jsep)
        check(r.get("janus") == "ack", f"{what}: asynchronous request, expected ack, got {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx,
                                   STEP, f"the event answering {what}")
        check(ev.get("sender") == hid, f"{what}: event sender {ev.get('sender')} != handle {hid}")
        check(ev.get("session_id") == self.c.session_id, f"{what}: event session_id {brief(ev)}")
        check(ev.get("plugindata", {}).get("plugin") == VIDEOROOM, f"{what}: plugindata {brief(ev.get('plugindata'))}")
        data = pdata(ev)
        if not expect_error:
            check("error_code" not in data, f"{what}: plugin error {brief(data)}")
        return ev, data

    async def notification(self, mark, hid, pred, what, timeout=STEP):
        """An unsolicited plugin event for `hid` received after `mark` whose data matches `pred`.
        Unsolicited events carry no transaction (Janus omits it; janode routes on it)."""
        old = {id(m) for _, m in self.c.received[:mark]}
        m = await self.c.wait_for(
            lambda m: id(m) not in old and m["janus"] == "event" and m.get("sender") == hid
            and pred(pdata(m)), timeout, f"{what} (handle {hid})")
        check("transaction" not in m, f"{what}: an unsolicited event must not carry a transaction: {brief(m)}")
        check(m["plugindata"].get("plugin") == VIDEOROOM, f"{what}: plugindata {brief(m['plugindata'])}")
        return m

    async def core_event(self, mark, hid, kind, what, timeout=STEP):
        old = {id(m) for _, m in self.c.received[:mark]}
        return await self.c.wait_for(
            lambda m: id(m) not in old and m["janus"] == kind and m.get("sender") == hid, timeout, what)


class Sink:
    """The subscriber's decoders: same frame bookkeeping and checks as the EchoTest's, plus the
    arrival time of each decoded video frame (to see frames stop after `unpublish`)."""

    consume_audio = EchoRun.consume_audio
    check_video = EchoRun.check_video
    check_audio = EchoRun.check_audio

    def __init__(self, bars):
        self.bars = bars  # the publisher's source: counters must be ones it sent
        self.video_frames = []  # (counter or None, (w, h), colours)
        self.video_times = []
        self.audio = []
        self.audio_rate = None
        self.tasks = []

    async def consume_video(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            rgb = frame.to_ndarray(format="rgb24")
            ok = rgb.shape[:2] == (H, W)
            self.video_frames.append((decode_counter(rgb) if ok else None, (frame.width, frame.height),
                                      bar_colours(rgb) if ok else None))
            self.video_times.append(time.monotonic())

    def frames_between(self, t0, t1):
        return sum(1 for t in self.video_times if t0 <= t < t1)

    def on_track(self, track):
        if track.kind == "video":
            self.tasks.append(asyncio.ensure_future(self.consume_video(track)))
        else:
            self.tasks.append(asyncio.ensure_future(self.consume_audio(track)))

    async def collect(self):
        end = time.monotonic() + MEDIA_TIMEOUT
        while time.monotonic() < end:
            audio_s = sum(len(a) for a in self.audio) / (self.audio_rate or SAMPLE_RATE)
            good = [f for f in self.video_frames if f[0] is not None]
            if len(good) >= MIN_FRAMES + 30 and audio_s >= 2.0:
                return
            await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------------------------
# One room conversation
# ------------------------------------------------------------------------------------------------

class RoomRun:
    def __init__(self, kind, url, addr):
        mk = HttpJanus if kind == "http" else WsJanus
        self.A = Client(mk(url), "A")  # publisher alice + leaver
        self.B = Client(mk(url), "B")  # admin, watcher, subscriber
        self.addr = addr
        self.secret = "jano-" + secrets.token_hex(4)
        self.description = f"jano videoroom test {kind} {os.getpid()}"
        self.room = None
        self.room_destroyed = False
        self.adm = self.watcher = self.pub = self.sub = self.leaver = None
        self.watcher_id = self.watcher_pvt = self.pub_id = self.pub_pvt = self.leaver_id = None
        self.pub_pc = self.sub_pc = None
        self.old_pcs = []
        self.bars = self.tone = None
        self.offer_streams = None  # [(type, mindex, mid)] from alice's offer
        self.sink = None

    # -- helpers ---------------------------------------------------------------------------
    def expected_streams(self):
        codec = {"audio": "opus", "video": "vp8"}
        return [(t, i, mid, codec[t]) for t, i, mid in self.offer_streams]

    def check_publisher_entry(self, p, what):
        # Janus 1.1.2: a publisher entry (in `joined` and in the `publishers` event) is
        # {id, display, audio_codec, video_codec, streams:[{type, mindex, mid, codec, ...}], ...};
        # `joined` adds `talking:false` (per entry and per audio stream), the `publishers` event
        # does not. Extra keys are allowed here.
        check(p.get("id") == self.pub_id, f"{what}: publisher id {p.get('id')} != {self.pub_id}")
        check(p.get("display") == "alice", f"{what}: display {p.get('display')!r}")
        check(p.get("audio_codec") == "opus" and p.get("video_codec") == "vp8",
              f"{what}: audio_codec/video_codec {p.get('audio_codec')!r}/{p.get('video_codec')!r}")
        streams = p.get("streams")
        check(isinstance(streams, list), f"{what}: no streams list: {brief(p)}")
        check(stream_summary(streams) == self.expected_streams(),
              f"{what}: streams {stream_summary(streams)}, expected {self.expected_streams()}")
        check(not any(s.get("disabled") for s in streams), f"{what}: a stream is disabled: {brief(streams)}")

    async def new_publisher_pc(self):
        for pc in [self.pub_pc] if self.pub_pc else []:
            self.old_pcs.append(pc)
        self.pub_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tone, self.bars = ToneTrack(), BarsTrack()
        self.pub_pc.addTrack(self.tone)
        self.pub_pc.addTrack(self.bars)
        await self.pub_pc.setLocalDescription(await self.pub_pc.createOffer())  # gathers all candidates
        sdp = self.pub_pc.localDescription.sdp
        self.offer_streams = [(k, i, section_mid(lines)) for i, (k, lines) in enumerate(sdp_sections(sdp))]
        return {"type": "offer", "sdp": sdp, "trickle": False}

    async def publish(self, what):
        """`publish` with a fresh offer -> `configured:"ok"` + answer -> connected -> webrtcup + media."""
        A = self.A
        offer = await self.new_publisher_pc()
        mark = A.mark()
        ev, d = await A.async_(self.pub, {"request": "publish"}, what, jsep=offer)
        # Janus 1.1.2: {"videoroom":"event","room":R,"configured":"ok","audio_codec":"opus",
        # "video_codec":"vp8","streams":[{type,mindex,mid,codec}]} — for aiortc's offer the streams
        # carry no fec (aiortc's opus has no useinbandfec) and no *_ext_id fields (the spec's
        # example shows audiolevel_ext_id/videoorient_ext_id; 1.1.2 does not send them).
        check(d.get("videoroom") == "event" and d.get("room") == self.room and d.get("configured") == "ok",
              f"{what}: {brief(d)}")
        check(d.get("audio_codec") == "opus" and d.get("video_codec") == "vp8", f"{what}: codecs {brief(d)}")
        check(isinstance(d.get("streams"), list) and stream_summary(d["streams"]) == self.expected_streams(),
              f"{what}: streams {brief(d.get('streams'))}, expected {self.expected_streams()}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "answer", f"{what}: the event must carry a jsep answer: {brief(jsep)}")
        sdp = jsep["sdp"]
        check_transport_sdp(sdp, self.addr, f"{what} answer")
        secs = sdp_sections(sdp)
        check([(k, section_mid(l)) for k, l in secs] == [(t, m) for t, _, m in self.offer_streams],
              f"{what}: answer m-lines {[(k, section_mid(l)) for k, l in secs]} != offer {self.offer_streams}")
        check(all(section_direction(l) == "recvonly" for _, l in secs),
              f"{what}: the publisher's answer must be recvonly: {[section_direction(l) for _, l in secs]}")
        await self.pub_pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await wait_connected(self.pub_pc, what)
        await A.core_event(mark, self.pub, "webrtcup", f"{what}: webrtcup")
        old = {id(x) for _, x in A.c.received[:mark]}
        for kind in ("audio", "video"):
            m = await A.c.wait_for(
                lambda m, kind=kind: id(m) not in old and m["janus"] == "media" and m.get("sender") == self.pub
                and m.get("type") == kind and m.get("receiving") is True, STEP,
                f"{what}: media {{type:{kind}, receiving:true}}")
            want_mid = next(mid for t, _, mid in self.offer_streams if t == kind)
            check(m.get("mid") == want_mid, f"{what}: media event mid {m.get('mid')!r}, expected {want_mid!r}")
        return mark

    # -- steps -----------------------------------------------------------------------------
    async def setup(self):
        for cl in (self.A, self.B):
            await cl.c.connect()
            sid = await cl.c.create()
            check(isinstance(sid, int) and sid > 0, f"session id {sid!r}")
        self.adm = await self.B.c.attach(VIDEOROOM)
        d = await self.B.sync(self.adm, {
            "request": "create", "description": self.description, "secret": self.secret,
            "publishers": 6, "require_pvtid": True, "is_private": True,
        }, "create")
        # Janus 1.1.2: {"videoroom":"created","room":R,"permanent":false}; R random, JS-safe.
        check(d.get("videoroom") == "created" and d.get("permanent") is False, f"create: {brief(d)}")
        room = d.get("room")
        check(isinstance(room, int) and 0 < room <= 2 ** 53 - 1, f"create: room id {room!r}")
        self.room = room
        d = await self.B.sync(self.adm, {"request": "exists", "room": room}, "exists")
        check(d == {"videoroom": "success", "room": room, "exists": True}, f"exists: {brief(d)}")
        return f"sessions {self.A.c.session_id} and {self.B.c.session_id}, room {room}"

    async def join_publisher(self, cl, display, what):
        hid = await cl.c.attach(VIDEOROOM)
        ev, d = await cl.async_(hid, {"request": "join", "ptype": "publisher", "room": self.room,
                                      "display": display}, what)
        check(ev.get("jsep") is None, f"{what}: a plain join carries no jsep")
        # Janus 1.1.2: {"videoroom":"joined","room":R,"description":..,"id":ID,"private_id":P,
        # "publishers":[...]} — no `attendees` (notify_joining is off).
        check(d.get("videoroom") == "joined" and d.get("room") == self.room, f"{what}: {brief(d)}")
        check(d.get("description") == self.description, f"{what}: description {d.get('description')!r}")
        check(isinstance(d.get("id"), int) and 0 < d["id"] <= 2 ** 53 - 1, f"{what}: id {d.get('id')!r}")
        check(isinstance(d.get("private_id"), int) and d["private_id"] > 0, f"{what}: private_id {d.get('private_id')!r}")
        check(isinstance(d.get("publishers"), list), f"{what}: publishers list missing: {brief(d)}")
        check("attendees" not in d, f"{what}: attendees are only sent with notify_joining: {brief(d)}")
        return hid, d

    async def watcher_joins(self):
        self.watcher, d = await self.join_publisher(self.B, "watcher", "watcher join")
        check(d["publishers"] == [], f"watcher join: no one publishes yet, publishers {brief(d['publishers'])}")
        self.watcher_id, self.watcher_pvt = d["id"], d["private_id"]
        return f"id {self.watcher_id}"

    async def alice_joins(self):
        self.pub, d = await self.join_publisher(self.A, "alice", "alice join")
        # The watcher is a participant but not a publisher: never listed.
        check(d["publishers"] == [], f"alice join: publishers {brief(d['publishers'])} (the watcher does not publish)")
        check(d["id"] != self.watcher_id, f"alice join: same id as the watcher {d['id']}")
        self.pub_id, self.pub_pvt = d["id"], d["private_id"]
        return f"id {self.pub_id}"

    async def alice_publishes(self):
        self.mark_before_publish = self.B.mark()
        await self.publish("alice publish")
        return f"streams {self.expected_streams()}"

    async def watcher_sees_publisher(self):
        # Janus 1.1.2 sends it when the publisher's PeerConnection is up (webrtcup), not at
        # `configured`: {"videoroom":"event","room":R,"publishers":[<alice>]}.
        m = await self.B.notification(self.mark_before_publish, self.watcher, lambda d: "publishers" in d,
                                      "watcher: publishers event")
        d = pdata(m)
        check(d.get("videoroom") == "event" and d.get("room") == self.room, f"publishers event: {brief(d)}")
        check(isinstance(d["publishers"], list) and len(d["publishers"]) == 1,
              f"publishers event must name exactly the new publisher: {brief(d)}")
        self.check_publisher_entry(d["publishers"][0], "publishers event")
        return "names alice with her streams"

    async def wrong_private_id(self):
        # The room has require_pvtid: a subscription with a private_id no participant owns is
        # refused. Janus 1.1.2: ack, then {"videoroom":"event","error_code":433,"error":".."}.
        self.sub = await self.B.c.attach(VIDEOROOM)
        bogus = (self.watcher_pvt ^ 0x5A5A5A5A) or 1
        if bogus == self.pub_pvt:
            bogus ^= 1
        ev, d = await self.B.async_(self.sub, {"request": "join", "ptype": "subscriber", "room": self.room,
                                               "streams": [{"feed": self.pub_id}], "private_id": bogus},
                                    "subscriber join with a wrong private_id", expect_error=True)
        check(d.get("videoroom") == "event" and d.get("error_code") == 433 and isinstance(d.get("error"), str),
              f"expected error_code 433, got {brief(d)}")
        check(ev.get("jsep") is None, "an error carries no jsep")
        return f"433 {d['error']!r}"

    async def subscribe(self):
        B = self.B
        self.sink = Sink(self.bars)
        self.sub_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sub_pc.on("track", self.sink.on_track)
        mark = B.mark()
        # Same handle as the refused join: a failed join leaves the handle unconfigured.
        ev, d = await B.async_(self.sub, {"request": "join", "ptype": "subscriber", "room": self.room,
                                          "streams": [{"feed": self.pub_id}], "private_id": self.watcher_pvt},
                               "subscriber join")
        # Janus 1.1.2: {"videoroom":"attached","room":R,"streams":[{type, active:true, mindex, mid,
        # ready:false, send:true, feed_id, feed_display, feed_mid, codec}, ...]} (no top-level
        # id/display: those are only for the legacy `feed` syntax).
        check(d.get("videoroom") == "attached" and d.get("room") == self.room, f"attached: {brief(d)}")
        streams = d.get("streams")
        check(isinstance(streams, list) and len(streams) == len(self.offer_streams), f"attached streams: {brief(streams)}")
        for i, (s, (t, _, feed_mid)) in enumerate(zip(streams, self.offer_streams)):
            want = {"type": t, "active": True, "mindex": i, "ready": False, "send": True,
                    "feed_id": self.pub_id, "feed_display": "alice", "feed_mid": feed_mid,
                    "codec": {"audio": "opus", "video": "vp8"}[t]}
            got = {k: s.get(k) for k in want}
            check(got == want, f"attached stream {i}: {brief(s)}, expected {want}")
            check(isinstance(s.get("mid"), str) and s["mid"], f"attached stream {i}: mid {s.get('mid')!r}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "offer", f"attached must carry a jsep offer: {brief(jsep)}")
        sdp = jsep["sdp"]
        check_transport_sdp(sdp, self.addr, "subscriber offer")
        secs = sdp_sections(sdp)
        check([(k, section_mid(l)) for k, l in secs] == [(s["type"], s["mid"]) for s in streams],
              f"offer m-lines {[(k, section_mid(l)) for k, l in secs]} != attached streams")
        check(all(section_direction(l) == "sendonly" for _, l in secs),
              f"the subscriber offer must be sendonly: {[section_direction(l) for _, l in secs]}")
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.sub_pc.setLocalDescription(await self.sub_pc.createAnswer())
        ev, d = await B.async_(self.sub, {"request": "start"}, "start",
                               jsep={"type": "answer", "sdp": self.sub_pc.localDescription.sdp})
        check(d == {"videoroom": "event", "room": self.room, "started": "ok"}, f"start: {brief(d)}")
        check(ev.get("jsep") is None, f"started carries no jsep: {brief(ev.get('jsep'))}")
        await wait_connected(self.sub_pc, "subscriber")
        await B.core_event(mark, self.sub, "webrtcup", "subscriber webrtcup")
        return f"{len(streams)} streams"

    async def collect(self):
        await self.sink.collect()

    async def srtp_forward(self):
        """rtp_forward with srtp_suite 32 (audio) and 80 (video) and one SDES key: what arrives
        at a plain UDP socket is SRTP that libsrtp (pylibsrtp, aiortc's own) authenticates and
        decrypts into RTP of alice's streams; listforwarders marks them srtp."""
        from pylibsrtp import Error as SrtpError, Policy, Session
        key = os.urandom(30)
        crypto = base64.b64encode(key).decode()
        got = {}
        for kind, suite, profile in (("audio", 32, Policy.SRTP_PROFILE_AES128_CM_SHA1_32),
                                     ("video", 80, Policy.SRTP_PROFILE_AES128_CM_SHA1_80)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.addr, 0))
            sock.setblocking(False)
            mid = next(m for t, _, m in self.offer_streams if t == kind)
            what = f"rtp_forward {kind} srtp_suite {suite}"
            d = await self.B.sync(self.adm, {
                "request": "rtp_forward", "room": self.room, "secret": self.secret,
                "publisher_id": self.pub_id, "host": self.addr, "srtp_suite": suite,
                "srtp_crypto": crypto, "streams": [{"mid": mid, "port": sock.getsockname()[1]}],
            }, what)
            fws = d.get("forwarders") or []
            check(len(fws) == 1 and fws[0].get("srtp") is True and fws[0].get("type") == kind,
                  f"{what}: forwarders {brief(fws)}")
            got[kind] = (sock, Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND,
                                              srtp_profile=profile)), fws[0]["stream_id"], [], [0])
        lst = await self.B.sync(self.adm, {"request": "listforwarders", "room": self.room,
                                           "secret": self.secret}, "listforwarders")
        listed = [f for p in lst.get("publishers", []) for f in p.get("forwarders", [])]
        check(sum(1 for f in listed if f.get("srtp") is True) >= 2, f"listforwarders: {brief(listed)}")
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            for kind, (sock, sess, _, plain, bad) in got.items():
                while True:
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        break
                    try:
                        plain.append(sess.unprotect(data))
                    except SrtpError:
                        bad[0] += 1
            await asyncio.sleep(0.02)
        out = []
        for kind, (sock, _, stream_id, plain, bad) in got.items():
            sock.close()
            await self.B.sync(self.adm, {"request": "stop_rtp_forward", "room": self.room,
                                         "secret": self.secret, "publisher_id": self.pub_id,
                                         "stream_id": stream_id}, f"stop_rtp_forward {kind}")
            check(bad[0] == 0, f"{kind}: {bad[0]} packets failed SRTP authentication")
            check(len(plain) >= 20, f"{kind}: only {len(plain)} SRTP packets in 1.5 s")
            check(all(p[0] >> 6 == 2 for p in plain), f"{kind}: decrypted packets are not RTP")
            seqs = [int.from_bytes(p[2:4], "big") for p in plain]
            check(all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:])) or len(set(seqs)) == len(seqs),
                  f"{kind}: sequence numbers {seqs[:10]}…")
            if kind == "video":
                # VP8 payload descriptors (S bit on some packets) after a 12-byte header.
                check(any(p[12] & 0x10 for p in plain if len(p) > 12), "video: no VP8 partition start seen")
            out.append(f"{kind} {len(plain)}")
        return ", ".join(out) + " packets decrypted"

    async def listparticipants(self):
        d = await self.B.sync(self.adm, {"request": "listparticipants", "room": self.room}, "listparticipants")
        check(d.get("videoroom") == "participants" and d.get("room") == self.room, f"listparticipants: {brief(d)}")
        parts = d.get("participants")
        check(isinstance(parts, list), f"no participants list: {brief(d)}")
        # Subscriptions are not participants.
        got = sorted((p.get("id"), p.get("display"), p.get("publisher")) for p in parts)
        want = sorted([(self.pub_id, "alice", True), (self.watcher_id, "watcher", False)])
        check(got == want, f"participants {got}, expected {want}")
        return f"{got}"

    async def unpublish(self):
        A, B = self.A, self.B
        now = time.monotonic()
        flowing = self.sink.frames_between(now - 1.0, now + 1)
        check(flowing >= 10, f"before unpublish the subscriber must be decoding (only {flowing} frames in the last 1 s)")
        ma, mb = A.mark(), B.mark()
        ev, d = await A.async_(self.pub, {"request": "unpublish"}, "unpublish")
        check(d == {"videoroom": "event", "room": self.room, "unpublished": "ok"}, f"unpublish: {brief(d)}")
        # The watcher: {"videoroom":"event","room":R,"unpublished":ID}. Janus 1.1.2 sends it twice
        # (once for the request, once ~0.2-0.5 s later when the PeerConnection closes); one is
        # required here, a second one is allowed.
        await B.notification(mb, self.watcher, lambda d: d.get("unpublished") == self.pub_id and d.get("room") == self.room,
                             "watcher: unpublished <alice>")
        # The subscriber (autoupdate): unsolicited {"videoroom":"updated","room":R,"streams":[..]}
        # with every stream inactive (active:false, no feed_*) and a new offer whose m-lines are
        # a=inactive. Janus 1.1.2 sends it at once (same millisecond as `unpublished`).
        m = await B.notification(mb, self.sub, lambda d: d.get("videoroom") == "updated", "subscriber: updated")
        t_updated = time.monotonic()
        d = pdata(m)
        check(d.get("room") == self.room and isinstance(d.get("streams"), list), f"updated: {brief(d)}")
        check(len(d["streams"]) == len(self.offer_streams), f"updated keeps the m-lines: {brief(d['streams'])}")
        for s in d["streams"]:
            check(s.get("active") is False and "feed_id" not in s, f"updated: stream still active: {brief(s)}")
        jsep = m.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "offer", f"updated must carry a jsep offer: {brief(jsep)}")
        secs = sdp_sections(jsep["sdp"])
        check(len(secs) == len(self.offer_streams), f"updated offer has {len(secs)} m-lines")
        check(all(section_direction(l) == "inactive" or l[0].split(" ")[1] == "0" for _, l in secs),
              f"updated offer m-lines must be inactive: {[section_direction(l) for _, l in secs]}")
        # The publisher's PeerConnection is closed by the server: a `hangup` event.
        h = await A.core_event(ma, self.pub, "hangup", "alice: hangup after unpublish")
        check(isinstance(h.get("reason"), str), f"hangup needs a string reason: {brief(h)}")
        # Frames stop: count what is decoded in a window after `updated`, *before* answering it
        # (aiortc ends its receiving tracks once it applies an inactive m-line, so counting after
        # the answer could not fail).
        t0, t1 = t_updated + STOPPED_WINDOW[0], t_updated + STOPPED_WINDOW[1]
        await asyncio.sleep(max(0.0, t1 - time.monotonic()))
        late = self.sink.frames_between(t0, t1)
        check(late <= STOPPED_MAX_FRAMES,
              f"{late} frames decoded {STOPPED_WINDOW[0]}-{STOPPED_WINDOW[1]} s after `updated` (max {STOPPED_MAX_FRAMES})")
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="offer"))
        await self.sub_pc.setLocalDescription(await self.sub_pc.createAnswer())
        ev, d = await B.async_(self.sub, {"request": "start"}, "start (after updated)",
                               jsep={"type": "answer", "sdp": self.sub_pc.localDescription.sdp})
        check(d == {"videoroom": "event", "room": self.room, "started": "ok"}, f"start after updated: {brief(d)}")
        return (f"hangup reason {h.get('reason')!r}; {flowing} frames/s before, {late} in the window after "
                f"`updated`")

    async def republish(self):
        mb = self.B.mark()
        await self.publish("alice publishes again")
        m = await self.B.notification(mb, self.watcher, lambda d: "publishers" in d, "watcher: publishers event (again)")
        d = pdata(m)
        check(d.get("room") == self.room and len(d["publishers"]) == 1, f"publishers event: {brief(d)}")
        self.check_publisher_entry(d["publishers"][0], "publishers event (again)")
        return "configured, connected, watcher told"

    async def leaver_joins(self):
        self.leaver, d = await self.join_publisher(self.A, "leaver", "leaver join")
        self.leaver_id = d["id"]
        check(len(d["publishers"]) == 1, f"leaver join: publishers must list alice only: {brief(d['publishers'])}")
        self.check_publisher_entry(d["publishers"][0], "leaver join: publishers[0]")
        return f"id {self.leaver_id}, sees alice"

    async def kick(self):
        A, B = self.A, self.B
        ma, mb = A.mark(), B.mark()
        d = await B.sync(self.adm, {"request": "kick", "room": self.room, "secret": self.secret, "id": self.pub_id}, "kick")
        check(d == {"videoroom": "success"}, f"kick: {brief(d)}")
        # Kicked: {"videoroom":"event","room":R,"leaving":"ok","reason":"kicked"}, then a `hangup`.
        m = await A.notification(ma, self.pub, lambda d: "leaving" in d, "alice: leaving (kicked)")
        check(pdata(m) == {"videoroom": "event", "room": self.room, "leaving": "ok", "reason": "kicked"},
              f"kicked user: {brief(pdata(m))}")
        # Others: {"videoroom":"event","room":R,"kicked":ID} (Janus 1.1.2: no display, and no
        # `unpublished` for the kicked publisher).
        for cl, hid, who in ((B, self.watcher, "watcher"), (A, self.leaver, "leaver")):
            m = await cl.notification(ma if cl is A else mb, hid, lambda d: "kicked" in d, f"{who}: kicked <alice>")
            check(pdata(m).get("kicked") == self.pub_id and pdata(m).get("room") == self.room
                  and pdata(m).get("videoroom") == "event", f"{who}: {brief(pdata(m))}")
        h = await A.core_event(ma, self.pub, "hangup", "alice: hangup after kick")
        check(isinstance(h.get("reason"), str), f"hangup needs a string reason: {brief(h)}")
        return f"hangup reason {h.get('reason')!r}"

    async def leave(self):
        mb = self.B.mark()
        ev, d = await self.A.async_(self.leaver, {"request": "leave"}, "leave")
        check(d == {"videoroom": "event", "room": self.room, "leaving": "ok"}, f"leave: {brief(d)}")
        m = await self.B.notification(mb, self.watcher, lambda d: "leaving" in d, "watcher: leaving <leaver>")
        check(pdata(m) == {"videoroom": "event", "room": self.room, "leaving": self.leaver_id},
              f"watcher: {brief(pdata(m))}")
        return "ok"

    async def destroy_room(self):
        mb = self.B.mark()
        d = await self.B.sync(self.adm, {"request": "destroy", "room": self.room, "secret": self.secret}, "destroy")
        self.room_destroyed = True
        # Janus 1.1.2 adds "permanent":false to the reply (the spec shows {"videoroom":"destroyed","room":R}).
        check(d == {"videoroom": "destroyed", "room": self.room, "permanent": False}, f"destroy: {brief(d)}")
        # Every participant left in the room (the watcher) is told. Janus 1.1.2 tells the
        # subscription nothing (a defect the spec's observed notes record); not asserted either way.
        m = await self.B.notification(mb, self.watcher, lambda d: d.get("videoroom") == "destroyed",
                                      "watcher: destroyed")
        check(pdata(m) == {"videoroom": "destroyed", "room": self.room}, f"watcher: {brief(pdata(m))}")
        d = await self.B.sync(self.adm, {"request": "exists", "room": self.room}, "exists after destroy")
        check(d == {"videoroom": "success", "room": self.room, "exists": False}, f"exists: {brief(d)}")
        return "watcher told, exists:false"

    async def teardown(self):
        for cl, hids in ((self.A, (self.pub, self.leaver)), (self.B, (self.sub, self.watcher, self.adm))):
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
                await asyncio.wait_for(self.B.c.message(
                    self.adm, {"request": "destroy", "room": self.room, "secret": self.secret}), 5)
            except Exception:  # noqa: BLE001
                pass
        if self.sink is not None:
            for t in self.sink.tasks:
                t.cancel()
        for pc in self.old_pcs + [self.pub_pc, self.sub_pc]:
            if pc is not None:
                try:
                    await asyncio.wait_for(pc.close(), 5)
                except Exception:  # noqa: BLE001
                    pass
        for cl in (self.A, self.B):
            await cl.c.close()


async def _sync(fn):
    return fn()


async def run_transport(runner, kind, url, addr):
    run = RoomRun(kind, url, addr)
    label = f"aiortc VideoRoom over {'HTTP long poll' if kind == 'http' else 'WebSocket'} ({url})"
    print(f"▶ {label}", flush=True)
    broken = [None]  # set by an essential step: everything after it is skipped

    async def step(name, coro_fn, timeout, essential=True):
        if broken[0]:
            runner.skip(f"  {name}", f"earlier step failed: {broken[0]}")
            return
        t0 = time.monotonic()
        try:
            res = await asyncio.wait_for(coro_fn(), timeout)
            runner.ok(f"  {name}" + (f" — {res}" if isinstance(res, str) else ""), (time.monotonic() - t0) * 1000)
        except Exception as e:  # noqa: BLE001
            ms = (time.monotonic() - t0) * 1000
            if essential:
                broken[0] = name
            if isinstance(e, AssertionFailed):
                err = str(e)
            elif isinstance(e, asyncio.TimeoutError):
                err = f"timeout ({timeout:.0f} s): {e}"
            else:
                err = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exception(e)).rstrip()
            runner.fail(f"  {name}", ms, err,
                        f"  last Janus API messages, session A (alice, leaver):\n{run.A.c.dump(25)}\n"
                        f"  session B (admin, watcher, subscriber):\n{run.B.c.dump(25)}")

    try:
        await step("connect, 2 sessions, create room (secret, require_pvtid) → created, exists", run.setup, 15)
        await step("watcher joins as publisher → joined {id, private_id, publishers:[]}", run.watcher_joins, 15)
        await step("alice joins as publisher → joined", run.alice_joins, 15)
        await step("alice publish + offer (tone + bars) → configured ok, answer, ICE/DTLS, webrtcup, media",
                   run.alice_publishes, CONNECT_TIMEOUT + 3 * STEP)
        await step("watcher gets publishers [alice with streams]", run.watcher_sees_publisher, 15, essential=False)
        await step("subscriber join with a wrong private_id → 433", run.wrong_private_id, 15)
        await step("subscriber join streams:[{feed}] → attached + offer; start + answer → started; webrtcup",
                   run.subscribe, CONNECT_TIMEOUT + 3 * STEP)
        if not broken[0]:
            await run.collect()  # bounded; judged by the two checks below
        await step("subscriber decodes alice's video: size, bar colours, increasing counter",
                   lambda: _sync(run.sink.check_video), 5, essential=False)
        await step("subscriber decodes alice's audio: 440 Hz tone", lambda: _sync(run.sink.check_audio), 5,
                   essential=False)
        await step("rtp_forward with SRTP (suites 32 and 80) → libsrtp decrypts alice's RTP", run.srtp_forward, 15,
                   essential=False)
        await step("listparticipants → alice publisher:true, watcher publisher:false", run.listparticipants, 15,
                   essential=False)
        await step("unpublish → unpublished ok + hangup; watcher: unpublished; subscriber: updated + offer, "
                   "frames stop; start → started", run.unpublish, 4 * STEP)
        await step("alice publishes again → configured, connected; watcher: publishers", run.republish,
                   CONNECT_TIMEOUT + 4 * STEP)
        await step("leaver joins → joined lists alice", run.leaver_joins, 15)
        await step("kick alice → success; alice: leaving ok/kicked + hangup; others: kicked", run.kick, 3 * STEP)
        await step("leaver leave → leaving ok; watcher: leaving <id>", run.leave, 2 * STEP)
        await step("destroy room → destroyed; watcher: destroyed; exists false", run.destroy_room, 2 * STEP)
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
    for kind, url in (("http", args.http), ("ws", args.ws)):
        if args.only and args.only != kind:
            continue
        if not url:
            runner.fail(f"aiortc VideoRoom over {kind}", 0, f"no URL given for {kind}")
            continue
        await run_transport(runner, kind, url, args.addr)
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
