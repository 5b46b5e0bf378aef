"""A tiny Janus API client (HTTP long poll and WebSocket `janus-protocol`) for the media tests.

Both transports expose the same coroutine API:

    await c.connect()
    sid = await c.create()
    hid = await c.attach("janus.plugin.echotest")
    reply = await c.message(hid, body, jsep)        # the synchronous reply (ack/success/error)
    ev = await c.wait_for(lambda m: ..., timeout, "what")   # any server message seen so far or later
    await c.hangup(hid); await c.detach(hid); await c.destroy(); await c.close()

Every message the server sent (replies and events) is appended to `c.received`, in order, so a
test can check what arrived and print it when something fails. Every wait is bounded.
"""

import asyncio
import json
import secrets
import time

import aiohttp

REQUEST_TIMEOUT = 10.0


class JanusError(Exception):
    pass


def brief(obj, limit=400):
    s = json.dumps(obj, separators=(",", ":"), default=str)
    return s if len(s) <= limit else s[:limit] + "…"


class _Base:
    kind = "?"

    def __init__(self, url):
        self.url = url.rstrip("/")
        self.http = None
        self.session_id = None
        self.received = []  # (t, message) for every message the server sent us
        self.sent = []  # (t, message)
        self._changed = asyncio.Event()
        self._tasks = []

    # -- bookkeeping -----------------------------------------------------------------------
    def _record_in(self, msg):
        self.received.append((time.monotonic(), msg))
        self._changed.set()

    def _record_out(self, msg):
        self.sent.append((time.monotonic(), msg))

    async def wait_for(self, pred, timeout, what):
        """Return the first received message matching `pred` (already received or later)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            while seen < len(self.received):
                m = self.received[seen][1]
                seen += 1
                try:
                    if pred(m):
                        return m
                except (KeyError, TypeError, AttributeError):
                    pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError(f"timeout after {timeout:.0f} s waiting for {what}")
            self._changed.clear()
            if seen < len(self.received):
                continue
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def events(self, janus=None, sender=None):
        out = []
        for _, m in self.received:
            if janus is not None and m.get("janus") != janus:
                continue
            if sender is not None and m.get("sender") != sender:
                continue
            out.append(m)
        return out

    def dump(self, last=40):
        lines = []
        t0 = self.sent[0][0] if self.sent else 0
        allm = [(t, ">>", m) for t, m in self.sent] + [(t, "<<", m) for t, m in self.received]
        allm.sort(key=lambda x: x[0])
        for t, d, m in allm[-last:]:
            mm = dict(m)
            if isinstance(mm.get("jsep"), dict) and "sdp" in mm["jsep"]:
                mm["jsep"] = dict(mm["jsep"], sdp=f"<{len(mm['jsep']['sdp'])} chars>")
            lines.append(f"    {t - t0:7.3f} {self.kind} {d} {brief(mm, 500)}")
        return "\n".join(lines)

    @staticmethod
    def _tx():
        return secrets.token_hex(6)

    def _check(self, reply, want, what):
        if not isinstance(reply, dict) or reply.get("janus") not in want:
            raise JanusError(f"{what}: expected janus in {want}, got {brief(reply)}")
        return reply

    # -- API -------------------------------------------------------------------------------
    async def create(self):
        r = self._check(await self._request({"janus": "create"}), ("success",), "create")
        self.session_id = r["data"]["id"]
        await self._session_started()
        return self.session_id

    async def attach(self, plugin):
        r = self._check(await self._request({"janus": "attach", "plugin": plugin}, session=True),
                        ("success",), "attach")
        return r["data"]["id"]

    async def message(self, handle_id, body, jsep=None):
        req = {"janus": "message", "body": body}
        if jsep is not None:
            req["jsep"] = jsep
        return self._check(await self._request(req, session=True, handle=handle_id),
                           ("ack", "success"), "message")

    async def hangup(self, handle_id):
        return self._check(await self._request({"janus": "hangup"}, session=True, handle=handle_id),
                           ("success",), "hangup")

    async def detach(self, handle_id):
        return self._check(await self._request({"janus": "detach"}, session=True, handle=handle_id),
                           ("success",), "detach")

    async def destroy(self):
        r = self._check(await self._request({"janus": "destroy"}, session=True), ("success",), "destroy")
        self.session_id = None
        return r

    async def close(self):
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except BaseException:
                pass
        self._tasks = []
        if self.http is not None:
            await self.http.close()
            self.http = None


class HttpJanus(_Base):
    """REST requests + one long poll (GET <url>/<session>?maxev=10) at a time."""

    kind = "http"

    async def connect(self):
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def _request(self, req, session=False, handle=None):
        req = dict(req, transaction=self._tx())
        url = self.url
        if session:
            url += f"/{self.session_id}"
        if handle is not None:
            url += f"/{handle}"
        self._record_out(req)
        async with self.http.post(url, json=req, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise JanusError(f"POST {url} {req['janus']}: HTTP {resp.status} {text[:300]}")
        reply = json.loads(text)
        self._record_in(reply)
        if reply.get("transaction") != req["transaction"]:
            raise JanusError(f"reply transaction mismatch: sent {req['transaction']}, got {brief(reply)}")
        return reply

    async def _session_started(self):
        self._tasks.append(asyncio.ensure_future(self._poll_loop(self.session_id)))

    async def _poll_loop(self, sid):
        failures = 0
        while self.session_id == sid:
            url = f"{self.url}/{sid}?rid={int(time.time() * 1000)}&maxev=10"
            try:
                async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=70)) as resp:
                    text = await resp.text()
                    if resp.status != 200:
                        raise JanusError(f"long poll HTTP {resp.status}: {text[:200]}")
                data = json.loads(text)
                for m in data if isinstance(data, list) else [data]:
                    if m.get("janus") != "keepalive":
                        self._record_in(m)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - report and retry a few times
                failures += 1
                self._record_in({"janus": "__poll_error", "error": repr(e)})
                if failures >= 3 or self.session_id != sid:
                    return
                await asyncio.sleep(0.2)


class WsJanus(_Base):
    """One WebSocket with sub-protocol `janus-protocol`; replies are matched by transaction."""

    kind = "ws"

    def __init__(self, url):
        super().__init__(url)
        self.ws = None
        self._pending = {}

    async def connect(self):
        self.http = aiohttp.ClientSession()
        self.ws = await asyncio.wait_for(
            self.http.ws_connect(self.url, protocols=("janus-protocol",), heartbeat=None, autoping=True),
            REQUEST_TIMEOUT)
        if self.ws.protocol != "janus-protocol":
            raise JanusError(f"server selected sub-protocol {self.ws.protocol!r}, expected 'janus-protocol'")
        self._tasks.append(asyncio.ensure_future(self._read_loop()))

    async def _read_loop(self):
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            m = json.loads(msg.data)
            self._record_in(m)
            # A plugin `event` carries the transaction of the `message` that caused it and may
            # arrive before that message's `ack` (the real Janus races them): it is not a reply.
            fut = None
            if "transaction" in m and m.get("janus") != "event":
                fut = self._pending.pop(m["transaction"], None)
            if fut is not None and not fut.done():
                fut.set_result(m)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(JanusError("WebSocket closed"))

    async def _request(self, req, session=False, handle=None):
        req = dict(req, transaction=self._tx())
        if session:
            req["session_id"] = self.session_id
        if handle is not None:
            req["handle_id"] = handle
        fut = asyncio.get_running_loop().create_future()
        self._pending[req["transaction"]] = fut
        self._record_out(req)
        await self.ws.send_str(json.dumps(req))
        try:
            return await asyncio.wait_for(fut, REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            raise JanusError(f"no reply to {req['janus']} within {REQUEST_TIMEOUT:.0f} s") from None

    async def _session_started(self):
        self._tasks.append(asyncio.ensure_future(self._keepalive_loop(self.session_id)))

    async def _keepalive_loop(self, sid):
        while self.session_id == sid:
            await asyncio.sleep(20)
            if self.session_id == sid:
                try:
                    await self._request({"janus": "keepalive"}, session=True)
                except Exception:  # noqa: BLE001
                    return

    async def close(self):
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 3)
            except Exception:  # noqa: BLE001
                pass
        await super().close()
