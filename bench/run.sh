#!/usr/bin/env bash
# Compares jano and the real Janus 1.1.2 (Debian package) in one run and writes BENCHMARKS.md.
#
#   bench/run.sh [--quick] [--duration S] [--warmup S] [--clients "1 16 64"]
#                [--transports "http ws"] [--servers "janus janus-el2 jano"] [--sessions N]
#                [--idle-transports "ws http"]
#                [--extra-transports "rabbitmq mqtt nanomsg unix-seqpacket unix-dgram"]
#                [--nice N] [--no-build] [--out FILE] [--keep]
#
# --quick: 1 s warm-up + 3 s per run and 1,000 idle sessions, for trying it out.
# --servers: "janus" is Janus with its defaults (a thread per handle); "janus-el2" is the same
#           Janus with `event_loops = 2` in janus.jcfg (its better configuration).
# --nice N: run servers and load tool with that niceness (e.g. -10 on a machine shared with
#           other work, so that builds running beside it disturb the measurement less).
# --extra-transports: the other transports, each measured on its own freshly started server
#           configured with that transport only ("" skips them). Brokers: RabbitMQ on
#           127.0.0.1:5672 (guest/guest) and an MQTT broker on 127.0.0.1:1883 must be running.
#
# Layout on a 2-core machine: the server under test runs pinned to CPU 0 (taskset -c 0), the load
# tool to CPU 1 (taskset -c 1). One server at a time, each started fresh for its cycle matrix and
# again fresh for each idle-RSS measurement. Everything listens on 127.0.0.1 (or on Unix sockets
# in a private temporary directory) only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMDLINE="bench/run.sh $*"

DURATION=20
WARMUP=3
CLIENTS="1 16 64"
TRANSPORTS="http ws"
EXTRA_TRANSPORTS="rabbitmq mqtt nanomsg unix-seqpacket unix-dgram"
SERVERS="janus jano"
SESSIONS=10000
IDLE_TRANSPORTS="ws http"
SETTLE=3
BUILD=1
KEEP=0
OUT="$ROOT/BENCHMARKS.md"
DEBUG_LEVEL=2   # errors only, for both servers
NICE=0

JANUS_BIN="${JANUS_BIN:-/usr/bin/janus}"
JANUS_LIBDIR="${JANUS_LIBDIR:-/usr/lib/x86_64-linux-gnu/janus}"
JANUS_HTTP_PORT="${JANUS_HTTP_PORT:-28088}"
JANUS_WS_PORT="${JANUS_WS_PORT:-28188}"
JANO_HTTP_PORT="${JANO_HTTP_PORT:-18088}"
JANO_WS_PORT="${JANO_WS_PORT:-18188}"
AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
MQTT_URL="${MQTT_URL:-mqtt://127.0.0.1:1883}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) DURATION=3; WARMUP=1; SESSIONS=1000; SETTLE=2 ;;
        --duration) DURATION="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --clients) CLIENTS="$2"; shift ;;
        --transports) TRANSPORTS="$2"; shift ;;
        --servers) SERVERS="$2"; shift ;;
        --sessions) SESSIONS="$2"; shift ;;
        --idle-transports) IDLE_TRANSPORTS="$2"; shift ;;
        --extra-transports) EXTRA_TRANSPORTS="$2"; shift ;;
        --nice) NICE="$2"; shift ;;
        --no-build) BUILD=0 ;;
        --out) OUT="$2"; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

