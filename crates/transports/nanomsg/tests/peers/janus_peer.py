#!/usr/bin/env python3
"""A Janus API client over a real Scalability Protocols pair socket, for the interop tests.

    janus_peer.py LIB dial|listen ADDRESS [ADMIN_ADDRESS ADMIN_SECRET]

LIB is `pynng` (libnng's Pair0) or `nanomsg` (libnanomsg's NN_PAIR through ctypes). With
`dial` the peer connects to a bound jano; with `listen` it binds and waits for jano to connect.
With `takeover`, two sockets dial the same bound jano: the second is refused while the first
is its peer, and takes over (the library redials by itself) once the first closes.
It runs info, create, attach (EchoTest), message (ack, then the event), detach, destroy, and,
given an admin address, an Admin API list_sessions with and without the secret. Prints `OK`
and exits 0 on success; exits 1 with the reason otherwise, 77 if LIB cannot be loaded.
"""

import ctypes
import ctypes.util
import json
import sys
import time

TIMEOUT_MS = 10000


class Pynng:
    def __init__(self, mode, address, block=True):
        try:
            import pynng  # noqa: F401
        except Exception as e:  # pragma: no cover - reported to the Rust test
            print(f"SKIP: pynng cannot be imported: {e}")
            sys.exit(77)
        self.sock = pynng.Pair0(recv_timeout=TIMEOUT_MS, send_timeout=TIMEOUT_MS)
        if mode == "dial":
            self.sock.dial(address, block=block)
        else:
            self.sock.listen(address)

    def send(self, data):
        self.sock.send(data)

    def recv(self):
        return self.sock.recv()

    def close(self):
        self.sock.close()


class Nanomsg:
    AF_SP = 1
    NN_PAIR = 16
    NN_SOL_SOCKET = 0
    NN_SNDTIMEO = 4
    NN_RCVTIMEO = 5

    def __init__(self, mode, address, block=True):
        # nn_connect always dials in the background (and redials by itself).
        name = ctypes.util.find_library("nanomsg") or "libnanomsg.so.5"
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            print(f"SKIP: libnanomsg cannot be loaded: {e}")
            sys.exit(77)
        lib.nn_socket.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.nn_setsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_void_p, ctypes.c_size_t]
        lib.nn_bind.argtypes = [ctypes.c_int, ctypes.c_char_p]
        lib.nn_connect.argtypes = [ctypes.c_int, ctypes.c_char_p]
        lib.nn_send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.nn_recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.nn_strerror.restype = ctypes.c_char_p
        lib.nn_errno.restype = ctypes.c_int
        self.lib = lib
        self.s = lib.nn_socket(self.AF_SP, self.NN_PAIR)
        self.check(self.s, "nn_socket")
        t = ctypes.c_int(TIMEOUT_MS)
        for opt in (self.NN_SNDTIMEO, self.NN_RCVTIMEO):
            self.check(lib.nn_setsockopt(self.s, self.NN_SOL_SOCKET, opt,
                                         ctypes.byref(t), ctypes.sizeof(t)), "nn_setsockopt")
        if mode == "dial":
            self.check(lib.nn_connect(self.s, address.encode()), "nn_connect")
        else:
            self.check(lib.nn_bind(self.s, address.encode()), "nn_bind")
        self.buf = ctypes.create_string_buffer(1 << 20)

    def check(self, rc, what):
        if rc < 0:
            err = self.lib.nn_errno()
            raise RuntimeError(f"{what}: {self.lib.nn_strerror(err).decode()}")

    def send(self, data):
        rc = self.lib.nn_send(self.s, data, len(data), 0)
        self.check(rc, "nn_send")

    def recv(self):
        n = self.lib.nn_recv(self.s, self.buf, len(self.buf), 0)
        self.check(n, "nn_recv")
        return self.buf.raw[:n]

    def close(self):
        self.lib.nn_close(self.s)


SEQ = [0]


def tx():
    SEQ[0] += 1
    return f"py{SEQ[0]}"


