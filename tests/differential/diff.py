#!/usr/bin/env python3
"""Differential test: jano against the real Janus 1.1.2 (Debian package `janus`).

Runs the same request sequence (Janus API + Admin API over HTTP, Janus API + Admin API over
WebSockets, api_secret / stored-token authentication) against both servers and compares the
answers field by field after normalisation.  Standard library only.

Usage:
  diff.py --jano target/debug/jano       compare jano with a live Janus
  diff.py --janus-only                   run against Janus only, write expected-janus-1.1.2.json
  diff.py --jano-only --jano PATH        compare jano with that recording (no Janus needed)
  (JANO_BIN may replace --jano.)

Normalisation:
  * session/handle ids are replaced by symbols in order of appearance ($S1, $H1, ...), also inside
    strings (error reasons, Location headers);
  * the few values that legitimately differ are listed in IGNORED_* below (kept short on purpose);
  * lists whose order is a hash-table order in Janus (list_sessions, list_handles, list_tokens) are
    sorted; messages that may legitimately arrive in either order (an `ack` racing its `event`, two
    concurrently processed plugin messages) are sorted by (janus, transaction).
Everything else must match: HTTP status, Content-Type, CORS headers, Location, key presence, error
codes and reason strings.

Steps where Janus 1.1.2 has a defect (see /work/shared/spec/observed-janus-1.1.2.md) are not
compared: they are marked "janus-defect" and jano must instead satisfy an explicit predicate.
"""

import argparse
import atexit
import base64
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDING = os.path.join(HERE, "expected-janus-1.1.2.json")
JANUS_BIN = "/usr/bin/janus"
JANUS_ETC = "/etc/janus"
HOST = "127.0.0.1"

ADMIN_SECRET = "janusoverlord"
API_SECRET = "janusrocks"
# Ids that no server will have generated (ids are random in [1, 2^53-1]).
UNKNOWN_SID = 4242424242424242
UNKNOWN_HID = 1717171717171717

HTTP_TIMEOUT = 12.0        # per request; Janus drops unanswered requests after 10 s
LONGPOLL_TIMEOUT = 35.0    # an idle Janus long poll ends after ~30 s (never hit by this sequence)
WS_TIMEOUT = 5.0           # waiting for expected WebSocket messages
WS_DRAIN = 0.3             # extra time to catch unexpected extra WebSocket messages
START_TIMEOUT = 40.0       # waiting for a server to listen on all its ports

# --------------------------------------------------------------------------------------------
# The allow-list of ignored values.  Keys stay compared (presence), only values are replaced.
# --------------------------------------------------------------------------------------------
IGNORED_SERVER_INFO = {
    "version",            # 1102 for Janus 1.1.2, jano may claim another version
    "version_string",
    "commit-hash",        # build fields
    "compile-time",
    "local-ip",           # depends on the machine's interfaces
    "dependencies",       # library names and versions (only its presence is compared)
    "author",             # jano does not claim Meetecho's authorship
}
# server_info plugins/transports/...: jano describes its own components in its own words.
IGNORED_COMPONENT_FIELDS = {"version", "version_string", "author", "description"}
# A JSON parser's own wording after the fixed prefix of a 454 (jansson's vs serde's texts):
# the code and the prefix are compared, the parser's sentence is not.
PARSER_TEXT_RE = re.compile(r"^(JSON error: on line \d+: |Invalid Janus API request - )(.*)$", re.S)
# Admin get_status: only these values are compared, the others only by JSON type (keys always).
GET_STATUS_COMPARED = {"token_auth", "session_timeout", "reclaim_session_timeout",
                       "candidates_timeout"}
# `GET /janus/info` makes up an 11-character transaction: only its shape is compared.
RANDOM_TX_RE = re.compile(r"^[A-Za-z0-9]{11}$")
SORTED_LIST_KEYS = {"sessions", "handles", "tokens"}

# --------------------------------------------------------------------------------------------
# Process / temp-dir hygiene
# --------------------------------------------------------------------------------------------
_PROCS = []
_TMPDIRS = []
_SOCKS = []


def _cleanup():
    for s in list(_SOCKS):
        try:
            s.close()
        except OSError:
            pass
    _SOCKS.clear()
    for p in list(_PROCS):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            except OSError:
                pass
        _PROCS.remove(p)
    for d in list(_TMPDIRS):
        shutil.rmtree(d, ignore_errors=True)
        _TMPDIRS.remove(d)


def _on_signal(signum, _frame):
    _cleanup()
    sys.exit(128 + signum)


atexit.register(_cleanup)
for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def free_ports(n):
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


# --------------------------------------------------------------------------------------------
# Configuration folders (shared by Janus and jano: jano reads the same .jcfg files with -F)
# --------------------------------------------------------------------------------------------
def _janus_folders():
    text = open(os.path.join(JANUS_ETC, "janus.jcfg")).read()
    out = {}
    for key in ("plugins_folder", "transports_folder", "events_folder", "loggers_folder"):
        m = re.search(r'^\s*%s\s*=\s*"([^"]*)"' % key, text, re.M)
        out[key] = m.group(1) if m else "/usr/lib/x86_64-linux-gnu/janus/" + key.split("_")[0]
    return out


def _libs(folder, keep=()):
    try:
        names = sorted(f for f in os.listdir(folder) if re.fullmatch(r"libjanus_\w+\.so", f))
    except OSError:
        names = []
    return ",".join(n for n in names if n not in keep)


def write_config(folder, ports, variant):
    """A copy of /etc/janus (when present) with the settings of this test written over it."""
    if os.path.isdir(JANUS_ETC):
        shutil.copytree(JANUS_ETC, folder)
    else:
        os.makedirs(folder)
    f = _janus_folders() if os.path.isdir(JANUS_ETC) else {
        k: "/usr/lib/x86_64-linux-gnu/janus/" + k.split("_")[0]
        for k in ("plugins_folder", "transports_folder", "events_folder", "loggers_folder")}
    auth = ""
    if variant == "auth":
        auth = '\tapi_secret = "%s"\n\ttoken_auth = true\n' % API_SECRET
    jcfg = (
        "general: {\n"
        '\tconfigs_folder = "%s"\n'
        '\tplugins_folder = "%s"\n\ttransports_folder = "%s"\n'
        '\tevents_folder = "%s"\n\tloggers_folder = "%s"\n'
        "\tdebug_level = 4\n\tdebug_colors = false\n"
        '\tadmin_secret = "%s"\n'
        "%s"
        '\tprotected_folders = ["/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", '
        '"/sys", "/usr", "/var"]\n'
        "}\n"
        "certificates: {\n}\n"
        "media: {\n}\n"
        'nat: {\n\tnice_debug = false\n\tice_ignore_list = "vmnet"\n}\n'
        'plugins: {\n\tdisable = "%s"\n}\n'
        'transports: {\n\tdisable = "%s"\n}\n'
        'loggers: {\n\tdisable = "%s"\n}\n'
        'events: {\n\tbroadcast = false\n\tdisable = "%s"\n}\n'
    ) % (folder, f["plugins_folder"], f["transports_folder"], f["events_folder"],
         f["loggers_folder"], ADMIN_SECRET, auth,
         _libs(f["plugins_folder"], keep=("libjanus_echotest.so",)),
         _libs(f["transports_folder"], keep=("libjanus_http.so", "libjanus_websockets.so")),
         _libs(f["loggers_folder"]), _libs(f["events_folder"]))
    http_cfg = (
        "general: {\n"
        '\tjson = "indented"\n\tbase_path = "/janus"\n'
        '\thttp = true\n\tport = %d\n\tip = "%s"\n\thttps = false\n'
        "}\n"
        "admin: {\n"
        '\tadmin_base_path = "/admin"\n'
        '\tadmin_http = true\n\tadmin_port = %d\n\tadmin_ip = "%s"\n\tadmin_https = false\n'
        "}\n"
        "cors: {\n}\n"
        "certificates: {\n}\n"
    ) % (ports["http"], HOST, ports["admin"], HOST)
    ws_cfg = (
        "general: {\n"
        '\tjson = "indented"\n'
        '\tws = true\n\tws_port = %d\n\tws_ip = "%s"\n\twss = false\n'
        "}\n"
        "admin: {\n"
        '\tadmin_ws = true\n\tadmin_ws_port = %d\n\tadmin_ws_ip = "%s"\n\tadmin_wss = false\n'
        "}\n"
        "cors: {\n}\n"
        "certificates: {\n}\n"
    ) % (ports["ws"], HOST, ports["admin_ws"], HOST)
    for name, text in (("janus.jcfg", jcfg), ("janus.transport.http.jcfg", http_cfg),
                       ("janus.transport.websockets.jcfg", ws_cfg),
                       ("janus.plugin.echotest.jcfg", "general: {\n}\n")):
        with open(os.path.join(folder, name), "w") as fh:
            fh.write(text)


