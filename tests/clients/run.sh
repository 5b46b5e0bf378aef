#!/usr/bin/env bash
# Real-client compatibility suite: janode (WebSocket + admin WebSocket; EchoTest and VideoRoom)
# and janus.js in headless Chromium (HTTP long-poll and WebSocket). It does NOT start a server:
# start jano (or Janus) first.
#
# Env (defaults match the ports the project uses for jano and for with-janus.sh):
#   JANUS_HTTP_URL      http://127.0.0.1:18088/janus
#   JANUS_WS_URL        ws://127.0.0.1:18188
#   JANUS_ADMIN_WS_URL  ws://127.0.0.1:17188      (set to empty to skip the admin steps)
#   JANUS_ADMIN_SECRET  janusoverlord
#   JANO_CLIENT_STEP_TIMEOUT_MS  15000            (per step; a hang fails fast)
#   JANO_CLIENT_DUMP=1  print every frame/HTTP exchange seen by the clients
#   JANODE_LOG          warn                      (debug|verb|info|warn|error|none)
#
# Usage: tests/clients/run.sh [test files...]   (default: all *.test.mjs here)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

export JANUS_HTTP_URL="${JANUS_HTTP_URL-http://127.0.0.1:18088/janus}"
export JANUS_WS_URL="${JANUS_WS_URL-ws://127.0.0.1:18188}"
export JANUS_ADMIN_WS_URL="${JANUS_ADMIN_WS_URL-ws://127.0.0.1:17188}"
export JANUS_ADMIN_SECRET="${JANUS_ADMIN_SECRET-janusoverlord}"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"

# --- Node 20+ --------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: node is not installed (need Node 20+)" >&2
  exit 2
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "run.sh: Node $(node --version) is too old; playwright-core needs Node 20+" >&2
  exit 2
fi

# --- npm dependencies (exact versions from package-lock.json) --------------------------------
lock_sum="$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)"
stamp="node_modules/.jano-lock-sha256"
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "run.sh: npm ci (node_modules missing or stale)" >&2
  # No browser download: playwright-core never downloads one; we use Debian's chromium.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2
  echo "$lock_sum" > "$stamp"
fi

# --- Chromium (Debian package) ---------------------------------------------------------------
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "run.sh: installing chromium (Debian package)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi

echo "run.sh: JANUS_HTTP_URL=$JANUS_HTTP_URL JANUS_WS_URL=$JANUS_WS_URL JANUS_ADMIN_WS_URL=${JANUS_ADMIN_WS_URL:-(none)}" >&2

if [ "$#" -gt 0 ]; then
  files=("$@")
else
  files=(janode.test.mjs janode-videoroom.test.mjs janusjs.test.mjs)
fi

# One file at a time (2 cores; the Chromium test is the heavy one), spec reporter for humans.
exec node --test --test-concurrency=1 --test-reporter=spec --test-timeout=180000 "${files[@]}"
