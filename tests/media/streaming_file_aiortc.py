#!/usr/bin/env python3
"""Streaming file mountpoints end to end: the script writes two audio files with PyAV (FFmpeg's
encoders, which aiortc already depends on) — a 440 Hz tone as Opus in Ogg and a 660 Hz tone as
raw µ-law — creates a `live` mountpoint of the first and an `ondemand` one of the second, and
an aiortc viewer watches each: the decoded audio must have the file's pitch. `list` tells the
types apart ("live" / "on demand"); `destroy` removes both. Runs against Janus as well.

Usage: streaming_file_aiortc.py --http URL [--dir DIR]
Prints node-test-style lines and `ℹ pass N` / `ℹ fail M`; exit 1 on failure.
"""

import argparse
import asyncio
import math
import os
import random
import sys
import tempfile
import time

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from echotest_aiortc import CONNECT_TIMEOUT, Runner, check, dominant_frequency, stepper
from janus_client import HttpJanus, brief
from videoroom_aiortc import wait_connected

STREAMING = "janus.plugin.streaming"
STEP = 12.0
SECONDS = 3.0
FREQ_TOL = 8.0


def tone(freq, rate, seconds):
    t = np.arange(int(rate * seconds)) / rate
    return (0.4 * 32767 * np.sin(2 * math.pi * freq * t)).astype(np.int16)


