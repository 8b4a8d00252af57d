#!/usr/bin/env bash
# The cost of atomicity, on demand (not part of the tests): orders per second and latency of
# `dbtopo workload` on the default topology (seeded at scale 5) at 1, 4 and 16 clients, each
# order one distributed transaction with two-phase commit, side by side with the same orders
# written without it (one coordinator transaction, postgres_fdw writes, not atomic).
# Usage: bench/workload.sh [orders per run]
set -euo pipefail
cd "$(dirname "$0")/.."
ORDERS="${1:-300}"
ENV_NAME="dbtopo-bench-orders"

cargo build --release -q
BIN="$PWD/target/release/dbtopo"
WORK="$(mktemp -d)"
TOPOLOGY="$WORK/topology.yaml"
sed -e "s/^name: ecommerce/name: $ENV_NAME/" -e 's/port: 5433/port: 26433/' -e 's/port: 5434/port: 26434/' \
    -e 's/port: 5435/port: 26435/' -e 's/port: 5436/port: 26436/' \
    -e "s#file: manifests/ecommerce.sql#file: $PWD/manifests/ecommerce.sql#" \
    -e "s#collections: manifests/mongo#collections: $PWD/manifests/mongo#" topology.yaml > "$TOPOLOGY"

cleanup() {
  "$BIN" destroy "$TOPOLOGY" --auto-approve >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" apply "$TOPOLOGY" --auto-approve >/dev/null
"$BIN" seed "$TOPOLOGY" --scale 5 >/dev/null

echo "clients,mode,orders_per_s,p50_ms,p99_ms,retries,failed"
for clients in 1 4 16; do
  for mode in 2pc plain; do
    flag=""
    [ "$mode" = plain ] && flag="--without-2pc"
    out="$("$BIN" workload "$TOPOLOGY" --clients "$clients" --orders "$ORDERS" $flag)"
    line="$(echo "$out" | head -1)"
    echo "$line" | sed -E "s/.*: ([0-9.]+) orders\/s, latency p50 ([0-9.]+) ms, p99 ([0-9.]+) ms; ([0-9]+) retried, [0-9]+ out of stock, ([0-9]+) failed/$clients,$mode,\1,\2,\3,\4,\5/"
  done
done
