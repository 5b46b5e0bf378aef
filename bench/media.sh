#!/usr/bin/env bash
# Media benchmark: N WebRTC peers (jano-load media, str0m) on the EchoTest of the real Janus 1.1.2
# and/or another server, inside a private network namespace; prints a markdown table.
#
#   bench/media.sh [--janus] [--server '<cmd with {cfg}>'] [--label NAME] [--both <jano binary>]
#                  [--peers N] [--audio-pps 50] [--video-pps 100] [--video-bytes 1000]
#                  [--duration S] [--warmup S] [--steps "10,20,50,..."] [--no-max]
#                  [--nice N] [--no-build] [--keep] [--out FILE] [--janus-loops "0 2"]
#                  [--fanout | --videoroom | --audiobridge] [--room-size K] [--media-workers N]
#
# --fanout: instead of EchoTest, peer 0 publishes on jano.plugin.fanout and every other peer
# subscribes to it (`jano-load media --fanout`); "echoed" then counts forwarded packets and the
# RTT is one-way latency. Janus has no such plugin, so only the --server runs.
# --videoroom: the same on the VideoRoom plugin (janus.plugin.videoroom; both servers have it,
# so Janus runs too): peer 0 creates a room and publishes, the others subscribe (1 → N − 1).
# --audiobridge: the AudioBridge (janus.plugin.audiobridge; both servers have it): groups of
# --room-size peers in a room each, every peer sending real Opus (no video: one talker per room,
# the others silence) and counting the mix it gets back; "forwarded" = mixed packets received, latency = their arrival jitter.
# --room-size K (with --videoroom, --fanout or --audiobridge): groups of K peers, each its own room (1 → K − 1);
# the default --peers becomes 5 K and the default --steps K × 1,2,5,10,20,30,50,70,100.
# --media-workers N: `media_workers = N` in janus.jcfg's media section of the --server runs
# (jano's media threads; default one per core the server may use, i.e. 1 when pinned).
# Servers: --janus (the default when no --server is given) runs /usr/bin/janus, once per entry of
# --janus-loops (default "0 2": Janus's default, one loop thread per handle, labelled
# "Janus 1.1.2"; then `event_loops = 2` in janus.jcfg's general section, labelled
# "Janus 1.1.2 (event_loops=2)"); the default configuration is the baseline of the ratio column.
# --server runs any
# command, {cfg} replaced by the configuration folder (a copy of /etc/janus), labelled --label
# (default "jano"); --both BIN = --janus --server 'BIN -F {cfg}'.
# For each server: a fresh start, `jano-load media --peers N`; then another fresh start and
# `jano-load media --find-max` (the most peers kept at < 0.5 % loss; --no-max skips it).
# --out FILE also writes the table (and the raw JSON reports) there.
#
# Layout (2 cores): a network namespace of its own (veth pair with both ends inside, one private
# /24 address, no route out), the server pinned to CPU 0 and jano-load to CPU 1, both in the
# namespace. WebSockets on 127.0.0.1:8188 inside it; ICE only on the namespace address.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMDLINE="bench/media.sh $*"

RUN_JANUS=0
SERVER_CMD=""
LABEL="jano"
PEERS=50
AUDIO_PPS=50
VIDEO_PPS=100
VIDEO_BYTES=1000
DURATION=10
WARMUP=3
STEPS="10,20,50,100,200,300,500,750,1000"
FIND_MAX=1
NICE=0
BUILD=1
KEEP=0
OUT=""
FANOUT=0
VIDEOROOM=0
AUDIOBRIDGE=0
ROOM_SIZE=""
MEDIA_WORKERS=""
PEERS_SET=0
STEPS_SET=0
JANUS_LOOPS="0 2"   # event_loops per Janus run; 0 = Janus's default (no event_loops line)
DEBUG_LEVEL=2   # errors only
WS_PORT=8188
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
JANUS_BIN="${JANUS_BIN:-/usr/bin/janus}"
JANUS_LIBDIR="${JANUS_LIBDIR:-/usr/lib/x86_64-linux-gnu/janus}"

