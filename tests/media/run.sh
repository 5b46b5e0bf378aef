#!/usr/bin/env bash
# End-to-end media tests with real WebRTC clients (aiortc, janus.js in headless Chromium, Janode)
# against the EchoTest (and VideoRoom, Streaming, AudioBridge) plugins of a server started here,
# inside a private network namespace.
#
# Usage:
#   tests/media/run.sh --janus                      # the real Janus 1.1.2 (/usr/bin/janus)
#   tests/media/run.sh --server '<cmd with {cfg}>'  # e.g. --server 'target/release/jano -F {cfg}'
#   options: --only aiortc|janusjs|janode|videoroom|streaming|audiobridge|textroom|videocall|recordplay|nosip
#            (repeatable)
#            --keep (keep the temp folder)
#
# What it does: creates network namespace jmedia-<pid> with a veth pair (both ends inside it,
# address 10.<a>.<b>.1/24 derived from the pid), writes a config folder from /etc/janus's samples
# (HTTP 8088 /janus, WS 8188, admins off, only the EchoTest, VideoRoom, Streaming (without
# mountpoints of its own) and AudioBridge (without rooms of its own) plugins, Record&Play (recordings
# in <tmp>/recordings, a fresh folder), NoSIP (local_ip = sdp_ip = the veth address) and the HTTP +
# WebSockets transports, nat.ice_enforce_list = the veth address, media.rtp_port_range = 20000-40000),
# starts the server inside the namespace, waits for http://<addr>:8088/janus/info, runs every
# client inside the namespace, and always kills the server and deletes the namespace on exit.
# The videoroom suite starts a second server (HTTP 8089, WS 8189) for its remote publishers; the
# recordplay suite, when the server is not Janus and janus is installed, starts the real Janus
# 1.1.2 (HTTP 8090, WS 8190, only Record&Play, the same recordings folder) to play the server's
# recording in it.
# Each suite prints node-test-style `ℹ pass N` / `ℹ fail M` lines; exit status 1 on any failure.
#
# Env: JANO_MEDIA_SERVER_LOG_LINES (80) lines of the server log printed on failure.
#      RECORDPLAY_MAKE_FIXTURE=<dir>: the recordplay suite only records its fixture into <dir>
#      (see tests/media/fixtures/recordplay/README.md).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CLIENTS="$ROOT/tests/clients"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
LOG_LINES="${JANO_MEDIA_SERVER_LOG_LINES:-80}"

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

