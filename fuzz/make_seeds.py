#!/usr/bin/env python3
"""Writes the hand-made seed inputs into fuzz/corpus/<target>/seed-*.

The script format is documented in fuzz/src/script.rs. Re-running this overwrites only the
`seed-*` files; inputs the fuzzer added stay.
"""

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# Configuration flags (first byte of a request_dispatch script).
API, TOK, SIGNED, ADM, RECLAIM, OPAQUE, MEDIA, SHORT = 1, 2, 4, 8, 16, 32, 64, 128

ECHO = "janus.plugin.echotest"
STUB = "jano.plugin.fuzzstub"
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
CAND = "candidate:1 1 udp 2013266431 192.168.1.2 50000 typ host"

_tx = [0]


def j(verb, **fields):
    """A request as JSON text; string values "$S0", "$H0", "$P0", "$T" become placeholders."""
    _tx[0] += 1
    obj = {"janus": verb, "transaction": "t%d" % _tx[0]}
    obj.update(fields)
    text = json.dumps(obj)
    for p in ["$S0", "$S1", "$H0", "$H1", "$P0", "$P1"]:
        text = text.replace('"%s"' % p, p)
    return text


def s(sid="$S0", **f):
    return dict(session_id=sid, **f)


def h(**f):
    return dict(session_id="$P0", handle_id="$H0", **f)


def raw(text, admin=False, inst=0):
    b = text if isinstance(text, bytes) else text.encode()
    return bytes([1 if admin else 0, inst]) + struct.pack("<H", len(b)) + b


def adm(verb, inst=0, **fields):
    fields.setdefault("admin_secret", "janusoverlord")
    return raw(j(verb, **fields), admin=True, inst=inst)


def jan(verb, inst=0, **fields):
    return raw(j(verb, **fields), inst=inst)


def sj(*b):
    """A structured Janus request from these bytes."""
    return bytes([2, len(b)] + list(b))


def sa(*b):
    """A structured Admin request from these bytes."""
    return bytes([3, len(b)] + list(b))


def adv(secs):
    return bytes([4, secs])


def gone(inst):
    return bytes([5, inst])


def flush(n=0):
    return bytes([6, n])


def script(flags, *ops):
    return bytes([flags]) + b"".join(ops)


