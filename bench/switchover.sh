#!/usr/bin/env bash
# Write unavailability during a switchover and a failover declared in the topology, with a
# client writing one row after another to whichever server is the primary
# (examples/switchover_bench.rs): environment dbtopo-bench-switch, node main and replicas
# main-r1, main-r2 on ports 27871-27873.
#   switchover_unavailable_s   last write acknowledged on the old primary -> first on the new
#   switchover_apply_s         the whole `dbtopo apply` of the switchover
#   failover_to_first_write_s  `apply --allow-destructive` started -> first write acknowledged
#                              on the promoted replica (the old primary's container and volume
#                              removed before)
#   failover_apply_s           the whole `dbtopo apply --allow-destructive`
# Usage: bench/switchover.sh [BINARY [BINARY]] [rounds]   (default: this checkout's release
#   binary, 5 rounds). With two binaries, each round runs both on a new environment, alternating
#   which goes first; without, one environment serves every round.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=5
bins=()
for arg in "$@"; do
  if [[ "$arg" =~ ^[0-9]+$ ]]; then ROUNDS="$arg"; else bins+=("$(realpath "$arg")"); fi
done
[ "${#bins[@]}" -le 2 ] || { echo "at most two binaries" >&2; exit 2; }

cargo build --release -q --bin dbtopo --examples
[ "${#bins[@]}" -gt 0 ] || bins=("$PWD/target/release/dbtopo")
EXAMPLE="$PWD/target/release/examples/switchover_bench"
WORK="$(mktemp -d)"

cleanup() {
  # The example destroys its environment itself; this is for an interrupted run.
  for dir in "$WORK" "$WORK/run"; do
    [ -f "$dir/topology.yaml" ] || continue
    DBTOPO_STATE_DIR="$dir/state" "${bins[0]}" destroy "$dir/topology.yaml" --auto-approve \
      >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${#bins[@]}" -eq 1 ]; then
  "$EXAMPLE" "${bins[0]}" "$ROUNDS" "$WORK"
  exit
fi

results="$WORK/results"
: > "$results"
echo "binary,measure,round,from,to,seconds"
for round in $(seq 1 "$ROUNDS"); do
  order=(0 1)
  [ $((round % 2)) -eq 0 ] && order=(1 0)
  for i in "${order[@]}"; do
    name=first; [ "$i" -eq 1 ] && name=second
    "$EXAMPLE" "${bins[$i]}" 1 "$WORK/run" | awk -F, -v b="$name" -v r="$round" \
      '$3 ~ /^main/ { OFS = ","; $2 = r; print b, $0 }' | tee -a "$results"
    rm -rf "$WORK/run"
  done
done
echo
echo "binary,measure,count,min_s,median_s,max_s"
sort -t, -k1,2 -k6,6n "$results" | awk -F, '
  function flush() { if (n) printf "%s,%s,%d,%.3f,%.3f,%.3f\n", key1, key2, n, v[1],
      (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[n]; n = 0 }
  $1 != key1 || $2 != key2 { flush(); key1 = $1; key2 = $2 }
  { v[++n] = $6 }
  END { flush() }'
echo "first = ${bins[0]}"
echo "second = ${bins[1]}"