def port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class Server:
    def __init__(self, kind, binary, variant, workdir):
        self.kind, self.binary, self.variant = kind, binary, variant
        p = free_ports(4)
        self.ports = {"http": p[0], "admin": p[1], "ws": p[2], "admin_ws": p[3]}
        self.folder = os.path.join(workdir, "%s-%s-conf" % (kind, variant))
        self.logpath = os.path.join(workdir, "%s-%s.log" % (kind, variant))
        write_config(self.folder, self.ports, variant)
        self.proc = None

    def start(self):
        if self.kind == "janus":
            cmd = [self.binary, "-F", self.folder, "-C", os.path.join(self.folder, "janus.jcfg"),
                   "-o"]
        else:
            cmd = [self.binary, "-F", self.folder]
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        _PROCS.append(self.proc)

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        missing = list(self.ports)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited with code %s" % self.proc.returncode
            missing = [k for k, v in self.ports.items() if not port_open(v)]
            if not missing:
                time.sleep(0.3)
                return None
            time.sleep(0.2)
        return "not listening on %s after %ds" % (", ".join(missing), START_TIMEOUT)

    def log_tail(self, n=25):
        try:
            with open(self.logpath, "rb") as fh:
                lines = fh.read().decode("utf-8", "replace").splitlines()
            return "\n".join("      | " + l for l in lines[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc in _PROCS:
            _PROCS.remove(self.proc)
        try:
            self.log.close()
        except Exception:
            pass


# --------------------------------------------------------------------------------------------
# Minimal WebSocket client (RFC 6455)
# --------------------------------------------------------------------------------------------
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WSClosed(Exception):
    pass


class WS:
    def __init__(self, port, protocol="janus-protocol"):
        self.sock = socket.create_connection((HOST, port), timeout=WS_TIMEOUT)
        _SOCKS.append(self.sock)
        self.buf = b""
        self.closed = False
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /janus HTTP/1.1", "Host: %s:%d" % (HOST, port), "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + key,
                 "Sec-WebSocket-Version: 13"]
        if protocol is not None:
            lines.append("Sec-WebSocket-Protocol: " + protocol)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        # Read the handshake answer (bounded).
        self.status, self.headers = None, {}
        deadline = time.monotonic() + WS_TIMEOUT
        while b"\r\n\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.handshake = "timeout"
                return
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                self.handshake = "timeout"
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.handshake = "closed without response" if not self.buf else "truncated"
                self.closed = True
                return
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        hl = head.decode("latin-1").split("\r\n")
        parts = hl[0].split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        for line in hl[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        self.handshake = "http %s" % self.status
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            if self.headers.get("sec-websocket-accept") != want:
                self.handshake = "bad Sec-WebSocket-Accept"

    def summary(self):
        return {"handshake": self.handshake,
                "subprotocol": self.headers.get("sec-websocket-protocol")}

    def _send_frame(self, op, payload):
        n = len(payload)
        head = bytes([0x80 | op])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send_text(self, text):
        self._send_frame(0x1, text.encode())

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                raise WSClosed()
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_text(self, timeout):
        """One complete text/binary message, None on timeout; raises WSClosed."""
        if self.closed:
            raise WSClosed()
        deadline = time.monotonic() + timeout
        message = b""
        try:
            while True:
                b0, b1 = self._read(2, deadline)
                op, fin, n = b0 & 0x0F, b0 & 0x80, b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(self._read(2, deadline), "big")
                elif n == 127:
                    n = int.from_bytes(self._read(8, deadline), "big")
                mask = self._read(4, deadline) if b1 & 0x80 else None
                payload = self._read(n, deadline)
                if mask:
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                if op == 0x9:
                    self._send_frame(0xA, payload)
                    continue
                if op == 0xA:
                    continue
                if op == 0x8:
                    self.closed = True
                    raise WSClosed()
                message += payload
                if fin:
                    return message.decode("utf-8", "replace")
        except socket.timeout:
            return None
        except OSError:
            self.closed = True
            raise WSClosed()

    def close(self):
        try:
            if not self.closed:
                self._send_frame(0x8, (1000).to_bytes(2, "big"))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        if self.sock in _SOCKS:
            _SOCKS.remove(self.sock)
        self.closed = True


# --------------------------------------------------------------------------------------------
# A target server as seen by the steps
# --------------------------------------------------------------------------------------------
RECORDED_HEADERS = ("content-type", "location", "access-control-allow-origin",
                    "access-control-allow-methods", "access-control-allow-headers",
                    "access-control-max-age", "access-control-allow-credentials", "vary")


class Target:
    def __init__(self, name, ports):
        self.name, self.ports = name, ports
        self.ids = {}                 # real id -> symbol
        self.counters = {}
        self.ctx = {}                 # state shared between steps
        self.log = []
        self.step_name = ""
        self.txn = 0
        self.ws_conns = []

    # ---- ids ----
    def reg(self, kind, value):
        if isinstance(value, int) and not isinstance(value, bool) and value not in self.ids:
            self.counters[kind] = self.counters.get(kind, 0) + 1
            self.ids[value] = "$%s%d" % (kind, self.counters[kind])
        return value

    def reg_from(self, kind, resp, key):
        """Register data.id of a success response as `key` in ctx."""
        try:
            value = resp["data"]["id"]
        except (TypeError, KeyError):
            value = None
        if isinstance(value, int):
            self.reg(kind, value)
            self.ctx[key] = value
        else:
            self.ctx[key] = 0
        return self.ctx[key]

    def c(self, key):
        return self.ctx.get(key, 0)

    def tx(self):
        self.txn += 1
        return "%s#%d" % (self.step_name, self.txn)

    # ---- HTTP ----
    def http(self, method, path, body=None, headers=None, port="http", timeout=HTTP_TIMEOUT,
             record=True):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        hdrs = {"Accept": "application/json, text/plain, */*"}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        rec = {"request": "%s %s" % (method, path)}
        if body is not None:
            rec["request_body"] = body
        if headers:
            rec["request_headers"] = headers
        conn = http.client.HTTPConnection(HOST, self.ports[port], timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            rec["status"] = resp.status
            rec["headers"] = {k: resp.getheader(k) for k in RECORDED_HEADERS
                              if resp.getheader(k) is not None}
            text = raw.decode("utf-8", "replace")
            try:
                rec["json"] = json.loads(text)
            except ValueError:
                rec["text"] = text
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                http.client.IncompleteRead):
            rec["dropped"] = "connection closed without a response"
        except socket.timeout:
            rec["dropped"] = "no response within %ds" % timeout
        except ConnectionRefusedError:
            rec["dropped"] = "connection refused"
        except OSError as e:
            rec["dropped"] = "socket error: %s" % e.__class__.__name__
        finally:
            conn.close()
        if record:
            self.log.append(rec)
        return rec

    def api(self, path, obj, tx=True, **kw):
        """POST a Janus API request (a transaction is added unless tx=False)."""
        if tx and isinstance(obj, dict) and "transaction" not in obj:
            obj = dict(obj, transaction=self.tx())
        return self.http("POST", path, obj, **kw).get("json")

    def admin(self, path, obj, secret=True, **kw):
        obj = dict(obj)
        obj.setdefault("transaction", self.tx())
        if secret:
            obj.setdefault("admin_secret", ADMIN_SECRET)
        return self.http("POST", path, obj, port="admin", **kw).get("json")

    def poll(self, sid, query="maxev=1", **kw):
        return self.http("GET", "/janus/%s?%s&rid=1" % (sid, query), timeout=LONGPOLL_TIMEOUT,
                         **kw).get("json")

    def poll_until_detached(self, sid):
        """Long polls (maxev=5) until a `detached` event came; records the events seen.
        EchoTest's `done` event is dropped here: whether Janus emits it on detach is a race."""
        events, shapes = [], []
        deadline = time.monotonic() + LONGPOLL_TIMEOUT
        while time.monotonic() < deadline and \
                not any(e.get("janus") == "detached" for e in events):
            r = self.poll(sid, "maxev=5", record=False)
            shapes.append(jtype(r))
            got = r if isinstance(r, list) else [r] if isinstance(r, dict) else []
            got = [e for e in got if isinstance(e, dict) and e.get("janus") != "keepalive"]
            if not got:
                break
            events.extend(got)
        self.note("long polls answered arrays", all(x == "array" for x in shapes))
        self.note("events (EchoTest 'done' dropped)", [e for e in events if not racy_done(e)])

    def note(self, what, value):
        self.log.append({"check": what, "value": value})

    # ---- WebSockets ----
    def ws_open(self, port="ws", protocol="janus-protocol"):
        ws = WS(self.ports[port], protocol)
        self.ws_conns.append(ws)
        return ws

    def ws_xchg(self, ws, sends, expect, sort=True, drop=None):
        """Send each item of `sends` as one text frame (dicts are JSON-encoded, strings sent
        verbatim), then collect `expect` messages (plus any extra within WS_DRAIN)."""
        frames = [json.dumps(s) if isinstance(s, (dict, list)) else s for s in sends]
        rec = {"ws_send": [s if isinstance(s, (dict, list)) else {"raw": s} for s in sends],
               "ws_recv": []}
        out = []
        try:
            for f in frames:
                ws.send_text(f)
            deadline = time.monotonic() + WS_TIMEOUT
            while len(out) < expect and time.monotonic() < deadline:
                m = ws.recv_text(deadline - time.monotonic())
                if m is None:
                    break
                if drop:
                    try:
                        if drop(json.loads(m)):
                            continue
                    except ValueError:
                        pass
                out.append(m)
            while True:
                m = ws.recv_text(WS_DRAIN)
                if m is None:
                    break
                if drop:
                    try:
                        if drop(json.loads(m)):
                            continue
                    except ValueError:
                        pass
                out.append(m)
        except WSClosed:
            rec["ws_closed"] = True
        except OSError as e:
            rec["ws_error"] = e.__class__.__name__
        msgs = []
        for m in out:
            try:
                msgs.append(json.loads(m))
            except ValueError:
                msgs.append({"non-json-text": m})
        if sort:
            msgs.sort(key=lambda j: (str(j.get("janus")), str(j.get("transaction")))
                      if isinstance(j, dict) else ("", ""))
        rec["ws_recv"] = msgs
        self.log.append(rec)
        return msgs

    def close_ws(self):
        for ws in self.ws_conns:
            ws.close()
        self.ws_conns = []

    # ---- normalisation ----
    def norm_str(self, s):
        if not self.ids:
            return s
        return re.sub(r"-?\d{6,}", lambda m: self.ids.get(int(m.group(0)), m.group(0)), s)

    def norm(self, v, parent=None, key=None):
        if isinstance(v, bool) or v is None or isinstance(v, float):
            return v
        if isinstance(v, int):
            return self.ids.get(v, v)
        if isinstance(v, str):
            return self.norm_str(v)
        if isinstance(v, list):
            out = [self.norm(x) for x in v]
            if key in SORTED_LIST_KEYS:
                out.sort(key=lambda x: json.dumps(x, sort_keys=True))
            return out
        if isinstance(v, dict):
            out = {self.norm_str(k): self.norm(x, v, k) for k, x in v.items()}
            if v.get("janus") == "server_info":
                for k in IGNORED_SERVER_INFO:
                    if k in out:
                        out[k] = "<ignored %s>" % jtype(out[k])
                for group in ("plugins", "transports", "events", "loggers"):
                    comps = out.get(group)
                    if isinstance(comps, dict):
                        for comp in comps.values():
                            if isinstance(comp, dict):
                                for k in IGNORED_COMPONENT_FIELDS & set(comp):
                                    comp[k] = "<ignored>"
                tx = out.get("transaction")
                if isinstance(tx, str) and parent is None and self._random_tx_ok:
                    if RANDOM_TX_RE.match(tx):
                        out["transaction"] = "<random 11-char alphanumeric>"
            err = out.get("error")
            if out.get("janus") == "error" and isinstance(err, dict) and err.get("code") == 454 \
                    and isinstance(err.get("reason"), str):
                m = PARSER_TEXT_RE.match(err["reason"])
                if m:
                    err["reason"] = m.group(1) + "<parser text>"
            if isinstance(out.get("status"), dict) and "log_level" in out["status"]:
                out["status"] = {k: (x if k in GET_STATUS_COMPARED else "<%s>" % jtype(x))
                                 for k, x in out["status"].items()}
            return out
        return v

    _random_tx_ok = False

    def normalised_log(self):
        out = []
        for rec in self.log:
            r = {}
            for k, v in rec.items():
                # GET .../info answers carry a transaction made up by the server.
                self._random_tx_ok = (k == "json" and rec.get("request", "").startswith("GET ")
                                      and rec.get("request", "").endswith("/info"))
                r[k] = self.norm(v)
                self._random_tx_ok = False
            out.append(r)
        return out


def racy_done(msg):
    """EchoTest's {"result":"done"} event sent while a handle is detached: Janus 1.1.2 sends it
    or not depending on thread timing, so detach steps ignore it."""
    return isinstance(msg, dict) and msg.get("janus") == "event" and \
        "transaction" not in msg and \
        (msg.get("plugindata") or {}).get("data") == {"echotest": "event", "result": "done"}


def jtype(x):
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int"
    if isinstance(x, float):
        return "float"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "array"
    if isinstance(x, dict):
        return "object"
    return "null"


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------
STEPS = []


class Step:
    def __init__(self, variant, name, fn, defect):
        self.variant, self.name, self.fn, self.defect = variant, name, fn, defect

    @property
    def key(self):
        return "%s/%s" % (self.variant, self.name)


def step(name, variant="main", defect=None):
    """defect = (what Janus 1.1.2 does wrong, predicate(jano_observation) -> (ok, explanation))"""
    def deco(fn):
        STEPS.append(Step(variant, name, fn, defect))
        return fn
    return deco


def _http_answers(obs):
    return [r for r in obs if "request" in r]


def pred_sensible_http_error(obs):
    recs = _http_answers(obs)
    if not recs:
        return False, "no HTTP exchange recorded"
    r = recs[-1]
    if "dropped" in r:
        return False, "jano also gave no response (%s)" % r["dropped"]
    j = r.get("json")
    if isinstance(j, dict) and j.get("janus") == "error" and isinstance(j.get("error"), dict) \
            and isinstance(j["error"].get("code"), int):
        return True, "HTTP %s with Janus error %s %r" % (r["status"], j["error"]["code"],
                                                          j["error"].get("reason"))
    if r.get("status", 0) >= 400:
        return True, "HTTP %s" % r["status"]
    return False, "HTTP %s without an error: %s" % (r.get("status"), j if j is not None
                                                    else r.get("text"))


def pred_ws_refused(obs):
    """The WebSocket upgrade must be refused with an HTTP error status (spec: 403)."""
    hs = [r for r in obs if "check" in r and r["check"] == "handshake"]
    if not hs:
        return False, "no handshake recorded"
    h = hs[-1]["value"]
    if h.get("handshake") == "http 101":
        return False, "jano upgraded the connection (%s)" % h
    if h.get("handshake") == "timeout":
        return False, "jano did not answer within %ss" % WS_TIMEOUT
    m = re.fullmatch(r"http (\d+)", h.get("handshake") or "")
    if m and int(m.group(1)) >= 400:
        return True, "refused with HTTP %s" % m.group(1)
    return False, "no HTTP error answer (%s)" % h.get("handshake")


def pred_pong_or_old(obs, old):
    """GET .../ping: accept the 1.4.x answer (pong) or what 1.1.2 said (HTTP 404 / error 454)."""
    recs = _http_answers(obs)
    if not recs:
        return False, "no HTTP exchange recorded"
    r = recs[-1]
    j = r.get("json")
    if r.get("status") == 200 and isinstance(j, dict) and j.get("janus") == "pong" and \
            isinstance(j.get("transaction"), str):
        return True, "pong (as Janus 1.4.x)"
    if old == 404 and r.get("status") == 404:
        return True, "HTTP 404 (as Janus 1.1.2)"
    if old == 454 and isinstance(j, dict) and j.get("error", {}).get("code") == 454:
        return True, "error 454 (as Janus 1.1.2)"
    return False, "neither pong nor the 1.1.2 answer: %s" % short(r, 400)


def pred_session_not_found(obs):
    recs = _http_answers(obs)
    if not recs:
        return False, "no HTTP exchange recorded"
    r = recs[-1]
    j = r.get("json")
    if r.get("status") == 404:
        return True, "HTTP 404"
    if isinstance(j, dict) and j.get("janus") == "error" and \
            j.get("error", {}).get("code") in (458, 457, 467):
        if "18446744073709551611" in str(j["error"].get("reason")):
            return False, "reason shows the id wrapped to 64 bits: %r" % j["error"]["reason"]
        return True, "error %s %r" % (j["error"]["code"], j["error"].get("reason"))
    return False, "unexpected answer: %s" % (r,)


def janus_msg(t, sid, hid, body=None, **extra):
    req = {"janus": "message"}
    if body is not None:
        req["body"] = body
    req.update(extra)
    return t.api("/janus/%s/%s" % (sid, hid), req)


CAND = {"sdpMid": "0", "sdpMLineIndex": 0,
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host"}
CAND2 = {"sdpMid": "0", "sdpMLineIndex": 0,
         "candidate": "candidate:2 1 udp 2122260222 192.0.2.1 54322 typ host"}
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
       "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
       "a=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n")


# ---------------- main variant: Janus API over HTTP ----------------
@step("info-get")
def _(t):
    t.http("GET", "/janus/info")


@step("info-post")
def _(t):
    t.api("/janus", {"janus": "info"})


@step("info-post-to-info-path")
def _(t):
    t.http("POST", "/janus/info", {"janus": "info", "transaction": t.tx()})


@step("ping-get", defect=("Janus 1.1.2 predates GET /janus/ping: HTTP 404 with an empty body "
                          "(1.4.x answers pong)", lambda obs: pred_pong_or_old(obs, 404)))
def _(t):
    t.http("GET", "/janus/ping")


@step("ping-post")
def _(t):
    t.api("/janus", {"janus": "ping"})


@step("ping-uppercase")
def _(t):
    t.api("/janus", {"janus": "PING"})


@step("create")
def _(t):
    t.reg_from("S", t.api("/janus", {"janus": "create"}), "s")


@step("create-with-id")
def _(t):
    t.ctx["chosen"] = random.randint(1 << 40, (1 << 52) - 1)
    t.reg_from("S", t.api("/janus", {"janus": "create", "id": t.ctx["chosen"]}), "s2")


@step("create-with-taken-id")
def _(t):
    t.api("/janus", {"janus": "create", "id": t.ctx.get("chosen", 1)})


@step("create-with-string-id")
def _(t):
    t.api("/janus", {"janus": "create", "id": "abc"})


@step("create-with-negative-id")
def _(t):
    t.api("/janus", {"janus": "create", "id": -5})


@step("attach-echotest-with-opaque-id")
def _(t):
    r = t.api("/janus/%s" % t.c("s"), {"janus": "attach", "plugin": "janus.plugin.echotest",
                                       "opaque_id": "diff-opaque-1"})
    t.reg_from("H", r, "h")


@step("attach-unknown-plugin")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "attach", "plugin": "janus.plugin.nope"})


