#!/usr/bin/env bash
# The media-engine benchmark set (issue 8), one after the other on a quiet machine: EchoTest at
# 10/50/100 peers and 500 PeerConnections (jano and Janus 1.1.2 in both configurations), fan-out
# through jano.plugin.fanout (1→100, 1→300), control-plane cycles at 64 clients. Needs release
# builds of jano and jano-load (cargo build --release -p jano -p jano-load) and root.
#   bench/engine.sh [results-folder]
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"; cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release/jano"
O="${1:-$(mktemp -d /var/tmp/jano-bench.XXXXXX)}"; mkdir -p "$O"; echo "results in $O" >&2
for n in 10 50 100; do
  bench/media.sh --both $BIN --no-build --nice -10 --peers $n --audio-pps 25 --video-pps 25 \
    --duration 10 --warmup 3 --no-max --out $O/echo-$n.md > $O/echo-$n.out 2> $O/echo-$n.err
done
for n in 101 301; do
  bench/media.sh --server "$BIN -F {cfg}" --fanout --no-build --nice -10 --peers $n \
    --audio-pps 50 --video-pps 50 --video-bytes 1000 --duration 10 --warmup 3 --no-max \
    --out $O/fanout-$n.md > $O/fanout-$n.out 2> $O/fanout-$n.err
done
# memory with 500 PeerConnections: RSS of the fresh server, then with 500 open
for who in janus janus-el2 jano; do
  case $who in
    janus) args="--janus --janus-loops 0" ;;
    janus-el2) args="--janus --janus-loops 2" ;;
    jano) args="--server \"$BIN -F {cfg}\"" ;;
  esac
  eval bench/media.sh $args --no-build --nice -10 --peers 500 --audio-pps 10 --video-pps 10 \
    --duration 15 --warmup 2 --no-max --keep > $O/mem-$who.out 2> $O/mem-$who.err &
  B=$!
  pid=""
  for _ in $(seq 1 600); do
    pid=$(grep -o 'started (pid [0-9]*' $O/mem-$who.err 2>/dev/null | grep -o '[0-9]*$' | head -1)
    [ -n "$pid" ] && break; sleep 0.1
  done
  idle=$(awk '/VmRSS/{print $2}' /proc/$pid/status 2>/dev/null)
  wait $B
  d=$(grep -o '/var/tmp/jmedia[^ ]*' $O/mem-$who.err | tail -1)
  cp $d/results.jsonl $O/mem-$who.jsonl 2>/dev/null
  end=$(jq -r 'select(.mode=="media") | .server.rss_bytes' $d/results.jsonl)
  thr=$(jq -r 'select(.mode=="media") | .server.threads' $d/results.jsonl)
  echo "$who idle_rss_kib=$idle rss500_kib=$((end/1024)) per_pc_kib=$(( (end/1024 - idle) / 500 )) threads=$thr" >> $O/mem.txt
  rm -rf "$d"
done
bench/run.sh --no-build --nice -10 --servers "janus janus-el2 jano" --clients "64" --transports "http ws" \
  --idle-transports "" --extra-transports "" --duration 10 --warmup 2 --out $O/cycles.md > $O/cycles.out 2> $O/cycles.err
echo "done: $O" >&2