RD = {
    "create": script(0, jan("create")),
    "echotest_flow": script(
        0,
        jan("create"),
        jan("attach", plugin=ECHO, opaque_id="me", **s()),
        jan("message", body={"audio": False, "video": True, "bitrate": 128000}, **h()),
        flush(),
        jan("message", body={"substream": 1, "temporal": 2, "fallback": 100}, **h()),
        jan("message", body={"audio": "yes"}, **h()),
        jan("message", body={"unknown": 1}, **h()),
        jan("message", body={"record": True, "filename": "/tmp/x"}, **h()),
        flush(2),
        jan("trickle", candidate={"candidate": CAND, "sdpMid": "0", "sdpMLineIndex": 0}, **h()),
        jan("trickle", candidates=[{"candidate": CAND, "sdpMid": "0"}, {"completed": True}], **h()),
        jan("trickle", candidate={"completed": True}, **h()),
        jan("keepalive", **s()),
        jan("hangup", **h()),
        flush(),
        raw(j("info")),
        raw(j("ping")),
        jan("detach", **h()),
        jan("destroy", **s()),
    ),
    "api_secret": script(
        API,
        jan("create"),
        jan("create", apisecret="wrong"),
        jan("create", apisecret="janusrocks"),
        jan("attach", plugin=ECHO, apisecret="janusrocks", **s()),
        jan("attach", plugin=ECHO, **s()),
        jan("message", body={"video": False}, apisecret="janusrocks", **h()),
        flush(),
        jan("keepalive", **s()),
        jan("destroy", apisecret="janusrocks", **s()),
    ),
    "signed_token": script(
        TOK | SIGNED,
        jan("create", token="$T"),
        jan("create", token="1,janus:AAAA"),
        jan("attach", plugin=ECHO, token="$T", **s()),
        jan("attach", plugin="janus.plugin.nope", token="$T", **s()),
        jan("message", body={"audio": True}, token="$T", **h()),
        flush(),
        sj(0, 1),
        sj(0, 2),
        flush(),
    ),
    "stored_token": script(
        TOK | ADM,
        adm("add_token", token="tok-a", plugins=[ECHO]),
        adm("add_token", token="tok-b"),
        adm("list_tokens"),
        jan("create", token="tok-a"),
        jan("create", token="tok-x"),
        jan("attach", plugin=STUB, token="tok-a", **s()),
        jan("attach", plugin=ECHO, token="tok-a", **s()),
        adm("allow_token", token="tok-a", plugins=[STUB]),
        jan("attach", plugin=STUB, token="tok-a", **s()),
        adm("disallow_token", token="tok-a", plugins=[ECHO]),
        adm("allow_token", token="tok-z", plugins=[ECHO]),
        adm("allow_token", token="tok-a", plugins=["nope"]),
        adm("remove_token", token="tok-b"),
        adm("remove_token", token="tok-b"),
        adm("list_tokens"),
    ),
    "admin_global": script(
        ADM,
        adm("get_status"),
        adm("get_status", admin_secret="wrong"),
        adm("set_session_timeout", timeout=30),
        adm("set_session_timeout", timeout=-3),
        adm("set_log_level", level=5),
        adm("set_log_level", level=9),
        adm("set_locking_debug", debug=True),
        adm("set_refcount_debug", debug=False),
        adm("set_libnice_debug", debug="x"),
        adm("set_log_timestamps", timestamps=True),
        adm("set_log_colors", colors=False),
        adm("set_min_nack_queue", min_nack_queue=500),
        adm("set_nack_optimizations", nack_optimizations=True),
        adm("set_no_media_timer", no_media_timer=2),
        adm("set_slowlink_threshold", slowlink_threshold=4),
        adm("accept_new_sessions", accept=False),
        jan("create"),
        adm("accept_new_sessions", accept=True),
        adm("message_plugin", plugin=ECHO, request={"request": "list"}),
        adm("message_plugin", plugin=STUB),
        adm("message_plugin", plugin="nope"),
        adm("query_transport", transport="janus.transport.websockets", request={}),
        adm("query_transport", transport="janus.transport.nope"),
        adm("query_eventhandler", handler="janus.eventhandler.sample"),
        adm("query_logger", logger="janus.logger.json"),
        adm("custom_event", schema="s", data={"a": 1}),
        adm("custom_logline", line="hello", level=2),
        adm("resolve_address", address="localhost"),
        adm("test_stun", address="127.0.0.1", port=3478),
        adm("loops_info"),
        adm("add_token", token="t"),
        raw(j("info"), admin=True),
        raw(j("ping"), admin=True),
        adm("bogus"),
    ),
    "admin_handle": script(
        ADM,
        jan("create"),
        jan("attach", plugin=ECHO, **s()),
        jan("attach", plugin=STUB, **s()),
        adm("list_sessions"),
        adm("list_handles", **s()),
        adm("handle_info", **h()),
        adm("handle_info", plugin_only=True, **h()),
        adm("start_pcap", folder="/tmp", filename="a.pcap", truncate=100, **h()),
        adm("stop_pcap", **h()),
        adm("start_text2pcap", **h()),
        adm("stop_text2pcap", **h()),
        adm("hangup_webrtc", **h()),
        adm("set_session_timeout", timeout=-1, **s()),
        adm("set_session_timeout", timeout=3, **s()),
        adm("detach_handle", **h()),
        adm("detach_handle", **h()),
        adm("handle_info", session_id="$S0", handle_id=-4),
        adm("list_handles", session_id=-1),
        adm("destroy_session", **s()),
        adm("destroy_session", **s()),
        adv(10),
    ),
    "malformed": script(
        0,
        raw('{"janus":"create"'),
        raw("[]"),
        raw('"x"'),
        raw("{}"),
        raw('{"janus":1,"transaction":"t"}'),
        raw('{"transaction":"t","janus":"create","id":-1}'),
        raw('{"transaction":5,"janus":"info"}'),
        raw("nul"),
        raw('{"janus":"create","transaction":"t"} trailing'),
        raw("[" * 200 + "]" * 200),
        raw('{"janus":"keepalive","transaction":"t","session_id":1e400}'),
        raw(b'{"janus":"info","transaction":"\xff\xfe"}'),
        raw('{"janus":"info","transaction":"\\ud800"}'),
        raw('{"janus":"info","transaction":"a","transaction":"b"}'),
        raw("{}", admin=True),
        raw("[1]", admin=True),
        raw('{"janus":"list_sessions"}', admin=True),
        raw(""),
    ),
    "ids": script(
        0,
        jan("create"),
        jan("keepalive", session_id="1"),
        jan("keepalive", session_id=-1),
        jan("keepalive", session_id=1.5),
        jan("keepalive", session_id=18446744073709551615),
        jan("keepalive", session_id=9223372036854775808),
        jan("keepalive", session_id=0, handle_id=5),
        jan("attach", plugin=ECHO, **s()),
        jan("message", body={}, session_id="$P0", handle_id=0),
        jan("message", body={}, session_id="$P0", handle_id=-1),
        jan("message", body={}, session_id="$P0", handle_id="$H0x"),
        jan("detach", session_id="$P0"),
        jan("attach", plugin=ECHO, **h()),
        jan("destroy", **h()),
        jan("claim", **h()),
        jan("keepalive", **h()),
        jan("bogus", **s()),
        jan("bogus"),
        adm("list_handles", session_id=18446744073709551615),
        adm("handle_info", session_id="$P0", handle_id=18446744073709551615),
    ),
    "timeout": script(
        SHORT,
        jan("create"),
        jan("attach", plugin=ECHO, **s()),
        jan("message", body={"audio": False}, **h()),
        adv(3),
        jan("keepalive", **s()),
        adv(3),
        flush(),
        adv(6),
        flush(),
        jan("keepalive", **s()),
    ),
    "reclaim": script(
        RECLAIM | SHORT,
        jan("create", inst=1),
        jan("attach", inst=1, plugin=ECHO, **s()),
        jan("message", inst=1, body={"audio": False}, **h()),
        gone(1),
        flush(),
        jan("claim", inst=2, **s()),
        jan("message", inst=2, body={"video": False}, **h()),
        flush(),
        gone(2),
        adv(20),
        jan("create", inst=1),
        gone(1),
        jan("claim", inst=1, **s()),
        adv(4),
        jan("keepalive", inst=1, **s()),
    ),
    "no_reclaim": script(
        0,
        jan("create", inst=1),
        jan("attach", inst=1, plugin=ECHO, **s()),
        jan("message", inst=1, body={"audio": False}, **h()),
        gone(1),
        flush(),
        jan("keepalive", inst=1, **s()),
    ),
    "claim_steal": script(
        0,
        jan("create", inst=1),
        jan("attach", inst=1, plugin=STUB, **s()),
        jan("claim", inst=2, **s()),
        jan("message", inst=2, body={"op": "push"}, **h()),
        jan("claim", inst=2, **s()),
        jan("claim", inst=0, **s()),
        flush(),
        gone(0),
        gone(2),
    ),
    "jsep_media": script(
        MEDIA,
        jan("create"),
        jan("attach", plugin=ECHO, **s()),
        jan("message", body={"audio": True}, jsep={"type": "offer", "sdp": SDP}, **h()),
        jan("message", body={}, jsep={"type": "answer", "sdp": SDP, "trickle": False}, **h()),
        jan("message", body={}, jsep={"type": "pranswer", "sdp": SDP}, **h()),
        jan("message", body={}, jsep={"type": "offer", "sdp": "nope"}, **h()),
        jan("message", body={}, jsep={"type": "offer"}, **h()),
        jan("message", body={}, jsep={"sdp": SDP}, **h()),
        jan("message", body={}, jsep={"type": 1, "sdp": SDP}, **h()),
        jan("message", body={}, jsep={"type": "offer", "sdp": SDP, "e2ee": "x"}, **h()),
        jan("message", body={}, jsep="offer", **h()),
        jan("attach", plugin=STUB, **s()),
        jan("message", body={"op": "push"}, jsep={"type": "offer", "sdp": SDP, "simulcast": {}}, **h()),
        flush(),
    ),
    "jsep_no_media": script(
        0,
        jan("create"),
        jan("attach", plugin=ECHO, **s()),
        jan("message", body={"audio": True}, jsep={"type": "offer", "sdp": SDP}, **h()),
        jan("message", body=[1], **h()),
        jan("message", **h()),
        flush(),
    ),
    "stub_ops": script(
        0,
        jan("create"),
        jan("attach", plugin=STUB, **s()),
        jan("message", body={"op": "sync", "x": 1}, **h()),
        jan("message", body={"op": "error"}, **h()),
        jan("message", body={"op": "error", "text": "boom"}, **h()),
        jan("message", body={"op": "close"}, **h()),
        jan("message", body={"op": "stray"}, **h()),
        jan("message", body={"op": "late"}, **h()),
        jan("message", body={"op": "push"}, **h()),
        jan("hangup", **h()),
        flush(3),
        jan("message", body={"op": "faildetach"}, **h()),
        jan("detach", **h()),
        jan("attach", plugin=STUB, **s()),
        jan("message", body={"op": "end"}, **h()),
        jan("message", body={"op": "push"}, **h()),
        flush(),
        jan("attach", plugin=STUB, opaque_id="refuse", **s()),
        jan("attach", plugin=STUB, **s()),
        jan("message", body={"op": "faildetach"}, **h()),
        jan("destroy", **s()),
        flush(),
    ),
    "opaque": script(
        OPAQUE,
        jan("create"),
        jan("attach", plugin=ECHO, opaque_id="abc", **s()),
        jan("message", body={"video": False}, **h()),
        flush(),
        jan("attach", plugin=ECHO, opaque_id=5, **s()),
        jan("attach", plugin=ECHO, loop_index=-1, **s()),
        jan("attach", plugin=5, **s()),
        jan("attach", **s()),
        jan("detach", **h()),
    ),
    "create_with_id": script(
        0,
        jan("create", id=1234),
        jan("create", id=1234),
        jan("create", id=0),
        jan("create", id="55"),
        jan("create", id=9007199254740993),
        jan("attach", plugin=ECHO, session_id=1234),
        jan("destroy", session_id=1234),
        jan("destroy", session_id=1234),
    ),
    "case_verbs": script(
        0,
        jan("CREATE"),
        jan("Attach", plugin=ECHO, **s()),
        jan("MESSAGE", body={"audio": False}, **h()),
        jan("Trickle", candidate=None, **h()),
        jan("KeepAlive", **s()),
        raw(j("List_Sessions"), admin=True),
        flush(),
    ),
    "trickle": script(
        0,
        jan("create"),
        jan("attach", plugin=ECHO, **s()),
        jan("trickle", **h()),
        jan("trickle", candidate={"candidate": CAND}, candidates=[], **h()),
        jan("trickle", candidate={"candidate": CAND}, **h()),
        jan("trickle", candidate={"candidate": CAND, "sdpMid": 0}, **h()),
        jan("trickle", candidate={"candidate": CAND, "sdpMLineIndex": -1}, **h()),
        jan("trickle", candidate={"sdpMid": "0"}, **h()),
        jan("trickle", candidate={"sdpMid": "0", "candidate": 5}, **h()),
        jan("trickle", candidate=None, **h()),
        jan("trickle", candidate=[1, 2], **h()),
        jan("trickle", candidates={"a": 1}, **h()),
        jan("trickle", candidates=[{"candidate": CAND, "sdpMid": "0"}] * 20, **h()),
        sj(0, 3, 0, 0, 0, 0, 0, 2, 250),  # structured trickle with 300 valid candidates
        jan("trickle", candidates=[{"candidate": CAND, "sdpMLineIndex": 0}], **h()),
        adv(30),
        adv(30),
        adm("handle_info", **h()),
    ),
    "delayed_events": script(
        0,
        jan("create"),
        jan("attach", plugin=ECHO, **s()),
        jan("message", body={"audio": False}, **h()),
        jan("message", body={"video": False}, **h()),
        jan("detach", **h()),
        flush(1),
        jan("attach", plugin=STUB, **s()),
        jan("message", body={"op": "end"}, **h()),
        jan("destroy", **s()),
        flush(),
    ),
    "structured": script(
        0,
        sj(0, 0),  # create
        sj(0, 1),  # attach echotest
        sj(0, 2),  # message
        flush(),
        sj(0, 3),  # trickle
        sj(0, 4),  # keepalive
        sj(0, 6),  # hangup
        flush(),
        sa(0, 0),  # list_sessions
        sa(0, 1),  # list_handles
        sa(0, 2),  # handle_info
        sa(0, 3),  # get_status
        sj(0, 5),  # detach
        sj(0, 7),  # destroy
    ),
    "structured_stub": script(
        ADM | OPAQUE,
        sj(1, 0),
        sj(1, 1, 0, 0, 0, 0, 0, 128),  # attach, plugin byte 128 = stub
        sj(1, 2, 0, 0, 0, 0, 0, 128, 1),  # message with a stub body (op sync)
        sj(1, 2, 0, 0, 0, 0, 0, 128, 3),  # op end
        flush(),
        sa(1, 22, 0, 0, 0, 0, 0, 1),  # add_token
        sa(1, 30),  # destroy_session
    ),
    "structured_auth": script(
        API | TOK | SIGNED | ADM,
        sj(2, 0),
        sj(2, 1),
        sj(2, 2),
        sj(2, 2, 0, 0, 0, 0, 8),  # expired token
        flush(),
        sa(2, 4, 0, 0),  # set_session_timeout scoped
        gone(2),
        sj(3, 8),  # claim
        adv(70),
    ),
}

