#!/usr/bin/env bash
# Run the real-client suite (run.sh) against the REAL Janus 1.1.2 (`/usr/bin/janus`), as a
# reference: proves the tests themselves are right before they are pointed at jano.
#
# Starts janus in the foreground (-F <tmp config folder>) bound to 127.0.0.1 only, on the same
# ports the lead uses for jano:
#   HTTP  18088 (/janus)   admin HTTP 17088 (/admin)
#   WS    18188            admin WS   17188          admin secret "janusoverlord"
# Only the HTTP and WebSockets transports and the EchoTest and VideoRoom plugins are loaded
# (VideoRoom with the sample janus.plugin.videoroom.jcfg: rooms 1234 and 5678, no admin_key).
# Ports can be overridden with JANUS_HTTP_PORT, JANUS_WS_PORT, JANUS_ADMIN_HTTP_PORT,
# JANUS_ADMIN_WS_PORT. Extra arguments are passed to run.sh (e.g. a single test file).
#
# Usage: tests/clients/with-janus.sh [test files...]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HTTP_PORT="${JANUS_HTTP_PORT:-18088}"
WS_PORT="${JANUS_WS_PORT:-18188}"
ADMIN_HTTP_PORT="${JANUS_ADMIN_HTTP_PORT:-17088}"
ADMIN_WS_PORT="${JANUS_ADMIN_WS_PORT:-17188}"
SECRET="janusoverlord"

if ! command -v janus >/dev/null 2>&1; then
  echo "with-janus.sh: installing janus (Debian package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus >/dev/null
fi
JANUS_BIN="$(command -v janus)"

for p in "$HTTP_PORT" "$WS_PORT" "$ADMIN_HTTP_PORT" "$ADMIN_WS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "with-janus.sh: port $p on 127.0.0.1 is already in use; stop whatever listens there" >&2
    exit 2
  fi
done

TMP="$(mktemp -d /tmp/jano-with-janus.XXXXXX)"
JANUS_PID=""
cleanup() {
  local rc=$?
  if [ -n "$JANUS_PID" ] && kill -0 "$JANUS_PID" 2>/dev/null; then
    kill "$JANUS_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$JANUS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$JANUS_PID" 2>/dev/null || true
    wait "$JANUS_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$TMP/janus.log" ]; then
    echo "---- last 60 lines of the janus log ($TMP/janus.log) ----" >&2
    tail -n 60 "$TMP/janus.log" >&2 || true
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CFG="$TMP/etc"
cp -r /etc/janus "$CFG"

# --- janus.jcfg: core -------------------------------------------------------------------------
# Load only the HTTP and WebSockets transports and only the EchoTest, VideoRoom and Streaming
# plugins; no loggers.
plugin_disable="$(cd /usr/lib/x86_64-linux-gnu/janus/plugins 2>/dev/null && ls libjanus_*.so 2>/dev/null \
  | grep -Ev '^libjanus_(echotest|videoroom|streaming)\.so$' | paste -sd, -)"
transport_disable="libjanus_rabbitmq.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so"
sed -i \
  -e "s|^\(\s*\)configs_folder = .*|\1configs_folder = \"$CFG\"|" \
  -e "s|^\(\s*\)#disable = \"libjanus_voicemail.so,libjanus_recordplay.so\"|\1disable = \"$plugin_disable\"|" \
  -e "s|^\(\s*\)#disable = \"libjanus_rabbitmq.so\"|\1disable = \"$transport_disable\"|" \
  -e "s|^\(\s*\)#disable = \"libjanus_jsonlog.so\"|\1disable = \"libjanus_jsonlog.so\"|" \
  "$CFG/janus.jcfg"