@step("attach-missing-plugin")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "attach"})


@step("attach-plugin-not-string")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "attach", "plugin": 5})


@step("attach-at-handle-path")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "attach",
                                                  "plugin": "janus.plugin.echotest"})


@step("message-audio-ack-with-hint")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True})


@step("longpoll-maxev1-object")
def _(t):
    t.poll(t.c("s"), "maxev=1")


@step("longpoll-maxev5-array")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True})
    t.poll(t.c("s"), "maxev=5")


@step("longpoll-no-maxev-object")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"video": False})
    t.poll(t.c("s"), "")


@step("longpoll-two-events")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True})
    janus_msg(t, t.c("s"), t.c("h"), {"audio": False})
    events, shapes = [], []
    deadline = time.monotonic() + LONGPOLL_TIMEOUT
    for _i in range(6):
        if len(events) >= 2 or time.monotonic() > deadline:
            break
        r = t.poll(t.c("s"), "maxev=5", record=False)
        shapes.append(jtype(r))
        if isinstance(r, list):
            events.extend(e for e in r if isinstance(e, dict) and e.get("janus") != "keepalive")
        elif isinstance(r, dict):
            events.append(r)
    events.sort(key=lambda e: str(e.get("transaction")))
    t.note("every maxev=5 poll returned an array", all(s == "array" for s in shapes))
    t.note("events (sorted by transaction)", events)


