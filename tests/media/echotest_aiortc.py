#!/usr/bin/env python3
"""End-to-end EchoTest with aiortc: real audio, video and a data channel through the server.

For each transport (HTTP long poll, WebSocket):
  create session -> attach janus.plugin.echotest -> message {"audio":true,"video":true} with an
  offer (trickle:false, all candidates in the SDP) -> apply the answer -> ICE + DTLS connect ->
  check `webrtcup` and `media` (receiving:true, type, mid) events -> decode what comes back:
    video: 320x240 colour bars + a 16-bit frame counter drawn as big black/white blocks;
           same size, bar colours within tolerance, counters increasing, >= MIN_FRAMES frames
    audio: a 440 Hz tone; the echo's dominant frequency (FFT over 1 s) is 440 +- 5 Hz
    data:  a text message comes back as "Janus EchoTest here! You wrote: <text>" (what Janus's
           EchoTest answers), a binary message comes back unchanged
  -> {"janus":"hangup"} -> `hangup` event -> detach -> destroy.

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`);
exits 1 if anything failed. Usage:
  echotest_aiortc.py --http http://10.x.y.1:8088/janus --ws ws://10.x.y.1:8188 [--only http|ws]
"""

import argparse
import asyncio
import fractions
import json
import os
import sys
import time
import traceback

import numpy as np
from av import AudioFrame, VideoFrame
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from janus_client import HttpJanus, WsJanus, brief