SERVER_CMD=""
ONLY=()
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --janus)
      if ! command -v janus >/dev/null 2>&1; then
        echo "media/run.sh: installing janus (Debian package)" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus >&2
      fi
      SERVER_CMD="$(command -v janus) -F {cfg} -C {cfg}/janus.jcfg -o"
      # Tests skip the checks of behaviour Janus 1.1.2 is known not to have (see the tests).
      export MEDIA_SERVER_IS_JANUS=1
      shift ;;
    --server) [ $# -ge 2 ] || usage; SERVER_CMD="$2"; shift 2 ;;
    --only) [ $# -ge 2 ] || usage; ONLY+=("$2"); shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    *) echo "media/run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$SERVER_CMD" ] || usage
case "$SERVER_CMD" in *"{cfg}"*) ;; *) echo "media/run.sh: the server command must contain {cfg}" >&2; exit 2 ;; esac
want() { [ ${#ONLY[@]} -eq 0 ] && return 0; local x; for x in "${ONLY[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

# --- prerequisites ----------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "media/run.sh: must run as root (ip netns)" >&2; exit 2; }
command -v ip >/dev/null || { echo "media/run.sh: iproute2 (ip) is missing" >&2; exit 2; }
command -v curl >/dev/null || { echo "media/run.sh: curl is missing" >&2; exit 2; }
PYTHON="${PYTHON:-python3}"
if want aiortc || want janode || want videoroom || want streaming || want audiobridge || want textroom \
    || want videocall || want recordplay || want nosip; then
  if ! "$PYTHON" -c 'import aiortc, av, numpy, aiohttp' 2>/dev/null; then
    echo "media/run.sh: python modules missing (aiortc, av, numpy, aiohttp):" >&2
    echo "  run: $PYTHON -m pip install -q -r tests/python/requirements.txt" >&2
    exit 2
  fi
fi
if want streaming; then
  # The rtsp mountpoint test's camera: GStreamer's RTSP server, through Debian's python3-gi.
  if ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer' 2>/dev/null \
      || ! gst-inspect-1.0 vp8enc >/dev/null 2>&1 || ! gst-inspect-1.0 opusenc >/dev/null 2>&1; then
    echo "media/run.sh: installing GStreamer's RTSP server and encoders (Debian packages)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-gi \
      gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good >&2
  fi
fi
if want janusjs || want janode || want videoroom || want audiobridge || want textroom; then
  command -v node >/dev/null || { echo "media/run.sh: node is not installed (need Node 20+)" >&2; exit 2; }
  [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || { echo "media/run.sh: need Node 20+" >&2; exit 2; }
  # Same npm dependencies (and the same stamp) as tests/clients/run.sh.
  lock_sum="$(cd "$CLIENTS" && sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)"
  stamp="$CLIENTS/node_modules/.jano-lock-sha256"
  if [ ! -d "$CLIENTS/node_modules" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
    echo "media/run.sh: npm ci in tests/clients (node_modules missing or stale)" >&2
    (cd "$CLIENTS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2) || exit 2
    echo "$lock_sum" > "$stamp"
  fi
  # The tests here import the packages installed for tests/clients.
  [ -L "$HERE/node_modules" ] || ln -sfn ../clients/node_modules "$HERE/node_modules"
  if { want janusjs || want videoroom || want audiobridge || want textroom; } && [ ! -x "$CHROMIUM_PATH" ]; then
    echo "media/run.sh: installing chromium (Debian package)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  fi
fi

# --- namespace, addresses ---------------------------------------------------------------------
NS="jmedia-$$"
IF="jm$$"
ADDR="10.$(( 100 + ($$ / 250) % 150 )).$(( 1 + $$ % 250 )).1"
TMP="$(mktemp -d /tmp/jano-media.XXXXXX)"
CFG="$TMP/cfg"
SERVER_LOG="$TMP/server.log"
SERVER_PID=""
NS_MADE=0

in_ns() { ip netns exec "$NS" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ "$NS_MADE" = 1 ]; then
    # Anything still running inside our private namespace was started by this script.
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
  fi
  if [ "$rc" -ne 0 ] && [ -f "$SERVER_LOG" ]; then
    echo "---- last $LOG_LINES lines of the server log ($SERVER_LOG) ----" >&2
    tail -n "$LOG_LINES" "$SERVER_LOG" >&2
    echo "---- end of server log ----" >&2
  fi
  if [ "$KEEP" = 1 ]; then echo "media/run.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS" || { echo "media/run.sh: ip netns add $NS failed" >&2; exit 2; }
NS_MADE=1
in_ns ip link set lo up
in_ns ip link add "$IF" type veth peer name "${IF}p"
in_ns sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
in_ns ip addr add "$ADDR/24" dev "$IF"
in_ns ip link set "${IF}p" up
in_ns ip link set "$IF" up
echo "media/run.sh: namespace $NS, $IF $ADDR/24" >&2

# --- config folder (from Janus's samples) -----------------------------------------------------
mkdir -p "$CFG"
for f in janus.jcfg janus.transport.http.jcfg janus.transport.websockets.jcfg janus.plugin.echotest.jcfg \
    janus.plugin.videoroom.jcfg janus.plugin.textroom.jcfg janus.plugin.videocall.jcfg; do
  [ -f "/etc/janus/$f" ] || { echo "media/run.sh: /etc/janus/$f is missing (apt-get install janus gives the samples)" >&2; exit 2; }
  cp "/etc/janus/$f" "$CFG/$f"
done
# The AudioBridge sample without its room (`room-1234`): the test creates and destroys its own.
[ -f /etc/janus/janus.plugin.audiobridge.jcfg ] || { echo "media/run.sh: /etc/janus/janus.plugin.audiobridge.jcfg is missing" >&2; exit 2; }
sed -e '/^room-[^:]*: *{/,/^}/d' /etc/janus/janus.plugin.audiobridge.jcfg >"$CFG/janus.plugin.audiobridge.jcfg"
# The Record&Play sample with its recordings folder in our temp folder (fresh, empty).
[ -f /etc/janus/janus.plugin.recordplay.jcfg ] || { echo "media/run.sh: /etc/janus/janus.plugin.recordplay.jcfg is missing" >&2; exit 2; }
mkdir -p "$TMP/recordings"
sed -e "s|^\(\s*\)path = .*|\1path = \"$TMP/recordings\"|" /etc/janus/janus.plugin.recordplay.jcfg \
  >"$CFG/janus.plugin.recordplay.jcfg"
# The NoSIP sample with its RTP sockets on the namespace address (and that address in its SDP).
[ -f /etc/janus/janus.plugin.nosip.jcfg ] || { echo "media/run.sh: /etc/janus/janus.plugin.nosip.jcfg is missing" >&2; exit 2; }
sed -e "s|^\(\s*\)#\{0,1\}local_ip = .*|\1local_ip = \"$ADDR\"|" \
  -e "s|^\(\s*\)#\{0,1\}sdp_ip = .*|\1sdp_ip = \"$ADDR\"|" \
  -e "s|^\(\s*\)#\{0,1\}rtp_port_range = .*|\1rtp_port_range = \"20000-40000\"|" \
  /etc/janus/janus.plugin.nosip.jcfg >"$CFG/janus.plugin.nosip.jcfg"
libs() { (cd "/usr/lib/x86_64-linux-gnu/janus/$1" 2>/dev/null && ls libjanus_*.so 2>/dev/null | grep -v -x -E "$2" | paste -sd, -); }
plugin_disable="$(libs plugins 'libjanus_(echotest|videoroom|streaming|audiobridge|textroom|videocall|recordplay|nosip)\.so')"
transport_disable="$(libs transports 'libjanus_(http|websockets)\.so')"
event_disable="$(libs events '')"
: "${plugin_disable:=libjanus_voicemail.so}"
: "${transport_disable:=libjanus_pfunix.so}"
: "${event_disable:=libjanus_sampleevh.so}"
sed -i \
  -e "s|^\(\s*\)configs_folder = .*|\1configs_folder = \"$CFG\"|" \
  -e "s|^\(\s*\)debug_level = .*|\1debug_level = 4|" \
  -e "s|^\(\s*\)#disable = \"libjanus_voicemail.so,libjanus_recordplay.so\"|\1disable = \"$plugin_disable\"|" \
  -e "s|^\(\s*\)#disable = \"libjanus_rabbitmq.so\"|\1disable = \"$transport_disable\"|" \
  -e "s|^\(\s*\)#disable = \"libjanus_jsonlog.so\"|\1disable = \"libjanus_jsonlog.so\"|" \
  -e "s|^\(\s*\)#disable = \"libjanus_sampleevh.so\"|\1disable = \"$event_disable\"|" \
  -e "s|^\(\s*\)#rtp_port_range = .*|\1rtp_port_range = \"20000-40000\"|" \
  -e "s|^\(\s*\)#ice_enforce_list = \"eth0\"$|\1ice_enforce_list = \"$ADDR\"|" \
  "$CFG/janus.jcfg"
sed -i \
  -e "s|^\(\s*\)base_path = .*|\1base_path = \"/janus\"|" \
  -e "s|^\(\s*\)http = .*|\1http = true|" \
  -e "s|^\(\s*\)port = .*|\1port = 8088|" \
  -e "s|^\(\s*\)https = .*|\1https = false|" \
  -e "s|^\(\s*\)admin_http = .*|\1admin_http = false|" \
  -e "s|^\(\s*\)admin_https = .*|\1admin_https = false|" \
  "$CFG/janus.transport.http.jcfg"
sed -i \
  -e "s|^\(\s*\)ws = .*|\1ws = true|" \
  -e "s|^\(\s*\)ws_port = .*|\1ws_port = 8188|" \
  -e "s|^\(\s*\)wss = .*|\1wss = false|" \
  -e "s|^\(\s*\)admin_ws = .*|\1admin_ws = false|" \
  -e "s|^\(\s*\)admin_wss = .*|\1admin_wss = false|" \
  "$CFG/janus.transport.websockets.jcfg"
cfg_check() { grep -q -E "$2" "$CFG/$1" || { echo "media/run.sh: could not edit $1 ($2)" >&2; exit 2; }; }
cfg_check janus.jcfg "^\s*configs_folder = \"$CFG\""
cfg_check janus.jcfg "^\s*disable = \"$plugin_disable\""
cfg_check janus.jcfg "^\s*disable = \"$transport_disable\""
cfg_check janus.jcfg "^\s*rtp_port_range = \"20000-40000\""
cfg_check janus.jcfg "^\s*ice_enforce_list = \"$ADDR\""
cfg_check janus.transport.http.jcfg '^\s*port = 8088\b'
cfg_check janus.transport.http.jcfg '^\s*base_path = "/janus"'
cfg_check janus.transport.websockets.jcfg '^\s*ws_port = 8188\b'
cfg_check janus.plugin.recordplay.jcfg "^\s*path = \"$TMP/recordings\""
cfg_check janus.plugin.nosip.jcfg "^\s*local_ip = \"$ADDR\""
cfg_check janus.plugin.nosip.jcfg "^\s*rtp_port_range = \"20000-40000\""

# --- server -----------------------------------------------------------------------------------
cmd="${SERVER_CMD//\{cfg\}/$CFG}"
echo "media/run.sh: starting (in $NS): $cmd" >&2
echo "media/run.sh: server log: $SERVER_LOG" >&2
# `exec` so that $SERVER_PID is the server itself (ip netns exec execs too).
ip netns exec "$NS" bash -c "exec $cmd" >"$SERVER_LOG" 2>&1 </dev/null &
SERVER_PID=$!

HTTP_URL="http://$ADDR:8088/janus"
WS_URL="ws://$ADDR:8188"
ready=0
for _ in $(seq 1 150); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "media/run.sh: the server exited during start-up" >&2
    exit 1
  fi
  if in_ns curl -fsS -m 2 "$HTTP_URL/info" >/dev/null 2>&1 \
     && in_ns bash -c "exec 3<>/dev/tcp/$ADDR/8188" 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.2
done
[ "$ready" = 1 ] || { echo "media/run.sh: $HTTP_URL/info did not answer (or WS 8188 not open) within 30 s" >&2; exit 1; }
echo "media/run.sh: server up: $(in_ns curl -fsS -m 2 "$HTTP_URL/info" | tr -d '\n' | grep -o '"name": *"[^"]*"\|"version_string": *"[^"]*"' | paste -sd' ' -)" >&2

export JANUS_HTTP_URL="$HTTP_URL" JANUS_WS_URL="$WS_URL" JANUS_MEDIA_ADDR="$ADDR" PYTHON
total_pass=0; total_fail=0; any_fail=0

# Run one suite: prints its output, adds its ℹ pass/fail lines to the totals. A suite that dies
# without a summary counts as one failure (and says so in the same ℹ form).
run_suite() {
  local name="$1" limit="$2"; shift 2
  local log="$TMP/$name.out" rc p f
  echo "" ; echo "=== media: $name" >&2
  timeout -k 5 "$limit" ip netns exec "$NS" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  p=$(grep -Eo '^ℹ pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
  f=$(grep -Eo '^ℹ fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    [ "$rc" -eq 124 ] && echo "media/run.sh: suite $name killed after ${limit} s" >&2
    echo "media/run.sh: suite $name exited $rc without reporting a failed test"
    if ! grep -qE '^ℹ pass [0-9]+' "$log"; then echo "ℹ pass 0"; fi
    echo "ℹ fail 1"
    f=1
  fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] && any_fail=1
  return 0
}

if want aiortc; then
  run_suite aiortc 90 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/echotest_aiortc.py" --http "$HTTP_URL" --ws "$WS_URL" --addr "$ADDR"
fi
node_files=()
want janusjs && node_files+=("$HERE/janusjs-media.test.mjs" "$HERE/janusjs-simulcast.test.mjs")
want janode && node_files+=("$HERE/janode-offer.test.mjs")
if want videoroom; then
  run_suite videoroom-aiortc 150 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/videoroom_aiortc.py" --http "$HTTP_URL" --ws "$WS_URL" --addr "$ADDR"
  # Remote publishers need a second server: the same command on a copy of the configuration
  # with HTTP on 8089 and WebSockets on 8189, in the same namespace.
  CFG2="$TMP/cfg2"
  cp -r "$CFG" "$CFG2"
  sed -i -e "s|^\(\s*\)configs_folder = .*|\1configs_folder = \"$CFG2\"|" "$CFG2/janus.jcfg"
  sed -i -e "s|^\(\s*\)port = 8088|\1port = 8089|" "$CFG2/janus.transport.http.jcfg"
  sed -i -e "s|^\(\s*\)ws_port = 8188|\1ws_port = 8189|" "$CFG2/janus.transport.websockets.jcfg"
  cmd2="${SERVER_CMD//\{cfg\}/$CFG2}"
  ip netns exec "$NS" bash -c "exec $cmd2" >"$TMP/server2.log" 2>&1 </dev/null &
  SERVER2_PID=$!
  HTTP2_URL="http://$ADDR:8089/janus"
  for _ in $(seq 1 150); do
    in_ns curl -fsS -m 2 "$HTTP2_URL/info" >/dev/null 2>&1 && break
    kill -0 "$SERVER2_PID" 2>/dev/null || break
    sleep 0.2
  done
  run_suite videoroom-remote 120 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/videoroom_remote.py" --a-http "$HTTP_URL" --b-http "$HTTP2_URL" --addr "$ADDR"
  kill "$SERVER2_PID" 2>/dev/null; wait "$SERVER2_PID" 2>/dev/null
  node_files+=("$HERE/videoroom-janusjs.test.mjs")
fi
if want streaming; then
  run_suite streaming-aiortc 90 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/streaming_aiortc.py" --http "$HTTP_URL" --addr "$ADDR"
  # The files go where the server (inside the namespace, same filesystem) can read them.
  run_suite streaming-files 120 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/streaming_file_aiortc.py" --http "$HTTP_URL" --dir "$TMP"
  run_suite streaming-rtsp 150 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/streaming_rtsp_aiortc.py" --http "$HTTP_URL"
fi
if want audiobridge; then
  run_suite audiobridge-aiortc 120 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/audiobridge_aiortc.py" --http "$HTTP_URL" --ws "$WS_URL" --addr "$ADDR" --dir "$TMP"
  # Plain-RTP participants (UDP sockets bound on $ADDR) next to an aiortc one; garbage RTP.
  run_suite audiobridge-rtp 90 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/audiobridge_rtp.py" --http "$HTTP_URL" --addr "$ADDR"
  # janus.js in Chromium (fake microphone) + an aiortc participant (audiobridge_peer.py).
  node_files+=("$HERE/audiobridge-janusjs.test.mjs")
fi
if want textroom; then
  run_suite textroom-aiortc 120 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/textroom_aiortc.py" --http "$HTTP_URL" --ws "$WS_URL" --addr "$ADDR"
  node_files+=("$HERE/textroom-janusjs.test.mjs")
fi
if want videocall; then
  run_suite videocall-aiortc 150 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/videocall_aiortc.py" --http "$HTTP_URL" --ws "$WS_URL" --addr "$ADDR" --dir "$TMP"
fi
if want recordplay; then
  # The server writes its recordings to $TMP/recordings (its `path`); the test reads them there
  # and copies a recording made by Janus 1.1.2 (fixtures/recordplay) in.
  # The other direction: when the server under test is not Janus and Janus is installed, the
  # real Janus 1.1.2 runs next to it (same namespace, HTTP 8090, WS 8190, only Record&Play) on
  # a copy of the configuration whose recordings `path` is the SAME folder, and the test plays
  # the recording the server made there (--janus-http).
  rp_janus=()
  JANUS_RP_PID=""
  if [ "${MEDIA_SERVER_IS_JANUS:-}" != 1 ]; then
    if command -v janus >/dev/null 2>&1; then
      CFGJ="$TMP/cfg-janus"
      cp -r "$CFG" "$CFGJ"
      rp_only_disable="$(libs plugins 'libjanus_recordplay\.so')"
      : "${rp_only_disable:=libjanus_voicemail.so}"
      sed -i -e "s|^\(\s*\)configs_folder = .*|\1configs_folder = \"$CFGJ\"|" \
        -e "s|^\(\s*\)disable = \"$plugin_disable\"|\1disable = \"$rp_only_disable\"|" "$CFGJ/janus.jcfg"
      sed -i -e "s|^\(\s*\)port = 8088|\1port = 8090|" "$CFGJ/janus.transport.http.jcfg"
      sed -i -e "s|^\(\s*\)ws_port = 8188|\1ws_port = 8190|" "$CFGJ/janus.transport.websockets.jcfg"
      grep -q -E "^\s*path = \"$TMP/recordings\"" "$CFGJ/janus.plugin.recordplay.jcfg" \
        && grep -q -E "^\s*port = 8090\b" "$CFGJ/janus.transport.http.jcfg" \
        && grep -q -E "^\s*configs_folder = \"$CFGJ\"" "$CFGJ/janus.jcfg" \
        || { echo "media/run.sh: could not write the Janus configuration $CFGJ" >&2; exit 2; }
      ip netns exec "$NS" bash -c "exec $(command -v janus) -F $CFGJ -C $CFGJ/janus.jcfg -o" \
        >"$TMP/janus-recordplay.log" 2>&1 </dev/null &
      JANUS_RP_PID=$!
      JANUS_RP_URL="http://$ADDR:8090/janus"
      for _ in $(seq 1 150); do
        in_ns curl -fsS -m 2 "$JANUS_RP_URL/info" >/dev/null 2>&1 && break
        kill -0 "$JANUS_RP_PID" 2>/dev/null || break
        sleep 0.2
      done
      echo "media/run.sh: Janus 1.1.2 for Record&Play playback: $JANUS_RP_URL (log $TMP/janus-recordplay.log)" >&2
      rp_janus=(--janus-http "$JANUS_RP_URL")
    else
      echo "media/run.sh: janus is not installed: the recordplay suite does not play the server's recording in Janus" >&2
    fi
  fi
  run_suite recordplay-aiortc 120 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/recordplay_aiortc.py" --http "$HTTP_URL" --ws "$WS_URL" --addr "$ADDR" \
    --recordings "$TMP/recordings" --fixtures "$HERE/fixtures/recordplay" "${rp_janus[@]}"
  if [ -n "$JANUS_RP_PID" ]; then
    if grep -q '^✖ .*in Janus 1.1.2' "$TMP/recordplay-aiortc.out"; then
      echo "---- last $LOG_LINES lines of the Janus log ($TMP/janus-recordplay.log) ----" >&2
      tail -n "$LOG_LINES" "$TMP/janus-recordplay.log" >&2
      echo "---- end of Janus log ----" >&2
    fi
    kill "$JANUS_RP_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$JANUS_RP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$JANUS_RP_PID" 2>/dev/null
    wait "$JANUS_RP_PID" 2>/dev/null
    JANUS_RP_PID=""
  fi
fi
if want nosip; then
  # The plain-RTP peer is the test's own UDP sockets on $ADDR (the plugin's local_ip).
  run_suite nosip-aiortc 120 env PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    "$PYTHON" "$HERE/nosip_aiortc.py" --http "$HTTP_URL" --ws "$WS_URL" --addr "$ADDR"
fi
if [ ${#node_files[@]} -gt 0 ]; then
  # MEDIA_TEST_PATTERN narrows the node tests to the matching names (while working on one).
  run_suite node 450 node --test --test-concurrency=1 --test-reporter=spec --test-timeout=120000 \
    ${MEDIA_TEST_PATTERN:+--test-name-pattern="$MEDIA_TEST_PATTERN"} "${node_files[@]}"
fi

echo ""
echo "media/run.sh: total ${total_pass} passed, ${total_fail} failed"
if [ "$any_fail" -ne 0 ]; then exit 1; fi
exit 0