log() { echo "[bench $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

TMP="$(mktemp -d /tmp/jano-bench.XXXXXX)"
RESULTS="$TMP/results.jsonl"
: > "$RESULTS"
SERVER_PID=""
# Unique broker queue/topic names and MQTT client ids for this run.
RUN_ID="$(date +%s)-$$"
NOTES="$TMP/notes.md"   # odd things seen during the run, copied into the report
: > "$NOTES"
note() { log "$*"; echo "* $*" >> "$NOTES"; }
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# Best effort: remove this run's RabbitMQ queues if any outlived their servers.
cleanup_queues() {
    command -v rabbitmqctl >/dev/null || return 0
    local q
    for q in $(timeout 30 rabbitmqctl -q list_queues name 2>/dev/null | grep -F "jano-bench-$RUN_ID" || true); do
        timeout 30 rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
    done
}

cleanup() {
    local rc=$?
    stop_server
    [[ " $EXTRA_TRANSPORTS " == *" rabbitmq "* ]] && cleanup_queues
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        log "work files kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v taskset >/dev/null || die "taskset not found (util-linux)"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs; server and load tool will share one"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_ports() { # name pid port...
    local name=$1 pid=$2; shift 2
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$TMP/$name.log" >&2; die "$name exited during start-up"; }
        local ok=1
        for p in "$@"; do port_busy "$p" || ok=0; done
        [ $ok = 1 ] && return 0
        sleep 0.1
    done
    tail -20 "$TMP/$name.log" >&2
    die "$name did not listen on $* within 20 s"
}

# A copy of /etc/janus for one server: only the HTTP and WS transports (on 127.0.0.1, given
# ports, compact JSON), only the echotest plugin, no admin, no event handlers, no loggers.
# A fourth argument names the transport libraries to keep instead (e.g. "libjanus_mqtt.so").
make_conf() { # dir http_port ws_port [kept transport .so ...]
    local dir=$1 http=$2 ws=$3
    shift 3
    local keep=("$@")
    [ ${#keep[@]} -gt 0 ] || keep=(libjanus_http.so libjanus_websockets.so)
    mkdir -p "$dir"
    cp -r /etc/janus/. "$dir/"
    local plugins transports k
    local grep_args=()
    for k in "${keep[@]}"; do grep_args+=(-e "^${k//./\\.}\$"); done
    plugins=$(cd "$JANUS_LIBDIR/plugins" && ls ./*.so | sed 's#^\./##' | grep -v '^libjanus_echotest\.so$' | paste -sd, -)
    transports=$(cd "$JANUS_LIBDIR/transports" && ls ./*.so | sed 's#^\./##' \
        | grep -v "${grep_args[@]}" | paste -sd, -)
    sed -i \
        -e "s#^\(\s*configs_folder = \)\"[^\"]*\"#\1\"$dir\"#" \
        -e "s#^\(\s*debug_level = \)[0-9]*#\1$DEBUG_LEVEL#" \
        -e "s#^plugins: {#plugins: {\n\tdisable = \"$plugins\"#" \
        -e "s#^transports: {#transports: {\n\tdisable = \"$transports\"#" \
        -e "s#^loggers: {#loggers: {\n\tdisable = \"libjanus_jsonlog.so\"#" \
        "$dir/janus.jcfg"
    cat > "$dir/janus.transport.http.jcfg" <<EOF
general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = $http
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
cors: {
}
EOF
    cat > "$dir/janus.transport.websockets.jcfg" <<EOF
general: {
	json = "compact"
	ws = true
	ws_port = $ws
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

start_server() { # name
    local name=$1
    stop_server
    for p in $(server_ports "$name"); do
        port_busy "$p" && die "port $p is already in use (set ${name^^}_HTTP_PORT / ${name^^}_WS_PORT)"
    done
    case "$name" in
        janus|janus-el2)
            make_conf "$TMP/janus-conf" "$JANUS_HTTP_PORT" "$JANUS_WS_PORT"
            if [ "$name" = janus-el2 ]; then
                sed -i -e "s#^general: {#general: {\n\tevent_loops = 2#" "$TMP/janus-conf/janus.jcfg"
            fi
            # Plugins/transports are limited by the disable lists; folders stay the packaged ones.
            nice -n "$NICE" taskset -c "$SERVER_CPU" "$JANUS_BIN" -F "$TMP/janus-conf" -C "$TMP/janus-conf/janus.jcfg" \
                -d "$DEBUG_LEVEL" -o >"$TMP/janus.log" 2>&1 &
            SERVER_PID=$!
            wait_ports janus "$SERVER_PID" "$JANUS_HTTP_PORT" "$JANUS_WS_PORT"
            ;;
        jano)
            make_conf "$TMP/jano-conf" "$JANO_HTTP_PORT" "$JANO_WS_PORT"
            nice -n "$NICE" taskset -c "$SERVER_CPU" "$JANO_BIN" -F "$TMP/jano-conf" -d "$DEBUG_LEVEL" \
                --http-port "$JANO_HTTP_PORT" --ws-port "$JANO_WS_PORT" >"$TMP/jano.log" 2>&1 &
            SERVER_PID=$!
            wait_ports jano "$SERVER_PID" "$JANO_HTTP_PORT" "$JANO_WS_PORT"
            ;;
        *) die "unknown server $name" ;;
    esac
    sleep 1
    log "$name started (pid $SERVER_PID)"
}

server_ports() {
    case "$1" in
        janus|janus-el2) echo "$JANUS_HTTP_PORT $JANUS_WS_PORT" ;;
        jano) echo "$JANO_HTTP_PORT $JANO_WS_PORT" ;;
    esac
}

url_for() { # server transport
    local http ws
    read -r http ws <<<"$(server_ports "$1")"
    case "$2" in
        http) echo "http://127.0.0.1:$http/janus" ;;
        ws) echo "ws://127.0.0.1:$ws" ;;
    esac
}

load() { # args... ; appends the JSON report, shows the human summary on stderr
    local out rc=0
    out=$(nice -n "$NICE" taskset -c "$LOAD_CPU" "$LOAD_BIN" "$@" --json) || rc=$?
    if [ -z "$out" ]; then
        note "jano-load failed (exit $rc, no report): \`$*\`"
        return 0
    fi
    echo "$out" >> "$RESULTS"
    [ $rc -eq 0 ] || log "jano-load reported errors (exit $rc): $*"
    echo "$out" | head -c 400 >&2; echo >&2
}

# ---------------------------------------------------------------- the other transports
# Each transport gets its own freshly started server with only that transport enabled (Janus
# allows one Unix socket type and one MQTT version per process, and its Nanomsg transport needs a
# special start). Both servers read the same .jcfg files; queue/topic names are unique per run and
# per server, so nothing one server left in a broker can reach the other.

extra_url() { # server transport
    case "$2" in
        rabbitmq) echo "$AMQP_URL" ;;
        mqtt) echo "$MQTT_URL" ;;
        nanomsg) echo "ipc://$TMP/$1-nanomsg.ipc" ;;
        unix-seqpacket) echo "$TMP/$1-seqpacket.sock" ;;
        unix-dgram) echo "$TMP/$1-dgram.sock" ;;
    esac
}

extra_names() { # server -> "to from" queue/topic names
    echo "jano-bench-$RUN_ID-$1-to jano-bench-$RUN_ID-$1-from"
}

# Extra jano-load arguments for a transport (queue/topic names).
extra_args() { # server transport
    local to from
    read -r to from <<<"$(extra_names "$1")"
    case "$2" in
        rabbitmq) echo "--to-janus $to --from-janus $from --amqp-delete-reply-queue" ;;
        mqtt) echo "--to-janus $to --from-janus $from" ;;
    esac
}

broker_pid() { # transport -> pid of the broker listening on its port (for its CPU time)
    local port
    case "$1" in
        rabbitmq) port=${AMQP_PORT:-5672} ;;
        mqtt) port=${MQTT_PORT:-1883} ;;
        *) return 0 ;;
    esac
    ss -ltnpH "sport = :$port" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

make_extra_conf() { # dir server transport
    local dir=$1 server=$2 t=$3 so to from
    read -r to from <<<"$(extra_names "$server")"
    case "$t" in
        rabbitmq) so=libjanus_rabbitmq.so ;;
        mqtt) so=libjanus_mqtt.so ;;
        nanomsg) so=libjanus_nanomsg.so ;;
        unix-*) so=libjanus_pfunix.so ;;
        *) die "unknown transport $t" ;;
    esac
    make_conf "$dir" 0 0 "$so"
    case "$t" in
        rabbitmq) cat > "$dir/janus.transport.rabbitmq.jcfg" <<EOF
general: {
	enabled = true
	json = "compact"
	host = "127.0.0.1"
	port = 5672
	username = "guest"
	password = "guest"
	to_janus = "$to"
	from_janus = "$from"
	# The incoming queue disappears with the server (jano-load removes the outgoing one).
	queue_autodelete = true
}
admin: {
	admin_enabled = false
}
EOF
        ;;
        mqtt) cat > "$dir/janus.transport.mqtt.jcfg" <<EOF
general: {
	enabled = true
	json = "compact"
	url = "tcp://127.0.0.1:1883"
	client_id = "jano-bench-$RUN_ID-$server"
	# No persistent session left in the broker after the run.
	cleansession = 1
	subscribe_topic = "$to"
	publish_topic = "$from"
}
admin: {
	admin_enabled = false
}
status: {
	enabled = false
}
EOF
        ;;
        nanomsg) cat > "$dir/janus.transport.nanomsg.jcfg" <<EOF
general: {
	enabled = true
	json = "compact"
	mode = "bind"
	address = "$(extra_url "$server" nanomsg)"
}
admin: {
	admin_enabled = false
}
EOF
        ;;
        unix-seqpacket|unix-dgram)
            local type=SOCK_SEQPACKET
            [ "$t" = unix-dgram ] && type=SOCK_DGRAM
            cat > "$dir/janus.transport.pfunix.jcfg" <<EOF
general: {
	enabled = true
	json = "compact"
	path = "$(extra_url "$server" "$t")"
	type = "$type"
}
admin: {
	admin_enabled = false
}
EOF
        ;;
    esac
}

# Starts $server with only transport $t; returns non-zero (after a note) if it never answers.
start_extra() { # server transport
    local name=$1 t=$2 dir="$TMP/$1-$2-conf" log="$TMP/$1-$2.log"
    stop_server
    make_extra_conf "$dir" "$name" "$t"
    case "$name" in
        janus)
            if [ "$t" = nanomsg ]; then
                # Janus 1.1.2's Nanomsg poll thread dies at start-up unless the start is
                # serialised: real-time priority on one CPU, normal scheduling once it listens.
                local ipc="$TMP/$name-nanomsg.ipc"
                nice -n "$NICE" chrt -f 1 taskset -c "$SERVER_CPU" "$JANUS_BIN" -F "$dir" -C "$dir/janus.jcfg" \
                    -d "$DEBUG_LEVEL" -o >"$log" 2>&1 &
                SERVER_PID=$!
                for _ in $(seq 1 200); do
                    [ -S "$ipc" ] && break
                    kill -0 "$SERVER_PID" 2>/dev/null || break
                    sleep 0.1
                done
                chrt -a -o -p 0 "$SERVER_PID" >/dev/null 2>&1 || true
                if ! [ -S "$ipc" ]; then
                    note "janus nanomsg: no $ipc within 20 s even under chrt -f 1 (transport dead); skipped"
                    return 1
                fi
                if ps -L -o cls= -p "$SERVER_PID" | grep -qv TS; then
                    note "janus nanomsg: some threads still not SCHED_OTHER after chrt -a -o -p 0"
                fi
            else
                nice -n "$NICE" taskset -c "$SERVER_CPU" "$JANUS_BIN" -F "$dir" -C "$dir/janus.jcfg" \
                    -d "$DEBUG_LEVEL" -o >"$log" 2>&1 &
                SERVER_PID=$!
            fi
            ;;
        jano)
            nice -n "$NICE" taskset -c "$SERVER_CPU" "$JANO_BIN" -F "$dir" -d "$DEBUG_LEVEL" >"$log" 2>&1 &
            SERVER_PID=$!
            ;;
        *) die "unknown server $name" ;;
    esac
    # shellcheck disable=SC2046
    if ! nice -n "$NICE" taskset -c "$LOAD_CPU" "$LOAD_BIN" ping --transport "$t" --url "$(extra_url "$name" "$t")" \
            $(extra_args "$name" "$t") --wait 20 >&2; then
        tail -20 "$log" >&2
        note "$name $t: no answer to ping within 20 s; skipped"
        return 1
    fi
    sleep 1
    log "$name started with $t only (pid $SERVER_PID)"
}

# ---------------------------------------------------------------- build
cd "$ROOT"
if [ "$BUILD" = 1 ]; then
    log "building release binaries"
    if [[ " $SERVERS " == *" jano "* ]]; then
        cargo build --release -p jano-load -p jano >&2
    else
        cargo build --release -p jano-load >&2
    fi
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LOAD_BIN="$TARGET_DIR/release/jano-load"
JANO_BIN="${JANO_BIN:-$TARGET_DIR/release/jano}"
[ -x "$LOAD_BIN" ] || die "$LOAD_BIN not found"
if [[ " $SERVERS " == *" jano "* ]]; then [ -x "$JANO_BIN" ] || die "$JANO_BIN not found"; fi
if [[ " $SERVERS " == *" janus "* ]]; then [ -x "$JANUS_BIN" ] || die "$JANUS_BIN not found"; fi

# ---------------------------------------------------------------- runs
for server in $SERVERS; do
    [ -n "$TRANSPORTS$IDLE_TRANSPORTS" ] || break
    start_server "$server"
    for transport in $TRANSPORTS; do
        for n in $CLIENTS; do
            log "$server $transport N=$n: ${WARMUP}s warm-up + ${DURATION}s"
            load cycles --label "$server" --transport "$transport" --url "$(url_for "$server" "$transport")" \
                --clients "$n" --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SERVER_PID"
            sleep 2   # let the server reap what the last run left (e.g. Janus's 2 s session watchdog)
        done
    done
    for transport in $IDLE_TRANSPORTS; do
        start_server "$server"   # fresh process: RSS not inflated by the cycle runs
        log "$server idle $transport: $SESSIONS sessions"
        load idle --label "$server" --transport "$transport" --url "$(url_for "$server" "$transport")" \
            --sessions "$SESSIONS" --server-pid "$SERVER_PID" --settle "$SETTLE"
    done
    stop_server
done

# ---------------------------------------------------------------- other transports
for server in $SERVERS; do
    for transport in $EXTRA_TRANSPORTS; do
        if ! start_extra "$server" "$transport"; then
            stop_server
            continue
        fi
        bpid=$(broker_pid "$transport")
        for n in $CLIENTS; do
            log "$server $transport N=$n: ${WARMUP}s warm-up + ${DURATION}s"
            # shellcheck disable=SC2046
            load cycles --label "$server" --transport "$transport" --url "$(extra_url "$server" "$transport")" \
                $(extra_args "$server" "$transport") ${bpid:+--broker-pid "$bpid"} \
                --clients "$n" --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SERVER_PID"
            sleep 2
        done
        stop_server
    done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- report
janus_version=$("$JANUS_BIN" --version 2>/dev/null | head -1 || true)
jano_version=$( [ -x "$JANO_BIN" ] && "$JANO_BIN" --version 2>/dev/null | head -1 || echo "n/a")
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "uncommitted")
# The server's sources (the load tool's own changes do not make jano different).
if [ -n "$(git -C "$ROOT" status --porcelain -- crates ':(exclude)crates/load' Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes"
fi
if [ -n "$(git -C "$ROOT" status --porcelain -- crates/load 2>/dev/null)" ]; then
    commit="$commit; jano-load with uncommitted changes"
fi
pkg_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
LOAD_END="${LOAD_END:-$(cut -d' ' -f1-3 /proc/loadavg)}"
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
{
    echo "# Benchmarks: jano vs Janus 1.1.2"
    echo
    echo "Generated by \`$CMDLINE\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "* Machine: $(nproc) CPUs, $cpu_model, $(uname -sr), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
    echo "* Janus: $janus_version (Debian package, \`$JANUS_BIN\`); jano: $jano_version (commit $commit, release build); rustc: $(rustc --version 2>/dev/null || echo n/a)"
    echo "* Server pinned to CPU $SERVER_CPU (\`taskset -c $SERVER_CPU\`), load tool (\`jano-load\`) to CPU $LOAD_CPU; one server at a time, on 127.0.0.1; niceness $NICE. The last column of the cycles table shows how busy each CPU was (by anything, including other processes) and the hypervisor steal."
    echo "* HTTP and WS: both servers get the same configuration (a copy of /etc/janus): HTTP + WebSockets transports only, compact JSON, only the EchoTest plugin, no admin API, no event handlers, log level $DEBUG_LEVEL (\`-d $DEBUG_LEVEL\`). Janus runs with its defaults otherwise (one event-loop thread per handle)."
    echo "* Cycle = \`create\` → \`attach janus.plugin.echotest\` → \`message {\"audio\":true}\` (expect \`ack\`, then the \`event\` with the same transaction and \`result:\"ok\"\`: HTTP via long poll \`GET /janus/<sid>?maxev=1\`, WS on the socket) → \`detach\` → \`destroy\`; every answer is validated, failed cycles count as errors. N clients loop concurrently (HTTP: one keep-alive connection pool; WS: one socket per client). ${WARMUP} s warm-up, then ${DURATION} s measured."
    echo "* Server CPU = utime+stime from /proc/<pid>/stat over the measured window. Latency p50/p99 = all synchronous requests (create, attach, message→ack, detach, destroy); event p99 = message sent → plugin event received. If the load tool's CPU is near 100 %, cycles/s is bounded by the client; the CPU-per-cycle figures remain comparable."
    if [ -n "$EXTRA_TRANSPORTS" ]; then
        echo "* Other transports ($EXTRA_TRANSPORTS): each on a freshly started server whose configuration has only that transport (same copy of /etc/janus, compact JSON, echotest only, log level $DEBUG_LEVEL), the same \`.jcfg\` files for both servers (jano reads Janus's keys): RabbitMQ \`to_janus\`/\`from_janus\` queues on the default exchange (unique names per run, \`queue_autodelete = true\`, other keys default: no exchange, heartbeat 0); MQTT 3.1.1 \`subscribe_topic\`/\`publish_topic\` (QoS 1 both ways, Janus's default; \`cleansession = 1\`, unique client id); Nanomsg \`ipc://\` pair socket in bind mode; pfunix \`SOCK_SEQPACKET\` and \`SOCK_DGRAM\` sockets (a separate server process each: Janus allows one Unix socket type per process). Janus's Nanomsg transport only comes up when Janus is started under \`chrt -f 1 taskset -c $SERVER_CPU\`; normal scheduling is restored for all its threads (\`chrt -a -o -p 0\`) as soon as its socket exists, before any measurement."
        echo "* Clients of the other transports: RabbitMQ (\`lapin\`) and MQTT (\`rumqttc\`, QoS 1) use **one** broker connection for all N logical clients, as Janus's transports are one client each: requests carry a per-client transaction prefix, answers and events are routed back by it (RabbitMQ requests also set \`correlation_id\`); Nanomsg likewise multiplexes N clients over one pair v0 connection; Unix SEQPACKET uses one connection per client, Unix DGRAM one socket bound to its own path per client. Brokers: RabbitMQ $(pkg_version rabbitmq-server) at 127.0.0.1:5672, Mosquitto $(pkg_version mosquitto) at 127.0.0.1:1883, not pinned and shared with the machine; their CPU is **not** in the server CPU column, it is shown separately (\`broker CPU-s per 1,000 cycles\`, from /proc of the broker process; anything else using the broker at the time counts too)."
    fi
        if [[ " $EXTRA_TRANSPORTS " == *" mqtt "* ]]; then
            echo "* MQTT latency is set by TCP delayed ACKs, not by the servers' work: the broker's sockets have Nagle's algorithm on (Mosquitto's default \`set_tcp_nodelay false\`) and neither server's MQTT client sets TCP_NODELAY, so a small publish that follows another one on the same connection waits for the peer's delayed ACK (~44 ms; two such waits per request with this broker). With one client that caps both servers at about 2.3 cycles/s (88 ms per request); more clients share the waits. The load tool's own MQTT socket has TCP_NODELAY. At these rates the CPU figures of the N = 1 rows rest on a few clock ticks (10 ms each)."
        fi
    echo "* Load average (1/5/15 min) at the start: $LOAD_START; at the end: $LOAD_END (2 CPUs; other jobs share this machine)."
    echo "* Idle: $SESSIONS sessions with one echotest handle each (WS: over 100 sockets; HTTP: 100 concurrent workers, kept alive with \`keepalive\` requests), RSS (VmRSS) of a freshly started server before and after opening them, ${SETTLE} s settle each."
    echo
    if [ -s "$NOTES" ]; then
        echo "### Notes from the run"
        echo
        cat "$NOTES"
        echo
    fi
    "$LOAD_BIN" report "$RESULTS"
    echo "Raw reports (\`jano-load ... --json\`, one per line):"
    echo
    echo '```'
    cat "$RESULTS"
    echo '```'
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT"