@step("message-no-body")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"))


@step("message-body-not-object")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), "hello")


@step("message-jsep-not-object")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True}, jsep="offer")


@step("message-jsep-bad-type")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True}, jsep={"type": "foo", "sdp": SDP})


@step("message-jsep-missing-type")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True}, jsep={"sdp": SDP})


@step("message-jsep-missing-sdp")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True}, jsep={"type": "offer"})


@step("message-at-session-level")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "message", "body": {"audio": True}})


@step("keepalive")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "keepalive"})


@step("keepalive-mixed-case")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "KeepAlive"})


@step("keepalive-with-handle")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "keepalive"})


@step("trickle-candidate-no-pc")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "trickle", "candidate": CAND})


@step("trickle-candidates-no-pc")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "trickle",
                                                  "candidates": [CAND, CAND2]})


@step("trickle-both")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "trickle", "candidate": CAND,
                                                  "candidates": [CAND2]})


@step("trickle-none")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "trickle"})


@step("trickle-completed")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "trickle",
                                                  "candidate": {"completed": True}})


@step("trickle-candidates-not-array")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "trickle", "candidates": CAND})


@step("trickle-candidate-missing-sdpmid")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")),
          {"janus": "trickle", "candidate": {"candidate": CAND["candidate"]}})


@step("trickle-at-session-level")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "trickle", "candidate": CAND})


@step("hangup-no-pc")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "hangup"})


@step("longpoll-after-hangup")
def _(t):
    # Janus sends no core `hangup` event without a PeerConnection, but the EchoTest plugin's
    # hangup_media pushes {"echotest":"event","result":"done"} (no transaction).
    t.poll(t.c("s"), "maxev=5")


@step("hangup-at-session-level")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "hangup"})


@step("get-handle-path-redirects")
def _(t):
    t.http("GET", "/janus/%s/%s" % (t.c("s"), t.c("h")))


@step("put-unsupported")
def _(t):
    t.http("PUT", "/janus/%s" % t.c("s"))


@step("delete-unsupported")
def _(t):
    t.http("DELETE", "/janus")


@step("options-preflight-root")
def _(t):
    t.http("OPTIONS", "/janus", headers={"Origin": "http://example.test",
                                         "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "content-type"})


@step("options-preflight-handle-path")
def _(t):
    t.http("OPTIONS", "/janus/%s/%s" % (t.c("s"), t.c("h")),
           headers={"Origin": "http://example.test",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type, x-custom"})


@step("cors-on-post")
def _(t):
    t.http("POST", "/janus", {"janus": "ping", "transaction": t.tx()},
           headers={"Origin": "http://example.test"})


@step("invalid-json")
def _(t):
    t.http("POST", "/janus", '{"janus":"ping",')


@step("invalid-json-session-path")
def _(t):
    t.http("POST", "/janus/%s" % t.c("s"), "{nope}")


@step("json-array-not-object")
def _(t):
    t.http("POST", "/janus", [{"janus": "ping", "transaction": "x"}])


@step("json-string-not-object")
def _(t):
    t.http("POST", "/janus", '"ping"')


@step("missing-transaction")
def _(t):
    t.api("/janus", {"janus": "ping"}, tx=False)


@step("transaction-not-string")
def _(t):
    t.api("/janus", {"janus": "ping", "transaction": 5})


@step("missing-janus")
def _(t):
    t.api("/janus", {})


@step("janus-not-string")
def _(t):
    t.api("/janus", {"janus": 5})


@step("missing-transaction-session-path")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "keepalive"}, tx=False)


@step("unknown-verb-root")
def _(t):
    t.api("/janus", {"janus": "frobnicate"})


@step("admin-verb-on-janus-api")
def _(t):
    t.api("/janus", {"janus": "list_sessions"})


@step("session-verb-at-root")
def _(t):
    t.api("/janus", {"janus": "keepalive"})


@step("unknown-verb-session")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "frobnicate"})


