#!/usr/bin/env python3
"""End-to-end TextRoom (janus.plugin.textroom) with aiortc: three chat participants whose
requests and messages travel over WebRTC data channels, plus the Janus-API side of the plugin.

Three Janus sessions on mixed transports (alice: WebSocket, bob: HTTP long poll, carol:
WebSocket), one textroom handle each: `setup` -> ack + event {"textroom":"event","result":"ok"}
with a JSEP offer holding a single data m-line -> the aiortc answer goes back with `ack` -> the
SCTP association comes up and the client's data channel opens. alice and bob open the channel
janus.js opens ("JanusDataChannel"); carol opens one labelled "chat" (see the label step). Two
more handles without a PeerConnection (one per transport) speak the Janus API only.

Then, over the data channels (every step asserts exactly what each of the three received, in
order, after a short quiet period):
  create (secret, pin, history 3) -> alice, bob, carol join (own `join` first, then `success`
  with the others) -> listparticipants -> public message (everybody, the sender included) ->
  private `to` / `tos` (only the named users; `sent` map) -> `ack:false` -> announcement ->
  leave -> history delivered to a re-joining carol (the last 3 public messages/announcements)
  -> kick (kicked to everybody, the victim included) -> history:false -> list / exists -> edit
  (new description, new secret, is_private hides the room from `list`) -> allowed (ACL tokens)
  -> the `post` option (a small HTTP server in the namespace receives the broadcast text) ->
  a table of error cases (exact code, text and whether the transaction is echoed) -> the
  Janus-API versions (list, exists, create, edit, listparticipants, announcement, destroy;
  join/message/leave -> 415; setup twice -> 416) -> `restart` (a new offer) -> bob hangs up
  (others get `leave`) -> destroy (destroyed to everybody) -> the data channel labels -> the
  JSON text formatting.

Every message shape asserted here is what Janus 1.1.2 really sends (observed, then encoded);
where it differs from shared/spec/plugin-textroom.md a comment says so ("Janus 1.1.2: ...").
The server's textroom config is the sample's (`json = "indented"`, static room 1234).

Prints node-test-style lines (`✔ name`, `✖ name`) and a summary (`ℹ pass N`, `ℹ fail M`);
exits 1 if anything failed. Usage:
  textroom_aiortc.py --http http://10.x.y.1:8088/janus --ws ws://10.x.y.1:8188 --addr 10.x.y.1
"""

import argparse
import asyncio
import datetime
import json
import os
import random
import re
import secrets
import sys
import time
import traceback

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from echotest_aiortc import CONNECT_TIMEOUT, AssertionFailed, Runner, check, stepper
from janus_client import HttpJanus, WsJanus, brief

TEXTROOM = "janus.plugin.textroom"
# Where jano deliberately differs from Janus 1.1.2 (a defect not copied), the check says so.
IS_JANUS = os.environ.get("MEDIA_SERVER_IS_JANUS") == "1"
DC_LABEL = "JanusDataChannel"  # what janus.js opens, and what Janus 1.1.2 sends on
STEP = 5.0  # seconds: bound of one exchange (Janus answers in milliseconds)
ROW_WAIT = 2.0  # seconds: bound of one error-table reply (0.3 s after 3 timeouts in a row)
QUIET = 0.3  # seconds without further messages before a peer's inbox is compared
DATE = "<date>"  # placeholder for a checked `date`
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$")
MAX_SAFE = 2 ** 53 - 1


def pdata(m):
    return m["plugindata"]["data"]


def tx():
    return secrets.token_hex(5)


# ------------------------------------------------------------------------------------------------
# A chat participant: a Janus session + textroom handle + an aiortc PeerConnection with a data
# channel; everything received on any data channel lands in `inbox`.
# ------------------------------------------------------------------------------------------------

class Msg:
    __slots__ = ("t", "label", "raw", "data")

    def __init__(self, label, raw):
        self.t = time.monotonic()
        self.label = label
        self.raw = raw
        try:
            self.data = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            self.data = None

    def show(self):
        return brief(self.data if self.data is not None else self.raw, 400)


class Peer:
    def __init__(self, name, client, username, display=None, label=DC_LABEL):
        self.name = name
        self.c = client
        self.username = username
        self.display = display
        self.label = label
        self.hid = None
        self.pc = None
        self.dc = None
        self.offer = None
        self.inbox = []
        self.server_channels = []  # labels of the channels the server opened towards us
        self._changed = asyncio.Event()
        self.closed = False

    def entry(self):
        e = {"username": self.username}
        if self.display is not None:
            e["display"] = self.display
        return e

    def _hook(self, ch):
        @ch.on("message")
        def _on_message(m, ch=ch):
            self.inbox.append(Msg(ch.label, m))
            self._changed.set()

    def on_datachannel(self, ch):
        self.server_channels.append(ch.label)
        self._hook(ch)

    def send(self, obj):
        """Send a request (a dict, JSON-encoded) or raw text/bytes on our own channel."""
        self.dc.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def wait_inbox(self, n, timeout):
        end = time.monotonic() + timeout
        while len(self.inbox) < n:
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            if len(self.inbox) >= n:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass
        return True

    def dump(self, last=12):
        lines = [f"    {m.t % 1000:8.3f} [{m.label}] {m.show()}" for m in self.inbox[-last:]]
        return f"  {self.name} data channel (last {len(lines)} of {len(self.inbox)}):\n" + "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# The conversation
# ------------------------------------------------------------------------------------------------

