#!/usr/bin/env python3
"""End-to-end Record&Play (janus.plugin.recordplay) with aiortc: record real audio and video into
.mjr files, play them back, and play back a recording made by the real Janus 1.1.2.

Two Janus sessions: session A over HTTP long poll holds the recorders, session B over WebSockets
holds the viewers and "x" (a handle that never records nor plays, for the error cases).

  update -> ok; list -> [] (fresh folder) -> configure (defaults, set, per handle) -> a table of
  request errors (exact codes and texts) -> record errors that come with a JSEP offer (each on a
  throwaway handle) -> record (name, filename, id) with an offer: 320x240 red frames with a frame
  counter + a 440 Hz tone -> `recording` + answer, ICE/DTLS, webrtcup -> while recording: not
  listed, play it -> 416 -> pause -> `paused`; 2.5 s; resume -> `resumed` -> stop -> `stopped`,
  then `done` and a core hangup -> REMB ramp-up from the configured video-bitrate-max and PLIs
  at the configured video-keyframe-interval reached the sender -> the .nfo (exact text) and the
  .mjr files (MJR00002, info header, MEET frames, RTP rewritten to start at seq 1 / ts 0, the
  pause cut out of the RTP timestamps but not out of the MEET times) -> list has it (exact
  entry) -> play it (a viewer on WS): `preparing` + the plugin's offer; start with the answer ->
  `playing`; the viewer decodes red frames (counters jump over the paused part) and hears 440 Hz
  for about the recorded duration, then `done` -> copy the fixture recorded by Janus 1.1.2
  (fixtures/recordplay) in, update -> list has it; record with its id -> 420; play it: blue
  frames, 660 Hz, paced, `done` -> record without id/filename and end it three ways: hangup
  (Janus API), the recorder's PeerConnection closing, detach (after an `update` while recording):
  `done` (not after a detach), rec-<id>-audio/-video.mjr + <id>.nfo, listed -> play and hang up
  while playing: `done`, media stops -> the same handle plays again; pause/resume answer but
  change nothing; stop -> `stopped` with the id, `done` -> delete the fixture's .nfo, update ->
  not listed any more, play -> 416 -> (with --janus-http: the real Janus 1.1.2, running on the
  same recordings folder, plays the recording the server under test made: update, list has it
  (exact entry), play + start, red frames, 440 Hz, the pause cut out, paced, `done`) -> detach,
  destroy.

With RECORDPLAY_MAKE_FIXTURE=<folder> in the environment, it only records the fixture (id 424242,
name "janus-fixture", filename "janus-fixture", 3 s of 256x192 blue frames with a counter and a
660 Hz tone) and copies the .nfo and the two .mjr files into <folder> (see
fixtures/recordplay/README.md).

The media checks are relative and can fail: colours within a tolerance of the expected one, the
power in a +-6 Hz band around a tone as a share of the window's power, frames counted, playback
durations within +-30 % of the recorded RTP timestamp span.

Every message shape and file format detail asserted here is what Janus 1.1.2 really sends or
writes (read in its source, then observed); where it differs from shared/spec/plugin-recordplay.md
a comment says so ("Janus 1.1.2:").

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`);
exits 1 if anything failed. Usage:
  recordplay_aiortc.py --http http://10.x.y.1:8088/janus --ws ws://10.x.y.1:8188 --addr A
      --recordings <the server's recordings folder> --fixtures <tests/media/fixtures/recordplay>
      [--janus-http http://10.x.y.1:8090/janus  (Janus 1.1.2 whose Record&Play `path` is that folder)]
"""

import argparse
import asyncio
import datetime
import json
import os
import random
import re
import secrets
import shutil
import struct
import sys
import time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from echotest_aiortc import CONNECT_TIMEOUT, Runner, check, stepper
from janus_client import HttpJanus, WsJanus, brief

# videocall_aiortc also makes every aiortc RTCRtpSender note the REMBs (`jano_rembs`) and PLIs
# (`jano_plis`) it is handed; the configure checks below read them.
from videocall_aiortc import (ColourTrack, Tone, analyse, check_transport_sdp, db, read_frame,
                              vp8_keyframe_sizes, wait_connected)

RECORDPLAY = "janus.plugin.recordplay"
STEP = 12.0  # seconds: bound of one signalling exchange
FPS = 30
COLOUR_TOL = 60
MIN_SHARE = 0.10
MIN_DB = 20.0
RECORD_S = 2.0  # seconds recorded before the pause, and again after it
PAUSE_S = 2.5
PACE_TOL = 0.30  # playback lasts the recorded duration +- 30 %

LIVE = {"rgb": (220, 30, 30), "size": (320, 240), "hz": 440.0}  # red, what this test records
FIXTURE = {"rgb": (30, 30, 220), "size": (256, 192), "hz": 660.0}  # blue, the Janus-made fixture
FIXTURE_ID = 424242
FIXTURE_NAME = "janus-fixture"
FIXTURE_S = 3.0

# Where jano deliberately differs from Janus 1.1.2 (a defect not copied), the check says so.
IS_JANUS = os.environ.get("MEDIA_SERVER_IS_JANUS") == "1"


def pdata(m):
    return m["plugindata"]["data"]


def rp_error(code, text):
    return {"recordplay": "event", "error_code": code, "error": text}


def rp_result(**result):
    return {"recordplay": "event", "result": result}


# Janus 1.1.2: the PeerConnection going away (stop, hangup, end of a playout) is told as
# {"recordplay":"event","result":"done"}: `result` is the STRING "done", not an object with a
# status (the spec shows {"status":"done","id":..}).
DONE = {"recordplay": "event", "result": "done"}


def list_entry(rid, name, date):
    # Janus 1.1.2: audio/video/data are booleans (the spec says file names), and audio_codec /
    # video_codec are there when the medium is.
    return {"id": rid, "name": name, "date": date, "audio": True, "audio_codec": "opus",
            "video": True, "video_codec": "vp8", "data": False}


def nfo_text(rid, name, date, base_audio, base_video):
    # Janus 1.1.2 writes CRLF line ends, `key = value`, no `private` line (the spec shows one).
    return (f"[{rid}]\r\nname = {name}\r\ndate = {date}\r\n"
            f"audio = {base_audio}.mjr\r\nvideo = {base_video}.mjr\r\n")


DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def parse_mjr(path):
    """(header dict, [(MEET ms, RTP packet bytes)]) of a .mjr file (MJR00002)."""
    blob = open(path, "rb").read()
    check(blob[:8] == b"MJR00002", f"{path}: starts with {blob[:8]!r}, expected b'MJR00002'")
    (hlen,) = struct.unpack("!H", blob[8:10])
    header = json.loads(blob[10:10 + hlen])
    pos = 10 + hlen
    frames = []
    while pos < len(blob):
        check(pos + 10 <= len(blob), f"{path}: truncated frame header at offset {pos}")
        check(blob[pos:pos + 4] == b"MEET", f"{path}: no MEET frame marker at offset {pos}: {blob[pos:pos + 4]!r}")
        ms, length = struct.unpack("!IH", blob[pos + 4:pos + 10])
        check(pos + 10 + length <= len(blob), f"{path}: truncated frame at offset {pos}")
        frames.append((ms, blob[pos + 10:pos + 10 + length]))
        pos += 10 + length
    return header, frames


def rtp_fields(p):
    """(seq, timestamp, ssrc, payload type) of an RTP packet."""
    seq, ts, ssrc = struct.unpack("!HII", p[2:12])
    return seq, ts, ssrc, p[1] & 0x7F


def unwrap_seqs(seqs):
    out, base, last = [], 0, None
    for s in seqs:
        if last is not None:
            if s - last < -30000:
                base += 65536
            elif s - last > 30000:
                base -= 65536
        out.append(s + base)
        last = s
    return out


