#!/usr/bin/env python3
"""Streaming `rtp` mountpoint end to end: this script is the source (Opus and VP8 encoded by
aiortc's own encoders from the EchoTest's tone and counter bars, sent as plain RTP to the
mountpoint's UDP ports, as GStreamer or FFmpeg would) and an aiortc viewer (`watch` → the
plugin's offer → answer with `start`); the viewer decodes the video (size, bar colours,
increasing counter) and the audio (440 Hz). Then `pause` stops the frames, `stop` hangs up and
`destroy` removes the mountpoint.

Usage: streaming_aiortc.py --http URL --addr ADDR
Prints node-test-style lines and `ℹ pass N` / `ℹ fail M`; exit 1 on failure.
"""

import argparse
import asyncio
import os
import random
import socket
import sys
import time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from echotest_aiortc import BarsTrack, CONNECT_TIMEOUT, Runner, ToneTrack, check, stepper
from janus_client import HttpJanus, brief
from videoroom_aiortc import Sink, wait_connected

STREAMING = "janus.plugin.streaming"
STEP = 12.0


def rtp_packet(pt, seq, ts, ssrc, marker, payload):
    b0 = 0x80
    b1 = (0x80 if marker else 0) | pt
    return (bytes([b0, b1]) + (seq & 0xFFFF).to_bytes(2, "big") + (ts & 0xFFFFFFFF).to_bytes(4, "big")
            + ssrc.to_bytes(4, "big") + payload)


class Source:
    """Encodes the tone and the bars in real time and sends them as RTP to the mountpoint."""

    def __init__(self, addr, ports):
        self.addr = addr
        self.ports = ports  # (audio, video)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.bars = BarsTrack()
        self.tone = ToneTrack()
        self.sent = {"audio": 0, "video": 0}
        self.tasks = []

    async def _run(self, track, kind, codec, pt, port):
        enc = get_encoder(codec)
        seq = random.randint(0, 65535)
        ssrc = random.randint(1, 2 ** 32 - 1)
        n = 0
        while True:
            frame = await track.recv()
            payloads, ts = enc.encode(frame, force_keyframe=(kind == "video" and n % 30 == 0))
            for i, p in enumerate(payloads):
                self.sock.sendto(rtp_packet(pt, seq, ts, ssrc, i == len(payloads) - 1, p), (self.addr, port))
                seq += 1
                self.sent[kind] += 1
            n += 1

    def start(self):
        opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
        vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
        self.tasks = [
            asyncio.ensure_future(self._run(self.tone, "audio", opus, 111, self.ports[0])),
            asyncio.ensure_future(self._run(self.bars, "video", vp8, 96, self.ports[1])),
        ]

    async def stop(self):
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self.sock.close()


