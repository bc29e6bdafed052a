#!/usr/bin/env bash
# The conformance gate, both roles, every section:
#   1. `tolqin echo` tested by `tolqin conformance server`;
#   2. the `autobahn_client` example tested by `tolqin conformance client`.
# Each run is compared with its checked-in expected results (conformance/expected-*.json):
# any verdict that changes fails the build, like tungstenite's Autobahn CI.
#
#   scripts/conformance.sh            # gate (exit 1 on any difference)
#   UPDATE=1 scripts/conformance.sh   # rewrite the expected files from this run instead
#
# Reports (index.json and one JSON file per case, Autobahn's shape) go to $REPORTS.
# Sections 12 and 13 send $DEFLATE_MESSAGES compressed messages per case instead of
# Autobahn's 1000, to keep the whole run within a few minutes on 2 cores; section 9 keeps
# Autobahn's sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

REPORTS=${REPORTS:-target/conformance}
DEFLATE_MESSAGES=${DEFLATE_MESSAGES:-100}
AGENT=tolqin

echo "== building release binaries"
cargo build --release -p tolqin-cli
cargo build --release -p tolqin --example autobahn_client
BIN=target/release/tolqin
TESTEE=target/release/examples/autobahn_client

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# Prints ADDR:PORT once the process $2 has written "listening on ws://ADDR:PORT" to file $1.
wait_ready() {
  local out=$1 pid=$2 line
  for _ in $(seq 1 200); do
    line=$(grep -m1 '^listening on ws://' "$out" 2>/dev/null || true)
    if [ -n "$line" ]; then
      echo "${line#listening on ws://}"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "process $pid exited before it was ready" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "process $pid was not ready within 10 s" >&2
  return 1
}

gate() {
  if [ -n "${UPDATE:-}" ]; then
    echo "--write-expected=$1"
  else
    echo "--expect=$1"
  fi
}

status=0

echo "== server role: tolqin echo"
"$BIN" echo --listen 127.0.0.1:0 >"$tmp/echo.out" 2>"$tmp/echo.err" &
echo_pid=$!
pids+=("$echo_pid")
addr=$(wait_ready "$tmp/echo.out" "$echo_pid")
"$BIN" conformance server "ws://$addr/" --agent "$AGENT" \
  --deflate-messages "$DEFLATE_MESSAGES" --report "$REPORTS/server" \
  "$(gate conformance/expected-server.json)" || status=1
kill "$echo_pid" 2>/dev/null || true

echo "== client role: the autobahn_client example"
"$BIN" conformance client --listen 127.0.0.1:0 \
  --deflate-messages "$DEFLATE_MESSAGES" --report "$REPORTS/client" \
  "$(gate conformance/expected-client.json)" >"$tmp/fuzz.out" &
fuzz_pid=$!
pids+=("$fuzz_pid")
addr=$(wait_ready "$tmp/fuzz.out" "$fuzz_pid")
"$TESTEE" "ws://$addr" "$AGENT" 2>"$tmp/testee.err" || {
  echo "the autobahn_client example failed:" >&2
  cat "$tmp/testee.err" >&2
  status=1
}
# The fuzzing server returns after /updateReports; give it a moment, then judge its status.
for _ in $(seq 1 200); do
  kill -0 "$fuzz_pid" 2>/dev/null || break
  sleep 0.05
done
if kill -0 "$fuzz_pid" 2>/dev/null; then
  echo "the fuzzing server did not finish after /updateReports" >&2
  status=1
elif ! wait "$fuzz_pid"; then
  status=1
fi

# Checking the checker: independent implementations must get their published verdicts
# (tokio-tungstenite: 296 OK, NON-STRICT only 6.4.3 and 6.4.4, 216 UNIMPLEMENTED; python
# websockets: NON-STRICT on 3.2, 3.3, 4.1.3, 4.1.4, 4.2.3, 4.2.4, 5.15, 6.4.1-6.4.4, FAILED
# 7.1.5; Node ws: NON-STRICT on 6.4.1-6.4.4). Section 9 (throughput) is left out here to keep
# CI short; each peer's verdicts are pinned in conformance/peers/. Python websockets' 3.2-3.4,
# 4.1.3-4.1.5 and 4.2.3-4.2.5 (both roles) are pinned as "NON-STRICT|OK": whether it echoes the
# first message before failing on the next frame's RSV bits or opcode depends on whether both
# arrive in one read (CI rehearsals got OK on 3.3 as a server, NON-STRICT on 4.2.5 as a client).
peer_server() { # NAME COMMAND...
  local name=$1
  shift
  echo "== checking the checker: $name as a server"
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  local pid=$!
  pids+=("$pid")
  local peer_addr
  peer_addr=$(wait_ready "$tmp/$name.out" "$pid") || { status=1; return; }
  "$BIN" conformance server "ws://$peer_addr/" --agent "$name" --exclude '9.*' \
    --deflate-messages "$DEFLATE_MESSAGES" --report "$REPORTS/$name" \
    "$(gate "conformance/peers/$name.json")" >/dev/null || status=1
  kill "$pid" 2>/dev/null || true
}
if [ -z "${TOLQIN_CONFORMANCE_SKIP_PEERS:-}" ]; then
  cargo build --release -p tolqin-conformance --example tungstenite_testee
  peer_server tokio-tungstenite target/release/examples/tungstenite_testee 127.0.0.1:0
  PY=${TOLQIN_PYTHON:-python3}
  peer_server python-websockets "$PY" interop/py_server.py
  peer_server node-ws node interop/node_ws.mjs server off

  echo "== checking the checker: python websockets as a client"
  "$BIN" conformance client --listen 127.0.0.1:0 --exclude '9.*' \
    --deflate-messages "$DEFLATE_MESSAGES" --report "$REPORTS/python-client" \
    "$(gate conformance/peers/python-websockets-client.json)" >"$tmp/pyfuzz.out" &
  pyfuzz_pid=$!
  pids+=("$pyfuzz_pid")
  addr=$(wait_ready "$tmp/pyfuzz.out" "$pyfuzz_pid")
  "$PY" interop/py_autobahn_client.py "ws://$addr" python-websockets 2>"$tmp/pyclient.err" || {
    echo "the python testee failed:" >&2
    cat "$tmp/pyclient.err" >&2
    status=1
  }
  for _ in $(seq 1 200); do
    kill -0 "$pyfuzz_pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pyfuzz_pid" 2>/dev/null || ! wait "$pyfuzz_pid"; then
    status=1
  fi
fi

if [ "$status" -ne 0 ]; then
  echo "conformance: FAILED (reports in $REPORTS)" >&2
else
  if [ -n "${UPDATE:-}" ]; then
    echo "conformance: expected files rewritten (reports in $REPORTS)"
  else
    echo "conformance: all verdicts as expected (reports in $REPORTS)"
  fi
fi
exit "$status"
