#!/usr/bin/env bash
# Runs every test of jano: the Rust unit and integration tests, the real-client suites
# (Janode over WebSockets, janus.js in headless Chromium over HTTP and WebSockets) against a
# freshly built jano, and the differential test against the real Janus (skipped with a message
# where the `janus` package cannot be installed).
#
# Usage: scripts/test.sh            (from anywhere; installs what the client tests need)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=never
logdir=$(mktemp -d /tmp/jano-test.XXXXXX)
passed=0
failed=0
stage_fail=0

count_cargo() { # sums "test result: ok. N passed; M failed" lines
  local p f
  p=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$1" | awk '{s+=$4} END {print s+0}')
  f=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$1" | awk '{s+=$6} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
}

echo "== services and client packages"
scripts/services.sh
# AudioBridge links the system's libopus (audiopus finds it through pkg-config): a fresh
# machine gets it here, as `.ci/run` does.
if ! pkg-config --exists opus 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libopus-dev pkg-config) \
    >/dev/null 2>&1 || echo "could not install libopus-dev (AudioBridge needs it to build)"
fi
# jano-pp's tests record with ffmpeg and check with ffprobe; its WebM muxer (libwebm) is C++.
if { ! command -v ffprobe >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1; } && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg g++) \
    >/dev/null 2>&1 || echo "could not install ffmpeg/g++ (jano-pp's tests need them)"
fi
# npm packages for the client suites (and Janode's Unix-socket test run by cargo test)
if [ ! -d tests/clients/node_modules ] || [ tests/clients/package-lock.json -nt tests/clients/node_modules/.package-lock.json ]; then
  (cd tests/clients && npm ci --no-audit --no-fund >/dev/null 2>&1) || echo "npm ci failed"
fi
if [ -f tests/python/requirements.txt ]; then
  python3 -m pip install -q -r tests/python/requirements.txt >/dev/null 2>&1 || echo "pip install failed"
fi

echo "== cargo test (workspace)"
cargo test --workspace --no-fail-fast 2>&1 | tee "$logdir/cargo.log"
rc=${PIPESTATUS[0]}
count_cargo "$logdir/cargo.log"
[ "$rc" -eq 0 ] || { echo "cargo test failed"; stage_fail=1; }

echo "== build jano for the client and differential tests"
cargo build -p jano 2>&1 | tail -2
jano_bin=$(cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/jano
if [ ! -x "$jano_bin" ]; then echo "no jano binary at $jano_bin"; exit 1; fi

# Free loopback ports for this run, so parallel runs and a real Janus never collide.
pick_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
hp=$(pick_port); wp=$(pick_port); ahp=$(pick_port); awp=$(pick_port)
"$jano_bin" --bind 127.0.0.1 --http-port "$hp" --ws-port "$wp" --admin-http-port "$ahp" --admin-ws-port "$awp" \
  --admin-secret janusoverlord -d 3 > "$logdir/jano.log" 2>&1 &
jano_pid=$!
trap 'kill $jano_pid 2>/dev/null; wait $jano_pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$hp/janus/info" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== real clients (Janode, janus.js in Chromium) against jano"
JANUS_HTTP_URL="http://127.0.0.1:$hp/janus" JANUS_WS_URL="ws://127.0.0.1:$wp" \
JANUS_ADMIN_WS_URL="ws://127.0.0.1:$awp" JANUS_ADMIN_SECRET=janusoverlord \
  tests/clients/run.sh 2>&1 | tee "$logdir/clients.log"
rc=${PIPESTATUS[0]}
p=$(grep -Eo '^ℹ pass [0-9]+' "$logdir/clients.log" | awk '{s+=$3} END {print s+0}')
f=$(grep -Eo '^ℹ fail [0-9]+' "$logdir/clients.log" | awk '{s+=$3} END {print s+0}')
passed=$((passed + p)); failed=$((failed + f))
if [ "$rc" -ne 0 ]; then
  echo "client tests failed; jano log:"; tail -50 "$logdir/jano.log"; stage_fail=1
  [ "$f" -gt 0 ] || failed=$((failed + 1))
fi
kill $jano_pid 2>/dev/null; wait $jano_pid 2>/dev/null
trap - EXIT

echo "== media: aiortc, janus.js in Chromium and Janode through EchoTest, in a network namespace"
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1; then
  tests/media/run.sh --server "$jano_bin -F {cfg}" 2>&1 | tee "$logdir/media.log"
  rc=${PIPESTATUS[0]}
  p=$(grep -Eo '^ℹ pass [0-9]+' "$logdir/media.log" | awk '{s+=$3} END {print s+0}')
  f=$(grep -Eo '^ℹ fail [0-9]+' "$logdir/media.log" | awk '{s+=$3} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then
    echo "media tests failed"; stage_fail=1
    [ "$f" -gt 0 ] || failed=$((failed + 1))
  fi
else
  # Network namespaces need root; CI runs as root, so there this never skips.
  echo "media tests skipped: they need root and iproute2 (ip netns)"
  [ -z "${CI:-}" ] || { echo "CI must run the media tests"; stage_fail=1; }
fi

if [ -f tests/differential/diff.py ]; then
  echo "== differential test against the real Janus 1.1.2"
  python3 tests/differential/diff.py --jano "$jano_bin" 2>&1 | tee "$logdir/diff.log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logdir/diff.log" | tail -1)
  if [ -n "$line" ]; then
    passed=$((passed + $(echo "$line" | awk '{print $1}')))
    failed=$((failed + $(echo "$line" | awk '{print $3}')))
  fi
  if [ "$rc" -ne 0 ]; then
    echo "differential test failed"; stage_fail=1
    [ -n "$line" ] || failed=$((failed + 1))
  fi
fi

rm -rf "$logdir"
echo
echo "total: $passed passed, $failed failed"
if [ "$stage_fail" -ne 0 ] || [ "$failed" -ne 0 ]; then exit 1; fi
exit 0