usage() { sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --janus) RUN_JANUS=1 ;;
        --server) SERVER_CMD="$2"; shift ;;
        --label) LABEL="$2"; shift ;;
        --both) RUN_JANUS=1; SERVER_CMD="$2 -F {cfg}"; shift ;;
        --peers) PEERS="$2"; PEERS_SET=1; shift ;;
        --audio-pps) AUDIO_PPS="$2"; shift ;;
        --video-pps) VIDEO_PPS="$2"; shift ;;
        --video-bytes) VIDEO_BYTES="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --steps) STEPS="$2"; STEPS_SET=1; shift ;;
        --no-max) FIND_MAX=0 ;;
        --nice) NICE="$2"; shift ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        --out) OUT="$2"; shift ;;
        --janus-loops) JANUS_LOOPS="$2"; shift ;;
        --fanout) FANOUT=1 ;;
        --videoroom) VIDEOROOM=1 ;;
        --audiobridge) AUDIOBRIDGE=1 ;;
        --room-size) ROOM_SIZE="$2"; shift ;;
        --media-workers) MEDIA_WORKERS="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
[ -n "$SERVER_CMD" ] || RUN_JANUS=1
if [ "$FANOUT" = 1 ]; then
    [ "$VIDEOROOM" = 0 ] || { echo "--fanout and --videoroom exclude each other" >&2; exit 2; }
    [ -n "$SERVER_CMD" ] || { echo "--fanout needs --server (or --both)" >&2; exit 2; }
    RUN_JANUS=0
fi
if [ -n "$ROOM_SIZE" ]; then
    case "$ROOM_SIZE" in
        ''|*[!0-9]*|0) echo "--room-size: '$ROOM_SIZE' is not a positive number" >&2; exit 2 ;;
    esac
    [ "$FANOUT" = 1 ] || [ "$VIDEOROOM" = 1 ] || [ "$AUDIOBRIDGE" = 1 ] || { echo "--room-size needs --videoroom, --fanout or --audiobridge" >&2; exit 2; }
    [ "$PEERS_SET" = 1 ] || PEERS=$((5 * ROOM_SIZE))
    [ "$STEPS_SET" = 1 ] || STEPS=$(for m in 1 2 5 10 20 30 50 70 100; do echo $((m * ROOM_SIZE)); done | paste -sd, -)
fi
case "$MEDIA_WORKERS" in
    ''|[0-9]|[0-9][0-9]) ;;
    *) echo "--media-workers: '$MEDIA_WORKERS' is not a number" >&2; exit 2 ;;
esac
case "$LABEL" in
    janus|janus-el*) echo "--label $LABEL is reserved for Janus" >&2; exit 2 ;;
esac
for n in $JANUS_LOOPS; do
    case "$n" in
        ''|*[!0-9]*) echo "--janus-loops: '$n' is not a number" >&2; exit 2 ;;
    esac
done
[ -n "$JANUS_LOOPS" ] || JANUS_LOOPS=0