@step("unknown-verb-handle")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "frobnicate"})


@step("info-with-session")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "info"})


@step("ping-with-session")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "ping"})


@step("create-with-session")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "create"})


@step("string-session-id-in-body")
def _(t):
    t.api("/janus", {"janus": "keepalive", "session_id": str(t.c("s"))})


@step("integer-session-id-in-body")
def _(t):
    t.api("/janus", {"janus": "keepalive", "session_id": t.c("s")})


@step("handle-id-in-body")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "keepalive", "handle_id": t.c("h")})


@step("path-body-session-conflict")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "keepalive", "session_id": t.c("s2")})


@step("path-body-handle-conflict")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "keepalive",
                                                  "handle_id": UNKNOWN_HID})


@step("claim-root-with-body-session")
def _(t):
    t.api("/janus", {"janus": "claim", "session_id": t.c("s")})


@step("claim-session-path")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "claim"})


@step("claim-with-handle")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "claim"})


@step("unknown-session")
def _(t):
    t.api("/janus/%d" % UNKNOWN_SID, {"janus": "keepalive"})


@step("unknown-session-info")
def _(t):
    t.api("/janus/%d" % UNKNOWN_SID, {"janus": "info"})


@step("unknown-handle")
def _(t):
    t.api("/janus/%s/%d" % (t.c("s"), UNKNOWN_HID), {"janus": "keepalive"})


@step("unknown-handle-message")
def _(t):
    janus_msg(t, t.c("s"), UNKNOWN_HID, {"audio": True})


@step("attach-second-handle")
def _(t):
    r = t.api("/janus/%s" % t.c("s"), {"janus": "attach", "plugin": "janus.plugin.echotest"})
    t.reg_from("H", r, "h2")


@step("detach-at-session-level")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "detach"})


@step("detach")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "detach"})


@step("longpoll-detached-event")
def _(t):
    t.poll_until_detached(t.c("s"))


@step("detach-again")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h")), {"janus": "detach"})


@step("message-after-detach")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True})


@step("destroy-at-handle-path")
def _(t):
    t.api("/janus/%s/%s" % (t.c("s"), t.c("h2")), {"janus": "destroy"})


@step("destroy")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "destroy"})


@step("keepalive-destroyed-session")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "keepalive"})


@step("attach-destroyed-session")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "attach", "plugin": "janus.plugin.echotest"})


@step("message-destroyed-session")
def _(t):
    janus_msg(t, t.c("s"), t.c("h2"), {"audio": True})


@step("destroy-again")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "destroy"})


@step("longpoll-destroyed-session")
def _(t):
    t.poll(t.c("s"), "maxev=1")


@step("longpoll-unknown-session")
def _(t):
    t.poll(UNKNOWN_SID, "maxev=1")


@step("longpoll-non-numeric-session")
def _(t):
    t.poll("abc", "maxev=1")


# ---- janus-defect steps (Janus 1.1.2 misbehaves; jano must answer sensibly) ----
@step("post-without-body", defect=("Janus drops the connection without a response",
                                   pred_sensible_http_error))
def _(t):
    t.http("POST", "/janus", None)


@step("post-deeper-path", defect=("Janus drops POSTs to paths deeper than /janus/<sid>/<hid>",
                                  pred_sensible_http_error))
def _(t):
    t.http("POST", "/janus/%s/%s/extra" % (t.c("s2"), UNKNOWN_HID),
           {"janus": "keepalive", "transaction": t.tx()})


@step("put-with-body", defect=("Janus drops a PUT that has a body instead of answering 450",
                               pred_sensible_http_error))
def _(t):
    t.http("PUT", "/janus/%s" % t.c("s2"), {"janus": "keepalive", "transaction": t.tx()})


@step("negative-session-path", defect=("Janus parses path ids as u64: reason shows "
                                       "18446744073709551611 for /janus/-5",
                                       pred_session_not_found))
def _(t):
    t.api("/janus/-5", {"janus": "keepalive"})


# ---------------- main variant: Admin API over HTTP ----------------
@step("admin-info-get")
def _(t):
    t.http("GET", "/admin/info", port="admin")


@step("admin-info-post")
def _(t):
    t.admin("/admin", {"janus": "info"}, secret=False)


@step("admin-info-post-to-info-path")
def _(t):
    t.http("POST", "/admin/info", {"janus": "info", "transaction": t.tx()}, port="admin")


@step("admin-ping-get", defect=("Janus 1.1.2 predates GET /admin/ping: error 454 'Request "
                                "payload missing' (1.4.x answers pong)",
                                lambda obs: pred_pong_or_old(obs, 454)))
def _(t):
    t.http("GET", "/admin/ping", port="admin")


@step("admin-ping-post")
def _(t):
    t.admin("/admin", {"janus": "ping"}, secret=False)


@step("admin-without-secret")
def _(t):
    t.admin("/admin", {"janus": "list_sessions"}, secret=False)


@step("admin-wrong-secret")
def _(t):
    t.admin("/admin", {"janus": "list_sessions", "admin_secret": "nope"})


@step("admin-post-without-body", defect=("Janus drops the connection without a response "
                                         "(spec: error 454 'Request payload missing')",
                                         pred_sensible_http_error))
def _(t):
    t.http("POST", "/admin", None, port="admin")


@step("admin-invalid-json")
def _(t):
    t.http("POST", "/admin", "{oops", port="admin")


@step("admin-setup-session-and-handle")
def _(t):
    t.reg_from("S", t.api("/janus", {"janus": "create"}), "as")
    t.reg_from("H", t.api("/janus/%s" % t.c("as"), {"janus": "attach",
                                                   "plugin": "janus.plugin.echotest"}), "ah")
    t.reg_from("H", t.api("/janus/%s" % t.c("as"), {"janus": "attach",
                                                   "plugin": "janus.plugin.echotest"}), "ah2")


@step("admin-list-sessions")
def _(t):
    t.admin("/admin", {"janus": "list_sessions"})


@step("admin-list-handles")
def _(t):
    t.admin("/admin/%s" % t.c("as"), {"janus": "list_handles"})


@step("admin-get-status")
def _(t):
    t.admin("/admin", {"janus": "get_status"})


@step("admin-set-session-timeout-global")
def _(t):
    try:
        t.admin("/admin", {"janus": "set_session_timeout", "timeout": 120})
        t.api("/janus", {"janus": "info"})
    finally:
        t.admin("/admin", {"janus": "set_session_timeout", "timeout": 60})


@step("admin-set-session-timeout-missing")
def _(t):
    t.admin("/admin", {"janus": "set_session_timeout"})


@step("admin-set-session-timeout-not-integer")
def _(t):
    t.admin("/admin", {"janus": "set_session_timeout", "timeout": "x"})


@step("admin-set-session-timeout-session")
def _(t):
    t.admin("/admin/%s" % t.c("as"), {"janus": "set_session_timeout", "timeout": 300})


@step("admin-set-session-timeout-session-invalid")
def _(t):
    t.admin("/admin/%s" % t.c("as"), {"janus": "set_session_timeout", "timeout": -2})


@step("admin-accept-new-sessions")
def _(t):
    try:
        t.admin("/admin", {"janus": "accept_new_sessions", "accept": False})
        t.api("/janus", {"janus": "create"})
    finally:
        t.admin("/admin", {"janus": "accept_new_sessions", "accept": True})
    r = t.api("/janus", {"janus": "create"})
    t.reg_from("S", r, "as2")
    t.api("/janus/%s" % t.c("as2"), {"janus": "destroy"})


@step("admin-accept-new-sessions-not-bool")
def _(t):
    t.admin("/admin", {"janus": "accept_new_sessions", "accept": "no"})


@step("admin-detach-handle")
def _(t):
    t.admin("/admin/%s/%s" % (t.c("as"), t.c("ah")), {"janus": "detach_handle"})
    t.poll_until_detached(t.c("as"))
    janus_msg(t, t.c("as"), t.c("ah"), {"audio": True})