class TextRoomRun:
    def __init__(self, runner, http_url, ws_url, addr):
        self.runner = runner
        self.addr = addr
        self.alice = Peer("alice", WsJanus(ws_url), "alice", display="Alice")
        self.bob = Peer("bob", HttpJanus(http_url), "bob")
        # carol opens her channel with another label than janus.js's: see check_labels().
        self.carol = Peer("carol", WsJanus(ws_url), "carol", display="Carol", label="chat")
        self.peers = (self.alice, self.bob, self.carol)
        self.adm_http = None  # (client, handle) on bob's session
        self.adm_ws = None  # (client, handle) on alice's session
        self.room = random.randint(10 ** 6, 2 ** 40)
        self.secret = "s-" + secrets.token_hex(4)
        self.pin = "p-" + secrets.token_hex(3)
        self.description = f"jano textroom test {os.getpid()}"
        self.room2 = None
        self.room_destroyed = False
        self.extra_rooms = []  # (room, secret) to destroy at the end if a step left them
        self.history = []  # what the room's history should hold (dicts, dates as DATE)
        self.dates = {}  # text -> the date string everybody got for it
        self.post_server = None
        self.misses = 0  # waits for messages that timed out

    def dump(self):
        parts = [p.dump() for p in self.peers]
        for p in self.peers:
            parts.append(f"  {p.name} Janus API ({p.c.kind}):\n{p.c.dump(8)}")
        return "\n".join(parts)

    # -- helpers ---------------------------------------------------------------------------
    def marks(self):
        return {p: len(p.inbox) for p in self.peers}

    def wait_time(self, timeout=STEP):
        """After 3 waits that timed out (a server that does not send what is expected), wait
        less, so that the suite ends well within run.sh's limit and still reports everything."""
        return min(timeout, 1.0) if self.misses >= 3 else timeout

    def norm(self, data, dates):
        """A received message with its `date` checked and replaced by DATE; lists whose order
        Janus takes from a hash table sorted."""
        if not isinstance(data, dict):
            return data
        d = dict(data)
        if "date" in d:
            v = d["date"]
            check(isinstance(v, str) and DATE_RE.match(v), f"date {v!r} is not %FT%T%z (e.g. 2024-05-01T10:11:12+0200)")
            when = datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S%z")
            off = abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
            check(off < 300, f"date {v} is {off:.0f} s away from now")
            dates.append(v)
            d["date"] = DATE
        if isinstance(d.get("participants"), list):
            d["participants"] = sorted(d["participants"], key=lambda e: str(e.get("username")) if isinstance(e, dict) else "")
        if isinstance(d.get("allowed"), list):
            d["allowed"] = sorted(d["allowed"], key=str)
        return d

    async def expect(self, marks, want, what, quiet=QUIET, timeout=STEP):
        """Wait until every peer got (at least) as many messages since `marks` as `want` lists
        for it (none for a peer not listed), let `quiet` pass, then compare exactly, in order."""
        want = {p: want.get(p, []) for p in self.peers}
        timeout = self.wait_time(timeout)
        missed = False
        for p in self.peers:
            if not await p.wait_inbox(marks[p] + len(want[p]), timeout):
                missed = True
        self.misses += missed
        await asyncio.sleep(quiet)
        dates = []
        got = {}
        for p in self.peers:
            new = p.inbox[marks[p]:]
            bad = [m.raw for m in new if m.data is None]
            check(not bad, f"{what}: {p.name} received a message that is not JSON: {bad[:2]!r}")
            got[p] = [self.norm(m.data, dates) for m in new]
        for p in self.peers:
            check(got[p] == want[p], f"{what}: {p.name} received\n      {brief(got[p], 2000)}\n    expected\n"
                  f"      {brief(want[p], 2000)}")
        return got, dates

    def same_date(self, dates, what):
        check(len(set(dates)) <= 1, f"{what}: every recipient must get the same date string: {dates}")
        return dates[0] if dates else None

    async def api(self, adm, body, what):
        """A synchronous plugin request on the Janus API: `success` with plugindata."""
        c, hid = adm
        r = await c.message(hid, body)
        check(r.get("janus") == "success", f"{what}: expected janus success (synchronous), got {brief(r)}")
        check(r.get("sender") == hid, f"{what}: sender {r.get('sender')} != handle {hid}")
        check(r.get("plugindata", {}).get("plugin") == TEXTROOM, f"{what}: plugindata {brief(r.get('plugindata'))}")
        check("jsep" not in r, f"{what}: no jsep expected: {brief(r)}")
        return pdata(r)

    async def api_async(self, c, hid, body, what, jsep=None):
        r = await c.message(hid, body, jsep)
        check(r.get("janus") == "ack", f"{what}: expected ack (asynchronous), got {brief(r)}")
        t = r["transaction"]
        ev = await c.wait_for(lambda m: m["janus"] == "event" and m.get("transaction") == t, STEP, f"the event for {what}")
        check(ev.get("sender") == hid, f"{what}: event sender {ev.get('sender')} != handle {hid}")
        check(ev.get("plugindata", {}).get("plugin") == TEXTROOM, f"{what}: plugindata {brief(ev.get('plugindata'))}")
        return ev, pdata(ev)

    def jmsg(self, p, text, room=None, whisper=False, display=False):
        """A chat message as Janus 1.1.2 relays it. Janus 1.1.2: a public message has NO
        `whisper` key at all (the spec says whisper:false); a private one has whisper:true. The
        copy kept for the history also carries the sender's `display` (when it has one)."""
        m = {"textroom": "message", "room": self.room if room is None else room, "from": p.username,
             "date": DATE, "text": text}
        if whisper:
            m["whisper"] = True
        if display and p.display is not None:
            m["display"] = p.display
        return m

    def ann(self, text, room=None):
        return {"textroom": "announcement", "room": self.room if room is None else room, "date": DATE, "text": text}

    def ev(self, kind, p, room=None):
        e = {"textroom": kind, "room": self.room if room is None else room, "username": p.username}
        if kind == "join" and p.display is not None:
            e["display"] = p.display
        return e

    def remember(self, item):
        self.history.append(item)
        del self.history[:-3]

    # -- steps -----------------------------------------------------------------------------
    async def setup(self):
        out = []
        for p in self.peers:
            await p.c.connect()
            await p.c.create()
            p.hid = await p.c.attach(TEXTROOM)
            ev, d = await self.api_async(p.c, p.hid, {"request": "setup"}, f"{p.name} setup")
            check(d == {"textroom": "event", "result": "ok"}, f"{p.name} setup: {brief(d)}")
            jsep = ev.get("jsep")
            # Janus 1.1.2: the offer comes in the setup event; jsep is exactly {type, sdp}.
            check(isinstance(jsep, dict) and jsep.get("type") == "offer" and set(jsep) == {"type", "sdp"},
                  f"{p.name} setup: the event must carry a JSEP offer {{type, sdp}}: {brief(jsep)}")
            sdp = jsep["sdp"]
            p.offer = sdp
            mlines = [l for l in sdp.splitlines() if l.startswith("m=")]
            check(len(mlines) == 1 and re.match(r"^m=application \d+ UDP/DTLS/SCTP webrtc-datachannel$", mlines[0]),
                  f"{p.name}: the offer must hold exactly one data m-line: {mlines}")
            check(re.search(r"\r\na=sctp-port:\d+\r\n", sdp), f"{p.name}: no a=sctp-port in the offer:\n{sdp}")
            check("\r\na=setup:actpass\r\n" in sdp, f"{p.name}: the offer must be a=setup:actpass:\n{sdp}")
            check(re.search(r"\r\na=fingerprint:sha-256 ", sdp), f"{p.name}: no fingerprint in the offer")
            cands = [l for l in sdp.splitlines() if l.startswith("a=candidate:")]
            check(cands, f"{p.name}: aiortc does not trickle: the offer must carry the server's candidates")
            if self.addr:
                check(any(f" {self.addr} " in l for l in cands), f"{p.name}: no offer candidate on {self.addr}: {cands}")
            p.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            p.pc.on("datachannel", p.on_datachannel)
            await p.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            # As janus.js does: the client creates the channel, then answers.
            p.dc = p.pc.createDataChannel(p.label)
            p._hook(p.dc)
            opened = asyncio.Event()
            p.dc.on("open", opened.set)
            await p.pc.setLocalDescription(await p.pc.createAnswer())
            mark = len(p.c.received)
            ev, d = await self.api_async(p.c, p.hid, {"request": "ack"}, f"{p.name} ack",
                                         jsep={"type": "answer", "sdp": p.pc.localDescription.sdp, "trickle": False})
            check(d == {"textroom": "event", "result": "ok"}, f"{p.name} ack: {brief(d)}")
            check("jsep" not in ev, f"{p.name} ack: no jsep expected: {brief(ev)}")
            try:
                await asyncio.wait_for(opened.wait(), CONNECT_TIMEOUT)
            except asyncio.TimeoutError:
                raise AssertionFailed(f"{p.name}: data channel not open after {CONNECT_TIMEOUT:.0f} s (pc "
                                      f"{p.pc.connectionState}, ICE {p.pc.iceConnectionState})") from None
            old = {id(m) for _, m in p.c.received[:mark]}
            await p.c.wait_for(lambda m: id(m) not in old and m["janus"] == "webrtcup" and m.get("sender") == p.hid,
                               STEP, f"{p.name}: webrtcup")
            out.append(f"{p.name} {p.c.kind}")
        for p, kind in ((self.bob, "http"), (self.alice, "ws")):
            hid = await p.c.attach(TEXTROOM)
            if kind == "http":
                self.adm_http = (p.c, hid)
            else:
                self.adm_ws = (p.c, hid)
        return ", ".join(out) + "; data channels open"

    async def create(self):
        m = self.marks()
        t = tx()
        self.alice.send({"textroom": "create", "transaction": t, "room": self.room, "description": self.description,
                         "secret": self.secret, "pin": self.pin, "history": 3})
        # Janus 1.1.2: on the data channel the reply is "success" (on the Janus API: "created").
        await self.expect(m, {self.alice: [{"textroom": "success", "room": self.room, "permanent": False,
                                            "transaction": t}]}, "create")
        return f"room {self.room}"

    async def join(self, p, earlier, history=None, body_extra=None, history_items=()):
        m = self.marks()
        t = tx()
        body = {"textroom": "join", "transaction": t, "room": self.room, "username": p.username, "pin": self.pin}
        if p.display is not None:
            body["display"] = p.display
        if history is not None:
            body["history"] = history
        body.update(body_extra or {})
        p.send(body)
        # Janus 1.1.2: the joiner gets the stored history first, then its OWN `join`
        # notification, then the `success` reply listing the others (not itself).
        want = {p: list(history_items) + [self.ev("join", p),
                                          {"textroom": "success", "participants": sorted(
                                              (q.entry() for q in earlier), key=lambda e: e["username"]),
                                           "transaction": t}]}
        for q in earlier:
            want[q] = [self.ev("join", p)]
        await self.expect(m, want, f"{p.name} join")
        return f"told {[q.name for q in earlier]}" + (f"; {len(history_items)} history item(s)" if history_items else "")

    async def listparticipants(self):
        m = self.marks()
        t = tx()
        self.bob.send({"textroom": "listparticipants", "transaction": t, "room": self.room})
        # Janus 1.1.2: the reply has NO "textroom" key at all: {room, participants, transaction}.
        want = {"room": self.room, "participants": sorted((p.entry() for p in self.peers), key=lambda e: e["username"]),
                "transaction": t}
        await self.expect(m, {self.bob: [want]}, "listparticipants")

    async def public_message(self):
        m = self.marks()
        t = tx()
        text = "hello everyone \u00e9\u00e8 \u2603 \"quoted\" back\\slash / slash"
        self.alice.send({"textroom": "message", "transaction": t, "room": self.room, "text": text})
        msg = self.jmsg(self.alice, text)
        # Janus 1.1.2: the sender gets its own public message too (before its `success`).
        _, dates = await self.expect(m, {self.alice: [msg, {"textroom": "success", "transaction": t}],
                                         self.bob: [msg], self.carol: [msg]}, "public message")
        self.dates[text] = self.same_date(dates, "public message")
        self.remember(self.jmsg(self.alice, text, display=True))
        return f"date {self.dates[text]}"

    async def private_to(self):
        m = self.marks()
        t = tx()
        self.bob.send({"textroom": "message", "transaction": t, "room": self.room, "text": "just for carol",
                       "to": "carol"})
        # Janus 1.1.2: the reply to a private message carries `sent` {username: delivered}.
        await self.expect(m, {self.bob: [{"textroom": "success", "sent": {"carol": True}, "transaction": t}],
                              self.carol: [self.jmsg(self.bob, "just for carol", whisper=True)]}, "private to")

    async def private_tos(self):
        m = self.marks()
        t = tx()
        self.carol.send({"textroom": "message", "transaction": t, "room": self.room, "text": "alice, bob and ghost",
                         "tos": ["alice", "bob", "ghost"]})
        msg = self.jmsg(self.carol, "alice, bob and ghost", whisper=True)
        # Janus 1.1.2: a `tos` name that is not in the room is not an error: sent[name] = false.
        await self.expect(m, {self.carol: [{"textroom": "success", "sent": {"alice": True, "bob": True, "ghost": False},
                                            "transaction": t}],
                              self.alice: [msg], self.bob: [msg]}, "private tos")

    async def private_to_unknown(self):
        m = self.marks()
        t = tx()
        self.alice.send({"textroom": "message", "transaction": t, "room": self.room, "text": "anyone?", "to": "ghost"})
        # Janus 1.1.2: `to` an unknown user is a success with sent {ghost:false}, NOT error 423.
        await self.expect(m, {self.alice: [{"textroom": "success", "sent": {"ghost": False}, "transaction": t}]},
                          "private to an unknown user")
        m = self.marks()
        t = tx()
        self.alice.send({"textroom": "message", "transaction": t, "room": self.room, "text": "note to self", "to": "alice"})
        await self.expect(m, {self.alice: [self.jmsg(self.alice, "note to self", whisper=True),
                                           {"textroom": "success", "sent": {"alice": True}, "transaction": t}]},
                          "private to oneself")

    async def no_ack(self):
        m = self.marks()
        self.bob.send({"textroom": "message", "transaction": tx(), "room": self.room, "text": "no ack please", "ack": False})
        msg = self.jmsg(self.bob, "no ack please")
        await self.expect(m, {self.alice: [msg], self.bob: [msg], self.carol: [msg]}, "public message, ack:false")
        self.remember(self.jmsg(self.bob, "no ack please", display=True))
        m = self.marks()
        self.bob.send({"textroom": "message", "transaction": tx(), "room": self.room, "text": "quiet whisper",
                       "to": "alice", "ack": False})
        await self.expect(m, {self.alice: [self.jmsg(self.bob, "quiet whisper", whisper=True)]},
                          "private message, ack:false")

    async def announcement(self):
        m = self.marks()
        t = tx()
        self.alice.send({"textroom": "announcement", "transaction": t, "room": self.room, "secret": self.secret,
                         "text": "server maintenance at noon"})
        a = self.ann("server maintenance at noon")
        _, dates = await self.expect(m, {self.alice: [a, {"textroom": "success", "transaction": t}],
                                         self.bob: [a], self.carol: [a]}, "announcement")
        self.same_date(dates, "announcement")
        # Janus 1.1.2: announcements go into the history too.
        self.remember(a)

    async def leave(self, p, others):
        m = self.marks()
        t = tx()
        p.send({"textroom": "leave", "transaction": t, "room": self.room})
        # Janus 1.1.2: the leaver gets its own `leave` notification, then `success`.
        want = {p: [self.ev("leave", p), {"textroom": "success", "transaction": t}]}
        for q in others:
            want[q] = [self.ev("leave", p)]
        await self.expect(m, want, f"{p.name} leave")

    async def history_rejoin(self):
        m = self.marks()
        self.carol.send({"textroom": "message", "transaction": tx(), "room": self.room, "text": "one more", "ack": False})
        msg = self.jmsg(self.carol, "one more")
        await self.expect(m, {self.alice: [msg], self.bob: [msg], self.carol: [msg]}, "carol's public message")
        self.remember(self.jmsg(self.carol, "one more", display=True))
        check(len(self.history) == 3, f"test bug: history {self.history}")
        await self.leave(self.carol, (self.alice, self.bob))
        # Whispers are not kept; the history (size 3) holds the last 3 public messages and
        # announcements, each message with the sender's display when it had one.
        await self.join(self.carol, (self.alice, self.bob), history_items=self.history)
        return "history: " + ", ".join(h.get("text") for h in self.history)

    async def kick(self):
        m = self.marks()
        t = tx()
        self.alice.send({"textroom": "kick", "transaction": t, "room": self.room, "secret": self.secret,
                         "username": "carol"})
        k = self.ev("kicked", self.carol)
        # Janus 1.1.2: everybody in the room (the kicked user included) gets `kicked`; the reply
        # is {"textbridge":"success"} (sic: "textbridge", not "textroom"). jano answers
        # {"textroom":"success"} like every other request: the typo is a defect, not copied.
        ok = {"textbridge" if IS_JANUS else "textroom": "success", "transaction": t}
        await self.expect(m, {self.alice: [k, ok], self.bob: [k],
                              self.carol: [k]}, "kick carol")
        m = self.marks()
        t = tx()
        self.carol.send({"textroom": "message", "transaction": t, "room": self.room, "text": "am I still here?"})
        await self.expect(m, {self.carol: [{"textroom": "error", "error_code": 422, "error": f"Not in room {self.room}",
                                            "transaction": t}]}, "the kicked user's message")
        await self.join(self.carol, (self.alice, self.bob), history=False)
        return "kicked, then re-joined with history:false (no history)"

    def list_entry(self, n, description=None):
        return {"room": self.room, "description": description or self.description, "pin_required": True,
                "num_participants": n, "history": 3}

    async def dc_list(self, who, pred_what):
        m = self.marks()
        t = tx()
        who.send({"textroom": "list", "transaction": t})
        if not await who.wait_inbox(m[who] + 1, self.wait_time()):
            self.misses += 1
        await asyncio.sleep(QUIET)
        new = [x.data for x in who.inbox[m[who]:]]
        check(len(new) == 1 and isinstance(new[0], dict), f"list: expected one reply, got {brief(new)}")
        r = new[0]
        check(r.get("textroom") == "success" and r.get("transaction") == t and isinstance(r.get("list"), list)
              and set(r) == {"textroom", "list", "transaction"}, f"list: {brief(r)}")
        for p in self.peers:
            if p is not who:
                check(len(p.inbox) == m[p], f"list: {p.name} got {[x.show() for x in p.inbox[m[p]:]]}")
        return r["list"]

    async def list_exists(self):
        rooms = await self.dc_list(self.bob, "list")
        mine = [e for e in rooms if isinstance(e, dict) and e.get("room") == self.room]
        # Janus 1.1.2: every entry is exactly {room, description, pin_required, num_participants,
        # history} (history is always there, 0 when the room keeps none).
        check(mine == [self.list_entry(3)], f"list: our room {brief(mine)}, expected {brief(self.list_entry(3))}")
        # The sample config's static room (janus.plugin.textroom.jcfg: room-1234, "Demo Room").
        demo = [e for e in rooms if isinstance(e, dict) and e.get("room") == 1234]
        check(demo == [{"room": 1234, "description": "Demo Room", "pin_required": False, "num_participants": 0,
                        "history": 0}], f"list: the static room 1234 from the config: {brief(demo)}")
        for e in rooms:
            check(isinstance(e, dict) and set(e) == {"room", "description", "pin_required", "num_participants", "history"},
                  f"list entry {brief(e)}")
        m = self.marks()
        t1, t2 = tx(), tx()
        self.bob.send({"textroom": "exists", "transaction": t1, "room": self.room})
        self.bob.send({"textroom": "exists", "transaction": t2, "room": self.room + 1})
        await self.expect(m, {self.bob: [{"textroom": "success", "room": self.room, "exists": True, "transaction": t1},
                                         {"textroom": "success", "room": self.room + 1, "exists": False,
                                          "transaction": t2}]}, "exists")
        return f"{len(rooms)} room(s) listed"

    async def edit(self):
        m = self.marks()
        t = tx()
        new_secret = "s2-" + secrets.token_hex(4)
        new_desc = self.description + " (edited)"
        self.alice.send({"textroom": "edit", "transaction": t, "room": self.room, "secret": self.secret,
                         "new_description": new_desc, "new_secret": new_secret, "new_is_private": True})
        # Janus 1.1.2: on the data channel the reply is "success" (on the Janus API: "edited").
        await self.expect(m, {self.alice: [{"textroom": "success", "room": self.room, "permanent": False,
                                            "transaction": t}]}, "edit")
        old_secret, self.secret, self.description = self.secret, new_secret, new_desc
        rooms = await self.dc_list(self.carol, "list")
        check(not [e for e in rooms if e.get("room") == self.room], f"a private room must not be listed: {brief(rooms)}")
        m = self.marks()
        t1, t2 = tx(), tx()
        self.alice.send({"textroom": "announcement", "transaction": t1, "room": self.room, "secret": old_secret,
                         "text": "with the old secret"})
        self.alice.send({"textroom": "edit", "transaction": t2, "room": self.room, "secret": self.secret,
                         "new_is_private": False})
        await self.expect(m, {self.alice: [
            {"textroom": "error", "error_code": 419, "error": "Unauthorized (wrong secret)", "transaction": t1},
            {"textroom": "success", "room": self.room, "permanent": False, "transaction": t2}]},
            "the old secret no longer works; edit new_is_private:false")
        rooms = await self.dc_list(self.carol, "list")
        mine = [e for e in rooms if e.get("room") == self.room]
        check(mine == [self.list_entry(3)], f"list after edit: {brief(mine)}, expected {brief(self.list_entry(3))}")
        return "new description and secret; hidden from list while private"

    async def allowed(self):
        await self.leave(self.carol, (self.alice, self.bob))

        def ask(p, body):
            t = tx()
            p.send(dict(body, transaction=t))
            return t

        m = self.marks()
        base = {"textroom": "allowed", "room": self.room, "secret": self.secret}
        t1 = ask(self.alice, dict(base, action="add", allowed=["tok-a", "tok-b"]))
        t2 = ask(self.alice, dict(base, action="enable"))
        await self.expect(m, {self.alice: [
            {"textroom": "success", "room": self.room, "allowed": ["tok-a", "tok-b"], "transaction": t1},
            {"textroom": "success", "room": self.room, "allowed": ["tok-a", "tok-b"], "transaction": t2}]},
            "allowed add + enable")
        m = self.marks()
        join = {"textroom": "join", "room": self.room, "username": "carol", "display": "Carol", "pin": self.pin,
                "history": False}
        t3 = ask(self.carol, join)
        t4 = ask(self.carol, dict(join, token="tok-x"))
        t5 = ask(self.alice, dict(base, action="remove", allowed=["tok-b"]))
        await self.expect(m, {
            self.carol: [
                {"textroom": "error", "error_code": 419, "error": "Unauthorized (not in the allowed list)", "transaction": t3},
                {"textroom": "error", "error_code": 419, "error": "Unauthorized (not in the allowed list)", "transaction": t4}],
            self.alice: [{"textroom": "success", "room": self.room, "allowed": ["tok-a"], "transaction": t5}]},
            "join without / with a wrong token; allowed remove")
        m = self.marks()
        t6 = ask(self.carol, dict(join, token="tok-b"))
        await self.expect(m, {self.carol: [
            {"textroom": "error", "error_code": 419, "error": "Unauthorized (not in the allowed list)", "transaction": t6}]},
            "join with a removed token")
        await self.join(self.carol, (self.alice, self.bob), history=False, body_extra={"token": "tok-a"})
        m = self.marks()
        t7 = ask(self.alice, dict(base, action="disable"))
        # Janus 1.1.2: after "disable" the reply has no `allowed` list.
        await self.expect(m, {self.alice: [{"textroom": "success", "room": self.room, "transaction": t7}]},
                          "allowed disable")
        return "add, enable, remove, disable; tokens enforced on join"

    async def post(self):
        got = []
        arrived = asyncio.Event()

        async def handler(request):
            got.append({"method": request.method, "path": request.path, "query": request.query_string,
                        "headers": dict(request.headers), "body": await request.read(), "t": time.monotonic()})
            arrived.set()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.addr or "127.0.0.1", 0)
        await site.start()
        self.post_server = runner
        port = site._server.sockets[0].getsockname()[1]
        token = secrets.token_hex(4)
        url = f"http://{self.addr or '127.0.0.1'}:{port}/textroom-post/{token}"
        room = self.room + 7
        self.room2 = room
        m = self.marks()
        t = tx()
        self.alice.send({"textroom": "create", "transaction": t, "room": room, "post": url,
                         "description": "post room"})
        await self.expect(m, {self.alice: [{"textroom": "success", "room": room, "permanent": False,
                                            "transaction": t}]}, "create a room with post")
        self.extra_rooms.append((room, None))
        m = self.marks()
        ta, tb = tx(), tx()
        self.alice.send({"textroom": "join", "transaction": ta, "room": room, "username": "alice", "display": "Alice"})
        await self.expect(m, {self.alice: [self.ev("join", self.alice, room),
                                           {"textroom": "success", "participants": [], "transaction": ta}]},
                          "alice joins the post room")
        m = self.marks()
        self.bob.send({"textroom": "join", "transaction": tb, "room": room, "username": "bob"})
        await self.expect(m, {self.bob: [self.ev("join", self.bob, room),
                                         {"textroom": "success", "participants": [self.alice.entry()], "transaction": tb}],
                              self.alice: [self.ev("join", self.bob, room)]}, "bob joins the post room")
        check(not got, f"nothing is posted for joins: {got}")
        # A public message: POSTed (the very text the participants get), after the broadcast.
        m = self.marks()
        t = tx()
        text = "posted \u00e9 \"q\""
        self.bob.send({"textroom": "message", "transaction": t, "room": room, "text": text})
        msg = self.jmsg(self.bob, text, room=room)
        await self.expect(m, {self.alice: [msg], self.bob: [msg, {"textroom": "success", "transaction": t}]},
                          "public message in the post room")
        try:
            await asyncio.wait_for(arrived.wait(), STEP)
        except asyncio.TimeoutError:
            raise AssertionFailed(f"no HTTP POST to {url} within {STEP:.0f} s after a public message") from None
        check(len(got) == 1, f"one POST expected: {brief([{k: v for k, v in g.items() if k != 'headers'} for g in got])}")
        p = got[0]
        check(p["method"] == "POST" and p["path"] == f"/textroom-post/{token}" and p["query"] == "",
              f"POST {p['method']} {p['path']}?{p['query']}")
        ctype = {k.lower(): v for k, v in p["headers"].items()}.get("content-type", "")
        check(ctype.split(";")[0].strip() == "application/json", f"POST Content-Type {ctype!r}: {p['headers']}")
        raw = self.alice.inbox[m[self.alice]].raw
        body = p["body"].decode("utf-8", "replace")
        # Janus 1.1.2: the body is the message exactly as relayed on the data channels
        # (same text, same formatting): {textroom:"message", room, from, date, text}.
        check(body == raw, f"POST body\n      {body!r}\n    differs from the relayed message\n      {raw!r}")
        # A whisper is not POSTed; an announcement is.
        m = self.marks()
        t = tx()
        self.bob.send({"textroom": "message", "transaction": t, "room": room, "text": "secret", "to": "alice"})
        await self.expect(m, {self.alice: [self.jmsg(self.bob, "secret", room=room, whisper=True)],
                              self.bob: [{"textroom": "success", "sent": {"alice": True}, "transaction": t}]},
                          "whisper in the post room")
        arrived.clear()
        m = self.marks()
        t = tx()
        self.alice.send({"textroom": "announcement", "transaction": t, "room": room, "text": "posted announcement"})
        a = self.ann("posted announcement", room)
        await self.expect(m, {self.alice: [a, {"textroom": "success", "transaction": t}], self.bob: [a]},
                          "announcement in the post room (no secret needed: the room has none)")
        try:
            await asyncio.wait_for(arrived.wait(), STEP)
        except asyncio.TimeoutError:
            raise AssertionFailed(f"no HTTP POST within {STEP:.0f} s after an announcement") from None
        await asyncio.sleep(QUIET)
        check(len(got) == 2, f"whisper must not be POSTed; one POST per message/announcement: "
              f"{brief([g['body'].decode('utf-8', 'replace') for g in got], 1500)}")
        raw = self.alice.inbox[m[self.alice]].raw
        check(got[1]["body"].decode("utf-8", "replace") == raw,
              f"announcement POST body {got[1]['body']!r} differs from the relayed one {raw!r}")
        return f"POST {url}: {brief(json.loads(got[0]['body']), 300)}"

    async def errors(self):
        """Error cases on the data channel: one row = (what, request text or bytes, reply or None,
        sender). Sent one by one; a row whose reply is None must get no answer at all (checked
        with an `exists` sent right after it, whose reply must be the next message)."""
        R, R2 = self.room, self.room2
        c = self.carol

        def err(code, text, t=None):
            e = {"textroom": "error", "error_code": code, "error": text}
            if t is not None:
                e["transaction"] = t
            return e

        def row(what, req, code=None, text=None, echo=True, sender=c, reply=None):
            t = None
            if isinstance(req, dict):
                t = tx()
                req = dict(req, transaction=t)
            if reply is None and code is not None:
                reply = err(code, text, t if echo else None)
            elif isinstance(reply, dict) and t is not None:
                reply = dict(reply, transaction=t)
            return what, req, reply, sender

        inv = "Invalid element type ({} should be {})"
        miss = "Missing mandatory element ({})"
        rows = [
            # Janus 1.1.2: when `textroom` or `transaction` is missing or mistyped, the error has
            # NO transaction, even when the request carried one.
            row("413 no transaction", '{"textroom":"list"}', reply=err(413, miss.format("transaction"))),
            row("413 no textroom (transaction not echoed)", '{"transaction":"e-no-textroom"}',
                reply=err(413, miss.format("textroom"))),
            row("414 textroom not a string", '{"textroom":1,"transaction":"e-num"}',
                reply=err(414, inv.format("textroom", "a string"))),
            row("414 transaction not a string", '{"textroom":"list","transaction":5}',
                reply=err(414, inv.format("transaction", "a string"))),
            row("413 a JSON array", '[1,2]', reply=err(413, miss.format("textroom"))),
            # Janus 1.1.2: text that is not a JSON object/array gets no reply at all (no 412).
            row("no reply: not JSON", "this is not json"),
            row("no reply: a bare JSON string", '"just a string"'),
            row("no reply: a binary message", b'{"textroom":"list","transaction":"binary"}'),
            row("415 unknown request", {"textroom": "dance"}, 415, "Unsupported request dance"),
            # Janus 1.1.2: request names are matched case-insensitively.
            row("request names are case-insensitive", {"textroom": "Exists", "room": R},
                reply={"textroom": "success", "room": R, "exists": True}),
            row("417 join: no such room", {"textroom": "join", "room": R + 1, "username": "z"}, 417, f"No such room ({R + 1})"),
            # Janus 1.1.2: join checks `username` before `room`.
            row("413 join: no username", {"textroom": "join"}, 413, miss.format("username")),
            row("413 join: no room", {"textroom": "join", "username": "z"}, 413, miss.format("room")),
            row("414 join: room a string", {"textroom": "join", "room": str(R), "username": "z"}, 414,
                inv.format("room", "a positive integer")),
            row("414 join: room negative", {"textroom": "join", "room": -3, "username": "z"}, 414,
                inv.format("room", "a positive integer")),
            row("414 join: username not a string", {"textroom": "join", "room": R, "username": 7}, 414,
                inv.format("username", "a string")),
            row("414 join: history not a boolean", {"textroom": "join", "room": R, "username": "z", "history": "yes"},
                414, inv.format("history", "a boolean")),
            row("413 join: no pin", {"textroom": "join", "room": R, "username": "z"}, 413, miss.format("pin")),
            row("419 join: wrong pin", {"textroom": "join", "room": R, "username": "z", "pin": "nope"}, 419,
                "Unauthorized (wrong pin)"),
            row("414 join: pin not a string", {"textroom": "join", "room": R, "username": "z", "pin": 7}, 414,
                inv.format("pin", "a string")),
            row("421 join: already in the room", {"textroom": "join", "room": R, "username": "carol2", "pin": self.pin},
                421, f"Already in room {R}"),
            row("420 join: username taken", {"textroom": "join", "room": R2, "username": "alice"}, 420,
                "Username already taken"),
            # message: `text` is checked before `room`.
            row("413 message: no text", {"textroom": "message"}, 413, miss.format("text")),
            row("413 message: no room", {"textroom": "message", "text": "t"}, 413, miss.format("room")),
            row("414 message: text not a string", {"textroom": "message", "room": R, "text": 5}, 414,
                inv.format("text", "a string")),
            row("414 message: to not a string", {"textroom": "message", "room": R, "text": "t", "to": 5}, 414,
                inv.format("to", "a string")),
            row("414 message: tos not an array", {"textroom": "message", "room": R, "text": "t", "tos": "bob"}, 414,
                inv.format("tos", "an array")),
            row("414 message: ack not a boolean", {"textroom": "message", "room": R, "text": "t", "ack": "no"}, 414,
                inv.format("ack", "a boolean")),
            row("414 message: both to and tos", {"textroom": "message", "room": R, "text": "t", "to": "bob",
                                                 "tos": ["bob"]}, 414, "Both to and tos array provided"),
            row("417 message: no such room", {"textroom": "message", "room": R + 1, "text": "t"}, 417,
                f"No such room ({R + 1})"),
            row("422 message: not in the room", {"textroom": "message", "room": R2, "text": "t"}, 422,
                f"Not in room {R2}"),
            row("422 message ack:false: the error still comes", {"textroom": "message", "room": R2, "text": "t",
                                                                "ack": False}, 422, f"Not in room {R2}"),
            row("417 leave: no such room", {"textroom": "leave", "room": R + 1}, 417, f"No such room ({R + 1})"),
            row("422 leave: not in the room", {"textroom": "leave", "room": R2}, 422, f"Not in room {R2}"),
            row("413 leave: no room", {"textroom": "leave"}, 413, miss.format("room")),
            row("418 create: room exists", {"textroom": "create", "room": R}, 418, f"Room {R} already exists"),
            row("414 create: room a string", {"textroom": "create", "room": "x"}, 414, inv.format("room", "a positive integer")),
            row("414 create: history negative", {"textroom": "create", "room": R + 1, "history": -1}, 414,
                inv.format("history", "a positive integer")),
            row("414 create: is_private not a boolean", {"textroom": "create", "room": R + 1, "is_private": "yes"}, 414,
                inv.format("is_private", "a boolean")),
            row("414 create: description not a string", {"textroom": "create", "room": R + 1, "description": 5}, 414,
                inv.format("description", "a string")),
            row("414 create: allowed with a non-string", {"textroom": "create", "room": R + 1, "allowed": [1]}, 414,
                "Invalid element in the allowed array (not a string)"),
            row("414 create: post not a string", {"textroom": "create", "room": R + 1, "post": True}, 414,
                inv.format("post", "a string")),
            row("413 kick: no username", {"textroom": "kick", "room": R, "secret": self.secret}, 413, miss.format("username")),
            row("413 kick: no secret", {"textroom": "kick", "room": R, "username": "bob"}, 413, miss.format("secret")),
            row("419 kick: wrong secret", {"textroom": "kick", "room": R, "username": "bob", "secret": "nope"}, 419,
                "Unauthorized (wrong secret)"),
            row("414 kick: secret not a string", {"textroom": "kick", "room": R, "username": "bob", "secret": 1}, 414,
                inv.format("secret", "a string")),
            row("423 kick: no such user", {"textroom": "kick", "room": R, "username": "ghost", "secret": self.secret}, 423,
                f"No such user ghost in room {R}"),
            row("417 kick: no such room", {"textroom": "kick", "room": R + 1, "username": "bob", "secret": "x"}, 417,
                f"No such room ({R + 1})"),
            row("413 announcement: no text", {"textroom": "announcement", "room": R, "secret": self.secret}, 413,
                miss.format("text")),
            row("413 announcement: no secret", {"textroom": "announcement", "room": R, "text": "t"}, 413,
                miss.format("secret")),
            row("419 announcement: wrong secret", {"textroom": "announcement", "room": R, "text": "t", "secret": "x"}, 419,
                "Unauthorized (wrong secret)"),
            row("417 announcement: no such room", {"textroom": "announcement", "room": R + 1, "text": "t"}, 417,
                f"No such room ({R + 1})"),
            row("413 allowed: no action", {"textroom": "allowed", "room": R, "secret": self.secret}, 413,
                miss.format("action")),
            row("414 allowed: unknown action", {"textroom": "allowed", "room": R, "secret": self.secret, "action": "foo"},
                414, "Unsupported action 'foo' (allowed)"),
            row("414 allowed: allowed not an array", {"textroom": "allowed", "room": R, "secret": self.secret,
                                                      "action": "add", "allowed": "x"}, 414, inv.format("allowed", "an array")),
            row("414 allowed: a non-string token", {"textroom": "allowed", "room": R, "secret": self.secret,
                                                    "action": "add", "allowed": [1]}, 414,
                "Invalid element in the allowed array (not a string)"),
            row("419 allowed: wrong secret", {"textroom": "allowed", "room": R, "secret": "x", "action": "enable"}, 419,
                "Unauthorized (wrong secret)"),
            row("419 edit: wrong secret", {"textroom": "edit", "room": R, "secret": "x"}, 419, "Unauthorized (wrong secret)"),
            row("417 edit: no such room", {"textroom": "edit", "room": R + 1}, 417, f"No such room ({R + 1})"),
            row("414 edit: new_is_private not a boolean", {"textroom": "edit", "room": R, "secret": self.secret,
                                                           "new_is_private": "x"}, 414,
                inv.format("new_is_private", "a boolean")),
            row("413 destroy: no secret", {"textroom": "destroy", "room": R}, 413, miss.format("secret")),
            row("419 destroy: wrong secret", {"textroom": "destroy", "room": R, "secret": "x"}, 419,
                "Unauthorized (wrong secret)"),
            row("417 destroy: no such room", {"textroom": "destroy", "room": R + 1}, 417, f"No such room ({R + 1})"),
            row("414 destroy: permanent not a boolean", {"textroom": "destroy", "room": R, "secret": self.secret,
                                                        "permanent": "x"}, 414, inv.format("permanent", "a boolean")),
            row("417 listparticipants: no such room", {"textroom": "listparticipants", "room": R + 1}, 417,
                f"No such room ({R + 1})"),
            row("413 listparticipants: no room", {"textroom": "listparticipants"}, 413, miss.format("room")),
            row("413 exists: no room", {"textroom": "exists"}, 413, miss.format("room")),
            row("414 exists: room a string", {"textroom": "exists", "room": "x"}, 414, inv.format("room", "a positive integer")),
        ]
        results = []
        timeouts = 0
        m0 = self.marks()
        seq = []  # everything carol must have received, in order
        for what, req, reply, sender in rows:
            t0 = time.monotonic()
            try:
                m = self.marks()
                sender.send(req)
                if reply is None:
                    t = tx()
                    sender.send({"textroom": "exists", "transaction": t, "room": R})
                    reply = {"textroom": "success", "room": R, "exists": True, "transaction": t}
                    label = "no reply expected, then the reply to the `exists` sent after it"
                else:
                    label = "expected"
                seq.append(reply)
                if not await sender.wait_inbox(m[sender] + 1, ROW_WAIT if timeouts < 3 else 0.3):
                    timeouts += 1
                    raise AssertionFailed(f"no reply; {label} {brief(reply, 600)}")
                timeouts = 0
                new = [x.data if x.data is not None else x.raw for x in sender.inbox[m[sender]:]]
                check(new[:1] == [reply], f"got {brief(new[:1], 600)}\n    {label} {brief(reply, 600)}")
                results.append((what, None, time.monotonic() - t0))
            except Exception as e:  # noqa: BLE001
                results.append((what, e, time.monotonic() - t0))
        for what, e, dt in results:
            if e is None:
                self.runner.ok(f"  error table: {what}", dt * 1000)
            else:
                self.runner.fail(f"  error table: {what}", dt * 1000,
                                 str(e) if isinstance(e, AssertionFailed) else "".join(traceback.format_exception(e)).rstrip())
        failed = sum(1 for _, e, _ in results if e is not None)
        check(failed == 0, f"{failed} of {len(results)} error rows failed (see above)")
        # Exactly one reply per row (no second reply, no stray notification to anybody).
        await self.expect(m0, {c: seq}, "the whole error table")
        return f"{len(results)} rows"

    async def janus_api(self):
        R = self.room
        out = []
        d = await self.api(self.adm_http, {"request": "list"}, "list (HTTP)")
        check(d.get("textroom") == "success" and set(d) == {"textroom", "list"}, f"list: {brief(d)}")
        mine = [e for e in d["list"] if e.get("room") == R]
        check(mine == [self.list_entry(3)], f"list (Janus API): {brief(mine)}")
        d = await self.api(self.adm_ws, {"request": "exists", "room": R}, "exists (WS)")
        check(d == {"textroom": "success", "room": R, "exists": True}, f"exists: {brief(d)}")
        R3 = R + 3
        self.extra_rooms.append((R3, "api-secret"))
        d = await self.api(self.adm_http, {"request": "create", "room": R3, "description": "api room",
                                           "secret": "api-secret", "history": 2}, "create (HTTP)")
        # Janus 1.1.2: "created" on the Janus API ("success" on the data channel).
        check(d == {"textroom": "created", "room": R3, "permanent": False}, f"create: {brief(d)}")
        d = await self.api(self.adm_ws, {"request": "create", "room": R3}, "create again (WS)")
        # Janus 1.1.2: errors of the requests shared with the data channel say "textroom":"error"
        # (the spec says "event"; only the Janus-API-level errors below use "event").
        check(d == {"textroom": "error", "error_code": 418, "error": f"Room {R3} already exists"}, f"create again: {brief(d)}")
        d = await self.api(self.adm_ws, {"request": "edit", "room": R3, "secret": "api-secret",
                                         "new_description": "api room 2"}, "edit (WS)")
        check(d == {"textroom": "edited", "room": R3, "permanent": False}, f"edit: {brief(d)}")
        d = await self.api(self.adm_http, {"request": "edit", "room": R3, "secret": "wrong"}, "edit, wrong secret")
        check(d == {"textroom": "error", "error_code": 419, "error": "Unauthorized (wrong secret)"}, f"edit: {brief(d)}")
        d = await self.api(self.adm_ws, {"request": "list"}, "list (WS)")
        mine = [e for e in d.get("list", []) if e.get("room") == R3]
        check(mine == [{"room": R3, "description": "api room 2", "pin_required": False, "num_participants": 0,
                        "history": 2}], f"list after the Janus-API create/edit: {brief(mine)}")
        d = await self.api(self.adm_http, {"request": "listparticipants", "room": R}, "listparticipants (HTTP)")
        # Janus 1.1.2: no "textroom" key here either.
        want = {"room": R, "participants": sorted((p.entry() for p in self.peers), key=lambda e: e["username"])}
        check(self.norm(d, []) == want, f"listparticipants: {brief(d)}, expected {brief(want)}")
        out.append("list, exists, create, edit, listparticipants")
        for req in ("join", "message", "leave"):
            d = await self.api(self.adm_ws, {"request": req, "room": R, "username": "x", "text": "x"}, f"{req} (WS)")
            # Janus 1.1.2: "textroom":"event" and the text says "Unknown request" (the data
            # channel's own unknown-request text is "Unsupported request <name>").
            check(d == {"textroom": "event", "error_code": 415, "error": f"Unknown request '{req}'"},
                  f"{req} on the Janus API: {brief(d)}")
        d = await self.api(self.adm_http, {"request": "dance"}, "unknown request (HTTP)")
        check(d == {"textroom": "event", "error_code": 415, "error": "Unknown request 'dance'"}, f"dance: {brief(d)}")
        d = await self.api(self.adm_http, {}, "no request")
        check(d == {"textroom": "event", "error_code": 413, "error": "Missing mandatory element (request)"},
              f"no request: {brief(d)}")
        d = await self.api(self.adm_ws, {"request": 5}, "request not a string")
        check(d == {"textroom": "event", "error_code": 414, "error": "Invalid element type (request should be a string)"},
              f"request 5: {brief(d)}")
        out.append("join/message/leave → 415")
        d = await self.api(self.adm_http, {"request": "destroy", "room": R3, "secret": "api-secret"}, "destroy (HTTP)")
        check(d == {"textroom": "destroyed", "room": R3, "permanent": False}, f"destroy: {brief(d)}")
        self.extra_rooms.remove((R3, "api-secret"))
        d = await self.api(self.adm_ws, {"request": "exists", "room": R3}, "exists after destroy")
        check(d == {"textroom": "success", "room": R3, "exists": False}, f"exists: {brief(d)}")
        d = await self.api(self.adm_ws, {"request": "destroy", "room": R3}, "destroy again")
        check(d == {"textroom": "error", "error_code": 417, "error": f"No such room ({R3})"}, f"destroy again: {brief(d)}")
        d = await self.api(self.adm_http, {"request": "create"}, "create without a room id")
        rid = d.get("room")
        check(d.get("textroom") == "created" and d.get("permanent") is False and set(d) == {"textroom", "room", "permanent"}
              and isinstance(rid, int) and 0 < rid <= MAX_SAFE, f"create without room: {brief(d)}")
        d = await self.api(self.adm_http, {"request": "destroy", "room": rid}, "destroy the random room")
        check(d == {"textroom": "destroyed", "room": rid, "permanent": False}, f"destroy: {brief(d)}")
        out.append(f"create without id → {rid}; destroy")
        # Async requests: setup again, restart without setup.
        ev, d = await self.api_async(self.alice.c, self.alice.hid, {"request": "setup"}, "setup again")
        check(d == {"textroom": "error", "error_code": 416, "error": "PeerConnection already setup"}, f"setup again: {brief(d)}")
        check("jsep" not in ev, f"setup again: no jsep expected: {brief(ev)}")
        c, hid = self.adm_ws
        ev, d = await self.api_async(c, hid, {"request": "restart"}, "restart before setup")
        # Janus 1.1.2: the same code 416 ("ALREADY_SETUP") with this text.
        check(d == {"textroom": "error", "error_code": 416, "error": "PeerConnection not setup"}, f"restart: {brief(d)}")
        out.append("setup again, restart before setup → 416")
        # An announcement over the Janus API reaches the room's data channels.
        m = self.marks()
        d = await self.api(self.adm_http, {"request": "announcement", "room": R, "secret": self.secret,
                                           "text": "via the Janus API"}, "announcement (HTTP)")
        check(d == {"textroom": "success"}, f"announcement: {brief(d)}")
        a = self.ann("via the Janus API")
        await self.expect(m, {self.alice: [a], self.bob: [a], self.carol: [a]}, "the Janus-API announcement")
        out.append("announcement → data channels")
        return "; ".join(out)

    async def restart(self):
        """`restart` on bob's handle: a new offer for an ICE restart (not answered here: aiortc
        cannot restart ICE; bob hangs up next)."""
        ev, d = await self.api_async(self.bob.c, self.bob.hid, {"request": "restart"}, "restart")
        check(d == {"textroom": "event", "result": "ok"}, f"restart: {brief(d)}")
        jsep = ev.get("jsep")
        # Janus 1.1.2: jsep is just {type:"offer", sdp} (no `restart` key reaches the client).
        check(isinstance(jsep, dict) and jsep.get("type") == "offer" and set(jsep) == {"type", "sdp"},
              f"restart: the event must carry a JSEP offer {{type, sdp}}: {brief(jsep)}")
        sdp = jsep["sdp"]

        def origin(x):
            o = re.search(r"^o=\S+ (\d+) (\d+) ", x, re.M)
            return (int(o.group(1)), int(o.group(2))) if o else None

        def ice(x):
            return (re.search(r"^a=ice-ufrag:(\S+)", x, re.M) or [None, None])[1], \
                (re.search(r"^a=ice-pwd:(\S+)", x, re.M) or [None, None])[1]

        o0, o1 = origin(self.bob.offer), origin(sdp)
        check(o0 and o1 and o1[0] == o0[0] and o1[1] == o0[1] + 1,
              f"restart: the o= line must keep the session id and bump the version: {o0} -> {o1}")
        i0, i1 = ice(self.bob.offer), ice(sdp)
        check(i1[0] and i1[1] and i1[0] != i0[0] and i1[1] != i0[1], f"restart: new ICE credentials expected: {i0} -> {i1}")
        mlines = [l for l in sdp.splitlines() if l.startswith("m=")]
        check(len(mlines) == 1 and "webrtc-datachannel" in mlines[0], f"restart offer m-lines: {mlines}")
        return f"o= version {o0[1]} -> {o1[1]}, ice-ufrag {i0[0]} -> {i1[0]}"

    async def hangup(self):
        m = self.marks()
        r = await self.bob.c.hangup(self.bob.hid)
        check(r.get("janus") == "success", f"hangup: {brief(r)}")
        await self.bob.c.wait_for(lambda x: x["janus"] == "hangup" and x.get("sender") == self.bob.hid, STEP,
                                  "the hangup event")
        # Janus 1.1.2: a handle whose PeerConnection goes away leaves all its rooms; the others
        # get `leave` (for the post room too).
        lv = self.ev("leave", self.bob)
        lv2 = self.ev("leave", self.bob, self.room2)
        for p, n in ((self.alice, 2), (self.carol, 1)):
            if not await p.wait_inbox(m[p] + n, self.wait_time()):
                self.misses += 1
        await asyncio.sleep(QUIET)
        # alice is in both rooms: the two `leave`s come in Janus's (hash table) order.
        a = [self.norm(x.data, []) for x in self.alice.inbox[m[self.alice]:]]
        check(sorted(a, key=json.dumps) == sorted([lv, lv2], key=json.dumps),
              f"alice got {brief(a)}, expected (any order) {brief([lv, lv2])}")
        cc = [x.data for x in self.carol.inbox[m[self.carol]:]]
        check(cc == [lv], f"carol got {brief(cc)}, expected {brief([lv])}")
        bb = [x.data for x in self.bob.inbox[m[self.bob]:]]
        check(bb == [], f"bob got {brief(bb)} after his hangup")
        d = await self.api(self.adm_ws, {"request": "listparticipants", "room": self.room}, "listparticipants")
        want = {"room": self.room, "participants": sorted([self.alice.entry(), self.carol.entry()], key=lambda e: e["username"])}
        check(self.norm(d, []) == want, f"listparticipants after the hangup: {brief(d)}")
        await self.bob.pc.close()
        self.bob.closed = True
        return "alice and carol told"

    async def destroy(self):
        m = self.marks()
        t = tx()
        self.alice.send({"textroom": "destroy", "transaction": t, "room": self.room, "secret": self.secret})
        dd = {"textroom": "destroyed", "room": self.room}
        # Janus 1.1.2: the requester gets `destroyed` once as the requester and once more as a
        # participant (it is in the room), then the reply ("success" on the data channel,
        # "destroyed" on the Janus API). jano tells it once (the second is a duplicate).
        told = [dd, dd] if IS_JANUS else [dd]
        await self.expect(m, {self.alice: told + [{"textroom": "success", "room": self.room, "permanent": False,
                                                    "transaction": t}],
                              self.carol: [dd]}, "destroy")
        self.room_destroyed = True
        m = self.marks()
        t1, t2 = tx(), tx()
        self.carol.send({"textroom": "exists", "transaction": t1, "room": self.room})
        self.carol.send({"textroom": "message", "transaction": t2, "room": self.room, "text": "hello?"})
        await self.expect(m, {self.carol: [{"textroom": "success", "room": self.room, "exists": False, "transaction": t1},
                                           {"textroom": "error", "error_code": 417, "error": f"No such room ({self.room})",
                                            "transaction": t2}]}, "after destroy")
        # The post room, by someone not in it (it has no secret): the requester still gets
        # `destroyed` on its data channel (Janus 1.1.2), alice (a member) gets it too.
        m = self.marks()
        t = tx()
        self.carol.send({"textroom": "destroy", "transaction": t, "room": self.room2})
        d2 = {"textroom": "destroyed", "room": self.room2}
        await self.expect(m, {self.carol: [d2, {"textroom": "success", "room": self.room2, "permanent": False,
                                                "transaction": t}],
                              self.alice: [d2]}, "destroy the post room (by a non-member)")
        self.extra_rooms = [(r, s) for r, s in self.extra_rooms if r != self.room2]
        return "destroyed to everybody; exists → false"

    async def check_labels(self):
        out = []
        for p in (self.alice, self.bob):
            labels = sorted({x.label for x in p.inbox})
            check(labels == [DC_LABEL], f"{p.name}: messages arrived on {labels}, expected only on its own {DC_LABEL!r}")
            check(p.server_channels == [], f"{p.name}: the server opened channels {p.server_channels}")
        # Janus 1.1.2 always sends on a channel labelled "JanusDataChannel": a client that opened
        # a channel with another label gets one opened by the server (and nothing on its own).
        labels = sorted({x.label for x in self.carol.inbox})
        check(self.carol.server_channels == [DC_LABEL] and labels == [DC_LABEL],
              f"carol (opened {self.carol.label!r}): server-opened channels {self.carol.server_channels}, "
              f"messages on {labels}; expected a server-opened {DC_LABEL!r} carrying everything")
        out.append(f"carol: server opened {self.carol.server_channels}")
        return "; ".join(out)

    async def check_format(self):
        n = 0
        for p in self.peers:
            for x in p.inbox:
                check(isinstance(x.raw, str), f"{p.name}: a binary message {x.raw!r}")
                # The sample config has json = "indented": Jansson's JSON_INDENT(3) output (no
                # trailing newline, ", "-less item separators, UTF-8 unescaped).
                want = json.dumps(x.data, indent=3, ensure_ascii=False)
                check(x.raw == want, f"{p.name}: not formatted as indent-3 JSON:\n      {x.raw!r}\n    expected\n      {want!r}")
                d = x.data
                if isinstance(d, dict) and "transaction" in d:
                    check(list(d)[-1] == "transaction", f"{p.name}: `transaction` must be the last key: {x.raw!r}")
                if isinstance(d, dict) and d and "textroom" in d:
                    check(list(d)[0] == "textroom", f"{p.name}: `textroom` must be the first key: {x.raw!r}")
                n += 1
        return f"{n} messages"

    async def teardown(self):
        for room, secret in list(self.extra_rooms):
            body = {"request": "destroy", "room": room}
            if secret:
                body["secret"] = secret
            await self.api(self.adm_ws, body, f"destroy {room}")
        self.extra_rooms = []
        for p in self.peers:
            await p.c.detach(p.hid)
        for adm in (self.adm_http, self.adm_ws):
            await adm[0].detach(adm[1])
        for p in self.peers:
            await p.c.destroy()
        return "handles detached, sessions destroyed"

    async def close(self):
        if not self.room_destroyed and self.adm_ws is not None:
            try:
                await self.api(self.adm_ws, {"request": "destroy", "room": self.room, "secret": self.secret}, "cleanup")
            except Exception:  # noqa: BLE001
                pass
        for room, secret in self.extra_rooms:
            try:
                await self.api(self.adm_ws, {"request": "destroy", "room": room, **({"secret": secret} if secret else {})},
                               "cleanup")
            except Exception:  # noqa: BLE001
                pass
        for p in self.peers:
            if p.pc is not None:
                try:
                    await asyncio.wait_for(p.pc.close(), 5)
                except Exception:  # noqa: BLE001
                    pass
            await p.c.close()
        if self.post_server is not None:
            await self.post_server.cleanup()


