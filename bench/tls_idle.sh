#!/usr/bin/env bash
# What an idle wss:// connection costs the server: N python `websockets` clients (the interop
# venv that scripts/test.sh makes) connect to `tolqin echo --tls-self-signed`, each sends one
# message and waits for its echo, then all stay idle; prints the server's RSS growth per
# connection. Usage: bench/tls_idle.sh [N] (default 1000); TOLQIN_BIN picks the server binary.
set -u
cd "$(dirname "$0")/.."
n=${1:-1000}
PY=${TOLQIN_PYTHON:-target/interop-venv/bin/python} # made by scripts/test.sh
# The `profiling` profile: release code with symbols (for perf; debug info is not loaded, so
# the RSS is the release build's).
cargo build --profile profiling -q -p tolqin-cli
B=${TOLQIN_BIN:-target/profiling/tolqin}
out=$(mktemp -d)
trap 'kill $P 2>/dev/null; rm -rf "$out"' EXIT
$B echo --listen 127.0.0.1:0 --threads 1 --no-deflate --tls-self-signed >"$out/echo.out" 2>/dev/null &
P=$!
for _ in $(seq 50); do grep -q listening "$out/echo.out" && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$out/echo.out")/
CA=$(sed -n 's/^certificate: //p' "$out/echo.out")
sleep 0.5
before=$(awk '/VmRSS/{print $2}' "/proc/$P/status")
"$PY" bench/tls_idle.py "$URL" "$CA" "$n" 8 >"$out/py.out" 2>&1 &
C=$!
for _ in $(seq 240); do grep -q open "$out/py.out" && break; sleep 0.25; done
grep -q "open $n" "$out/py.out" || { echo "the clients did not all connect:" >&2; cat "$out/py.out" >&2; exit 1; }
sleep 3
after=$(awk '/VmRSS/{print $2}' "/proc/$P/status")
echo "RSS $before KiB, with $n idle wss connections $after KiB: $(((after - before) * 1024 / n)) B per connection"
wait $C
rm -f "$CA"