@step("admin-handle-scope-unknown-verb")
def _(t):
    t.admin("/admin/%s/%s" % (t.c("as"), t.c("ah2")), {"janus": "list_handles"})


@step("admin-session-scope-unknown-verb")
def _(t):
    t.admin("/admin/%s" % t.c("as"), {"janus": "list_sessions"})


@step("admin-unknown-session")
def _(t):
    t.admin("/admin/%d" % UNKNOWN_SID, {"janus": "list_handles"})


@step("admin-unknown-handle")
def _(t):
    t.admin("/admin/%s/%d" % (t.c("as"), UNKNOWN_HID), {"janus": "detach_handle"})


@step("admin-destroy-session")
def _(t):
    t.admin("/admin/%s" % t.c("as"), {"janus": "destroy_session"})
    t.api("/janus/%s" % t.c("as"), {"janus": "keepalive"})


@step("admin-unknown-verb")
def _(t):
    t.admin("/admin", {"janus": "frobnicate"})


@step("admin-janus-verb-create")
def _(t):
    t.admin("/admin", {"janus": "create"})


@step("admin-janus-verb-keepalive")
def _(t):
    t.admin("/admin", {"janus": "keepalive"})


@step("admin-missing-transaction")
def _(t):
    t.http("POST", "/admin", {"janus": "list_sessions", "admin_secret": ADMIN_SECRET},
           port="admin")


@step("admin-token-requests-without-token-auth")
def _(t):
    t.admin("/admin", {"janus": "add_token", "token": "tok"})
    t.admin("/admin", {"janus": "list_tokens"})
    t.admin("/admin", {"janus": "allow_token", "token": "tok",
                       "plugins": ["janus.plugin.echotest"]})
    t.admin("/admin", {"janus": "disallow_token", "token": "tok",
                       "plugins": ["janus.plugin.echotest"]})
    t.admin("/admin", {"janus": "remove_token", "token": "tok"})


@step("cleanup-destroy-s2")
def _(t):
    t.api("/janus/%s" % t.c("s2"), {"janus": "destroy"})


# ---------------- main variant: WebSockets ----------------
@step("ws-handshake")
def _(t):
    ws = t.ws_open()
    t.ctx["ws"] = ws
    t.note("handshake", ws.summary())


@step("ws-info")
def _(t):
    t.ws_xchg(t.ctx["ws"], [{"janus": "info", "transaction": t.tx()}], 1)


@step("ws-create")
def _(t):
    m = t.ws_xchg(t.ctx["ws"], [{"janus": "create", "transaction": t.tx()}], 1)
    t.reg_from("S", m[0] if m else None, "ws_s")


@step("ws-attach")
def _(t):
    m = t.ws_xchg(t.ctx["ws"], [{"janus": "attach", "session_id": t.c("ws_s"),
                                 "plugin": "janus.plugin.echotest", "transaction": t.tx()}], 1)
    t.reg_from("H", m[0] if m else None, "ws_h")


@step("ws-message-ack-and-event")
def _(t):
    t.ws_xchg(t.ctx["ws"], [{"janus": "message", "session_id": t.c("ws_s"),
                             "handle_id": t.c("ws_h"), "body": {"audio": True},
                             "transaction": t.tx()}], 2)


@step("ws-two-objects-in-one-frame")
def _(t):
    a = json.dumps({"janus": "keepalive", "session_id": t.c("ws_s"), "transaction": t.tx()})
    b = json.dumps({"janus": "ping", "transaction": t.tx()})
    t.ws_xchg(t.ctx["ws"], [a + "\n" + b], 2)


@step("ws-two-messages-in-one-frame")
def _(t):
    a = json.dumps({"janus": "message", "session_id": t.c("ws_s"), "handle_id": t.c("ws_h"),
                    "body": {"audio": True}, "transaction": t.tx()})
    b = json.dumps({"janus": "message", "session_id": t.c("ws_s"), "handle_id": t.c("ws_h"),
                    "body": {"video": True}, "transaction": t.tx()})
    t.ws_xchg(t.ctx["ws"], [a + b], 4)


@step("ws-invalid-json-frame")
def _(t):
    t.ws_xchg(t.ctx["ws"], ['{"janus":"ping",'], 1)


@step("ws-valid-then-invalid-in-one-frame")
def _(t):
    a = json.dumps({"janus": "ping", "transaction": t.tx()})
    t.ws_xchg(t.ctx["ws"], [a + ' {"janus":'], 1)


@step("ws-json-not-object")
def _(t):
    t.ws_xchg(t.ctx["ws"], ['[1,2]'], 1)


@step("ws-session-verb-without-session-id")
def _(t):
    t.ws_xchg(t.ctx["ws"], [{"janus": "keepalive", "transaction": t.tx()}], 1)


@step("ws-unknown-session")
def _(t):
    t.ws_xchg(t.ctx["ws"], [{"janus": "keepalive", "session_id": UNKNOWN_SID,
                             "transaction": t.tx()}], 1)


@step("ws-trickle")
def _(t):
    t.ws_xchg(t.ctx["ws"], [{"janus": "trickle", "session_id": t.c("ws_s"),
                             "handle_id": t.c("ws_h"), "candidate": CAND,
                             "transaction": t.tx()}], 1)


@step("ws-hangup-no-pc")
def _(t):
    t.ws_xchg(t.ctx["ws"], [{"janus": "hangup", "session_id": t.c("ws_s"),
                             "handle_id": t.c("ws_h"), "transaction": t.tx()}], 2)


@step("ws-detach")
def _(t):
    t.ws_xchg(t.ctx["ws"], [{"janus": "detach", "session_id": t.c("ws_s"),
                             "handle_id": t.c("ws_h"), "transaction": t.tx()}], 2,
              drop=racy_done)


@step("ws-destroy")
def _(t):
    t.ws_xchg(t.ctx["ws"], [{"janus": "destroy", "session_id": t.c("ws_s"),
                             "transaction": t.tx()}], 1)


@step("ws-subprotocol-list")
def _(t):
    ws = t.ws_open(protocol="foo, janus-protocol")
    t.note("handshake", ws.summary())
    if ws.status == 101:
        t.ws_xchg(ws, [{"janus": "ping", "transaction": t.tx()}], 1)
    ws.close()


@step("ws-close-destroys-session")
def _(t):
    ws = t.ws_open()
    m = t.ws_xchg(ws, [{"janus": "create", "transaction": t.tx()}], 1)
    t.reg_from("S", m[0] if m else None, "ws_s2")
    ws.close()
    # The session dies when the socket closes (reclaim_session_timeout = 0): wait for it.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = t.api("/janus/%s" % t.c("ws_s2"), {"janus": "keepalive", "transaction": "probe"},
                  record=False)
        if isinstance(r, dict) and r.get("janus") == "error":
            break
        time.sleep(0.2)
    t.api("/janus/%s" % t.c("ws_s2"), {"janus": "keepalive"})


@step("ws-admin")
def _(t):
    ws = t.ws_open(port="admin_ws", protocol="janus-admin-protocol")
    t.note("handshake", ws.summary())
    t.ws_xchg(ws, [{"janus": "ping", "transaction": t.tx()}], 1)
    t.ws_xchg(ws, [{"janus": "list_sessions", "transaction": t.tx()}], 1)
    t.ws_xchg(ws, [{"janus": "list_sessions", "transaction": t.tx(),
                    "admin_secret": ADMIN_SECRET}], 1)
    ws.close()


@step("ws-janus-protocol-on-admin-port", defect=(
        "Janus closes the TCP connection without an HTTP answer",
        pred_ws_refused))
def _(t):
    ws = t.ws_open(port="admin_ws", protocol="janus-protocol")
    t.note("handshake", ws.summary())
    ws.close()


@step("ws-no-subprotocol", defect=("Janus closes the TCP connection without an HTTP answer",
                                   pred_ws_refused))
def _(t):
    ws = t.ws_open(protocol=None)
    t.note("handshake", ws.summary())
    ws.close()


@step("ws-unknown-subprotocol", defect=("Janus closes the TCP connection without an HTTP answer",
                                        pred_ws_refused))
def _(t):
    ws = t.ws_open(protocol="chat")
    t.note("handshake", ws.summary())
    ws.close()


