#!/usr/bin/env bash
# The libraries build with every feature set a user can pick: tolqin-proto, and tolqin with no
# default features (TLS terminated elsewhere), each feature alone, and all of them; clippy with
# warnings as errors, the library targets only (checked, not built), and without TLS the tests
# and examples too (those that need TLS say so: required-features). Then what a user of
# `tolqin` without default features gets: no rustls, ring or webpki, and only the tokio features
# tolqin declares (a runtime flavour, signals and stdio are the application's). Run by
# scripts/test.sh; about 15 s once the dependencies are checked (each step prints its time).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
step() {
  local t=$SECONDS
  echo "-- $*"
  "$@"
  echo "   ($((SECONDS - t)) s)"
}

clippy() {
  cargo clippy --quiet "$@" -- -D warnings
}

step clippy -p tolqin-proto --lib --no-default-features
step clippy -p tolqin-proto --lib --all-features
step clippy -p tolqin --all-targets --no-default-features
for feature in tls native-roots webpki-roots; do
  step clippy -p tolqin --lib --no-default-features --features "$feature"
done
step clippy -p tolqin --lib --all-features
# Without `tls`, a wss:// URL is a typed error (the unit test of it only exists in that build).
step cargo test --quiet -p tolqin --no-default-features --lib

echo "-- dependencies of tolqin without default features"
tree="$(cargo tree -p tolqin --no-default-features -e normal --prefix none -f '{p}|{f}')"
tls_crates='^(rustls|rustls-pki-types|rustls-webpki|rustls-native-certs|webpki-roots|ring|tokio-rustls) '
if grep -E "$tls_crates" <<<"$tree"; then
  echo "error: tolqin without default features depends on the TLS crates above" >&2
  exit 1
fi
# The tokio features tolqin declares, and the optional dependencies they turn on.
declared="$(sed -n '/^\[dependencies\]/,/^\[/s/^tokio = {.*features = \[\(.*\)\].*/\1/p' \
  crates/tolqin/Cargo.toml | tr -d '" ')"
if [ -z "$declared" ]; then
  echo "error: no tokio features found in crates/tolqin/Cargo.toml" >&2
  exit 1
fi
allowed=",$declared,default,bytes,libc,mio,socket2,tokio-macros,"
enabled="$(grep '^tokio v' <<<"$tree" | head -1 | cut -d'|' -f2)"
echo "   tokio features: $enabled (declared: $declared)"
extra=""
for f in ${enabled//,/ }; do
  case "$allowed" in
    *",$f,"*) ;;
    *) extra="$extra $f" ;;
  esac
done
if [ -n "$extra" ]; then
  echo "error: tokio features beyond what tolqin declares:$extra" >&2
  echo "       (cargo tree -e features -i tokio -p tolqin --no-default-features says who asks)" >&2
  exit 1
fi
# And the default build does have TLS (wss:// works out of the box).
if ! cargo tree -p tolqin -e normal --prefix none | grep -q '^rustls '; then
  echo "error: tolqin's default features no longer bring rustls (wss:// clients)" >&2
  exit 1
fi
echo "== feature checks passed in $((SECONDS - start)) s"
