#!/usr/bin/env bash
# Profiles `tolqin echo --threads 1` under W1, W3 and W6 (see BENCHMARKS.md): where the server's
# CPU goes (perf sampling on cpu-clock, kernel included), and its syscalls per message.
# Usage: bench/profile.sh [OUT_DIR]   (needs perf, and valgrind for the callgrind part;
#   CALLGRIND=0 skips it). It builds the `profiling` profile: release code with the symbols
#   perf and callgrind need (the release profile has no debug info).
# Hardware counters are not needed (cpu-clock is a software event, so it works in VMs too).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/profile}"
mkdir -p "$out"
cargo build --profile profiling -q -p tolqin-cli || exit 1
bin=target/profiling/tolqin
secs=4

taskset -c 0 "$bin" echo --listen 127.0.0.1:0 --threads 1 >"$out/echo.out" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$out/echo.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$out/echo.out")

profile() { # name, bench args...
  local name=$1; shift
  taskset -c 1 "$bin" bench "$url" "$@" --duration $((secs + 4)) --warmup 1 --server-pid "$server" \
    >"$out/$name.bench.txt" &
  local gen=$!
  sleep 1.5
  perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait \
    -p "$server" -o "$out/$name.syscalls.csv" -- sleep 2 2>/dev/null
  perf record -q -e cpu-clock -F 1999 -g -p "$server" -o "$out/$name.perf.data" -- sleep "$secs" 2>/dev/null
  wait "$gen"
  {
    echo "### $name: tolqin bench $*"
    cat "$out/$name.bench.txt"
    echo
    echo "user space vs kernel (share of the server's samples):"
    perf report -i "$out/$name.perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6
    echo
    echo "top functions (self time):"
    perf report -i "$out/$name.perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
      | grep -E '^ +[0-9]' | head -25
    echo
    echo "syscalls in 2 s of load (count, event; compare with messages/s x 2):"
    grep -v '^#' "$out/$name.syscalls.csv" | awk -F, 'NF>2 {print "  " $1 "  " $3}'
    echo
  } >"$out/$name.txt"
  cat "$out/$name.txt"
}

profile W1 --connections 100 --size 20 --text
profile W3 --connections 1 --size 1048576 --binary
profile W6 --connections 100 --size 20 --text --inflight 16

# Instruction counts in user space (callgrind), for when perf has no hardware counters
# (`perf stat -e instructions true` says "not supported", as in most VMs). Slow (~50x), so
# each workload runs 3 s against its own server under valgrind; the rate is low but the
# instructions per message are what count.
if command -v valgrind >/dev/null && [ "${CALLGRIND:-1}" = 1 ]; then
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null
  callgrind() { # name, bench args...
    local name=$1; shift
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/$name.callgrind" \
      "$bin" echo --listen 127.0.0.1:0 --threads 1 >"$out/cg.out" 2>"$out/cg.err" &
    local vg=$!
    for _ in $(seq 200); do grep -q listening "$out/cg.out" && break; sleep 0.1; done
    local u; u=$(sed -n 's/^listening on //p' "$out/cg.out")
    taskset -c 1 "$bin" bench "$u" "$@" --duration 3 --warmup 0.5 >"$out/$name.cg-bench.txt"
    kill -TERM "$vg"; wait "$vg" 2>/dev/null
    {
      echo "### $name under callgrind: tolqin bench $*"
      grep -E 'messages/s' "$out/$name.cg-bench.txt"
      callgrind_annotate --inclusive=no "$out/$name.callgrind" 2>/dev/null | sed -n '/^Ir/,$p' | head -28
      echo
    } >"$out/$name.callgrind.txt"
    cat "$out/$name.callgrind.txt"
  }
  callgrind W1 --connections 100 --size 20 --text
  callgrind W3 --connections 1 --size 1048576 --binary
  callgrind W6 --connections 100 --size 20 --text --inflight 16
fi
