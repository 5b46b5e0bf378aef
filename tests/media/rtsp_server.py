#!/usr/bin/python3
"""A real RTSP server for the Streaming plugin's `rtsp` mountpoint test: GStreamer's
gst-rtsp-server (Debian's gir1.2-gst-rtsp-server-1.0, run with Debian's python3 and its
python3-gi) serving `/test` — VP8 320x240 at 15 fps from videotestsrc and a 440 Hz Opus tone —
over RTP/UDP (and TCP interleaved), behind Digest authentication when --user is given.

Usage: rtsp_server.py --port N [--user U --password P] [--tcp-only]
Prints `ready <port>` once listening; runs until killed.
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 "
    "! vp8enc deadline=1 keyframe-max-dist=15 ! rtpvp8pay name=pay0 pt=96 "
    "audiotestsrc is-live=true wave=sine freq=440 volume=0.4 ! audioconvert ! audioresample "
    "! audio/x-raw,rate=48000,channels=2 ! opusenc ! rtpopuspay name=pay1 pt=111 )"
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user")
    ap.add_argument("--password", default="")
    ap.add_argument("--tcp-only", action="store_true", help="refuse RTP over UDP (461)")
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    if args.tcp_only:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_digest(args.user, args.password, token)
        server.set_auth(auth)
        factory.add_role_from_structure(Gst.Structure.new_from_string(
            "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"))
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print("could not listen", file=sys.stderr, flush=True)
        return 1
    print(f"ready {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
