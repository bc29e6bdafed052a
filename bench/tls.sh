#!/usr/bin/env bash
# What TLS costs (issue 5): echo throughput of `tolqin echo` over wss:// against ws://, for
# 20-byte and 16 KiB messages. The server is pinned to CPU 0 (--threads 1, no deflate), the
# client (the tolqin client in examples/echo_load.rs) to CPU 1; plain and TLS alternate.
# Usage: bench/tls.sh [ROUNDS] (default 3); prints one line per round and size: messages/s
# and the server's CPU time per message (from /proc), plain and TLS (rustls's record layer,
# through tokio-rustls). TOLQIN_COMPARE_BIN=PATH adds a third server in the same rounds, "alt"
# (another build of `tolqin`, e.g. an older commit built in a git worktree: the removed custom
# record layer was measured so). Then the floor of any record layer on this machine
# (examples/tls_floor.rs: AES-128-GCM records with fixed keys and nothing else), sealed
# against plain, the same way; TOLQIN_FLOOR=0 skips it.
set -u
cd "$(dirname "$0")/.."
rounds=${1:-3}
# Two builds: with `--example`, `-p tolqin-cli` alone would not rebuild the server binary.
# The `profiling` profile: release code with symbols, so `perf` can be pointed at a round.
cargo build --profile profiling -q -p tolqin-cli
cargo build --profile profiling -q -p tolqin --example echo_load --example tls_floor
B=${TOLQIN_BIN:-target/profiling/tolqin}
L=target/profiling/examples/echo_load
out=$(mktemp -d)
trap 'kill $P 2>/dev/null; rm -rf "$out"' EXIT
P=
serve() { # extra echo args...; sets P, URL, CA
  taskset -c 0 $B echo --listen 127.0.0.1:0 --threads 1 --no-deflate "$@" >"$out/echo.out" 2>/dev/null &
  P=$!
  for _ in $(seq 50); do grep -q listening "$out/echo.out" && break; sleep 0.1; done
  URL=$(sed -n 's/^listening on //p' "$out/echo.out")/
  CA=$(sed -n 's/^certificate: //p' "$out/echo.out")
}
# CPU time (user + system, in clock ticks) the server process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# run LABEL CLIENT-ARGS...: one client run against the server $P; prints "RATE msg/s, CPU us/msg".
run() {
  local before after rate
  before=$(cpu_ticks "$P")
  rate=$(taskset -c 1 $L "$@" 2>/dev/null | grep -o '[0-9]* msg/s' | grep -o '[0-9]*')
  after=$(cpu_ticks "$P")
  # The client runs for 4 s at RATE: server CPU per message, in microseconds.
  echo "$rate msg/s (server $(awk -v t=$((after - before)) -v hz="$hz" -v r="$rate" \
    'BEGIN { printf "%.1f", (r > 0 ? t / hz * 1e6 / (r * 4) : 0) }') us/msg)"
}
for round in $(seq "$rounds"); do
  for size in 20 16384; do
    conns=$([ "$size" = 20 ] && echo 50 || echo 10)
    serve
    plain=$(run "$URL" $conns $size 4)
    kill $P; wait $P 2>/dev/null
    serve --tls-self-signed
    tls=$(run "$URL" $conns $size 4 --ca "$CA")
    kill $P; wait $P 2>/dev/null
    rm -f "$CA"
    alt=
    if [ -n "${TOLQIN_COMPARE_BIN:-}" ]; then
      main=$B; B=$TOLQIN_COMPARE_BIN
      serve --tls-self-signed
      alt=", alt $(run "$URL" $conns $size 4 --ca "$CA")"
      kill $P; wait $P 2>/dev/null
      rm -f "$CA"; B=$main
    fi
    echo "round $round, $conns connections x $size B: plain $plain, tls $tls$alt"
  done
done
[ "${TOLQIN_FLOOR:-1}" = 0 ] && exit 0
# The floor: the same echo over bare AES-GCM records (no handshake, no TLS state), both ends.
F=target/profiling/examples/tls_floor
floor() { # MODE: sets P, ADDR
  taskset -c 0 $F server "$1" >"$out/floor.out" 2>/dev/null &
  P=$!
  for _ in $(seq 50); do grep -q listening "$out/floor.out" && break; sleep 0.1; done
  ADDR=$(sed -n 's/^listening on ws:\/\///p' "$out/floor.out")
}
for round in $(seq "$rounds"); do
  for size in 20 16384; do
    conns=$([ "$size" = 20 ] && echo 50 || echo 10)
    line="floor round $round, $conns connections x $size B:"
    for mode in plain sealed; do
      floor $mode
      before=$(cpu_ticks "$P")
      rate=$(taskset -c 1 $F client $mode "$ADDR" $conns $size 4 | grep -o '^[0-9]*')
      after=$(cpu_ticks "$P")
      kill $P; wait $P 2>/dev/null
      line="$line $mode $rate msg/s (server $(awk -v t=$((after - before)) -v hz="$hz" -v r="$rate" \
        'BEGIN { printf "%.1f", (r > 0 ? t / hz * 1e6 / (r * 4.5) : 0) }') us/msg)"
    done
    echo "$line"
  done
done
