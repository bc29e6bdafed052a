#!/usr/bin/env bash
# What TLS costs (issue 5): echo throughput of `tolqin echo` over wss:// against ws://, for
# 20-byte and 16 KiB messages. The server is pinned to CPU 0 (--threads 1, no deflate), the
# client (the tolqin client in examples/echo_load.rs) to CPU 1; plain and TLS alternate.
# Usage: bench/tls.sh [ROUNDS] (default 3); prints one line per round and size.
set -u
cd "$(dirname "$0")/.."
rounds=${1:-3}
cargo build --release -q -p tolqin-cli -p tolqin --example echo_load
B=target/release/tolqin
L=target/release/examples/echo_load
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
for round in $(seq "$rounds"); do
  for size in 20 16384; do
    conns=$([ "$size" = 20 ] && echo 50 || echo 10)
    serve
    plain=$(taskset -c 1 $L "$URL" $conns $size 4 2>/dev/null | grep -o '[0-9]* msg/s')
    kill $P; wait $P 2>/dev/null
    serve --tls-self-signed
    tls=$(taskset -c 1 $L "$URL" $conns $size 4 --ca "$CA" 2>/dev/null | grep -o '[0-9]* msg/s')
    kill $P; wait $P 2>/dev/null
    echo "round $round, $conns connections x $size B: plain $plain, tls $tls"
  done
done
