#!/usr/bin/env python3
"""An aiortc peer driven over stdin/stdout, for clients that cannot create an offer (Janode).

Protocol (one JSON object per line):
  -> stdout {"offer": {"type":"offer","sdp":"...","trickle":false}}   audio + video + data channel
  <- stdin  {"answer": {"type":"answer","sdp":"..."}}
  -> stdout {"state": "<connectionState>"} on every change ("connected" is what the test waits for)
  -> stdout {"media": {"video_frames": n, "audio_frames": n}} once a few frames came back
  <- stdin  {"close": true}  (or EOF) -> closes and exits
Every wait is bounded (--timeout, default 30 s), so a broken peer never hangs the caller.
"""

import argparse
import asyncio
import json
import sys

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    counts = {"video": 0, "audio": 0}
    reported = [False]

    async def consume(track):
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            counts[track.kind] += 1
            if not reported[0] and counts["video"] >= 10 and counts["audio"] >= 10:
                reported[0] = True
                out({"media": {"video_frames": counts["video"], "audio_frames": counts["audio"]}})

    tasks = []

    @pc.on("track")
    def on_track(track):
        tasks.append(asyncio.ensure_future(consume(track)))

    @pc.on("connectionstatechange")
    def on_state():
        out({"state": pc.connectionState})

    pc.addTrack(AudioStreamTrack())  # silence is fine: this peer proves the handshake
    pc.addTrack(VideoStreamTrack())  # green frames
    pc.createDataChannel("janode")
    await pc.setLocalDescription(await pc.createOffer())
    out({"offer": {"type": "offer", "sdp": pc.localDescription.sdp, "trickle": False}})

    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), args.timeout)
            if not line:
                break
            msg = json.loads(line)
            if "answer" in msg:
                await pc.setRemoteDescription(RTCSessionDescription(**msg["answer"]))
            if msg.get("close"):
                break
    except asyncio.TimeoutError:
        out({"error": f"no instruction within {args.timeout:.0f} s"})
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.wait_for(pc.close(), 5)


if __name__ == "__main__":
    asyncio.run(main())
