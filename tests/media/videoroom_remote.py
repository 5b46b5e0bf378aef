#!/usr/bin/env python3
"""VideoRoom remote publishers across two servers, with aiortc: a publisher on server A is
`publish_remotely`ed to a room on server B (where `add_remote_publisher` made it a
participant); an aiortc subscriber on B decodes its video and audio. The link between the
servers is SRTP (`srtp_suite` 80 and one `srtp_crypto` on both sides), as Janus allows.

Usage: videoroom_remote.py --a-http URL --b-http URL --addr ADDR
Prints node-test-style lines and `ℹ pass N` / `ℹ fail M`; exit 1 on failure.
"""

import argparse
import asyncio
import base64
import os
import secrets
import sys
import time
import traceback

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from echotest_aiortc import AssertionFailed, BarsTrack, CONNECT_TIMEOUT, Runner, ToneTrack, check
from janus_client import HttpJanus, brief
from videoroom_aiortc import (
    STEP, VIDEOROOM, Client, Sink, check_transport_sdp, sdp_sections, section_direction, section_mid,
    wait_connected,
)


class RemoteRun:
    def __init__(self, a_url, b_url, addr):
        self.A = Client(HttpJanus(a_url), "A")  # server A: admin + publisher
        self.B = Client(HttpJanus(b_url), "B")  # server B: admin + subscriber
        self.addr = addr
        self.secret = "jano-" + secrets.token_hex(4)
        self.srtp_crypto = base64.b64encode(os.urandom(30)).decode()
        self.room_a = self.room_b = None
        self.adm_a = self.adm_b = self.pub = self.sub = None
        self.pub_id = None
        self.remote_id = 4242
        self.remote = None  # {port, rtcp_port}
        self.pub_pc = self.sub_pc = None
        self.bars = None
        self.sink = None

    async def setup(self):
        for cl in (self.A, self.B):
            await cl.c.connect()
            await cl.c.create()
        self.adm_a = await self.A.c.attach(VIDEOROOM)
        self.adm_b = await self.B.c.attach(VIDEOROOM)
        for cl, hid, attr in ((self.A, self.adm_a, "room_a"), (self.B, self.adm_b, "room_b")):
            d = await cl.sync(hid, {"request": "create", "secret": self.secret, "publishers": 4}, "create")
            check(d.get("videoroom") == "created", f"create: {brief(d)}")
            setattr(self, attr, d["room"])
        return f"room {self.room_a} on A, room {self.room_b} on B"

    async def add_remote(self):
        d = await self.B.sync(self.adm_b, {
            "request": "add_remote_publisher", "room": self.room_b, "secret": self.secret,
            "id": self.remote_id, "display": "remote-alice", "iface": self.addr,
            "srtp_suite": 80, "srtp_crypto": self.srtp_crypto,
            "streams": [
                {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"},
                {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8"},
            ],
        }, "add_remote_publisher")
        check(d.get("videoroom") == "success" and d.get("room") == self.room_b and d.get("id") == self.remote_id,
              f"add_remote_publisher: {brief(d)}")
        check(isinstance(d.get("port"), int) and d["port"] > 0 and isinstance(d.get("rtcp_port"), int),
              f"add_remote_publisher ports: {brief(d)}")
        self.remote = d
        d = await self.B.sync(self.adm_b, {"request": "listparticipants", "room": self.room_b}, "listparticipants")
        got = [(p.get("id"), p.get("remote"), p.get("publisher")) for p in d.get("participants", [])]
        check(got == [(self.remote_id, True, True)], f"listparticipants on B: {got}")
        return f"port {d.get('port', self.remote['port'])}"

    async def publish_on_a(self):
        A = self.A
        self.pub = await A.c.attach(VIDEOROOM)
        _, d = await A.async_(self.pub, {"request": "join", "ptype": "publisher", "room": self.room_a,
                                         "display": "alice"}, "join on A")
        self.pub_id = d["id"]
        self.pub_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.bars = BarsTrack()
        self.pub_pc.addTrack(ToneTrack())
        self.pub_pc.addTrack(self.bars)
        await self.pub_pc.setLocalDescription(await self.pub_pc.createOffer())
        mark = A.mark()
        ev, d = await A.async_(self.pub, {"request": "publish"}, "publish on A",
                               jsep={"type": "offer", "sdp": self.pub_pc.localDescription.sdp, "trickle": False})
        check(d.get("configured") == "ok", f"publish: {brief(d)}")
        await self.pub_pc.setRemoteDescription(RTCSessionDescription(sdp=ev["jsep"]["sdp"], type="answer"))
        await wait_connected(self.pub_pc, "publisher on A")
        await A.core_event(mark, self.pub, "webrtcup", "publisher webrtcup")
        return f"publisher {self.pub_id}"

    async def publish_remotely(self):
        d = await self.A.sync(self.adm_a, {
            "request": "publish_remotely", "room": self.room_a, "secret": self.secret,
            "publisher_id": self.pub_id, "remote_id": "b1", "host": self.addr,
            "port": self.remote["port"], "rtcp_port": self.remote["rtcp_port"],
            "srtp_suite": 80, "srtp_crypto": self.srtp_crypto,
        }, "publish_remotely")
        check(d == {"videoroom": "success", "room": self.room_a, "id": self.pub_id, "remote_id": "b1"},
              f"publish_remotely: {brief(d)}")
        d = await self.A.sync(self.adm_a, {"request": "listremotes", "room": self.room_a, "secret": self.secret,
                                           "publisher_id": self.pub_id}, "listremotes")
        lst = d.get("list")
        check(isinstance(lst, list) and len(lst) == 1 and lst[0].get("remote_id") == "b1"
              and lst[0].get("port") == self.remote["port"], f"listremotes: {brief(d)}")
        return "b1"

    async def subscribe_on_b(self):
        B = self.B
        self.sink = Sink(self.bars)
        self.sub_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sub_pc.on("track", self.sink.on_track)
        self.sub = await B.c.attach(VIDEOROOM)
        mark = B.mark()
        ev, d = await B.async_(self.sub, {"request": "join", "ptype": "subscriber", "room": self.room_b,
                                          "streams": [{"feed": self.remote_id}]}, "subscriber join on B")
        check(d.get("videoroom") == "attached", f"attached: {brief(d)}")
        feeds = [(s.get("type"), s.get("feed_id"), s.get("feed_mid")) for s in d.get("streams", [])]
        check(feeds == [("audio", self.remote_id, "0"), ("video", self.remote_id, "1")], f"attached streams {feeds}")
        sdp = ev["jsep"]["sdp"]
        check_transport_sdp(sdp, self.addr, "subscriber offer on B")
        check(all(section_direction(l) == "sendonly" for _, l in sdp_sections(sdp)), "offer must be sendonly")
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.sub_pc.setLocalDescription(await self.sub_pc.createAnswer())
        _, d = await B.async_(self.sub, {"request": "start"}, "start on B",
                              jsep={"type": "answer", "sdp": self.sub_pc.localDescription.sdp})
        check(d.get("started") == "ok", f"start: {brief(d)}")
        await wait_connected(self.sub_pc, "subscriber on B")
        await B.core_event(mark, self.sub, "webrtcup", "subscriber webrtcup")
        return ",".join(section_mid(l) or "?" for _, l in sdp_sections(sdp))

    async def stop(self):
        d = await self.A.sync(self.adm_a, {"request": "unpublish_remotely", "room": self.room_a, "secret": self.secret,
                                           "publisher_id": self.pub_id, "remote_id": "b1"}, "unpublish_remotely")
        check(d == {"videoroom": "success", "room": self.room_a, "id": self.pub_id}, f"unpublish_remotely: {brief(d)}")
        mark = self.B.mark()
        d = await self.B.sync(self.adm_b, {"request": "remove_remote_publisher", "room": self.room_b,
                                           "secret": self.secret, "id": self.remote_id}, "remove_remote_publisher")
        check(d == {"videoroom": "success"}, f"remove_remote_publisher: {brief(d)}")
        # The subscription loses its streams (autoupdate): `updated` with an offer.
        m = await self.B.notification(mark, self.sub, lambda x: x.get("videoroom") == "updated",
                                      "subscriber: updated after the remote publisher went away")
        check(all(not s.get("active") for s in m["plugindata"]["data"].get("streams", [])),
              f"updated streams must be inactive: {brief(m['plugindata']['data'])}")
        return "ok"

    async def close(self):
        for pc in (self.pub_pc, self.sub_pc):
            if pc:
                await pc.close()
        for cl, hid, room in ((self.A, self.adm_a, self.room_a), (self.B, self.adm_b, self.room_b)):
            if hid and room:
                try:
                    await asyncio.wait_for(cl.c.message(hid, {"request": "destroy", "room": room,
                                                              "secret": self.secret}), 5)
                except Exception:  # noqa: BLE001
                    pass
        for cl in (self.A, self.B):
            try:
                await asyncio.wait_for(cl.c.close(), 5)
            except Exception:  # noqa: BLE001
                pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a-http", required=True)
    ap.add_argument("--b-http", required=True)
    ap.add_argument("--addr", required=True)
    args = ap.parse_args()
    runner = Runner()
    run = RemoteRun(args.a_http, args.b_http, args.addr)
    print(f"▶ aiortc VideoRoom remote publisher: A {args.a_http} → B {args.b_http}", flush=True)
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
            err = str(e) if isinstance(e, AssertionFailed) else \
                f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exception(e)).rstrip()
            runner.fail(f"  {name}", (time.monotonic() - t0) * 1000, err,
                        f"  server A:\n{run.A.c.dump(20)}\n  server B:\n{run.B.c.dump(20)}")

    async def decoded():
        await run.sink.collect()
        run.sink.check_video()
        run.sink.check_audio()
        return f"{len(run.sink.video_frames)} frames"

    try:
        await step("two sessions, a room on each server", run.setup, 15)
        await step("B: add_remote_publisher (audio + video) → success with ports; listparticipants remote:true",
                   run.add_remote, 15)
        await step("A: alice publishes (tone + bars) → configured, webrtcup", run.publish_on_a,
                   CONNECT_TIMEOUT + 3 * STEP)
        await step("A: publish_remotely to B → success; listremotes lists it", run.publish_remotely, 15)
        await step("B: aiortc subscriber to the remote publisher → attached, started, webrtcup",
                   run.subscribe_on_b, CONNECT_TIMEOUT + 3 * STEP)
        await step("B: the subscriber decodes alice's video (bars, counter) and audio (440 Hz)", decoded, 40)
        await step("unpublish_remotely on A, remove_remote_publisher on B → subscriber updated", run.stop, 2 * STEP)
    finally:
        await run.close()
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