ECHOTEST = "janus.plugin.echotest"
W, H = 320, 240
BAR_H = 160  # rows 0..159: colour bars; rows 160..239: frame counter
BARS = [  # RGB, 8 bars of 40 px
    (255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
    (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0),
]
BITS = 16  # 15 counter bits + 1 even-parity bit, 20 px wide blocks each
BLOCK_W = W // BITS
FPS = 30
TONE_HZ = 440.0
SAMPLE_RATE = 48000

MIN_FRAMES = int(os.environ.get("JANO_MEDIA_MIN_FRAMES", "30"))
CONNECT_TIMEOUT = float(os.environ.get("JANO_MEDIA_CONNECT_TIMEOUT", "15"))
MEDIA_TIMEOUT = float(os.environ.get("JANO_MEDIA_TIMEOUT", "12"))
COLOUR_TOL = 60  # per channel, after VP8 + chroma subsampling
FREQ_TOL = 5.0
ECHO_TEXT_PREFIX = "Janus EchoTest here! You wrote: "


# ------------------------------------------------------------------------------------------------
# Synthetic sources
# ------------------------------------------------------------------------------------------------

def encode_counter(n):
    n &= 0x7FFF
    bits = [(n >> (14 - i)) & 1 for i in range(15)]
    bits.append(sum(bits) & 1)
    return bits


def decode_counter(rgb):
    """Read the counter from an HxWx3 uint8 frame; None if the parity does not match."""
    y0, y1 = BAR_H + 20, H - 20
    bits = []
    for i in range(BITS):
        x0 = i * BLOCK_W + 6
        patch = rgb[y0:y1, x0:x0 + BLOCK_W - 12]
        bits.append(1 if patch.mean() > 128 else 0)
    if sum(bits[:15]) & 1 != bits[15]:
        return None
    n = 0
    for b in bits[:15]:
        n = (n << 1) | b
    return n


def bar_colours(rgb):
    out = []
    for i in range(len(BARS)):
        x0 = i * (W // len(BARS)) + 10
        patch = rgb[30:BAR_H - 30, x0:x0 + 20].reshape(-1, 3)
        out.append(tuple(int(v) for v in patch.mean(axis=0)))
    return out


class BarsTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self):
        super().__init__()
        self.count = 0
        self.base = np.zeros((H, W, 3), dtype=np.uint8)
        for i, c in enumerate(BARS):
            self.base[:BAR_H, i * (W // len(BARS)):(i + 1) * (W // len(BARS))] = c
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
        for i, b in enumerate(encode_counter(self.count)):
            if b:
                img[BAR_H:, i * BLOCK_W:(i + 1) * BLOCK_W] = 255
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = int(self.count * 90000 / FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        self.count += 1
        return frame


class ToneTrack(MediaStreamTrack):
    kind = "audio"
    SAMPLES = 960  # 20 ms at 48 kHz

    def __init__(self):
        super().__init__()
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
        pcm = (0.5 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.pos
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.pos += self.SAMPLES
        return frame


def dominant_frequency(samples, rate):
    x = samples.astype(np.float64)
    x = x - x.mean()
    x = x * np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    k = int(np.argmax(spec[1:])) + 1
    # parabolic interpolation around the peak for sub-bin accuracy
    if 1 <= k < len(spec) - 1:
        a, b, c = spec[k - 1], spec[k], spec[k + 1]
        d = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
        return float(freqs[k] + d * (freqs[1] - freqs[0]))
    return float(freqs[k])


# ------------------------------------------------------------------------------------------------
# A tiny test runner with node:test-like output
# ------------------------------------------------------------------------------------------------

def stepper(runner, dump):
    """The `step(name, fn, timeout, essential=True)` a script runs its steps with: each step is
    timed and reported; a failed essential step makes the later ones skipped, and a failure
    shows `dump()` (the last messages)."""
    broken = [None]

    async def step(name, fn, timeout, essential=True):
        if broken[0]:
            runner.skip(f"  {name}", f"earlier step failed: {broken[0]}")
            return
        t0 = time.monotonic()
        try:
            res = await asyncio.wait_for(fn(), timeout)
            runner.ok(f"  {name}" + (f" — {res}" if isinstance(res, str) else ""), (time.monotonic() - t0) * 1000)
        except Exception as e:  # noqa: BLE001
            if essential:
                broken[0] = name
            err = str(e) if isinstance(e, AssertionFailed) else "".join(traceback.format_exception(e)).rstrip()
            runner.fail(f"  {name}", (time.monotonic() - t0) * 1000, err, f"  last messages:\n{dump()}")

    return step


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.t0 = time.monotonic()

    def ok(self, name, ms):
        self.passed += 1
        print(f"✔ {name} ({ms:.0f}ms)", flush=True)

    def fail(self, name, ms, err, diag=""):
        self.failed += 1
        print(f"✖ {name} ({ms:.0f}ms)\n  {err}", flush=True)
        if diag:
            print(diag, flush=True)

    def skip(self, name, why):
        self.skipped += 1
        print(f"﹣ {name} # SKIP {why}", flush=True)

    def summary(self):
        total = self.passed + self.failed + self.skipped
        print(f"ℹ tests {total}")
        print(f"ℹ suites 1")
        print(f"ℹ pass {self.passed}")
        print(f"ℹ fail {self.failed}")
        print(f"ℹ cancelled 0")
        print(f"ℹ skipped {self.skipped}")
        print(f"ℹ todo 0")
        print(f"ℹ duration_ms {(time.monotonic() - self.t0) * 1000:.0f}", flush=True)


class AssertionFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise AssertionFailed(msg)


# ------------------------------------------------------------------------------------------------
# One EchoTest conversation
# ------------------------------------------------------------------------------------------------

class EchoRun:
    def __init__(self, client, addr):
        self.c = client
        self.addr = addr
        self.pc = None
        self.hid = None
        self.answer = None
        self.video_frames = []  # (counter or None, (w, h), colours)
        self.audio = []  # int16 mono chunks
        self.audio_rate = None
        self.dc_messages = []
        self.dc_open = asyncio.Event()
        self.dc = None
        self.dc_error = None
        self.dc_sent_bin = b"\x00\xffjano" + os.urandom(8)
        self.dc_sent = "jano-echo-" + os.urandom(6).hex()
        self.tasks = []
        self.bars = BarsTrack()
        self.tone = ToneTrack()
        self.connected_at = None

    async def consume_video(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            rgb = frame.to_ndarray(format="rgb24")
            counter = decode_counter(rgb) if rgb.shape[:2] == (H, W) else None
            cols = bar_colours(rgb) if rgb.shape[:2] == (H, W) else None
            self.video_frames.append((counter, (frame.width, frame.height), cols))

    async def consume_audio(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            arr = frame.to_ndarray()
            # packed s16: shape (1, samples*channels); planar: (channels, samples)
            ch = len(frame.layout.channels)
            if arr.shape[0] == 1 and ch > 1:
                arr = arr.reshape(-1, ch).T
            self.audio_rate = frame.sample_rate
            self.audio.append(arr[0].astype(np.int16))

    async def offer_answer(self):
        self.hid = await self.c.attach(ECHOTEST)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "video":
                self.tasks.append(asyncio.ensure_future(self.consume_video(track)))
            else:
                self.tasks.append(asyncio.ensure_future(self.consume_audio(track)))

        @self.pc.on("connectionstatechange")
        def on_state():
            if self.pc.connectionState == "connected" and self.connected_at is None:
                self.connected_at = time.monotonic()

        self.pc.addTrack(self.tone)
        self.pc.addTrack(self.bars)
        self.dc = self.pc.createDataChannel("jano-echo")

        @self.dc.on("open")
        def on_open():
            self.dc_open.set()

        @self.dc.on("message")
        def on_message(m):
            self.dc_messages.append(m)

        await self.pc.setLocalDescription(await self.pc.createOffer())  # gathers all candidates
        offer = {"type": "offer", "sdp": self.pc.localDescription.sdp, "trickle": False}
        reply = await self.c.message(self.hid, {"audio": True, "video": True}, offer)
        check(reply.get("janus") == "ack", f"EchoTest is asynchronous: expected ack, got {brief(reply)}")
        tx = reply["transaction"]
        ev = await self.c.wait_for(
            lambda m: m["janus"] == "event" and m.get("transaction") == tx, 10, "the EchoTest event with the answer")
        check(ev.get("sender") == self.hid, f"event sender {ev.get('sender')} != handle {self.hid}")
        check(ev["plugindata"]["plugin"] == ECHOTEST, f"plugindata.plugin: {brief(ev['plugindata'])}")
        check(ev["plugindata"]["data"] == {"echotest": "event", "result": "ok"},
              f"plugindata.data: {brief(ev['plugindata']['data'])}")
        jsep = ev.get("jsep")
        check(isinstance(jsep, dict) and jsep.get("type") == "answer", f"event must carry a jsep answer: {brief(jsep)}")
        sdp = jsep["sdp"]
        check("a=fingerprint:" in sdp, "answer has no a=fingerprint")
        check("a=ice-ufrag:" in sdp and "a=ice-pwd:" in sdp, "answer has no ICE credentials")
        cands = [l for l in sdp.splitlines() if l.startswith("a=candidate:")]
        check(cands, "aiortc does not trickle: the answer must carry the server's candidates (none found)")
        if self.addr:
            check(any(f" {self.addr} " in l for l in cands),
                  f"no answer candidate on the namespace address {self.addr}: {cands}")
        self.answer = sdp
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def connect(self):
        end = time.monotonic() + CONNECT_TIMEOUT
        while self.pc.connectionState != "connected":
            check(self.pc.connectionState not in ("failed", "closed"),
                  f"peer connection {self.pc.connectionState} (ICE {self.pc.iceConnectionState})")
            if time.monotonic() > end:
                raise AssertionFailed(
                    f"not connected after {CONNECT_TIMEOUT:.0f} s: connectionState={self.pc.connectionState} "
                    f"iceConnectionState={self.pc.iceConnectionState}")
            await asyncio.sleep(0.05)

    async def events_up(self):
        await self.c.wait_for(lambda m: m["janus"] == "webrtcup" and m.get("sender") == self.hid, 10, "webrtcup")
        for kind in ("audio", "video"):
            m = await self.c.wait_for(
                lambda m: m["janus"] == "media" and m.get("sender") == self.hid and m.get("type") == kind
                and m.get("receiving") is True, 10, f"media {{type:{kind}, receiving:true}}")
            check(isinstance(m.get("mid"), str) and m["mid"], f"media event needs a string mid: {brief(m)}")
            check(m.get("session_id") == self.c.session_id, f"media event session_id: {brief(m)}")

    async def collect(self):
        # data channel: send once open, wait for the echo
        end = time.monotonic() + MEDIA_TIMEOUT
        try:
            await asyncio.wait_for(self.dc_open.wait(), MEDIA_TIMEOUT)
            self.dc.send(self.dc_sent)
            self.dc.send(self.dc_sent_bin)
        except asyncio.TimeoutError:
            self.dc_error = f"the data channel did not open within {MEDIA_TIMEOUT:.0f} s"
        while time.monotonic() < end:
            audio_s = sum(len(a) for a in self.audio) / (self.audio_rate or SAMPLE_RATE)
            good = [f for f in self.video_frames if f[0] is not None]
            if len(good) >= MIN_FRAMES + 30 and audio_s >= 2.0 and len(self.dc_messages) >= 2:
                break
            await asyncio.sleep(0.1)

    def check_video(self):
        n = len(self.video_frames)
        check(n >= MIN_FRAMES, f"only {n} video frames came back (need {MIN_FRAMES}); sent {self.bars.count}")
        sizes = {f[1] for f in self.video_frames}
        check(sizes == {(W, H)}, f"decoded sizes {sizes}, expected {(W, H)}")
        counters = [f[0] for f in self.video_frames if f[0] is not None]
        check(len(counters) >= MIN_FRAMES, f"only {len(counters)} of {n} frames had a readable counter")
        check(all(c < self.bars.count for c in counters), f"counter values never sent: {counters[-10:]}")
        inc = sum(1 for a, b in zip(counters, counters[1:]) if b > a)
        dec = sum(1 for a, b in zip(counters, counters[1:]) if b < a)
        check(inc >= MIN_FRAMES - 1 and dec <= 2,
              f"counters not increasing: {inc} increases, {dec} decreases; first {counters[:10]} last {counters[-10:]}")
        # bar colours: check the later frames (after the encoder's start-up)
        late = [f[2] for f in self.video_frames[len(self.video_frames) // 2:]]
        good = 0
        worst = None
        for cols in late:
            diff = max(abs(a - b) for col, exp in zip(cols, BARS) for a, b in zip(col, exp))
            if diff <= COLOUR_TOL:
                good += 1
            worst = diff if worst is None else min(worst, diff)
        check(good >= len(late) * 0.8,
              f"bar colours off in {len(late) - good}/{len(late)} late frames (best max diff {worst}); "
              f"last {late[-1]} expected {BARS}")
        return (f"{n} frames {W}x{H}, counters {counters[0]}..{counters[-1]} ({inc} increases), "
                f"colours ok in {good}/{len(late)} late frames")

    def check_audio(self):
        check(self.audio, "no audio came back")
        rate = self.audio_rate
        pcm = np.concatenate(self.audio)
        check(len(pcm) >= 1.5 * rate, f"only {len(pcm) / rate:.2f} s of audio came back")
        last = pcm[-rate:]
        rms = float(np.sqrt(np.mean(last.astype(np.float64) ** 2)))
        check(rms > 1000, f"echoed audio is (nearly) silent: RMS {rms:.0f}")
        f = dominant_frequency(last, rate)
        check(abs(f - TONE_HZ) <= FREQ_TOL, f"dominant frequency {f:.1f} Hz, expected {TONE_HZ} ± {FREQ_TOL}")
        return f"{len(pcm) / rate:.2f} s at {rate} Hz, dominant {f:.1f} Hz, RMS {rms:.0f}"

    def check_data(self):
        # Janus's EchoTest answers a text message with "Janus EchoTest here! You wrote: <text>"
        # and echoes a binary message unchanged (echotest.c, incoming_data).
        check(self.dc_error is None, self.dc_error or "")
        texts = [m for m in self.dc_messages if isinstance(m, str)]
        bins = [m for m in self.dc_messages if isinstance(m, bytes)]
        want = ECHO_TEXT_PREFIX + self.dc_sent
        check(texts, f"the text message did not come back (got {self.dc_messages!r})")
        check(texts[0] == want, f"text echo {texts[0]!r}, expected {want!r}")
        check(bins, f"the binary message did not come back (got {self.dc_messages!r})")
        check(bins[0] == self.dc_sent_bin, f"binary echo {bins[0]!r} != sent {self.dc_sent_bin!r}")
        return f"text → {texts[0]!r}; {len(self.dc_sent_bin)} binary bytes echoed"

    async def record(self):
        """EchoTest `record`: two seconds of the echo session go to .mjr files (one per kind)."""
        import tempfile
        folder = tempfile.mkdtemp(prefix="jmedia-rec-")
        base = os.path.join(folder, "rec")
        for on in (True, False):
            r = await self.c.message(self.hid, {"record": on, "filename": base})
            tx = r.get("transaction")
            m = await self.c.wait_for(
                lambda m: m["janus"] == "event" and m.get("sender") == self.hid
                and m.get("transaction") == tx, 10, f"event for record:{on}")
            data = m.get("plugindata", {}).get("data", {})
            check(data.get("result") == "ok", f"record:{on} → {brief(data)}")
            await asyncio.sleep(2.0 if on else 1.0)
        counts = {}
        for kind, least in (("audio", 20), ("video", 10)):
            path = f"{base}-{kind}.mjr"
            check(os.path.exists(path), f"no recording at {path}: {os.listdir(folder)}")
            blob = open(path, "rb").read()
            check(blob[:8] == b"MJR00002", f"{path} starts with {blob[:8]!r}")
            counts[kind] = blob.count(b"MEET")
            check(counts[kind] >= least, f"{path}: {counts[kind]} frames, expected at least {least}")
        return f"frames {counts}"

    async def hangup(self):
        r = await self.c.hangup(self.hid)
        check(r.get("session_id") == self.c.session_id, f"hangup reply: {brief(r)}")
        m = await self.c.wait_for(lambda m: m["janus"] == "hangup" and m.get("sender") == self.hid, 10, "hangup event")
        check(isinstance(m.get("reason"), str), f"hangup event needs a string reason: {brief(m)}")
        return f"reason {m.get('reason')!r}"

    async def close(self):
        for t in self.tasks:
            t.cancel()
        if self.pc is not None:
            try:
                await asyncio.wait_for(self.pc.close(), 5)
            except Exception:  # noqa: BLE001
                pass


async def run_transport(runner, kind, url, addr, deadline_s=40.0):
    client = HttpJanus(url) if kind == "http" else WsJanus(url)
    run = EchoRun(client, addr)
    label = f"aiortc EchoTest over {'HTTP long poll' if kind == 'http' else 'WebSocket'} ({url})"
    print(f"▶ {label}", flush=True)
    broken = [None]  # set by an essential step: everything after it is skipped

    async def step(name, coro_fn, timeout, essential=False):
        if broken[0]:
            runner.skip(f"  {name}", f"earlier step failed: {broken[0]}")
            return
        t0 = time.monotonic()
        try:
            res = await asyncio.wait_for(coro_fn(), timeout)
            ms = (time.monotonic() - t0) * 1000
            runner.ok(f"  {name}" + (f" — {res}" if isinstance(res, str) else ""), ms)
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
            runner.fail(f"  {name}", ms, err, f"  last Janus API messages:\n{client.dump()}")

    async def setup():
        await client.connect()
        sid = await client.create()
        check(isinstance(sid, int) and sid > 0, f"session id {sid!r}")
        return f"session {sid}"

    try:
        await step("connect + create session", setup, 10, essential=True)
        await step("attach echotest + offer (trickle:false) → ack, then event {result:ok} with an answer",
                   run.offer_answer, 15, essential=True)
        await step("ICE + DTLS connected", run.connect, CONNECT_TIMEOUT + 1, essential=True)
        await step("webrtcup + media {type, mid, receiving:true} for audio and video", run.events_up, 12)
        if not broken[0]:
            await run.collect()  # bounded; what it gathered is judged by the three checks below
        await step("video echo: size, bar colours, increasing frame counter", lambda: _sync(run.check_video), 5)
        await step("audio echo: 440 Hz tone", lambda: _sync(run.check_audio), 5)
        await step("data channel echo", lambda: _sync(run.check_data), 5)
        await step("record: .mjr files for audio and video", run.record, 15)
        await step("hangup → success + hangup event", run.hangup, 12)
        await step("detach + destroy → success", lambda: _detach_destroy(client, run), 10)
    finally:
        await run.close()
        await client.close()


async def _sync(fn):
    return fn()


async def _detach_destroy(client, run):
    r = await client.detach(run.hid)
    check(r.get("session_id") == client.session_id, f"detach reply {brief(r)}")
    sid = client.session_id
    r = await client.destroy()
    check(r.get("session_id") == sid, f"destroy reply {brief(r)}")
    return "ok"


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
            runner.fail(f"aiortc EchoTest over {kind}", 0, f"no URL given for {kind}")
            continue
        await run_transport(runner, kind, url, args.addr)
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