grep -q "disable = \"$transport_disable\"" "$CFG/janus.jcfg" || { echo "could not edit janus.jcfg transports" >&2; exit 2; }
grep -q "^\s*disable = \"libjanus_" "$CFG/janus.jcfg" || { echo "could not edit janus.jcfg plugins" >&2; exit 2; }
# Make sure the disabled transports would stay off even if loaded (belt and braces).
for t in mqtt rabbitmq nanomsg pfunix; do
  f="$CFG/janus.transport.$t.jcfg"
  [ -f "$f" ] && sed -i -e 's|^\(\s*\)enabled = true|\1enabled = false|' "$f"
done

# --- HTTP transport (+ admin) ------------------------------------------------------------------
sed -i \
  -e "s|^\(\s*\)port = 8088\b.*|\1port = $HTTP_PORT\n\1ip = \"127.0.0.1\"|" \
  -e "s|^\(\s*\)https = true|\1https = false|" \
  -e "s|^\(\s*\)admin_http = false.*|\1admin_http = true|" \
  -e "s|^\(\s*\)admin_port = 7088\b.*|\1admin_port = $ADMIN_HTTP_PORT\n\1admin_ip = \"127.0.0.1\"|" \
  "$CFG/janus.transport.http.jcfg"

# --- WebSockets transport (+ admin) ------------------------------------------------------------
sed -i \
  -e "s|^\(\s*\)ws_port = 8188\b.*|\1ws_port = $WS_PORT\n\1ws_ip = \"127.0.0.1\"|" \
  -e "s|^\(\s*\)wss = true|\1wss = false|" \
  -e "s|^\(\s*\)admin_ws = false.*|\1admin_ws = true|" \
  -e "s|^\(\s*\)admin_ws_port = 7188\b.*|\1admin_ws_port = $ADMIN_WS_PORT\n\1admin_ws_ip = \"127.0.0.1\"|" \
  "$CFG/janus.transport.websockets.jcfg"

grep -q "port = $HTTP_PORT" "$CFG/janus.transport.http.jcfg" || { echo "could not edit http config" >&2; exit 2; }
grep -q "ws_port = $WS_PORT" "$CFG/janus.transport.websockets.jcfg" || { echo "could not edit ws config" >&2; exit 2; }

echo "with-janus.sh: starting $JANUS_BIN -F $CFG (log: $TMP/janus.log)" >&2
# -F config folder; -L log file not used: stdout goes to our log. -o: no colours.
"$JANUS_BIN" -F "$CFG" -C "$CFG/janus.jcfg" -o -d 4 >"$TMP/janus.log" 2>&1 &
JANUS_PID=$!

ready=0
for _ in $(seq 1 100); do
  if ! kill -0 "$JANUS_PID" 2>/dev/null; then
    echo "with-janus.sh: janus exited during start-up" >&2
    exit 1
  fi
  if curl -fsS -m 2 "http://127.0.0.1:$HTTP_PORT/janus/info" >/dev/null 2>&1 \
     && (exec 3<>"/dev/tcp/127.0.0.1/$WS_PORT") 2>/dev/null \
     && (exec 3<>"/dev/tcp/127.0.0.1/$ADMIN_WS_PORT") 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.2
done
[ "$ready" = 1 ] || { echo "with-janus.sh: janus did not become ready" >&2; exit 1; }
echo "with-janus.sh: janus is up (pid $JANUS_PID)" >&2

export JANUS_HTTP_URL="http://127.0.0.1:$HTTP_PORT/janus"
export JANUS_WS_URL="ws://127.0.0.1:$WS_PORT"
export JANUS_ADMIN_HTTP_URL="http://127.0.0.1:$ADMIN_HTTP_PORT/admin"
export JANUS_ADMIN_WS_URL="ws://127.0.0.1:$ADMIN_WS_PORT"
export JANUS_ADMIN_SECRET="$SECRET"
# Tests skip or adapt the checks of Janus 1.1.2 defects that jano fixes (see the tests).
export CLIENT_SERVER_IS_JANUS=1

set +e
"$HERE/run.sh" "$@"
rc=$?
set -e
exit "$rc"