def write_opus(path, freq):
    """An Ogg Opus file (20 ms packets) of a tone."""
    rate = 48000
    with av.open(path, "w", format="ogg") as out:
        s = out.add_stream("libopus", rate=rate)
        s.layout = "mono"
        pcm = tone(freq, rate, SECONDS)
        for i in range(0, len(pcm), 960):
            chunk = pcm[i:i + 960]
            if len(chunk) < 960:
                break
            f = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            f.sample_rate = rate
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def write_mulaw(path, freq):
    """Raw G.711 µ-law at 8 kHz (what Janus's `.mulaw` files are)."""
    pcm = tone(freq, 8000, SECONDS).astype(np.int32)
    # G.711 µ-law: bias, segment and mantissa, inverted.
    sign = (pcm < 0)
    mag = np.minimum(np.abs(pcm), 32635) + 0x84
    exp = np.floor(np.log2(mag)).astype(np.int32) - 7
    exp = np.clip(exp, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    byte = ~((sign.astype(np.int32) << 7) | (exp << 4) | mant) & 0xFF
    with open(path, "wb") as f:
        f.write(byte.astype(np.uint8).tobytes())


class Viewer:
    """One aiortc viewer of a mountpoint: its decoded audio."""

    def __init__(self, c, handle):
        self.c = c
        self.h = handle
        self.pc = None
        self.audio = []
        self.rate = None
        self.task = None

    async def consume(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            a = frame.to_ndarray()
            # Interleaved stereo comes as one row: keep the first channel.
            ch = len(frame.layout.channels)
            a = a.reshape(-1)[::ch] if ch > 1 else a.reshape(-1)
            self.audio.append(a.astype(np.int16))
            self.rate = frame.sample_rate

    def seconds(self):
        return sum(len(a) for a in self.audio) / (self.rate or 48000)

    async def event(self, body, what, jsep=None):
        r = await self.c.message(self.h, body, jsep)
        check(r.get("janus") == "ack", f"{what}: expected ack, got {brief(r)}")
        tx = r["transaction"]
        ev = await self.c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx, STEP, what)
        data = ev.get("plugindata", {}).get("data", {})
        check("error_code" not in data, f"{what}: plugin error {brief(data)}")
        return ev, data

    async def watch(self, mp):
        ev, d = await self.event({"request": "watch", "id": mp}, "watch")
        jsep = ev.get("jsep") or {}
        check(jsep.get("type") == "offer", f"watch carries no offer: {brief(ev)}")
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.on("track", lambda t: setattr(self, "task", asyncio.ensure_future(self.consume(t))))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        _, d = await self.event({"request": "start"}, "start",
                                jsep={"type": "answer", "sdp": self.pc.localDescription.sdp, "trickle": False})
        check(d.get("result", {}).get("status") == "starting", f"start: {brief(d)}")
        await wait_connected(self.pc, "viewer")
        return jsep["sdp"]

    async def hear(self, freq):
        end = time.monotonic() + 20
        while time.monotonic() < end and self.seconds() < 2.5:
            await asyncio.sleep(0.1)
        check(self.audio, "no audio decoded")
        pcm = np.concatenate(self.audio)
        rate = self.rate
        check(len(pcm) >= 2 * rate, f"only {len(pcm) / rate:.2f} s of audio decoded")
        last = pcm[-rate:]
        rms = float(np.sqrt(np.mean(last.astype(np.float64) ** 2)))
        check(rms > 1000, f"the audio is (nearly) silent: RMS {rms:.0f}")
        f = dominant_frequency(last, rate)
        check(abs(f - freq) <= FREQ_TOL, f"dominant frequency {f:.1f} Hz, expected {freq} ± {FREQ_TOL}")
        return f"{len(pcm) / rate:.2f} s at {rate} Hz, dominant {f:.1f} Hz, RMS {rms:.0f}"

    async def close(self):
        if self.task:
            self.task.cancel()
        if self.pc:
            await self.pc.close()


class Run:
    def __init__(self, url, folder):
        self.c = HttpJanus(url)
        self.dir = folder
        self.adm = None
        self.ids = {}
        self.viewers = []

    async def sync(self, body, what):
        r = await self.c.message(self.adm, body)
        check(r.get("janus") == "success", f"{what}: expected success, got {brief(r)}")
        return r.get("plugindata", {}).get("data", {})

    async def setup(self):
        self.opus = os.path.join(self.dir, "tone440.opus")
        self.mulaw = os.path.join(self.dir, "tone660.mulaw")
        write_opus(self.opus, 440)
        write_mulaw(self.mulaw, 660)
        await self.c.connect()
        await self.c.create()
        self.adm = await self.c.attach(STREAMING)
        return f"{os.path.getsize(self.opus)} B of Ogg Opus, {os.path.getsize(self.mulaw)} B of µ-law"

    async def create(self, kind, filename, extra):
        mp = random.randint(1, 2 ** 40)
        body = {"request": "create", "type": kind, "id": mp, "name": f"file-{kind}",
                "description": f"{kind} {os.path.basename(filename)}", "filename": filename,
                "audio": True, "video": False, **extra}
        d = await self.sync(body, f"create {kind}")
        check(d.get("streaming") == "created", f"create {kind}: {brief(d)}")
        st = d.get("stream", {})
        want = "live" if kind == "live" else "on demand"
        check(st.get("type") == want, f"created type {st.get('type')!r}, expected {want!r}")
        check("ports" not in st, f"a file mountpoint has no ports: {brief(st)}")
        self.ids[kind] = mp
        return f"mountpoint {mp}: {brief(st)}"

    async def bad_creates(self):
        for body, code in [
            ({"type": "live", "filename": os.path.join(self.dir, "nope.alaw"), "audio": True}, 456),
            ({"type": "live", "filename": self.opus, "audio": True, "video": True}, 456),
            ({"type": "ondemand", "filename": os.path.join(self.dir, "x.wav"), "audio": True}, 456),
            ({"type": "live", "audio": True}, 453),
        ]:
            d = await self.sync({"request": "create", **body}, "bad create")
            check(d.get("error_code") == code, f"create {brief(body)}: {brief(d)}, expected {code}")
        return "missing file, video, unknown format → 456; no filename → 453"

    async def watch_and_hear(self, kind, freq, codec):
        h = await self.c.attach(STREAMING)
        v = Viewer(self.c, h)
        self.viewers.append(v)
        offer = await v.watch(self.ids[kind])
        check(codec in offer.lower(), f"the offer does not name {codec}: {offer!r}")
        return await v.hear(freq)

    async def listed(self):
        d = await self.sync({"request": "list"}, "list")
        got = {m["id"]: m for m in d.get("list", [])}
        for kind, want, codec in [("live", "live", "opus"), ("ondemand", "on demand", "pcmu")]:
            m = got.get(self.ids[kind])
            check(m is not None, f"{kind} mountpoint not listed: {brief(d)}")
            check(m.get("type") == want, f"{kind}: type {m.get('type')!r}")
            # Janus lists no streams for a file mountpoint; `info` describes its one.
            check("media" not in m, f"{kind}: list shows media {brief(m)}")
            i = (await self.sync({"request": "info", "id": self.ids[kind]}, "info")).get("info", {})
            check(i.get("type") == want, f"{kind}: info type {i.get('type')!r}")
            media = i.get("media") or []
            check(len(media) == 1 and media[0].get("type") == "audio" and media[0].get("codec") == codec,
                  f"{kind}: info media {brief(media)}")
        return "types live / on demand; info: one audio stream each, opus / pcmu"

    async def destroy(self):
        for mp in self.ids.values():
            d = await self.sync({"request": "destroy", "id": mp}, "destroy")
            check(d.get("streaming") == "destroyed", f"destroy: {brief(d)}")
        return f"{len(self.ids)} destroyed"

    async def close(self):
        for v in self.viewers:
            await v.close()
        try:
            await self.c.destroy()
        except Exception:  # noqa: BLE001
            pass
        await self.c.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    runner = Runner()
    folder = args.dir or tempfile.mkdtemp(prefix="jano-streaming-files-")
    run = Run(args.http, folder)
    print(f"▶ aiortc Streaming live/ondemand file mountpoints over {args.http}", flush=True)
    step = stepper(runner, run.c.dump)

    try:
        await step("write a 440 Hz Ogg Opus file and a 660 Hz µ-law file; session + handle", run.setup, 30)
        await step("create live (.opus, audiocodec opus, audiopt 111) → created, type live, no ports",
                   lambda: run.create("live", run.opus, {"audiocodec": "opus", "audiopt": 111}), STEP)
        await step("create ondemand (.mulaw) → created, type on demand",
                   lambda: run.create("ondemand", run.mulaw, {}), STEP)
        await step("bad creates → Janus's error codes", run.bad_creates, STEP, essential=False)
        await step("list and info → live and on demand, one audio stream each", run.listed, STEP,
                   essential=False)
        await step("watch the live Opus file → the viewer hears 440 Hz",
                   lambda: run.watch_and_hear("live", 440, "opus/48000"), CONNECT_TIMEOUT + 40)
        await step("watch the on-demand µ-law file → the viewer hears 660 Hz",
                   lambda: run.watch_and_hear("ondemand", 660, "pcmu/8000"), CONNECT_TIMEOUT + 40)
        await step("destroy both", run.destroy, STEP)
    finally:
        await run.close()
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