class Sender:
    """An aiortc PeerConnection that sends one colour with a frame counter and one tone."""

    def __init__(self, look):
        self.look = look
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = ColourTrack(look["rgb"], look["size"])
        self.tone = Tone(look["hz"])
        self.senders = {"audio": self.pc.addTrack(self.tone), "video": self.pc.addTrack(self.video)}

    async def offer(self):
        await self.pc.setLocalDescription(await self.pc.createOffer())  # gathers all candidates
        return {"type": "offer", "sdp": self.pc.localDescription.sdp, "trickle": False}

    def sender(self, kind):
        return self.senders[kind]

    async def close(self):
        try:
            await asyncio.wait_for(self.pc.close(), 5)
        except Exception:  # noqa: BLE001
            pass


class Viewer:
    """An aiortc PeerConnection that answers the plugin's offer and decodes what it plays."""

    def __init__(self):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames = []  # (monotonic time, counter or None, (w, h), colour)
        self.audio = []  # (monotonic time, int16 mono samples)
        self.rate = None
        self.tasks = []
        self.pc.on("track", self.on_track)

    def on_track(self, track):
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
            if arr.shape[0] == 1 and ch > 1:  # packed: (1, samples*channels)
                arr = arr.reshape(-1, ch).T
            self.rate = frame.sample_rate
            self.audio.append((time.monotonic(), arr[0].astype("int16")))

    async def answer(self, offer_sdp):
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return {"type": "answer", "sdp": self.pc.localDescription.sdp, "trickle": False}

    async def close(self):
        for t in self.tasks:
            t.cancel()
        try:
            await asyncio.wait_for(self.pc.close(), 5)
        except Exception:  # noqa: BLE001
            pass


class Client:
    """A janus_client session plus the Record&Play request patterns."""

    def __init__(self, c):
        self.c = c

    def mark(self):
        return len(self.c.received)

    async def sync(self, hid, body, what):
        """A synchronous request (list, update, configure, and every error found before queueing):
        `success` with the plugin data."""
        r = await self.c.message(hid, body)
        check(r.get("janus") == "success", f"{what}: expected a synchronous success, got {brief(r)}")
        check(r.get("plugindata", {}).get("plugin") == RECORDPLAY, f"{what}: plugindata {brief(r.get('plugindata'))}")
        check(r.get("sender") == hid, f"{what}: sender {r.get('sender')} != handle {hid}")
        check("jsep" not in r, f"{what}: a synchronous reply carries no jsep")
        return pdata(r)

    async def request(self, hid, body, what, jsep=None, timeout=STEP):
        """An asynchronous request (record, play, start, stop, pause, resume): ack, then an
        `event` with the request's transaction (either order on the wire)."""
        r = await self.c.message(hid, body, jsep)
        check(r.get("janus") == "ack", f"{what}: expected ack, got {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx,
                                   timeout, f"the event answering {what}")
        check(ev.get("sender") == hid, f"{what}: event sender {ev.get('sender')} != handle {hid}")
        check(ev.get("session_id") == self.c.session_id, f"{what}: event session_id {brief(ev)}")
        check(ev.get("plugindata", {}).get("plugin") == RECORDPLAY, f"{what}: plugindata {brief(ev.get('plugindata'))}")
        return ev, pdata(ev)

    def since(self, mark, hid, kinds=("event",)):
        return [m for _, m in self.c.received[mark:] if m.get("janus") in kinds and m.get("sender") == hid]

    async def notification(self, mark, hid, pred, what, timeout=STEP):
        """An unsolicited plugin event (no transaction) for `hid` after `mark` whose data matches `pred`."""
        old = {id(m) for _, m in self.c.received[:mark]}
        m = await self.c.wait_for(
            lambda m: id(m) not in old and m["janus"] == "event" and m.get("sender") == hid
            and "transaction" not in m and pred(pdata(m)), timeout, f"{what} (handle {hid})")
        check(m["plugindata"].get("plugin") == RECORDPLAY, f"{what}: plugindata {brief(m['plugindata'])}")
        check(m.get("jsep") is None, f"{what}: no jsep expected: {brief(m)}")
        return m

    async def core_event(self, mark, hid, kind, what, timeout=STEP):
        old = {id(m) for _, m in self.c.received[:mark]}
        return await self.c.wait_for(
            lambda m: id(m) not in old and m["janus"] == kind and m.get("sender") == hid, timeout, what)