FRAMES = {
    "create": '{"janus":"create","transaction":"a"}',
    "concatenated": '{"janus":"create","transaction":"a"}{"janus":"info","transaction":"b"} {"janus":"ping","transaction":"c"}\n',
    "flow": "\0".join(
        [
            j("create"),
            j("attach", plugin=ECHO, session_id="$S0"),
            j("message", body={"audio": False}, session_id="$P0", handle_id="$H0"),
            j("trickle", candidate={"completed": True}, session_id="$P0", handle_id="$H0"),
            j("trickle", candidates=[{"candidate": CAND, "sdpMid": "0"}], session_id="$P0", handle_id="$H0"),
            j("keepalive", session_id="$S0") + j("hangup", session_id="$P0", handle_id="$H0"),
            "#" + j("handle_info", session_id="$P0", handle_id="$H0"),
            j("detach", session_id="$P0", handle_id="$H0"),
            j("destroy", session_id="$S0"),
        ]
    ),
    "admin": "\0".join(
        [
            "#" + j("list_sessions"),
            "#" + j("get_status"),
            "#" + j("set_log_level", level=3),
            "#" + j("message_plugin", plugin=ECHO, request={"x": [1, 2]}),
            "#" + j("accept_new_sessions", accept=False),
            j("create"),
            "#{}",
        ]
    ),
    "malformed": "\0".join(
        [
            '{"janus":',
            "]",
            "{} {",
            "1 2 3",
            '"str"',
            '[{"janus":"create","transaction":"t"}]',
            "   ",
            "",
            "null",
            '{"janus":"create","transaction":"t"}}',
        ]
    ),
    "numbers": "\0".join(
        [
            j("create"),
            '{"janus":"keepalive","transaction":"t","session_id":1e400}',
            '{"janus":"keepalive","transaction":"t","session_id":-0}',
            '{"janus":"keepalive","transaction":"t","session_id":18446744073709551616}',
            '{"janus":"keepalive","transaction":"t","session_id":$S0.0}',
            '{"janus":"keepalive","transaction":"t","session_id":$S0e0}',
            '{"janus":"create","transaction":"t","id":1.0}',
        ]
    ),
    "unicode": b"\xef\xbb\xbf" + b'{"janus":"info","transaction":"t"}\0{"janus":"info","transaction":"\xc3\xa9\\u00e9\\ud83d\\ude00"}\0{"janus":"info","transaction":"\xff"}\0{"janus":"info","transaction":"\\udc00"}',
    "deep": "[" * 130 + "]" * 130 + "\0" + '{"janus":"info","transaction":"t","x":' + "[" * 120 + "]" * 120 + "}",
}


def main():
    for target, seeds in [("request_dispatch", RD), ("json_frame", FRAMES)]:
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            if isinstance(data, str):
                data = data.encode()
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
        print(target, len(seeds), "seeds")


if __name__ == "__main__":
    main()