@step("final-list-sessions")
def _(t):
    t.close_ws()
    t.admin("/admin", {"janus": "list_sessions"})


# ---------------- auth variant: api_secret + stored tokens ----------------
def A(name, **kw):
    return step(name, variant="auth", **kw)


@A("info-exempt")
def _(t):
    t.api("/janus", {"janus": "info"})


@A("info-get-exempt")
def _(t):
    t.http("GET", "/janus/info")


@A("ping-exempt")
def _(t):
    t.api("/janus", {"janus": "ping"})


@A("create-without-apisecret")
def _(t):
    t.api("/janus", {"janus": "create"})


@A("create-wrong-apisecret")
def _(t):
    t.api("/janus", {"janus": "create", "apisecret": "nope"})


@A("create-with-apisecret")
def _(t):
    t.reg_from("S", t.api("/janus", {"janus": "create", "apisecret": API_SECRET}), "s")


@A("keepalive-without-apisecret")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "keepalive"})


@A("keepalive-with-apisecret")
def _(t):
    t.api("/janus/%s" % t.c("s"), {"janus": "keepalive", "apisecret": API_SECRET})


@A("unknown-session-without-apisecret")
def _(t):
    t.api("/janus/%d" % UNKNOWN_SID, {"janus": "keepalive"})


@A("attach-with-apisecret")
def _(t):
    r = t.api("/janus/%s" % t.c("s"), {"janus": "attach", "plugin": "janus.plugin.echotest",
                                       "apisecret": API_SECRET})
    t.reg_from("H", r, "h")


@A("message-and-longpoll-with-apisecret")
def _(t):
    janus_msg(t, t.c("s"), t.c("h"), {"audio": True}, apisecret=API_SECRET)
    t.poll(t.c("s"), "maxev=1")          # no apisecret: HTTP 403
    t.poll(t.c("s"), "maxev=1&apisecret=wrong")
    t.poll(t.c("s"), "maxev=1&apisecret=" + API_SECRET)


@A("admin-add-token-all-plugins")
def _(t):
    t.admin("/admin", {"janus": "add_token", "token": "tok-all"})


@A("admin-add-token-echotest")
def _(t):
    t.admin("/admin", {"janus": "add_token", "token": "tok-echo",
                       "plugins": ["janus.plugin.echotest"]})


@A("admin-add-token-unknown-plugin")
def _(t):
    t.admin("/admin", {"janus": "add_token", "token": "tok-none",
                       "plugins": ["janus.plugin.nope"]})


@A("admin-add-token-missing-token")
def _(t):
    t.admin("/admin", {"janus": "add_token"})


@A("admin-add-token-without-admin-secret")
def _(t):
    t.admin("/admin", {"janus": "add_token", "token": "tok-x"}, secret=False)


@A("admin-list-tokens")
def _(t):
    t.admin("/admin", {"janus": "list_tokens"})


@A("admin-allow-token-unknown-token")
def _(t):
    t.admin("/admin", {"janus": "allow_token", "token": "tok-missing",
                       "plugins": ["janus.plugin.echotest"]})


@A("admin-allow-token-unknown-plugin")
def _(t):
    t.admin("/admin", {"janus": "allow_token", "token": "tok-echo",
                       "plugins": ["janus.plugin.nope"]})


@A("admin-allow-token-empty-plugins")
def _(t):
    t.admin("/admin", {"janus": "allow_token", "token": "tok-echo", "plugins": []})


@A("admin-disallow-token")
def _(t):
    t.admin("/admin", {"janus": "disallow_token", "token": "tok-echo",
                       "plugins": ["janus.plugin.echotest"]})
    t.admin("/admin", {"janus": "list_tokens"})


@A("create-with-token-lacking-plugins")
def _(t):
    t.reg_from("S", t.api("/janus", {"janus": "create", "token": "tok-echo"}), "st")


@A("attach-with-token-lacking-plugin")
def _(t):
    t.api("/janus/%s" % t.c("st"), {"janus": "attach", "plugin": "janus.plugin.echotest",
                                    "token": "tok-echo"})


@A("attach-with-apisecret-only-skips-plugin-check")
def _(t):
    r = t.api("/janus/%s" % t.c("st"), {"janus": "attach", "plugin": "janus.plugin.echotest",
                                        "apisecret": API_SECRET})
    t.reg_from("H", r, "ht0")


@A("admin-allow-token")
def _(t):
    t.admin("/admin", {"janus": "allow_token", "token": "tok-echo",
                       "plugins": ["janus.plugin.echotest"]})


@A("attach-with-token")
def _(t):
    r = t.api("/janus/%s" % t.c("st"), {"janus": "attach", "plugin": "janus.plugin.echotest",
                                        "token": "tok-echo"})
    t.reg_from("H", r, "ht")


@A("attach-unknown-plugin-with-token")
def _(t):
    t.api("/janus/%s" % t.c("st"), {"janus": "attach", "plugin": "janus.plugin.nope",
                                    "token": "tok-echo"})


@A("message-and-longpoll-with-token")
def _(t):
    janus_msg(t, t.c("st"), t.c("ht"), {"audio": True}, token="tok-echo")
    t.poll(t.c("st"), "maxev=1&token=wrong")
    t.poll(t.c("st"), "maxev=1&token=tok-echo")


@A("create-with-token-all")
def _(t):
    t.reg_from("S", t.api("/janus", {"janus": "create", "token": "tok-all"}), "sa")


@A("create-with-unknown-token")
def _(t):
    t.api("/janus", {"janus": "create", "token": "tok-unknown"})


@A("create-with-wrong-token-right-apisecret")
def _(t):
    r = t.api("/janus", {"janus": "create", "token": "tok-unknown", "apisecret": API_SECRET})
    t.reg_from("S", r, "sw")


@A("admin-remove-token")
def _(t):
    t.admin("/admin", {"janus": "remove_token", "token": "tok-echo"})
    t.api("/janus", {"janus": "create", "token": "tok-echo"})
    t.api("/janus/%s" % t.c("st"), {"janus": "keepalive", "token": "tok-echo"})
    t.admin("/admin", {"janus": "list_tokens"})


@A("admin-remove-unknown-token")
def _(t):
    t.admin("/admin", {"janus": "remove_token", "token": "tok-echo"})


@A("admin-get-status-token-auth")
def _(t):
    t.admin("/admin", {"janus": "get_status"})


@A("cleanup-destroy")
def _(t):
    for k in ("s", "st", "sa", "sw"):
        t.api("/janus/%s" % t.c(k), {"janus": "destroy", "apisecret": API_SECRET})
    t.admin("/admin", {"janus": "list_sessions"})


# --------------------------------------------------------------------------------------------
# Running and comparing
# --------------------------------------------------------------------------------------------
def run_step(t, st):
    t.log = []
    t.step_name = st.name
    t.txn = 0
    try:
        st.fn(t)
    except Exception as e:            # a bug in this script or a wildly wrong answer
        t.log.append({"exception": "%s: %s" % (e.__class__.__name__, e)})
        if os.environ.get("DIFF_DEBUG"):
            traceback.print_exc()
    return t.normalised_log()


def diff_paths(a, b, path="", out=None):
    if out is None:
        out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            p = "%s.%s" % (path, k) if path else k
            if k not in a:
                out.append((p, "<absent>", b[k]))
            elif k not in b:
                out.append((p, a[k], "<absent>"))
            else:
                diff_paths(a[k], b[k], p, out)
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            p = "%s[%d]" % (path, i)
            if i >= len(a):
                out.append((p, "<absent>", b[i]))
            elif i >= len(b):
                out.append((p, a[i], "<absent>"))
            else:
                diff_paths(a[i], b[i], p, out)
    elif a != b or type(a) is not type(b):
        out.append((path, a, b))
    return out


def compared_part(obs):
    """The request descriptions are kept in the record for reading, not compared."""
    return [{k: v for k, v in r.items() if not k.startswith("request")} for r in obs]


def short(v, n=400):
    s = json.dumps(v, sort_keys=True)
    return s if len(s) <= n else s[:n] + "..."


