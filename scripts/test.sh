#!/usr/bin/env bash
# Runs every test of the project: the README's test command, and what CI runs.
# It installs what the tests need first, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain"
cargo --version

echo "== real peers for the interop tests (pinned in interop/requirements.txt)"
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r interop/requirements.txt
export TOLQIN_PYTHON="$PWD/$venv/bin/python"
# Node `ws`, pinned in interop/package.json and package-lock.json.
npm ci --prefix interop --no-audit --no-fund --loglevel=error
# Node `ws` for the benchmark comparison, pinned in bench/node/package-lock.json.
if [ -d bench/node ]; then
  npm ci --prefix bench/node --no-audit --no-fund --loglevel=error
fi
# Headless Chromium for the wss:// browser test (CI runs as root on a fresh machine).
if [ ! -x /usr/bin/chromium ]; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

echo "== library feature sets: no default features, each feature alone, all (scripts/features.sh)"
scripts/features.sh

echo "== unit, scenario, integration and doc tests (whole workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== benchmark harness: builds, and one quick smoke pass of compare (numbers not judged)"
cargo build --release -p tolqin-bench -p tolqin-cli
bench_out="$(mktemp -d)"
cargo run --release -p tolqin-bench -- compare --quick --out "$bench_out"
rm -rf "$bench_out"

if [ -x scripts/conformance.sh ]; then
  echo "== conformance suite (both roles, gated on conformance/expected-*.json)"
  scripts/conformance.sh
fi

echo "== fuzz targets (fuzz/), 20 s each; run longer with scripts/fuzz.sh SECONDS"
scripts/fuzz.sh 20