def m_sections(sdp):
    """[(kind, [lines])] of an SDP's m-sections."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            out.append((line[2:].split(" ", 1)[0], [line]))
        elif out:
            out[-1][1].append(line)
    return out


def session_name(sdp):
    return next((l[2:] for l in sdp.splitlines() if l.startswith("s=")), None)


class RecordPlayRun:
    def __init__(self, http_url, ws_url, addr, recordings, fixtures, janus_http=None):
        self.A = Client(HttpJanus(http_url))  # recorders
        self.B = Client(WsJanus(ws_url))  # viewers, x
        # The real Janus 1.1.2 on the same recordings folder (session J, HTTP), if given.
        self.J = Client(HttpJanus(janus_http)) if janus_http else None
        self.addr = addr
        self.folder = recordings
        self.fixtures = fixtures
        tag = secrets.token_hex(3)
        self.rec_id = random.randint(10 ** 6, 10 ** 9)
        self.rec_name = f"rp test {tag}"  # a name with spaces
        self.rec_file = f"rp-{tag}"
        self.x = None
        self.rec = None  # the recorder's handle
        self.sender = None
        self.viewers = []
        self.senders = []
        self.handles = []  # (client, handle) still attached
        self.t_record = None  # wall clock when `record` was sent
        self.rec_date = None
        self.rec_span = {}  # kind -> seconds of RTP timestamps in the recording
        self.fix_span = {}
        self.fix_date = None
        self.t_phases = {}

    def dump(self):
        out = (f"  session A (HTTP: recorders):\n{self.A.c.dump(25)}\n"
               f"  session B (WS: viewers, x):\n{self.B.c.dump(25)}")
        if self.J is not None and self.J.c.sent:
            out += f"\n  session J (HTTP, Janus 1.1.2):\n{self.J.c.dump(25)}"
        return out

    async def attach(self, cl):
        hid = await cl.c.attach(RECORDPLAY)
        self.handles.append((cl, hid))
        return hid

    async def detach(self, cl, hid):
        r = await cl.c.detach(hid)
        check(r.get("janus") == "success", f"detach: {brief(r)}")
        self.handles.remove((cl, hid))

    async def list_recordings(self, cl, hid, what="list", request="list"):
        d = await cl.sync(hid, {"request": request}, what)
        check(set(d) == {"recordplay", "list"} and d["recordplay"] == "list" and isinstance(d["list"], list),
              f"{what}: {brief(d)}")
        return {e.get("id"): e for e in d["list"]}

    # -- steps -----------------------------------------------------------------------------
    async def setup(self):
        for cl in (self.A, self.B):
            await cl.c.connect()
            sid = await cl.c.create()
            check(isinstance(sid, int) and sid > 0, f"session id {sid!r}")
        self.x = await self.attach(self.B)
        self.rec = await self.attach(self.A)
        return f"sessions {self.A.c.session_id} (HTTP) and {self.B.c.session_id} (WS)"

    async def update_list_empty(self):
        d = await self.B.sync(self.x, {"request": "update"}, "update")
        check(d == {"recordplay": "ok"}, f"update: {brief(d)}")
        lst = await self.list_recordings(self.B, self.x)
        check(lst == {}, f"list in a fresh recordings folder: {brief(lst)}")
        return "update → ok; list → []"

    async def configure(self):
        # Janus 1.1.2: the reply is synchronous; `settings` always carries both values; the
        # defaults are 1048576 bps and 15000 (the keyframe interval is kept in MILLISECONDS and
        # used in whole seconds; the spec says seconds). Settings are per handle.
        d = await self.B.sync(self.x, {"request": "configure"}, "configure (nothing)")
        want = {"recordplay": "configure", "status": "ok",
                "settings": {"video-keyframe-interval": 15000, "video-bitrate-max": 1048576}}
        check(d == want, f"configure with nothing: {brief(d)}, expected {brief(want)}")
        d = await self.A.sync(self.rec, {"request": "configure", "video-bitrate-max": 300000,
                                         "video-keyframe-interval": 2000}, "configure")
        want = {"recordplay": "configure", "status": "ok",
                "settings": {"video-keyframe-interval": 2000, "video-bitrate-max": 300000}}
        check(d == want, f"configure: {brief(d)}, expected {brief(want)}")
        d = await self.B.sync(self.x, {"request": "CONFIGURE", "video-bitrate-max": 500000}, "configure x")
        want = {"recordplay": "configure", "status": "ok",
                "settings": {"video-keyframe-interval": 15000, "video-bitrate-max": 500000}}
        check(d == want, f"configure on another handle: {brief(d)}, expected {brief(want)}")
        return "defaults 15000/1048576; set 2000/300000; per handle; request name case-insensitive"

    async def request_errors(self):
        x = self.x
        # (synchronous?, body, expected plugin data)
        rows = [
            (True, {}, rp_error(415, "Missing mandatory element (request)")),
            (True, {"request": 42}, rp_error(414, "Invalid element type (request should be a string)")),
            # Janus 1.1.2: the unknown request is quoted with '…' (other plugins use (…)).
            (True, {"request": "dance"}, rp_error(413, "Unknown request 'dance'")),
            (True, {"request": "configure", "video-bitrate-max": -5},
             rp_error(414, "Invalid element type (video-bitrate-max should be a positive integer)")),
            (True, {"request": "configure", "video-keyframe-interval": "2"},
             rp_error(414, "Invalid element type (video-keyframe-interval should be a positive integer)")),
            # Asynchronous ones: ack, then the error in an event. The JSEP is checked before
            # anything else of a `record`.
            (False, {"request": "record"}, rp_error(415, "Missing SDP offer")),
            (False, {"request": "record", "name": "no offer", "id": -1}, rp_error(415, "Missing SDP offer")),
            (False, {"request": "play"}, rp_error(415, "Missing mandatory element (id)")),
            (False, {"request": "play", "id": "1"}, rp_error(414, "Invalid element type (id should be a positive integer)")),
            (False, {"request": "play", "id": -3}, rp_error(414, "Invalid element type (id should be a positive integer)")),
            (False, {"request": "play", "id": 0}, rp_error(416, "No such recording")),
            (False, {"request": "play", "id": 987654321987}, rp_error(416, "No such recording")),
            (False, {"request": "start"}, rp_error(418, "Not a playout session, can't start")),
            (False, {"request": "Start"}, rp_error(418, "Not a playout session, can't start")),
            # Janus 1.1.2: pause/resume on a handle that records nothing is not an error: an
            # event with no `result` at all. stop with nothing going on: `stopped` without id
            # (and, see below, a `done` after it).
            (False, {"request": "pause"}, {"recordplay": "event"}),
            (False, {"request": "resume"}, {"recordplay": "event"}),
            (False, {"request": "stop"}, rp_result(status="stopped")),
        ]
        bad = []
        mark = self.B.mark()
        for sync, body, want in rows:
            what = f"x {brief(body)}"
            if sync:
                d, ev = await self.B.sync(x, body, what), None
            else:
                ev, d = await self.B.request(x, body, what)
            if d != want or (ev is not None and ev.get("jsep") is not None):
                bad.append(f"{brief(body)} → {brief(d)}, expected {brief(want)}")
        check(not bad, f"{len(bad)} of {len(rows)} rows wrong:\n    " + "\n    ".join(bad))
        await asyncio.sleep(1.0)
        extra = [m for m in self.B.since(mark, x, kinds=("event", "hangup", "webrtcup"))
                 if "transaction" not in m]
        # Janus 1.1.2: the `stop` closes the PeerConnection even when there is none, and that
        # makes the plugin say `done` (a fraction of a second later); the core itself sends no
        # hangup (there was no PeerConnection).
        check([m.get("janus") for m in extra] == ["event"] and pdata(extra[0]) == DONE,
              f"x's unsolicited events after the rows: {brief(extra)}, expected one done")
        return f"{len(rows)} rows; stop with nothing → stopped, then done"

    async def jsep_errors(self, rows, what):
        """Each (body, expected) sent with a real offer on a fresh handle (detached after)."""
        s = Sender(LIVE)
        self.senders.append(s)
        jsep = await s.offer()
        bad = []
        for body, want in rows:
            hid = await self.attach(self.A)
            ev, d = await self.A.request(hid, body, f"{what} {brief(body)}", jsep=jsep)
            if d != want or ev.get("jsep") is not None:
                bad.append(f"{brief(body)} → {brief(d)} jsep={brief(ev.get('jsep'), 60)}, expected {brief(want)}")
            await self.detach(self.A, hid)
        await s.close()
        check(not bad, f"{len(bad)} of {len(rows)} rows wrong:\n    " + "\n    ".join(bad))
        return f"{len(rows)} rows"

    async def record_errors(self):
        return await self.jsep_errors([
            ({"request": "record"}, rp_error(415, "Missing mandatory element (name)")),
            ({"request": "record", "name": ""}, rp_error(414, "Invalid element type (name should be a non-empty string)")),
            ({"request": "record", "name": "n", "id": -1}, rp_error(414, "Invalid element type (id should be a positive integer)")),
            ({"request": "record", "name": "n", "id": "7"}, rp_error(414, "Invalid element type (id should be a positive integer)")),
            ({"request": "record", "name": "n", "filename": 5}, rp_error(414, "Invalid element type (filename should be a string)")),
            ({"request": "record", "name": "n", "opusred": "yes"}, rp_error(414, "Invalid element type (opusred should be a boolean)")),
            # A play never takes an SDP (the plugin makes the offer).
            ({"request": "play", "id": 1}, rp_error(414, "A play request can't contain an SDP")),
        ], "with an offer:")

    async def record(self):
        s = self.sender = Sender(LIVE)
        self.senders.append(s)
        jsep = await s.offer()
        mark = self.A.mark()
        self.t_record = time.time()
        ev, d = await self.A.request(self.rec, {"request": "record", "name": self.rec_name, "filename": self.rec_file,
                                                "id": self.rec_id}, "record", jsep=jsep)
        # Janus 1.1.2: {"status":"recording","id":N}, no is_private (the spec shows one).
        check(d == rp_result(status="recording", id=self.rec_id), f"record: {brief(d)}")
        ans = ev.get("jsep")
        check(isinstance(ans, dict) and ans.get("type") == "answer" and isinstance(ans.get("sdp"), str),
              f"record: the event must carry an answer: {brief(ans)}")
        sdp = ans["sdp"]
        check_transport_sdp(sdp, self.addr, "record answer")
        secs = m_sections(sdp)
        check([k for k, _ in secs] == ["audio", "video"], f"answer m-lines {[k for k, _ in secs]}")
        for k, lines in secs:
            check("a=recvonly" in lines, f"answer {k}: not recvonly: {[l for l in lines if l.startswith('a=')][:12]}")
        check(any(l.lower().startswith("a=rtpmap:") and "opus/48000" in l.lower() for l in secs[0][1]),
              "answer audio: no opus")
        check(any(l.lower().startswith("a=rtpmap:") and "vp8/90000" in l.lower() for l in secs[1][1]),
              "answer video: no VP8")
        # Janus names the session after the recording; jano's engine writes its own s= line
        # (no client reads it).
        if IS_JANUS:
            check(session_name(sdp) == f"Recording {self.rec_id}", f"answer s= line {session_name(sdp)!r}")
        await s.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await wait_connected(s.pc, "recorder")
        await self.A.core_event(mark, self.rec, "webrtcup", "recorder webrtcup")
        self.t_phases["recording"] = time.monotonic()
        return f"id {self.rec_id}; answer recvonly opus + VP8; connected"

    async def while_recording(self):
        await asyncio.sleep(max(0.0, self.t_phases["recording"] + 1.0 - time.monotonic()))
        # Janus 1.1.2: a recording in progress is not listed and cannot be played (416).
        lst = await self.list_recordings(self.B, self.x)
        check(self.rec_id not in lst, f"list names the recording in progress: {brief(lst.get(self.rec_id))}")
        v = await self.attach(self.B)
        ev, d = await self.B.request(v, {"request": "play", "id": self.rec_id}, "play the recording in progress")
        check(d == rp_error(416, "No such recording"), f"play in progress: {brief(d)}")
        await self.detach(self.B, v)
        files = sorted(os.listdir(self.folder))
        want = sorted([f"{self.rec_file}-audio.mjr", f"{self.rec_file}-video.mjr"])
        check(files == want, f"recordings folder while recording: {files}, expected {want} (no .nfo yet)")
        return "not listed; play → 416; the .mjr files exist, no .nfo yet"

    async def pause_resume(self):
        await asyncio.sleep(max(0.0, self.t_phases["recording"] + RECORD_S - time.monotonic()))
        ev, d = await self.A.request(self.rec, {"request": "pause"}, "pause")
        check(d == rp_result(status="paused", id=self.rec_id), f"pause: {brief(d)}")
        check(ev.get("jsep") is None, "pause: no jsep")
        self.t_phases["paused"] = time.monotonic()
        # Twice is fine: the same answer.
        ev, d = await self.A.request(self.rec, {"request": "pause"}, "pause again")
        check(d == rp_result(status="paused", id=self.rec_id), f"pause again: {brief(d)}")
        await asyncio.sleep(max(0.0, self.t_phases["paused"] + PAUSE_S - time.monotonic()))
        ev, d = await self.A.request(self.rec, {"request": "resume"}, "resume")
        check(d == rp_result(status="resumed", id=self.rec_id), f"resume: {brief(d)}")
        self.t_phases["resumed"] = time.monotonic()
        return f"paused {self.t_phases['resumed'] - self.t_phases['paused']:.1f} s; resumed"

    async def stop(self):
        await asyncio.sleep(max(0.0, self.t_phases["resumed"] + RECORD_S - time.monotonic()))
        mark = self.A.mark()
        ev, d = await self.A.request(self.rec, {"request": "stop"}, "stop")
        # Janus 1.1.2: {"status":"stopped","id":N} (no is_private), and the PeerConnection is
        # closed: `done` (no transaction) and a core hangup "Close PC" follow.
        check(d == rp_result(status="stopped", id=self.rec_id), f"stop: {brief(d)}")
        check(ev.get("jsep") is None, "stop: no jsep")
        self.t_phases["stopped"] = time.monotonic()
        m = await self.A.notification(mark, self.rec, lambda d: True, "done")
        check(pdata(m) == DONE, f"after stop: {brief(pdata(m))}, expected {brief(DONE)}")
        h = await self.A.core_event(mark, self.rec, "hangup", "core hangup after stop")
        check(h.get("reason") == "Close PC", f"core hangup reason {h.get('reason')!r}, expected 'Close PC'")
        await asyncio.sleep(0.5)
        evs = [pdata(m) for m in self.A.since(mark, self.rec)]
        check(evs.count(DONE) == 1 and len(evs) == 2, f"events after stop: {brief(evs)}")
        # (The order on the wire is shown, not checked.)
        order = [("stopped" if "transaction" in m else "done") if m["janus"] == "event" else m["janus"]
                 for m in self.A.since(mark, self.rec, kinds=("event", "hangup"))]
        return f"order seen: {', '.join(order)}"

    async def feedback(self):
        # The plugin answers the first 4 video packets with REMBs ramping up to the configured
        # video-bitrate-max (/4, /3, /2, /1), then one every 5 s; and asks for a key frame
        # every video-keyframe-interval (2000 = 2 s here), plus one on resume.
        vs = self.sender.sender("video")
        rembs = [br for _, br, mine in vs.__dict__.get("jano_rembs", []) if mine]
        check(rembs[:4] == [75000, 100000, 150000, 300000],
              f"first REMBs for the video SSRC {rembs[:8]}, expected [75000, 100000, 150000, 300000]")
        check(all(br == 300000 for br in rembs[4:]), f"later REMBs {rembs[4:]}, expected 300000 each")
        t0, t1 = self.t_phases["recording"], self.t_phases["stopped"]
        plis = [t for t in vs.__dict__.get("jano_plis", []) if t0 - 2 <= t <= t1]
        # 15000 (the default) would give 1 + 1 (resume) in these ~7 s.
        check(len(plis) >= 4, f"only {len(plis)} PLIs/FIRs reached the video sender in {t1 - t0:.1f} s of "
              f"recording with video-keyframe-interval 2000")
        return f"REMBs {rembs[:4]}+{len(rembs) - 4}×300000; {len(plis)} PLIs in {t1 - t0:.1f} s"

    async def files(self):
        await asyncio.sleep(0.3)
        names = sorted(os.listdir(self.folder))
        want = sorted([f"{self.rec_id}.nfo", f"{self.rec_file}-audio.mjr", f"{self.rec_file}-video.mjr"])
        check(names == want, f"recordings folder {names}, expected {want}")
        text = open(os.path.join(self.folder, f"{self.rec_id}.nfo"), "rb").read().decode()
        m = re.search(r"\r\ndate = ([^\r\n]*)\r\n", text)
        check(m is not None, f".nfo without a date line: {text!r}")
        self.rec_date = m.group(1)
        check(DATE_RE.match(self.rec_date), f".nfo date {self.rec_date!r}, expected YYYY-MM-DD HH:MM:SS")
        # The date is the server's LOCAL time when `record` was handled.
        t = time.mktime(time.strptime(self.rec_date, "%Y-%m-%d %H:%M:%S"))
        check(abs(t - self.t_record) <= 60, f".nfo date {self.rec_date} is not the local time of the record request "
              f"({time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.t_record))})")
        want_text = nfo_text(self.rec_id, self.rec_name, self.rec_date, f"{self.rec_file}-audio", f"{self.rec_file}-video")
        check(text == want_text, f".nfo is {text!r}, expected {want_text!r}")
        out = []
        pause_ms = (self.t_phases["resumed"] - self.t_phases["paused"]) * 1000
        for kind, codec, clock, least in (("audio", "opus", 48000, 150), ("video", "vp8", 90000, 60)):
            path = os.path.join(self.folder, f"{self.rec_file}-{kind}.mjr")
            header, frames = parse_mjr(path)
            # Janus 1.1.2's info header: t, c, s, u (+ x when an extension it keeps was
            # negotiated: aiortc's ssrc-audio-level for audio), in this order.
            keys = list(header)
            allowed = ["t", "c", "f", "x", "s", "u"]
            check(set(keys) <= set(allowed) and {"t", "c", "s", "u"} <= set(keys),
                  f"{kind}: info header keys {keys}")
            check(header["t"] == kind[0] and header["c"] == codec, f"{kind}: header {header}")
            check(isinstance(header["s"], int) and isinstance(header["u"], int)
                  and 0 <= header["u"] - header["s"] <= 10_000_000
                  and abs(header["s"] / 1e6 - self.t_record) < 30, f"{kind}: s/u times {header}")
            if "x" in header:
                check(all(k.isdigit() and 1 <= int(k) <= 14 for k in header["x"]), f"{kind}: x {header['x']}")
            check(len(frames) >= least, f"{kind}: {len(frames)} packets in ~{2 * RECORD_S:.0f} s, expected at least {least}")
            ms = [f[0] for f in frames]
            check(ms[0] == 0 and all(b >= a for a, b in zip(ms, ms[1:])), f"{kind}: MEET times not from 0 upwards: {ms[:5]}")
            gap = max(b - a for a, b in zip(ms, ms[1:]))
            check(gap >= pause_ms - 600, f"{kind}: largest gap in MEET times {gap} ms, expected the pause (~{pause_ms:.0f} ms)")
            fields = [rtp_fields(p) for _, p in frames]
            ssrcs = {f[2] for f in fields}
            mine = self.sender.sender(kind)._ssrc
            check(ssrcs == {mine}, f"{kind}: SSRCs {ssrcs} in the file, expected the sender's {mine}")
            # Janus 1.1.2 rewrites seq/ts to a context that starts at seq 1, timestamp 0.
            check(fields[0][0] == 1 and fields[0][1] == 0,
                  f"{kind}: first packet seq {fields[0][0]} ts {fields[0][1]}, expected seq 1 ts 0")
            seqs = unwrap_seqs([f[0] for f in fields])
            order = sorted(range(len(fields)), key=lambda i: seqs[i])
            check(max(seqs) - min(seqs) + 1 - len(set(seqs)) <= 5,
                  f"{kind}: sequence numbers not continuous: {len(set(seqs))} of {max(seqs) - min(seqs) + 1}")
            tss = [fields[i][1] for i in order]
            steps = [b - a for a, b in zip(tss, tss[1:])]
            check(max(steps) < 0.5 * clock, f"{kind}: a gap of {max(steps) / clock:.2f} s in the RTP timestamps "
                  f"(the pause must be cut out of them)")
            span = (max(tss) - min(tss)) / clock
            self.rec_span[kind] = span
            check(abs(span - 2 * RECORD_S) <= 1.0, f"{kind}: RTP timestamps span {span:.2f} s, expected about "
                  f"{2 * RECORD_S:.1f} s (recorded time without the pause)")
            out.append(f"{kind} {len(frames)} packets, RTP {span:.2f} s, MEET gap {gap} ms")
            if kind == "video":
                sizes = vp8_keyframe_sizes([p for _, p in frames])
                check(set(sizes) == {LIVE["size"]} and len(sizes) >= 2,
                      f"video: key frames {sizes}, expected several of {LIVE['size']}")
                out.append(f"{len(sizes)} key frames")
        return "; ".join(out)

    async def listed(self):
        lst = await self.list_recordings(self.B, self.x, "LiSt", "LiSt")
        want = list_entry(self.rec_id, self.rec_name, self.rec_date)
        check(lst.get(self.rec_id) == want, f"list entry {brief(lst.get(self.rec_id))}, expected {brief(want)}")
        check(len(lst) == 1, f"list has {len(lst)} entries: {brief(lst)}")
        return brief(want)

    async def play(self, rid, what, hid=None, cl=None, is_janus=IS_JANUS):
        """A viewer (a fresh handle of `cl`, session B by default, unless `hid`) plays `rid`:
        preparing + offer, start + answer -> playing, webrtcup. `is_janus`: the server is Janus
        1.1.2 (its exact payload types and s= line are checked). Returns (viewer, handle, mark)."""
        cl = cl or self.B
        if hid is None:
            hid = await self.attach(cl)
        v = Viewer()
        self.viewers.append(v)
        mark = cl.mark()
        ev, d = await cl.request(hid, {"request": "play", "id": rid}, f"{what}: play")
        check(d == rp_result(status="preparing", id=rid), f"{what}: play: {brief(d)}")
        offer = ev.get("jsep")
        check(isinstance(offer, dict) and offer.get("type") == "offer" and isinstance(offer.get("sdp"), str),
              f"{what}: `preparing` must carry the plugin's offer: {brief(offer)}")
        sdp = offer["sdp"]
        check_transport_sdp(sdp, self.addr, f"{what}: offer")
        secs = m_sections(sdp)
        check([k for k, _ in secs] == ["audio", "video"], f"{what}: offer m-lines {[k for k, _ in secs]}")
        for k, lines in secs:
            check("a=sendonly" in lines, f"{what}: offer {k} not sendonly")
        # Janus 1.1.2 offers fixed payload types: 111 for Opus, 100 for VP8. jano's engine
        # numbers them its own way (and offers RTX for retransmissions): only the codec counts.
        def has_codec(lines, pt, enc):
            if is_janus:
                return f"a=rtpmap:{pt} {enc}" in lines
            return any(l.startswith("a=rtpmap:") and l.split(" ", 1)[-1] == enc for l in lines)
        check(has_codec(secs[0][1], 111, "opus/48000/2"), f"{what}: offer audio rtpmaps "
              f"{[l for l in secs[0][1] if l.startswith('a=rtpmap')]}")
        check(has_codec(secs[1][1], 100, "VP8/90000"), f"{what}: offer video rtpmaps "
              f"{[l for l in secs[1][1] if l.startswith('a=rtpmap')]}")
        if is_janus:
            check(session_name(sdp) == f"Recording {rid}", f"{what}: offer s= line {session_name(sdp)!r}")
        answer = await v.answer(sdp)
        ev, d = await cl.request(hid, {"request": "start"}, f"{what}: start", jsep=answer)
        # Janus 1.1.2: {"status":"playing"}, no id.
        check(d == rp_result(status="playing"), f"{what}: start: {brief(d)}")
        check(ev.get("jsep") is None, f"{what}: start: no jsep")
        await wait_connected(v.pc, f"{what}: viewer")
        await cl.core_event(mark, hid, "webrtcup", f"{what}: webrtcup")
        return v, hid, mark

    async def wait_done(self, hid, mark, span, what, cl=None):
        cl = cl or self.B
        m = await cl.notification(mark, hid, lambda d: True, f"{what}: done", timeout=span * 2 + 10)
        t_done = time.monotonic()
        check(pdata(m) == DONE, f"{what}: {brief(pdata(m))}, expected {brief(DONE)}")
        h = await cl.core_event(mark, hid, "hangup", f"{what}: core hangup")
        check(h.get("reason") == "Close PC", f"{what}: core hangup reason {h.get('reason')!r}")
        return t_done

    def check_playback(self, v, look, other_hz, span, t_done, what, pause_jump=False):
        frames = v.frames
        n = len(frames)
        check(n >= 0.6 * span * FPS, f"{what}: decoded {n} frames of a {span:.1f} s recording")
        sizes = {f[2] for f in frames}
        check(sizes == {look["size"]}, f"{what}: decoded sizes {sizes}, expected {look['size']}")
        good = sum(1 for f in frames if max(abs(a - b) for a, b in zip(f[3], look["rgb"])) <= COLOUR_TOL)
        check(good >= 0.8 * n, f"{what}: colour off in {n - good}/{n} frames: last {frames[-1][3]}, expected {look['rgb']}")
        counted = [(t, c) for t, c, _, _ in frames if c is not None]
        check(len(counted) >= 0.7 * n, f"{what}: only {len(counted)} of {n} frames had a readable counter")
        dec = sum(1 for (_, p), (_, q) in zip(counted, counted[1:]) if q < p)
        check(dec <= 2, f"{what}: counters go back {dec} times: {[c for _, c in counted][:10]}…")
        out = [f"{n} frames {look['size']} colour {frames[-1][3]}"]
        if pause_jump:
            # The paused part is gone: the counter jumps by about the pause, at normal pace.
            jumps = [(q - p, t2 - t1) for (t1, p), (t2, q) in zip(counted, counted[1:])]
            jump, dt = max(jumps)
            check(jump >= 0.6 * PAUSE_S * FPS and dt < 0.6, f"{what}: largest counter jump {jump} frames in {dt:.2f} s, "
                  f"expected ≥ {0.6 * PAUSE_S * FPS:.0f} frames (the pause) without a wait")
            out.append(f"counter jumps {jump} in {dt * 1000:.0f} ms")
        # Pacing: frames for about the recorded duration, then `done`.
        dur = frames[-1][0] - frames[0][0]
        check(abs(dur - span) <= PACE_TOL * span, f"{what}: frames came for {dur:.2f} s, the recording spans {span:.2f} s")
        late = t_done - frames[-1][0]
        check(-0.5 <= late <= 2.0, f"{what}: done {late:.2f} s after the last frame")
        out.append(f"played {dur:.2f} s of {span:.2f} s; done +{late:.2f} s")
        chunks = [a for _, a in v.audio]
        rate = v.rate or 48000
        secs = sum(len(a) for a in chunks) / rate
        check(secs >= 0.6 * span, f"{what}: {secs:.1f} s of audio decoded of a {span:.1f} s recording")
        rms, share = analyse(chunks, rate, [look["hz"], other_hz])
        check(share[look["hz"]] >= MIN_SHARE, f"{what}: {look['hz']:.0f} Hz has {100 * share[look['hz']]:.1f} % of the power")
        gap = db(share[look["hz"]], share[other_hz])
        check(gap >= MIN_DB, f"{what}: {other_hz:.0f} Hz only {gap:.1f} dB below {look['hz']:.0f} Hz")
        out.append(f"{secs:.1f} s audio, {look['hz']:.0f} Hz {100 * share[look['hz']]:.0f} %")
        return "; ".join(out)

    async def play_recording(self):
        span = self.rec_span["video"]
        v, hid, mark = await self.play(self.rec_id, "play")
        self.play1 = (v, hid, mark, span)
        return "preparing + offer (sendonly, 111 opus, 100 VP8); start → playing; connected"

    async def playback(self):
        v, hid, mark, span = self.play1
        t_done = await self.wait_done(hid, mark, span, "playback")
        await asyncio.sleep(0.3)
        evs = [pdata(m) for m in self.B.since(mark, hid) if "transaction" not in m]
        check(evs == [DONE], f"unsolicited events of the viewer {brief(evs)}, expected only done")
        await self.detach(self.B, hid)
        return self.check_playback(v, LIVE, FIXTURE["hz"], span, t_done, "playback", pause_jump=True)

    async def fixture_update(self):
        names = sorted(os.listdir(self.fixtures))
        files = [n for n in names if n.endswith(".nfo") or n.endswith(".mjr")]
        want = sorted([f"{FIXTURE_ID}.nfo", f"{FIXTURE_NAME}-audio.mjr", f"{FIXTURE_NAME}-video.mjr"])
        check(files == want, f"{self.fixtures}: {files}, expected {want}")
        for n in files:
            shutil.copyfile(os.path.join(self.fixtures, n), os.path.join(self.folder, n))
        text = open(os.path.join(self.fixtures, f"{FIXTURE_ID}.nfo"), "rb").read().decode()
        m = re.search(r"\r\ndate = ([^\r\n]*)\r\n", text)
        check(m is not None, f"fixture .nfo: {text!r}")
        self.fix_date = m.group(1)
        check(text == nfo_text(FIXTURE_ID, FIXTURE_NAME, self.fix_date, f"{FIXTURE_NAME}-audio", f"{FIXTURE_NAME}-video"),
              f"fixture .nfo {text!r}")
        for kind, clock in (("audio", 48000), ("video", 90000)):
            _, frames = parse_mjr(os.path.join(self.fixtures, f"{FIXTURE_NAME}-{kind}.mjr"))
            tss = [rtp_fields(p)[1] for _, p in frames]
            self.fix_span[kind] = (max(tss) - min(tss)) / clock
        lst = await self.list_recordings(self.B, self.x)
        check(FIXTURE_ID not in lst, "the fixture is listed before `update`")
        d = await self.B.sync(self.x, {"request": "update"}, "update")
        check(d == {"recordplay": "ok"}, f"update: {brief(d)}")
        lst = await self.list_recordings(self.B, self.x)
        want = list_entry(FIXTURE_ID, FIXTURE_NAME, self.fix_date)
        check(lst.get(FIXTURE_ID) == want, f"fixture entry {brief(lst.get(FIXTURE_ID))}, expected {brief(want)}")
        check(lst.get(self.rec_id) == list_entry(self.rec_id, self.rec_name, self.rec_date),
              f"our recording after update: {brief(lst.get(self.rec_id))}")
        check(len(lst) == 2, f"list after update: {sorted(lst)}")
        return f"listed {brief(want)}"

    async def record_existing(self):
        return await self.jsep_errors([
            ({"request": "record", "name": "again", "id": FIXTURE_ID},
             rp_error(420, f"Recording {FIXTURE_ID} already exists")),
            ({"request": "record", "name": "again", "id": self.rec_id},
             rp_error(420, f"Recording {self.rec_id} already exists")),
        ], "existing id:")

    async def play_fixture(self):
        span = self.fix_span["video"]
        v, hid, mark = await self.play(FIXTURE_ID, "fixture")
        t_done = await self.wait_done(hid, mark, span, "fixture")
        await self.detach(self.B, hid)
        return self.check_playback(v, FIXTURE, LIVE["hz"], span, t_done, "fixture")

    async def record_and_end(self, how):
        """Record on a fresh handle (no id, no filename) for ~1.5 s, then end it by `how`: "hangup"
        (Janus API), "pc" (the recorder's PeerConnection closes) or "detach" (with an `update`
        while recording)."""
        hid = await self.attach(self.A)
        s = Sender(LIVE)
        self.senders.append(s)
        jsep = await s.offer()
        mark = self.A.mark()
        name = f"ended by {how}"
        ev, d = await self.A.request(hid, {"request": "record", "name": name}, "record without id", jsep=jsep)
        check(set(d) == {"recordplay", "result"} and set(d["result"]) == {"status", "id"}
              and d["result"]["status"] == "recording", f"record: {brief(d)}")
        rid = d["result"]["id"]
        # Janus 1.1.2 picks a random id below 2^53.
        check(isinstance(rid, int) and 0 < rid < 2 ** 53, f"random id {rid!r}")
        await s.pc.setRemoteDescription(RTCSessionDescription(sdp=ev["jsep"]["sdp"], type="answer"))
        await wait_connected(s.pc, f"recorder ({how})")
        await self.A.core_event(mark, hid, "webrtcup", f"recorder ({how}) webrtcup")
        await asyncio.sleep(1.5)
        out = [f"id {rid}"]
        if how == "hangup":
            r = await self.A.c.hangup(hid)
            check(r.get("janus") == "success", f"hangup: {brief(r)}")
        elif how == "pc":
            await s.pc.close()
        else:
            # Janus 1.1.2: an `update` while recording drops the recording in progress from the
            # list (it has no .nfo yet), and it is not listed when it completes either, until
            # the next `update` finds its .nfo.
            d = await self.A.sync(hid, {"request": "update"}, "update while recording")
            check(d == {"recordplay": "ok"}, f"update: {brief(d)}")
            mark = self.A.mark()
            r = await self.A.c.detach(hid)
            check(r.get("janus") == "success", f"detach: {brief(r)}")
            self.handles.remove((self.A, hid))
        if how == "detach":
            await asyncio.sleep(0.5)
            told = [m.get("janus") + (":" + brief(pdata(m)) if "plugindata" in m else "")
                    for m in self.A.since(mark, hid, kinds=("event", "hangup", "detached"))]
            out.append(f"told after the detach: {told}")
        else:
            m = await self.A.notification(mark, hid, lambda d: True, f"done after {how}")
            check(pdata(m) == DONE, f"after {how}: {brief(pdata(m))}")
            h = await self.A.core_event(mark, hid, "hangup", "core hangup")
            want = "Janus API" if how == "hangup" else "DTLS alert"
            check(h.get("reason") == want, f"core hangup reason {h.get('reason')!r}, expected {want!r}")
            out.append(f"done; core hangup {want}")
        await asyncio.sleep(0.5)
        # Janus 1.1.2: without a filename the files are rec-<id>-audio.mjr / rec-<id>-video.mjr
        # (the spec says janus-recording-<random>.mjr); however the PeerConnection ends, the
        # recording is completed just like with stop: the .nfo is written, the recording listed.
        for n in (f"rec-{rid}-audio.mjr", f"rec-{rid}-video.mjr", f"{rid}.nfo"):
            check(os.path.exists(os.path.join(self.folder, n)), f"{n} missing: {sorted(os.listdir(self.folder))}")
        text = open(os.path.join(self.folder, f"{rid}.nfo"), "rb").read().decode()
        date = re.search(r"\r\ndate = ([^\r\n]*)\r\n", text)
        check(date is not None and text == nfo_text(rid, name, date.group(1), f"rec-{rid}-audio", f"rec-{rid}-video"),
              f".nfo {text!r}")
        out.append(f"rec-{rid}-*.mjr + .nfo")
        for kind in ("audio", "video"):
            _, frames = parse_mjr(os.path.join(self.folder, f"rec-{rid}-{kind}.mjr"))
            check(len(frames) >= 20, f"rec-{rid}-{kind}.mjr: {len(frames)} packets")
        lst = await self.list_recordings(self.B, self.x)
        if how == "detach":
            if IS_JANUS:
                check(rid not in lst, f"Janus 1.1.2 does not list a recording an update dropped: {brief(lst.get(rid))}")
            d = await self.B.sync(self.x, {"request": "update"}, "update")
            check(d == {"recordplay": "ok"}, f"update: {brief(d)}")
            lst = await self.list_recordings(self.B, self.x)
            out.append("listed after one more update" if IS_JANUS else "listed")
        else:
            out.append("listed")
            await self.detach(self.A, hid)
        check(lst.get(rid) == list_entry(rid, name, date.group(1)), f"list entry {brief(lst.get(rid))}")
        await s.close()
        return "; ".join(out)

    async def hangup_playing(self):
        v, hid, mark = await self.play(self.rec_id, "play 2")
        end = time.monotonic() + 5
        while len(v.frames) < 15 and time.monotonic() < end:
            await asyncio.sleep(0.05)
        check(len(v.frames) >= 15, f"only {len(v.frames)} frames before the hangup")
        mark = self.B.mark()
        r = await self.B.c.hangup(hid)
        t_hang = time.monotonic()
        check(r.get("janus") == "success", f"hangup: {brief(r)}")
        m = await self.B.notification(mark, hid, lambda d: True, "done after hangup")
        check(pdata(m) == DONE, f"after hangup: {brief(pdata(m))}")
        h = await self.B.core_event(mark, hid, "hangup", "core hangup")
        check(h.get("reason") == "Janus API", f"core hangup reason {h.get('reason')!r}")
        await asyncio.sleep(1.0)
        late = [f for f in v.frames if f[0] > t_hang + 0.5]
        check(not late, f"{len(late)} frames decoded more than 0.5 s after the hangup")
        self.play2 = hid
        return f"{len(v.frames)} frames, none after the hangup; done; core hangup Janus API"

    async def stop_playing(self):
        hid = self.play2
        v, hid, mark = await self.play(FIXTURE_ID, "play again on the same handle", hid=hid)
        end = time.monotonic() + 5
        while len(v.frames) < 10 and time.monotonic() < end:
            await asyncio.sleep(0.05)
        check(len(v.frames) >= 10, f"only {len(v.frames)} frames before pause")
        # Janus 1.1.2: pause/resume on a viewer answer like on a recorder (with the recording's
        # id) but change nothing: the playout goes on.
        ev, d = await self.B.request(hid, {"request": "pause"}, "pause a playout")
        check(d == rp_result(status="paused", id=FIXTURE_ID), f"pause a playout: {brief(d)}")
        t_p = time.monotonic()
        await asyncio.sleep(0.8)
        n = len([f for f in v.frames if f[0] > t_p + 0.3])
        check(n >= 5, f"only {n} frames in the 0.5 s after `pause` (Janus goes on playing)")
        ev, d = await self.B.request(hid, {"request": "resume"}, "resume a playout")
        check(d == rp_result(status="resumed", id=FIXTURE_ID), f"resume a playout: {brief(d)}")
        mark = self.B.mark()
        ev, d = await self.B.request(hid, {"request": "stop"}, "stop a playout")
        t_stop = time.monotonic()
        # Janus 1.1.2: stopping a playout also says the recording's id (the spec shows none).
        check(d == rp_result(status="stopped", id=FIXTURE_ID), f"stop a playout: {brief(d)}")
        m = await self.B.notification(mark, hid, lambda d: True, "done after stop")
        check(pdata(m) == DONE, f"after stop: {brief(pdata(m))}")
        h = await self.B.core_event(mark, hid, "hangup", "core hangup")
        check(h.get("reason") == "Close PC", f"core hangup reason {h.get('reason')!r}")
        await asyncio.sleep(1.0)
        late = [f for f in v.frames if f[0] > t_stop + 0.5]
        check(not late, f"{len(late)} frames decoded more than 0.5 s after the stop")
        await self.detach(self.B, hid)
        return "preparing/playing again; pause/resume → paused/resumed {id}, playout goes on; stop → stopped {id}, done"

    async def forget(self):
        os.remove(os.path.join(self.folder, f"{FIXTURE_ID}.nfo"))
        d = await self.B.sync(self.x, {"request": "update"}, "update")
        check(d == {"recordplay": "ok"}, f"update: {brief(d)}")
        lst = await self.list_recordings(self.B, self.x)
        check(FIXTURE_ID not in lst and self.rec_id in lst, f"list after deleting the fixture's .nfo: {sorted(lst)}")
        v = await self.attach(self.B)
        ev, d = await self.B.request(v, {"request": "play", "id": FIXTURE_ID}, "play the forgotten fixture")
        check(d == rp_error(416, "No such recording"), f"play: {brief(d)}")
        await self.detach(self.B, v)
        return f"list {sorted(lst)}; play → 416"

    async def janus_plays(self):
        """The real Janus 1.1.2, on the same recordings folder, plays the recording the server
        under test made (the main one: red, 440 Hz, the pause cut out)."""
        J = self.J
        nfo = os.path.join(self.folder, f"{self.rec_id}.nfo")
        check(os.path.exists(nfo), f"{nfo} missing: {sorted(os.listdir(self.folder))}")
        await J.c.connect()
        async with J.c.http.get(J.c.url + "/info") as resp:
            info = json.loads(await resp.text())
        check(info.get("name") == "Janus WebRTC Server" and info.get("version_string") == "1.1.2",
              f"{J.c.url}/info: not Janus 1.1.2: {info.get('name')!r} {info.get('version_string')!r}")
        sid = await J.c.create()
        check(isinstance(sid, int) and sid > 0, f"Janus session id {sid!r}")
        # (J's handles are not in self.handles: the teardown is the server under test's.)
        hid = await J.c.attach(RECORDPLAY)
        d = await J.sync(hid, {"request": "update"}, "Janus: update")
        check(d == {"recordplay": "ok"}, f"Janus: update: {brief(d)}")
        lst = await self.list_recordings(J, hid, "Janus: list")
        want = list_entry(self.rec_id, self.rec_name, self.rec_date)
        check(lst.get(self.rec_id) == want, f"Janus lists {brief(lst.get(self.rec_id))} for {self.rec_id}, "
              f"expected {brief(want)}; Janus's list: {brief(lst)}")
        # Every other recording the server completed (an .nfo) is listed by Janus too.
        nfos = sorted(int(n[:-4]) for n in os.listdir(self.folder) if n.endswith(".nfo") and n[:-4].isdigit())
        missing = [i for i in nfos if i not in lst]
        check(not missing, f"Janus does not list {missing} (the .nfo files in the folder: {nfos})")
        r = await J.c.detach(hid)
        check(r.get("janus") == "success", f"Janus: detach: {brief(r)}")
        span = self.rec_span["video"]
        v, hid, mark = await self.play(self.rec_id, "Janus: play", hid=await J.c.attach(RECORDPLAY), cl=J,
                                       is_janus=True)
        t_done = await self.wait_done(hid, mark, span, "Janus: playback", cl=J)
        await asyncio.sleep(0.3)
        evs = [pdata(m) for m in J.since(mark, hid) if "transaction" not in m]
        check(evs == [DONE], f"Janus: unsolicited events of the viewer {brief(evs)}, expected only done")
        r = await J.c.detach(hid)
        check(r.get("janus") == "success", f"Janus: detach: {brief(r)}")
        res = self.check_playback(v, LIVE, FIXTURE["hz"], span, t_done, "Janus: playback", pause_jump=True)
        await v.close()
        r = await J.c.destroy()
        check(r.get("session_id") == sid, f"Janus: destroy reply {brief(r)}")
        return f"listed {len(nfos)} of {len(nfos)}; {res}"

    async def teardown(self):
        for cl, hid in list(self.handles):
            await self.detach(cl, hid)
        for cl in (self.A, self.B):
            sid = cl.c.session_id
            r = await cl.c.destroy()
            check(r.get("session_id") == sid, f"destroy reply {brief(r)}")
        return "ok"

    # -- the fixture -----------------------------------------------------------------------
    async def make_fixture(self, out):
        s = Sender(FIXTURE)
        self.senders.append(s)
        jsep = await s.offer()
        mark = self.A.mark()
        ev, d = await self.A.request(self.rec, {"request": "record", "name": FIXTURE_NAME, "filename": FIXTURE_NAME,
                                                "id": FIXTURE_ID}, "record the fixture", jsep=jsep)
        check(d == rp_result(status="recording", id=FIXTURE_ID), f"record: {brief(d)}")
        await s.pc.setRemoteDescription(RTCSessionDescription(sdp=ev["jsep"]["sdp"], type="answer"))
        await wait_connected(s.pc, "fixture recorder")
        await self.A.core_event(mark, self.rec, "webrtcup", "webrtcup")
        await asyncio.sleep(FIXTURE_S)
        ev, d = await self.A.request(self.rec, {"request": "stop"}, "stop")
        await self.A.notification(mark, self.rec, lambda d: d == DONE, "done")
        await asyncio.sleep(0.5)
        os.makedirs(out, exist_ok=True)
        sizes = []
        for n in (f"{FIXTURE_ID}.nfo", f"{FIXTURE_NAME}-audio.mjr", f"{FIXTURE_NAME}-video.mjr"):
            shutil.copyfile(os.path.join(self.folder, n), os.path.join(out, n))
            sizes.append(f"{n} {os.path.getsize(os.path.join(out, n))} B")
        await s.close()
        return "; ".join(sizes)

    async def close(self):
        for v in self.viewers:
            await v.close()
        for s in self.senders:
            await s.close()
        for cl in (self.A, self.B, self.J):
            if cl is not None:
                await cl.c.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    ap.add_argument("--ws", default=os.environ.get("JANUS_WS_URL"))
    ap.add_argument("--addr", default=os.environ.get("JANUS_MEDIA_ADDR"),
                    help="the address the server's candidates must use")
    ap.add_argument("--recordings", help="the server's recordings folder (Record&Play `path`)")
    ap.add_argument("--fixtures", help="the folder holding the recording made by Janus 1.1.2")
    ap.add_argument("--janus-http", help="the HTTP URL of the real Janus 1.1.2 running on the same recordings "
                    "folder: it plays the recording the server under test made")
    args = ap.parse_args()
    runner = Runner()
    if not args.http or not args.ws or not args.recordings or not args.fixtures:
        runner.fail("aiortc Record&Play", 0, "need --http, --ws, --recordings and --fixtures")
        runner.summary()
        return 1
    run = RecordPlayRun(args.http, args.ws, args.addr, args.recordings, args.fixtures, args.janus_http)
    step = stepper(runner, run.dump)
    make = os.environ.get("RECORDPLAY_MAKE_FIXTURE")
    try:
        if make:
            print(f"▶ aiortc Record&Play: recording the fixture into {make}", flush=True)
            await step("connect 2 sessions (HTTP, WS), attach", run.setup, 15)
            await step(f"record {FIXTURE_S:.0f} s as {FIXTURE_ID} and copy the files", lambda: run.make_fixture(make),
                       CONNECT_TIMEOUT + FIXTURE_S + 3 * STEP)
            await step("detach handles + destroy sessions", run.teardown, 15)
            return finish(runner)
        print(f"▶ aiortc Record&Play: recorders over HTTP ({args.http}), viewers over WebSocket ({args.ws})", flush=True)
        await step("connect 2 sessions (HTTP, WS), attach", run.setup, 15)
        await step("update → ok; list → [] (fresh folder)", run.update_list_empty, 15)
        await step("configure → settings (defaults 15000 ms / 1048576 bps; per handle)", run.configure, 15,
                   essential=False)
        await step("request errors: exact codes and texts (413/414/415/416/418), pause/resume/stop with nothing",
                   run.request_errors, 30, essential=False)
        await step("record/play errors that come with an offer (415/414)", run.record_errors, 30, essential=False)
        await step("record {name, filename, id} + offer (red 320x240, 440 Hz) → recording {id} + answer; webrtcup",
                   run.record, CONNECT_TIMEOUT + 2 * STEP)
        await step("while recording: not listed; play it → 416; no .nfo yet", run.while_recording, 15, essential=False)
        await step(f"pause → paused {{id}}; {PAUSE_S} s; resume → resumed {{id}}", run.pause_resume,
                   RECORD_S + PAUSE_S + 3 * STEP)
        await step("stop → stopped {id}; then done (result \"done\") + core hangup Close PC", run.stop,
                   RECORD_S + 2 * STEP)
        await step("REMB ramp-up to video-bitrate-max; PLIs every video-keyframe-interval", run.feedback, 5,
                   essential=False)
        await step(".nfo (exact text, CRLF) and .mjr files (header, MEET frames, RTP rewritten, pause cut)",
                   run.files, 10)
        await step("list → the exact entry", run.listed, 15, essential=False)
        await step("play {id} → preparing {id} + offer; start + answer → playing; webrtcup", run.play_recording,
                   CONNECT_TIMEOUT + 3 * STEP)
        await step("playback: red frames, 440 Hz, the pause cut out, paced; then done", run.playback,
                   4 * RECORD_S + 2 * STEP, essential=False)
        await step("fixture made by Janus 1.1.2 copied in; update → ok; list has it (exact entry)",
                   run.fixture_update, 15)
        await step("record with an existing id → 420", run.record_existing, 20, essential=False)
        await step("play the fixture: blue 256x192 frames, 660 Hz, paced; then done", run.play_fixture,
                   CONNECT_TIMEOUT + 2 * FIXTURE_S + 4 * STEP, essential=False)
        await step("record without id/filename, hang up while recording → done; rec-<id>-*.mjr, .nfo, listed",
                   lambda: run.record_and_end("hangup"), CONNECT_TIMEOUT + 4 * STEP, essential=False)
        await step("record; the recorder's PeerConnection closes → done; .nfo, listed",
                   lambda: run.record_and_end("pc"), CONNECT_TIMEOUT + 4 * STEP, essential=False)
        await step("record; update while recording; detach → .nfo written; listed (Janus: after another update)",
                   lambda: run.record_and_end("detach"), CONNECT_TIMEOUT + 4 * STEP, essential=False)
        await step("hang up while playing → done; media stops", run.hangup_playing, CONNECT_TIMEOUT + 4 * STEP,
                   essential=False)
        await step("same handle plays again; pause/resume change nothing; stop → stopped {id}, done; media stops",
                   run.stop_playing, CONNECT_TIMEOUT + 4 * STEP, essential=False)
        await step("delete the fixture's .nfo; update → not listed; play → 416", run.forget, 15, essential=False)
        if args.janus_http:
            await step("the recording played in Janus 1.1.2 (same folder): update; list has it (exact entry); "
                       "play → red frames, 440 Hz, the pause cut out, paced; done",
                       run.janus_plays, CONNECT_TIMEOUT + 4 * RECORD_S + 4 * STEP, essential=False)
        elif not IS_JANUS:
            print("# not played in Janus 1.1.2: no --janus-http (run.sh passes it when janus is installed)",
                  flush=True)
        await step("detach handles + destroy sessions", run.teardown, 15)
    finally:
        await run.close()
    return finish(runner)


def finish(runner):
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
