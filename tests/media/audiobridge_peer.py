#!/usr/bin/env python3
"""An aiortc AudioBridge participant driven over stdin/stdout, for the janus.js AudioBridge test:
it joins a room through its own Janus session (HTTP long poll) with an offer, sends a sine tone
and records the mix it receives.

Protocol (one JSON object per line):
  -> stdout {"joined": {<the joined event's plugin data>}}
  -> stdout {"state": "<connectionState>"} on every change ("connected" is what the test waits for)
  <- stdin  {"levels": <seconds>}
  -> stdout {"levels": {"frames": n, "rms": x, "max_frame_rms": y, "loud_frames": k, "rate": hz}}
            over the last <seconds> of decoded audio (loud: a 20 ms frame with RMS >= 300)
  <- stdin  {"close": true}  (or EOF) -> detach, destroy the session, {"closed": true}, exit
  -> stdout {"error": "..."} if anything failed (then it exits 1)
Every wait is bounded (--timeout), so a broken server never hangs the caller.
Usage: audiobridge_peer.py --http URL --room R [--display bob] [--hz 1000]
"""

import argparse
import asyncio
import json
import sys
import time

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from audiobridge_aiortc import AUDIOBRIDGE, Sink, Tone
from janus_client import HttpJanus, brief

LOUD_RMS = 300.0


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def run(args, reader):
    c = HttpJanus(args.http)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sink = Sink()
    try:
        await c.connect()
        await c.create()
        hid = await c.attach(AUDIOBRIDGE)
        pc.on("track", sink.on_track)
        pc.on("connectionstatechange", lambda: out({"state": pc.connectionState}))
        pc.addTrack(Tone(args.hz))
        await pc.setLocalDescription(await pc.createOffer())
        r = await c.message(hid, {"request": "join", "room": args.room, "display": args.display},
                            {"type": "offer", "sdp": pc.localDescription.sdp, "trickle": False})
        tx = r["transaction"]
        ev = await c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == tx, args.timeout,
                              "the joined event")
        data = ev["plugindata"]["data"]
        out({"joined": data})
        if data.get("audiobridge") != "joined" or not ev.get("jsep"):
            raise RuntimeError(f"join failed: {brief(ev)}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=ev["jsep"]["sdp"], type="answer"))
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), args.timeout)
            except asyncio.TimeoutError:
                raise RuntimeError(f"no command within {args.timeout:.0f} s") from None
            if not line:
                break
            cmd = json.loads(line)
            if "levels" in cmd:
                now = time.monotonic()
                chunks = sink.window(now - float(cmd["levels"]), now + 1)
                rms = [float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) for x in chunks if len(x)]
                allx = np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(1)
                out({"levels": {"frames": len(chunks), "rms": float(np.sqrt(np.mean(allx ** 2))),
                                "max_frame_rms": max(rms) if rms else 0.0,
                                "loud_frames": sum(1 for x in rms if x >= LOUD_RMS), "rate": sink.rate}})
            if cmd.get("close"):
                break
        await asyncio.wait_for(c.detach(hid), 10)
        await asyncio.wait_for(c.destroy(), 10)
        out({"closed": True})
        return 0
    except Exception as e:  # noqa: BLE001
        out({"error": repr(e)})
        return 1
    finally:
        if sink.task is not None:
            sink.task.cancel()
        try:
            await asyncio.wait_for(pc.close(), 5)
        except Exception:  # noqa: BLE001
            pass
        await c.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True)
    ap.add_argument("--room", type=int, required=True)
    ap.add_argument("--display", default="bob")
    ap.add_argument("--hz", type=float, default=1000.0)
    ap.add_argument("--timeout", type=float, default=40.0)
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return await run(args, reader)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