class Report:
    def __init__(self):
        self.passed = self.failed = 0
        self.lines = []

    def ok(self, name, extra=""):
        self.passed += 1
        print("PASS  %s%s" % (name, ("  (" + extra + ")") if extra else ""), flush=True)

    def bad(self, name, detail):
        self.failed += 1
        print("DIFF  %s" % name, flush=True)
        for line in detail:
            print("      " + line, flush=True)

    def summary(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)


def compare_step(rep, st, jobs, nobs):
    name = st.key
    if st.defect:
        why, pred = st.defect
        ok, expl = pred(nobs)
        tag = "janus-defect: %s" % why
        if ok:
            rep.ok(name, "%s; jano: %s" % (tag, expl))
        else:
            rep.bad(name, ["[%s]" % tag, "jano: %s" % expl, "jano said: %s" % short(nobs, 800)])
        return
    d = diff_paths(compared_part(jobs), compared_part(nobs))
    if not d:
        rep.ok(name)
        return
    detail = []
    for p, a, b in d[:12]:
        detail.append("at %s:  janus=%s  jano=%s" % (p, short(a, 300), short(b, 300)))
    if len(d) > 12:
        detail.append("... %d more differences" % (len(d) - 12))
    reqs = [r.get("request", "") + (" " + short(r["request_body"], 200)
                                    if "request_body" in r else "")
            for r in jobs if "request" in r]
    if reqs:
        detail.append("requests: " + " | ".join(reqs[:4]))
    rep.bad(name, detail)


def ensure_janus():
    if os.path.exists(JANUS_BIN):
        return None
    try:
        r = subprocess.run(["apt-get", "install", "-y", "janus"], capture_output=True,
                           timeout=600, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "apt-get failed: %s" % e
    if r.returncode != 0 or not os.path.exists(JANUS_BIN):
        tail = (r.stderr or r.stdout).decode("utf-8", "replace").strip().splitlines()[-1:]
        return "apt-get install -y janus exited %d: %s" % (r.returncode, " ".join(tail))
    return None


def janus_version():
    try:
        out = subprocess.run([JANUS_BIN, "--version"], capture_output=True, timeout=10)
        return out.stdout.decode().strip().splitlines()[0]
    except Exception:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jano", default=os.environ.get("JANO_BIN"),
                    help="path of the jano binary (default: $JANO_BIN)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--janus-only", action="store_true",
                   help="run against Janus only and write %s" % os.path.basename(RECORDING))
    g.add_argument("--jano-only", action="store_true",
                   help="compare jano with the recorded Janus answers (no Janus needed)")
    ap.add_argument("--only", default=None,
                    help="regex: run only matching steps (debugging; state-dependent steps "
                         "may then differ)")
    ap.add_argument("--recording", default=RECORDING, help=argparse.SUPPRESS)
    ap.add_argument("--keep-temp", action="store_true",
                    help="keep the temporary folder (configs and server logs) for debugging")
    ap.add_argument("--dump", default=None,
                    help="also write the normalised answers of both servers to this file")
    args = ap.parse_args()

    steps = [s for s in STEPS if not args.only or re.search(args.only, s.key)]
    use_janus = not args.jano_only
    use_jano = not args.janus_only
    recorded = None

    if use_jano:
        if not args.jano:
            print("error: give --jano <path> or set JANO_BIN", file=sys.stderr)
            return 2
        if not (os.path.isfile(args.jano) and os.access(args.jano, os.X_OK)):
            print("error: jano binary not found or not executable: %s" % args.jano,
                  file=sys.stderr)
            return 2
        args.jano = os.path.abspath(args.jano)
    if use_janus:
        reason = ensure_janus()
        if reason:
            print("SKIP: janus not installable: %s" % reason)
            return 0
    if args.jano_only:
        try:
            with open(args.recording) as fh:
                recorded = json.load(fh)
        except (OSError, ValueError) as e:
            print("error: cannot read the recording %s: %s" % (args.recording, e),
                  file=sys.stderr)
            return 2
        print("NOTE: comparing jano against the recording %s (%s), not a live Janus"
              % (os.path.relpath(args.recording), recorded.get("janus")), flush=True)

    workdir = tempfile.mkdtemp(prefix="jano-diff-")
    if args.keep_temp:
        print("NOTE: keeping %s" % workdir, flush=True)
    else:
        _TMPDIRS.append(workdir)
    rep = Report()
    dump = []
    record = {"janus": janus_version() if use_janus else None,
              "note": "Normalised answers of the real Janus to tests/differential/diff.py "
                      "(written by --janus-only).",
              "steps": []}
    try:
        for variant in ("main", "auth"):
            vsteps = [s for s in steps if s.variant == variant]
            if not vsteps:
                continue
            servers = []
            tj = tn = None
            if use_janus:
                sj = Server("janus", JANUS_BIN, variant, workdir)
                servers.append(sj)
            if use_jano:
                sn = Server("jano", args.jano, variant, workdir)
                servers.append(sn)
            for s in servers:
                s.start()
            dead = {}
            for s in servers:
                err = s.wait_ready()
                if err:
                    dead[s.kind] = err
                    print("ERROR %s (%s config) %s; log tail:\n%s"
                          % (s.kind, variant, err, s.log_tail()), flush=True)
            if "janus" in dead:
                for s in servers:
                    s.stop()
                print("ERROR: the real Janus did not start; cannot compare", flush=True)
                rep.failed += len(vsteps)
                continue
            print("---- %s configuration (%s) ----" % (variant, ", ".join(
                "%s: http %d admin %d ws %d admin_ws %d" % (s.kind, s.ports["http"],
                                                             s.ports["admin"], s.ports["ws"],
                                                             s.ports["admin_ws"])
                for s in servers)), flush=True)
            if use_janus:
                tj = Target("janus", sj.ports)
            if use_jano and "jano" not in dead:
                tn = Target("jano", sn.ports)
            try:
                for st in vsteps:
                    if tj:
                        jobs = run_step(tj, st)
                        record["steps"].append({"step": st.key,
                                                "kind": "janus-defect" if st.defect
                                                else "compare",
                                                "answers": jobs})
                    else:
                        jobs = next((r["answers"] for r in recorded["steps"]
                                     if r["step"] == st.key), None)
                    if not use_jano:
                        print("RAN   %s" % st.key, flush=True)
                        continue
                    if tn is None:
                        rep.bad(st.key, ["jano is not running: %s" % dead.get("jano")])
                        continue
                    nobs = run_step(tn, st)
                    dump.append({"step": st.key, "janus": jobs, "jano": nobs})
                    if jobs is None and not st.defect:
                        rep.bad(st.key, ["no recorded Janus answer for this step"])
                        continue
                    compare_step(rep, st, jobs, nobs)
            finally:
                for t in (tj, tn):
                    if t:
                        t.close_ws()
                for s in servers:
                    s.stop()
                if tn and sn.proc and sn.proc.returncode not in (0, None, -15):
                    print("NOTE: jano exited with code %s; log tail:\n%s"
                          % (sn.proc.returncode, sn.log_tail()), flush=True)
    finally:
        _cleanup()

    if args.dump:
        with open(args.dump, "w") as fh:
            json.dump(record if args.janus_only else dump, fh, indent=1, sort_keys=True)
    if args.janus_only:
        previous = None
        if os.path.exists(args.recording):
            try:
                with open(args.recording) as fh:
                    previous = json.load(fh)
            except ValueError:
                previous = None
        text = json.dumps(record, indent=1, sort_keys=True) + "\n"
        if not args.only:
            with open(args.recording, "w") as fh:
                fh.write(text)
            print("wrote %s (%d steps)" % (os.path.relpath(args.recording), len(steps)))
        if previous is not None:
            prev = {r["step"]: r["answers"] for r in previous.get("steps", [])}
            for r in record["steps"]:
                if r["step"] not in prev:
                    rep.ok(r["step"], "new step")
                    continue
                d = diff_paths(prev[r["step"]], r["answers"])
                if d:
                    rep.bad(r["step"], ["changed since the previous recording:"] +
                            ["at %s: before=%s now=%s" % (p, short(a, 200), short(b, 200))
                             for p, a, b in d[:8]])
                else:
                    rep.ok(r["step"], "same as the previous recording")
        else:
            rep.passed = len(record["steps"])
    if args.jano_only:
        print("NOTE: compared against the recording %s, not a live Janus"
              % os.path.relpath(args.recording), flush=True)
    rep.summary()
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