async def run(runner, http_url, ws_url, addr):
    run = TextRoomRun(runner, http_url, ws_url, addr)
    print(f"▶ aiortc TextRoom (alice: WebSocket {ws_url}, bob: HTTP {http_url}, carol: WebSocket, "
          f"channel 'chat')", flush=True)
    step = stepper(runner, run.dump)
    A, B, C = run.peers
    try:
        await step("3 sessions: setup → event ok + offer (one data m-line); ack + answer → event ok; "
                   "data channels open; webrtcup", run.setup, 3 * CONNECT_TIMEOUT + 20)
        await step("create over the data channel (secret, pin, history 3) → success {room, permanent:false}",
                   run.create, 15, essential=False)
        await step("alice joins → own join, then success participants []", lambda: run.join(A, []), 15, essential=False)
        await step("bob joins → success [alice]; alice told", lambda: run.join(B, [A]), 15, essential=False)
        await step("carol joins → success [alice, bob]; both told", lambda: run.join(C, [A, B]), 15, essential=False)
        await step("listparticipants → {room, participants} (no textroom key)", run.listparticipants, 15,
                   essential=False)
        await step("public message: everybody (the sender too) gets {message, room, from, date, text}; "
                   "sender: success", run.public_message, 15, essential=False)
        await step("private `to`: only carol gets it (whisper:true); sender: success sent {carol:true}",
                   run.private_to, 15, essential=False)
        await step("private `tos` [alice, bob, ghost]: only alice and bob; sent {ghost:false}", run.private_tos, 15,
                   essential=False)
        await step("`to` an unknown user → success sent {ghost:false}; `to` oneself", run.private_to_unknown, 15,
                   essential=False)
        await step("ack:false: no success reply (public and private)", run.no_ack, 15, essential=False)
        await step("announcement (secret) → everybody, the sender too; success", run.announcement, 15,
                   essential=False)
        await step("carol leaves and re-joins: the last 3 public messages/announcements first (no whispers)",
                   run.history_rejoin, 30, essential=False)
        await step("kick carol → kicked to all three, {textbridge:success}; 422 after; re-join history:false",
                   run.kick, 30, essential=False)
        await step("list / exists over the data channel", run.list_exists, 15, essential=False)
        await step("edit (new description, secret, is_private) → success; private rooms are not listed",
                   run.edit, 20, essential=False)
        await step("allowed add/enable/remove/disable; join needs a listed token", run.allowed, 30, essential=False)
        await step("post: a room with `post` → public messages and announcements are POSTed as relayed; "
                   "whispers are not", run.post, 40, essential=False)
        await step("error table over the data channel (exact code, text, transaction echo)", run.errors, 60,
                   essential=False)
        await step("the Janus API: list, exists, create, edit, listparticipants, destroy, announcement; "
                   "join/message/leave 415; setup twice 416", run.janus_api, 30, essential=False)
        await step("restart (bob) → event ok + a new offer: same o= session, version +1, new ICE credentials",
                   run.restart, 15, essential=False)
        await step("bob hangs up → alice and carol get leave", run.hangup, 20, essential=False)
        await step("destroy → destroyed to the members (and the requester); exists false", run.destroy, 20,
                   essential=False)
        await step("data channel labels: Janus sends on 'JanusDataChannel' (opens it when the client did not)",
                   run.check_labels, 5, essential=False)
        await step("every data-channel message is indent-3 JSON (json = \"indented\"), textroom first, "
                   "transaction last", run.check_format, 5, essential=False)
        await step("detach handles + destroy sessions", run.teardown, 20)
    finally:
        await run.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default=os.environ.get("JANUS_HTTP_URL"))
    ap.add_argument("--ws", default=os.environ.get("JANUS_WS_URL"))
    ap.add_argument("--addr", default=os.environ.get("JANUS_MEDIA_ADDR"),
                    help="the address the server's candidates must use (the POST server binds on it)")
    args = ap.parse_args()
    runner = Runner()
    if not args.http or not args.ws:
        runner.fail("aiortc TextRoom", 0, "both --http and --ws are needed")
    else:
        await run(runner, args.http, args.ws, args.addr)
    runner.summary()
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