class Run:
    def __init__(self, url, addr):
        self.c = HttpJanus(url)
        self.addr = addr
        self.adm = self.viewer = None
        self.mp = None
        self.source = None
        self.pc = None
        self.sink = None

    async def sync(self, body, what):
        r = await self.c.message(self.adm, body)
        check(r.get("janus") == "success", f"{what}: expected success, got {brief(r)}")
        data = r.get("plugindata", {}).get("data", {})
        check("error_code" not in data, f"{what}: plugin error {brief(data)}")
        return data

    async def async_(self, body, what, jsep=None):
        r = await self.c.message(self.viewer, body, jsep)
        check(r.get("janus") == "ack", f"{what}: expected ack, got {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx, STEP, what)
        data = ev.get("plugindata", {}).get("data", {})
        check("error_code" not in data, f"{what}: plugin error {brief(data)}")
        return ev, data

    async def setup(self):
        await self.c.connect()
        await self.c.create()
        self.adm = await self.c.attach(STREAMING)
        self.viewer = await self.c.attach(STREAMING)
        self.mp = random.randint(1, 2 ** 40)
        d = await self.sync({"request": "create", "type": "rtp", "id": self.mp, "name": "aiortc-source",
                             "description": "tone and bars", "media": [
                                 {"type": "audio", "mid": "a", "port": 0, "pt": 111, "rtpmap": "opus/48000/2"},
                                 {"type": "video", "mid": "v", "port": 0, "pt": 96, "rtpmap": "VP8/90000"}]},
                            "create")
        check(d.get("streaming") == "created", f"create: {brief(d)}")
        ports = [p.get("port") for p in d["stream"]["ports"]]
        check(all(isinstance(p, int) and p > 0 for p in ports), f"ports {ports}")
        self.source = Source(self.addr, ports)
        self.source.start()
        return f"mountpoint {self.mp}, ports {ports}"

    async def watch(self):
        ev, d = await self.async_({"request": "watch", "id": self.mp}, "watch")
        check(d.get("result", {}).get("status") == "preparing", f"watch: {brief(d)}")
        jsep = ev.get("jsep") or {}
        check(jsep.get("type") == "offer", f"watch carries no offer: {brief(ev)}")
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sink = Sink(self.source.bars)
        self.pc.on("track", self.sink.on_track)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        mark = len(self.c.received)
        _, d = await self.async_({"request": "start"}, "start",
                                 jsep={"type": "answer", "sdp": self.pc.localDescription.sdp, "trickle": False})
        check(d.get("result", {}).get("status") == "starting", f"start: {brief(d)}")
        await wait_connected(self.pc, "viewer")
        old = {id(m) for _, m in self.c.received[:mark]}
        await self.c.wait_for(lambda m: id(m) not in old and m.get("sender") == self.viewer
                              and m.get("plugindata", {}).get("data", {}).get("result", {}).get("status") == "started",
                              STEP, "the started event")
        return "connected, started"

    async def collect(self):
        await self.sink.collect()
        return f"source sent {self.source.sent}"

    async def pause(self):
        await self.async_({"request": "pause"}, "pause")
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        await asyncio.sleep(1.5)
        n = self.sink.frames_between(t0, time.monotonic())
        check(n <= 2, f"{n} frames decoded while paused")
        await self.async_({"request": "start"}, "resume")
        t1 = time.monotonic()
        await asyncio.sleep(2.0)
        m = self.sink.frames_between(t1 + 0.5, time.monotonic())
        check(m >= 10, f"only {m} frames after resuming")
        return f"{n} frames while paused, {m} after resuming"

    async def stop_destroy(self):
        mark = len(self.c.received)
        _, d = await self.async_({"request": "stop"}, "stop")
        check(d.get("result", {}).get("status") == "stopping", f"stop: {brief(d)}")
        old = {id(m) for _, m in self.c.received[:mark]}
        await self.c.wait_for(lambda m: id(m) not in old and m["janus"] == "hangup" and m.get("sender") == self.viewer,
                              STEP, "hangup after stop")
        d = await self.sync({"request": "destroy", "id": self.mp}, "destroy")
        check(d == {"streaming": "destroyed", "destroyed": self.mp}, f"destroy: {brief(d)}")
        return "hung up, destroyed"

    async def close(self):
        if self.source:
            await self.source.stop()
        if self.sink:
            for t in self.sink.tasks:
                t.cancel()
        if self.pc:
            await self.pc.close()
        try:
            await self.c.destroy()
        except Exception:  # noqa: BLE001
            pass
        await self.c.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    ap.add_argument("--addr", default=os.environ.get("JANUS_MEDIA_ADDR"))
    args = ap.parse_args()
    runner = Runner()
    run = Run(args.http, args.addr)
    print(f"▶ aiortc Streaming rtp mountpoint over {args.http}", flush=True)
    step = stepper(runner, run.c.dump)

    try:
        await step("create an rtp mountpoint (opus + VP8, random ports); the source starts sending", run.setup, 15)
        await step("watch → preparing + offer; start + answer → starting; connected; started", run.watch,
                   CONNECT_TIMEOUT + 2 * STEP)
        await step("the viewer decodes: collect", run.collect, 30)
        await step("video: size, bar colours, increasing counter", lambda: _sync(run.sink.check_video), 5,
                   essential=False)
        await step("audio: 440 Hz tone", lambda: _sync(run.sink.check_audio), 5, essential=False)
        await step("pause → frames stop; start → they come back", run.pause, 15, essential=False)
        await step("stop → stopping + hangup; destroy → destroyed", run.stop_destroy, 2 * STEP)
    finally:
        await run.close()
    runner.summary()
    return 1 if runner.failed else 0


async def _sync(fn):
    return fn()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