log() { echo "[media $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespace)"
command -v ip >/dev/null || die "ip (iproute2) not found"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs; server and load tool will share one"

# A name and subnet of our own, so that parallel runs never collide.
NS="jano-media-$$-$RANDOM"
SUBNET="10.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))"
ADDR="$SUBNET.1"
VETH="jm$$"
# Not under /tmp/jano-*: other jobs on this machine clean those up.
TMP="$(mktemp -d "${TMPDIR:-/var/tmp}/jmedia.XXXXXX")"
RESULTS="$TMP/results.jsonl"
: > "$RESULTS"
SERVER_PID=""

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

cleanup() {
    local rc=$?
    stop_server
    ip netns del "$NS" 2>/dev/null || true
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        log "work files kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- namespace
# Loopback cannot carry ICE (libnice skips it): a veth pair with both ends inside the namespace,
# one end addressed; traffic to that address stays inside, and there is no route out.
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip link add "$VETH" type veth peer name "${VETH}p"
ip netns exec "$NS" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$NS" ip addr add "$ADDR/24" dev "$VETH"
ip netns exec "$NS" ip link set "${VETH}p" up
ip netns exec "$NS" ip link set "$VETH" up
log "namespace $NS, address $ADDR"

in_ns() { ip netns exec "$NS" "$@"; }

# ---------------------------------------------------------------- build
cd "$ROOT"
if [ "$BUILD" = 1 ]; then
    log "building jano-load (release)"
    cargo build --release -p jano-load >&2
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LOAD_BIN="$TARGET_DIR/release/jano-load"
[ -x "$LOAD_BIN" ] || die "$LOAD_BIN not found (build it or set CARGO_TARGET_DIR)"

# ---------------------------------------------------------------- configuration
# A copy of /etc/janus: only the WebSockets transport (127.0.0.1:8188, compact JSON), only the
# EchoTest plugin (and the VideoRoom with --videoroom), no loggers, log level 2, ICE restricted
# to the namespace address.
make_conf() { # dir [event_loops] [media_workers]
    local dir=$1 loops=${2:-0} workers=${3:-} plugins transports keep='libjanus_echotest'
    mkdir -p "$dir"
    cp -r /etc/janus/. "$dir/"
    [ "$VIDEOROOM" = 1 ] && keep='libjanus_(echotest|videoroom)'
    [ "$AUDIOBRIDGE" = 1 ] && keep='libjanus_(echotest|audiobridge)'
    plugins=$(cd "$JANUS_LIBDIR/plugins" && ls ./*.so | sed 's#^\./##' | grep -Ev "^$keep\.so\$" | paste -sd, -)
    transports=$(cd "$JANUS_LIBDIR/transports" && ls ./*.so | sed 's#^\./##' | grep -v '^libjanus_websockets\.so$' | paste -sd, -)
    sed -i \
        -e "s#^\(\s*configs_folder = \)\"[^\"]*\"#\1\"$dir\"#" \
        -e "s#^\(\s*debug_level = \)[0-9]*#\1$DEBUG_LEVEL#" \
        -e "s#^plugins: {#plugins: {\n\tdisable = \"$plugins\"#" \
        -e "s#^transports: {#transports: {\n\tdisable = \"$transports\"#" \
        -e "s#^loggers: {#loggers: {\n\tdisable = \"libjanus_jsonlog.so\"#" \
        -e "s#^nat: {#nat: {\n\tice_enforce_list = \"$ADDR\"\n\tignore_mdns = true#" \
        "$dir/janus.jcfg"
    grep -q "ice_enforce_list = \"$ADDR\"" "$dir/janus.jcfg" || die "could not set nat.ice_enforce_list in $dir/janus.jcfg"
    if [ "$loops" != 0 ]; then
        sed -i -e "s#^general: {#general: {\n\tevent_loops = $loops#" "$dir/janus.jcfg"
        grep -q "^\s*event_loops = $loops" "$dir/janus.jcfg" || die "could not set general.event_loops in $dir/janus.jcfg"
    fi
    if [ -n "$workers" ]; then
        sed -i -e "s#^media: {#media: {\n\tmedia_workers = $workers#" "$dir/janus.jcfg"
        grep -q "^\s*media_workers = $workers" "$dir/janus.jcfg" || die "could not set media.media_workers in $dir/janus.jcfg"
    fi
    if [ "$FANOUT" = 1 ]; then
        printf 'general: {\n\tenabled = true\n}\n' > "$dir/jano.plugin.fanout.jcfg"
    fi
    cat > "$dir/janus.transport.websockets.jcfg" <<EOF
general: {
	json = "compact"
	ws = true
	ws_port = $WS_PORT
	ws_ip = "127.0.0.1"
	wss = false
}
admin: {
	admin_ws = false
	admin_wss = false
}
cors: {
}
EOF
}

# Janus runs are named `janus` (its default configuration, the baseline) and `janus-el<N>`
# (`event_loops = N`); any other name is the --server command.
loops_of() { # name
    case "$1" in
        janus-el*) echo "${1#janus-el}" ;;
        *) echo 0 ;;
    esac
}

start_server() { # name run
    local name=$1 run=$2 dir="$TMP/$1-$2-conf" cmd workers=""
    stop_server
    case "$name" in
        janus|janus-el*) ;;
        *) workers=$MEDIA_WORKERS ;;
    esac
    make_conf "$dir" "$(loops_of "$name")" "$workers"
    case "$name" in
        janus|janus-el*) cmd="$JANUS_BIN -F $dir -C $dir/janus.jcfg -d $DEBUG_LEVEL -o" ;;
        *) cmd="${SERVER_CMD//\{cfg\}/$dir}" ;;
    esac
    # `ip netns exec`, nice, taskset and `sh -c exec` all exec: $! is the server's own pid.
    ip netns exec "$NS" nice -n "$NICE" taskset -c "$SERVER_CPU" sh -c "exec $cmd" \
        >"$TMP/$name-$run.log" 2>&1 &
    SERVER_PID=$!
    if ! in_ns "$LOAD_BIN" ping --transport ws --url "ws://127.0.0.1:$WS_PORT" --wait 20 >&2; then
        tail -20 "$TMP/$name-$run.log" >&2
        die "$name did not answer on ws://127.0.0.1:$WS_PORT (in $NS) within 20 s"
    fi
    sleep 1
    log "$name started (pid $SERVER_PID, CPUs $(taskset -cp "$SERVER_PID" | sed 's/.*: //')): $cmd"
}

media() { # label args...
    local label=$1 out rc=0
    shift
    out=$(in_ns nice -n "$NICE" taskset -c "$LOAD_CPU" "$LOAD_BIN" media \
        --url "ws://127.0.0.1:$WS_PORT" --bind-ip "$ADDR" --server-pid "$SERVER_PID" \
        --label "$label" --audio-pps "$AUDIO_PPS" --video-pps "$VIDEO_PPS" \
        --video-bytes "$VIDEO_BYTES" --duration "$DURATION" --warmup "$WARMUP" \
        $([ "$FANOUT" = 1 ] && echo --fanout) $([ "$VIDEOROOM" = 1 ] && echo --videoroom) \
        $([ "$AUDIOBRIDGE" = 1 ] && echo --audiobridge) \
        $([ -n "$ROOM_SIZE" ] && echo --room-size "$ROOM_SIZE") "$@" --json) || rc=$?
    if [ -z "$out" ]; then
        log "jano-load media failed for $label (exit $rc, no report)"
        return 0
    fi
    echo "$out" >> "$RESULTS"
    [ $rc -eq 0 ] || log "jano-load media reported errors for $label (exit $rc)"
}

run_server() { # name
    local name=$1
    start_server "$name" fixed
    log "$name: $PEERS peers, ${DURATION}s (+${WARMUP}s warm-up)"
    media "$name" --peers "$PEERS"
    kill -0 "$SERVER_PID" 2>/dev/null || log "$name exited during the run (see $TMP/$name-fixed.log)"
    if [ "$FIND_MAX" = 1 ]; then
        start_server "$name" max
        log "$name: find-max over $STEPS peers"
        media "$name" --find-max --steps "$STEPS"
        kill -0 "$SERVER_PID" 2>/dev/null || log "$name exited during find-max (see $TMP/$name-max.log)"
    fi
    stop_server
}

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$RUN_JANUS" = 1 ]; then
    for n in $JANUS_LOOPS; do
        if [ "$n" = 0 ]; then run_server janus; else run_server "janus-el$n"; fi
    done
fi
[ -n "$SERVER_CMD" ] && run_server "$LABEL"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# Display names: the JSON reports keep `janus` (the baseline the report compares against) and
# `janus-el<N>`; the table names them after the Janus version and configuration.
# (`janus --version` exits with 1 after printing it.)
JANUS_NAME="Janus $({ "$JANUS_BIN" --version 2>/dev/null || true; } | sed -n 's/^Janus version: .*(\(.*\)).*/\1/p' | head -1)"
[ "$JANUS_NAME" != "Janus " ] || JANUS_NAME="Janus"
display_names() {
    sed -E -e "s/^\| janus \|/| $JANUS_NAME |/" \
        -e "s/^\| janus-el([0-9]+) \|/| $JANUS_NAME (event_loops=\1) |/" \
        -e "s/^\* janus /* $JANUS_NAME /" \
        -e "s/^\* janus-el([0-9]+) /* $JANUS_NAME (event_loops=\1) /"
}

# Per-run details that the table leaves out (load-tool CPU: near 100 % means the tool, not the
# server, was the limit; errors; echo RTT).
details() {
    command -v jq >/dev/null || return 0
    jq -r '(if .mode == "media-max" then .steps[] else . end)
        | ((.plugin // "echotest") != "echotest") as $fwd
        | "* \(.label) \(.peers) peers\(if $fwd then " (\(.rooms) room(s), \(.subscribers_connected) subscribers up)" else "" end): loss \(.loss_pct) % (worst \(if $fwd then "subscriber" else "peer" end) \(.worst_peer_loss_pct) %), \(if .plugin == "audiobridge" then "mix arrival jitter" elif $fwd then "one-way latency" else "echo RTT" end) p50/p90/p99 \(.echo_rtt_ms.p50_ms)/\(.echo_rtt_ms.p90_ms)/\(.echo_rtt_ms.p99_ms) ms\(if .mouth_to_ear_ms then ", mouth to ear p50/p99 \(.mouth_to_ear_ms.p50_ms)/\(.mouth_to_ear_ms.p99_ms) ms (\(.mouth_to_ear_ms.count) bursts)" else "" end)\(if $fwd then ", server RSS \((.server.rss_bytes // 0) / 1048576 | floor) MB (\(.server.rss_kb_per_subscriber // 0 | floor) KB and \(.server.threads_per_subscriber) threads per subscriber, \(.server.threads) threads), \(.keyframes_sent) keyframes sent, \(.keyframe_requests) PLI/FIR" else "" end), server \((.server.cpu_utilisation // 0) * 100 | floor) % of a core (CPUs \(.server.cpus_allowed)), load tool \(.load_tool_cpu_utilisation * 100 | floor) % of a core, \(.peers_connected)/\(.peers) connected, \(.errors) errors\(if .errors > 0 then ": " + ([.error_kinds[] | "\(.count)× \(.error)"] | join("; ")) else "" end)"' "$RESULTS"
    jq -r 'select(.mode == "media-max") | "* \(.label) max peers at < \(.max_loss_pct) % loss: \(.max_peers_ok // "none") (stopped by: \(.stopped_by))"' "$RESULTS"
}

{
    echo "## Media benchmark"
    echo
    echo "\`$CMDLINE\` — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $LOAD_START → $LOAD_END"
    echo
    if [ "$AUDIOBRIDGE" = 1 ]; then
        if [ -n "$ROOM_SIZE" ]; then groups="groups of $ROOM_SIZE peers, each its own room"; else groups="one room of all the peers"; fi
        echo "* Each peer: a str0m 0.25 PeerConnection (RTP mode) on the AudioBridge (janus.plugin.audiobridge, rooms at its default 16 kHz) over WebSockets, $groups; every peer sends real Opus (48 kHz mono, 20 ms frames) at $AUDIO_PPS packets/s and no video — the first of each room a 440 Hz tone (the talker), the others encoded silence (listeners); forwarded = mixed packets the peers got back (one per 20 ms is due); loss = 1 − mixed packets received / packets sent in the ${DURATION} s window (after ${WARMUP} s warm-up); latency = how far the gaps between two mixed packets are from 20 ms (arrival jitter, which includes the mixer's tick jitter)."
    elif [ "$VIDEOROOM" = 1 ] || [ "$FANOUT" = 1 ]; then
        if [ "$VIDEOROOM" = 1 ]; then where="the VideoRoom (janus.plugin.videoroom)"; else where="jano.plugin.fanout"; fi
        if [ -n "$ROOM_SIZE" ]; then groups="groups of $ROOM_SIZE peers, each its own room: 1 publisher → $((ROOM_SIZE - 1)) subscribers"; else groups="one room: peer 0 publishes, the other N − 1 subscribe"; fi
        echo "* Each peer: a str0m 0.25 PeerConnection (RTP mode) on $where over WebSockets, $groups. The publisher sends one Opus and one VP8 m-line, $AUDIO_PPS + $VIDEO_PPS packets/s (100- and $VIDEO_BYTES-byte payloads; VP8 keyframe first, every 2 s and on PLI/FIR); forwarded = packets the subscribers got; loss = publisher packets of the ${DURATION} s window (after ${WARMUP} s warm-up) that a connected subscriber never got; latency = one-way publisher → subscriber. RSS and threads per subscriber = growth of the server's RSS / threads over the idle server, divided by the subscribers."
    else
        echo "* Each peer: a str0m 0.25 PeerConnection (RTP mode) on the EchoTest over WebSockets, one Opus and one VP8 m-line, $AUDIO_PPS + $VIDEO_PPS packets/s (100- and $VIDEO_BYTES-byte payloads); loss = packets sent in the ${DURATION} s window that never came back (after ${WARMUP} s warm-up)."
    fi
    [ -z "$MEDIA_WORKERS" ] || echo "* $LABEL ran with \`media_workers = $MEDIA_WORKERS\` in janus.jcfg's \`media\` section."
    echo "* Server pinned to CPU $SERVER_CPU, jano-load to CPU $LOAD_CPU, both in a private network namespace (ICE on $ADDR). CPU-s per 1k echoed (forwarded) = server CPU time in the window / echoed (forwarded) packets × 1,000."
    echo "* Max peers: steps $STEPS, each with fresh peers on a freshly started server, until loss ≥ 0.5 % or any error."
    if [ "$RUN_JANUS" = 1 ]; then
        echo "* $JANUS_NAME runs with its default configuration (one event loop per handle) and, where labelled \"(event_loops=N)\", with \`event_loops = N\` in janus.jcfg's \`general\` section (a fixed pool of N loop threads); the ratio column compares against the default configuration."
    fi
    echo
    "$LOAD_BIN" report "$RESULTS" | display_names
    echo "Runs:"
    echo
    details | display_names
} > "$TMP/table.md"
cat "$TMP/table.md"
if [ -n "$OUT" ]; then
    { cat "$TMP/table.md"; echo; echo '```'; cat "$RESULTS"; echo '```'; } > "$OUT"
    log "wrote $OUT"
fi