class Janus:
    def __init__(self, sock):
        self.sock = sock
        self.stash = []

    def wait_for(self, pred, what):
        for i, m in enumerate(self.stash):
            if pred(m):
                return self.stash.pop(i)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            m = json.loads(self.sock.recv())
            if pred(m):
                return m
            self.stash.append(m)
        raise RuntimeError(f"timed out waiting for {what}")

    def call(self, verb, **fields):
        req = {"janus": verb, "transaction": tx(), **fields}
        self.sock.send(json.dumps(req).encode())
        t = req["transaction"]
        return self.wait_for(lambda m: m.get("transaction") == t and m.get("janus") != "event",
                             f"the response to {verb}")


def expect(cond, what, got):
    if not cond:
        raise RuntimeError(f"{what}: got {got}")


def conversation(j):
    r = j.call("info")
    expect(r["janus"] == "server_info", "info", r)
    r = j.call("create")
    expect(r["janus"] == "success", "create", r)
    sid = r["data"]["id"]
    r = j.call("attach", session_id=sid, plugin="janus.plugin.echotest")
    expect(r["janus"] == "success", "attach", r)
    hid = r["data"]["id"]
    req = {"janus": "message", "transaction": tx(), "session_id": sid, "handle_id": hid,
           "body": {"audio": True}}
    j.sock.send(json.dumps(req).encode())
    t = req["transaction"]
    r = j.wait_for(lambda m: m.get("transaction") == t and m.get("janus") != "event", "the ack")
    expect(r["janus"] == "ack", "message ack", r)
    ev = j.wait_for(lambda m: m.get("transaction") == t and m.get("janus") == "event", "the event")
    expect(ev["sender"] == hid and ev["plugindata"]["data"]["result"] == "ok", "message event", ev)
    r = j.call("detach", session_id=sid, handle_id=hid)
    expect(r["janus"] == "success", "detach", r)
    j.wait_for(lambda m: m.get("janus") == "detached", "detached")
    r = j.call("destroy", session_id=sid)
    expect(r["janus"] == "success", "destroy", r)
    r = j.call("keepalive", session_id=sid)
    expect(r["janus"] == "error" and r["error"]["code"] == 458, "keepalive after destroy", r)
    return sid


def admin(a, secret):
    r = a.call("ping")
    expect(r["janus"] == "pong", "admin ping", r)
    r = a.call("list_sessions")
    expect(r["janus"] == "error" and r["error"]["code"] == 403, "admin without secret", r)
    r = a.call("list_sessions", admin_secret=secret)
    expect(r["janus"] == "success" and isinstance(r["sessions"], list), "admin with secret", r)


def takeover(backend, address):
    first = backend("dial", address)
    j = Janus(first)
    # An answer proves the first is the peer (libnanomsg connects in the background).
    r = j.call("ping")
    expect(r["janus"] == "pong", "ping on the first peer", r)
    second = backend("dial", address, block=False)
    try:
        time.sleep(0.5)  # the second keeps being refused meanwhile
        r = j.call("create")
        expect(r["janus"] == "success", "create on the first peer", r)
        sid = r["data"]["id"]
    finally:
        first.close()
    try:
        # Same transport instance for whoever is the peer: the session is still there.
        r = Janus(second).call("keepalive", session_id=sid)
        expect(r["janus"] == "ack", "keepalive from the second peer", r)
    finally:
        second.close()


def main():
    if len(sys.argv) not in (4, 6):
        print(__doc__)
        return 2
    lib, mode, address = sys.argv[1:4]
    backend = {"pynng": Pynng, "nanomsg": Nanomsg}[lib]
    if mode == "takeover":
        try:
            takeover(backend, address)
        except Exception as e:
            print(f"FAIL ({lib} takeover {address}): {e}")
            return 1
        print("OK")
        return 0
    sock = backend(mode, address)
    admin_sock = backend(mode, sys.argv[4]) if len(sys.argv) == 6 else None
    try:
        if mode == "listen":
            print("LISTENING", flush=True)
        conversation(Janus(sock))
        if admin_sock is not None:
            admin(Janus(admin_sock), sys.argv[5])
    except Exception as e:
        print(f"FAIL ({lib} {mode} {address}): {e}")
        return 1
    finally:
        sock.close()
        if admin_sock is not None:
            admin_sock.close()
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
