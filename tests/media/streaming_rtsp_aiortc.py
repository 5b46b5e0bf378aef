#!/usr/bin/env python3
"""Streaming `rtsp` mountpoint end to end: GStreamer's RTSP server (rtsp_server.py, a real
gst-rtsp-server behind Digest authentication) plays a camera's part — VP8 320x240 and a 440 Hz
Opus tone; the server under test pulls it (DESCRIBE/SETUP/PLAY with `rtsp_user`/`rtsp_pwd`)
and an aiortc viewer decodes both. Then the RTSP server is killed and started again on the
same port: the mountpoint reconnects by itself (`rtsp_reconnect_delay`) and the same viewer
decodes new frames. Wrong credentials fail the `create` (456); `destroy` ends it. A second
camera that refuses RTP over UDP (461) is pulled with the media interleaved on the RTSP
connection.

Usage: streaming_rtsp_aiortc.py --http URL
Prints node-test-style lines and `ℹ pass N` / `ℹ fail M`; exit 1 on failure.
"""

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from echotest_aiortc import CONNECT_TIMEOUT, Runner, check, dominant_frequency, stepper
from janus_client import HttpJanus, brief
from videoroom_aiortc import wait_connected

STREAMING = "janus.plugin.streaming"
STEP = 15.0
HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = os.environ.get("RTSP_SERVER_PYTHON", "/usr/bin/python3")
USER, PASSWORD = "camera", "s3cret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    def __init__(self, port, tcp_only=False):
        self.port = port
        self.tcp_only = tcp_only
        self.proc = None

    async def start(self):
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, os.path.join(HERE, "rtsp_server.py"), "--port", str(self.port),
             "--user", USER, "--password", PASSWORD] + (["--tcp-only"] if self.tcp_only else []),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(loop.run_in_executor(None, self.proc.stdout.readline), 15)
        check(line.startswith("ready"), f"the RTSP server did not start: {line!r}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class Viewer:
    def __init__(self):
        self.pc = None
        self.video = []  # (time, (w, h))
        self.audio = []
        self.rate = None
        self.tasks = []

    async def consume(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.video.append((time.monotonic(), (frame.width, frame.height)))
            else:
                a = frame.to_ndarray()
                ch = len(frame.layout.channels)
                a = a.reshape(-1)[::ch] if ch > 1 else a.reshape(-1)
                self.audio.append(a.astype(np.int16))
                self.rate = frame.sample_rate

    def frames_since(self, t):
        return [s for (at, s) in self.video if at >= t]


class Run:
    def __init__(self, url):
        self.c = HttpJanus(url)
        self.adm = self.h = None
        self.mp = None
        self.server = RtspServer(free_port())
        self.v = Viewer()
        self.tcp_server = RtspServer(free_port(), tcp_only=True)
        self.tcp_v = Viewer()

    async def sync(self, body, what):
        r = await self.c.message(self.adm, body)
        check(r.get("janus") == "success", f"{what}: expected success, got {brief(r)}")
        return r.get("plugindata", {}).get("data", {})

    async def event(self, body, what, jsep=None):
        r = await self.c.message(self.h, body, jsep)
        check(r.get("janus") == "ack", f"{what}: expected ack, got {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx, STEP, what)
        data = ev.get("plugindata", {}).get("data", {})
        check("error_code" not in data, f"{what}: plugin error {brief(data)}")
        return ev, data

    def url(self):
        return f"rtsp://127.0.0.1:{self.server.port}/test"

    async def setup(self):
        await self.server.start()
        await self.c.connect()
        await self.c.create()
        self.adm = await self.c.attach(STREAMING)
        self.h = await self.c.attach(STREAMING)
        return f"gst-rtsp-server on port {self.server.port}"

    async def wrong_password(self):
        d = await self.sync({"request": "create", "type": "rtsp", "url": self.url(), "audio": True,
                             "video": True, "rtsp_user": USER, "rtsp_pwd": "wrong"}, "create (wrong password)")
        check(d.get("error_code") == 456, f"a wrong password: {brief(d)}, expected 456")
        return f"{d.get('error_code')} {d.get('error')!r}"

    async def create(self):
        self.mp = random.randint(1, 2 ** 40)
        d = await self.sync({"request": "create", "type": "rtsp", "id": self.mp, "name": "camera",
                             "url": self.url(), "rtsp_user": USER, "rtsp_pwd": PASSWORD,
                             "audio": True, "video": True, "rtsp_reconnect_delay": 2,
                             "secret": "adminpwd"}, "create rtsp")
        check(d.get("streaming") == "created", f"create: {brief(d)}")
        i = (await self.sync({"request": "info", "id": self.mp, "secret": "adminpwd"}, "info")).get("info", {})
        codecs = sorted(m.get("codec") for m in i.get("media", []))
        check(codecs == ["opus", "vp8"], f"the mountpoint's streams: {brief(i)}")
        check(i.get("rtsp") is True and i.get("url") == self.url(), f"info: {brief(i)}")
        return f"mountpoint {self.mp}: {codecs}"

    async def watch(self):
        ev, d = await self.event({"request": "watch", "id": self.mp}, "watch")
        jsep = ev.get("jsep") or {}
        check(jsep.get("type") == "offer", f"watch carries no offer: {brief(ev)}")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.v.pc = pc
        pc.on("track", lambda t: self.v.tasks.append(asyncio.ensure_future(self.v.consume(t))))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        _, d = await self.event({"request": "start"}, "start",
                                jsep={"type": "answer", "sdp": pc.localDescription.sdp, "trickle": False})
        await wait_connected(pc, "viewer")
        return "connected"

    async def decodes(self):
        t0 = time.monotonic()
        end = t0 + 20
        while time.monotonic() < end:
            secs = sum(len(a) for a in self.v.audio) / (self.v.rate or 48000)
            if len(self.v.frames_since(t0)) >= 30 and secs >= 2.0:
                break
            await asyncio.sleep(0.2)
        frames = self.v.frames_since(0)
        check(len(frames) >= 30, f"only {len(frames)} video frames decoded")
        check(all(s == (320, 240) for s in frames[-10:]), f"frame sizes {set(frames)}")
        check(self.v.audio, "no audio decoded")
        pcm = np.concatenate(self.v.audio)
        last = pcm[-self.v.rate:]
        f = dominant_frequency(last, self.v.rate)
        check(abs(f - 440) <= 8, f"dominant frequency {f:.1f} Hz, expected 440")
        return f"{len(frames)} frames 320x240, audio {len(pcm) / self.v.rate:.1f} s at {f:.1f} Hz"

    async def reconnect(self):
        self.server.stop()
        await asyncio.sleep(1.0)
        cut = time.monotonic()
        await asyncio.sleep(1.0)
        n = len(self.v.frames_since(cut))
        check(n <= 2, f"{n} frames decoded with the RTSP server gone")
        await self.server.start()
        back = time.monotonic()
        end = back + 25
        while time.monotonic() < end and len(self.v.frames_since(back)) < 20:
            await asyncio.sleep(0.2)
        m = len(self.v.frames_since(back))
        check(m >= 20, f"only {m} frames after the RTSP server came back")
        return f"{n} frames while it was gone, {m} after it came back"

    async def over_tcp(self):
        """A camera that refuses RTP over UDP (461): the mountpoint takes the media interleaved
        on the RTSP connection."""
        await self.tcp_server.start()
        mp = random.randint(1, 2 ** 40)
        url = f"rtsp://127.0.0.1:{self.tcp_server.port}/test"
        d = await self.sync({"request": "create", "type": "rtsp", "id": mp, "url": url,
                             "rtsp_user": USER, "rtsp_pwd": PASSWORD, "audio": True, "video": True},
                            "create rtsp (TCP-only camera)")
        check(d.get("streaming") == "created", f"create: {brief(d)}")
        h = await self.c.attach(STREAMING)
        r = await self.c.message(h, {"request": "watch", "id": mp})
        check(r.get("janus") == "ack", f"watch: {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx, STEP, "watch")
        jsep = ev.get("jsep") or {}
        check(jsep.get("type") == "offer", f"watch carries no offer: {brief(ev)}")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tcp_v.pc = pc
        pc.on("track", lambda t: self.tcp_v.tasks.append(asyncio.ensure_future(self.tcp_v.consume(t))))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        r = await self.c.message(h, {"request": "start"},
                                 {"type": "answer", "sdp": pc.localDescription.sdp, "trickle": False})
        check(r.get("janus") == "ack", f"start: {brief(r)}")
        await wait_connected(pc, "TCP viewer")
        end = time.monotonic() + 20
        while time.monotonic() < end and len(self.tcp_v.video) < 20:
            await asyncio.sleep(0.2)
        n = len(self.tcp_v.video)
        check(n >= 20, f"only {n} frames from the TCP-only camera")
        check(all(sz == (320, 240) for _, sz in self.tcp_v.video[-5:]), "frame size")
        d = await self.sync({"request": "destroy", "id": mp}, "destroy")
        check(d.get("streaming") == "destroyed", f"destroy: {brief(d)}")
        return f"{n} frames 320x240 over RTSP/TCP"

    async def destroy(self):
        d = await self.sync({"request": "destroy", "id": self.mp, "secret": "adminpwd"}, "destroy")
        check(d.get("streaming") == "destroyed", f"destroy: {brief(d)}")
        return "destroyed"

    async def close(self):
        for v in (self.v, self.tcp_v):
            for t in v.tasks:
                t.cancel()
            if v.pc:
                await v.pc.close()
        self.server.stop()
        self.tcp_server.stop()
        try:
            await self.c.destroy()
        except Exception:  # noqa: BLE001
            pass
        await self.c.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    args = ap.parse_args()
    runner = Runner()
    run = Run(args.http)
    print(f"▶ aiortc Streaming rtsp mountpoint (gst-rtsp-server, Digest auth) over {args.http}", flush=True)
    step = stepper(runner, run.c.dump)

    try:
        await step("start gst-rtsp-server (VP8 + Opus, Digest auth); session + handles", run.setup, 30)
        await step("create rtsp with a wrong password → 456", run.wrong_password, STEP, essential=False)
        await step("create rtsp (url, rtsp_user, rtsp_pwd, audio, video) → created; info: opus + vp8",
                   run.create, STEP)
        await step("watch + start → connected", run.watch, CONNECT_TIMEOUT + 2 * STEP)
        await step("the viewer decodes the camera: 320x240 video, 440 Hz audio", run.decodes, 30)
        await step("the RTSP server dies and comes back → the mountpoint reconnects, frames again",
                   run.reconnect, 45)
        await step("destroy → destroyed (TEARDOWN)", run.destroy, STEP)
        tcp_step = "a camera that refuses UDP (461) → media interleaved over TCP, decoded"
        if os.environ.get("MEDIA_SERVER_IS_JANUS"):
            # Janus pulls RTSP with libcurl over UDP only.
            runner.skip(f"  {tcp_step}", "Janus 1.1.2 has no RTSP over TCP")
        else:
            await step(tcp_step, run.over_tcp, CONNECT_TIMEOUT + 40, essential=False)
    finally:
        await run.close()
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
