#!/usr/bin/env bash
# Two dbtopo binaries side by side in one run, alternating which goes first each round:
#   cold apply of the default topology's servers (no schema) until the replica streams,
#   `plan` on that converged environment, and `plan` on the converged environment with the
#   schema and fragments.
# Usage: bench/compare.sh OLD_BINARY NEW_BINARY [rounds]   (default 5 rounds)
# Build an old binary with: git worktree add /tmp/old <commit> && cargo build --release
#   --manifest-path /tmp/old/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD="$(realpath "$1")"
NEW="$(realpath "$2")"
ROUNDS="${3:-5}"
PLAN_RUNS=20
ENV_NAME="dbtopo-compare"
WORK="$(mktemp -d)"
export DBTOPO_STATE_DIR="$WORK/state"
SERVERS="$WORK/servers.yaml"
SCHEMA="$WORK/schema.yaml"
ports=(-e "s/^name: ecommerce/name: $ENV_NAME/" -e 's/port: 5433/port: 26433/' -e 's/port: 5434/port: 26434/'
       -e 's/port: 5435/port: 26435/' -e 's/port: 5436/port: 26436/')
sed "${ports[@]}" -e '/^  schema:/,$d' topology.yaml > "$SERVERS"
sed "${ports[@]}" -e "s|file: manifests/|file: $PWD/manifests/|" \
    -e "s|collections: manifests/|collections: $PWD/manifests/|" topology.yaml > "$SCHEMA"

cleanup() {
  "$NEW" destroy "$SCHEMA" --auto-approve >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
plan_median() { # binary topology
  local times="$WORK/times"
  : > "$times"
  for _ in $(seq 1 "$PLAN_RUNS"); do
    local s; s="$(now)"
    "$1" plan "$2" --detailed-exitcode >/dev/null
    awk -v a="$s" -v b="$(now)" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }' >> "$times"
  done
  median < "$times" | xargs printf '%.1f'
}

# The image and the initdb cache exist before anything is timed.
"$NEW" apply "$SERVERS" --auto-approve >/dev/null
"$NEW" destroy "$SERVERS" --auto-approve >/dev/null

echo "round,binary,cold_apply_s,plan_median_ms,plan_with_schema_median_ms"
for round in $(seq 1 "$ROUNDS"); do
  order=("$OLD" "$NEW")
  [ $((round % 2)) -eq 0 ] && order=("$NEW" "$OLD")
  for bin in "${order[@]}"; do
    name=new; [ "$bin" = "$OLD" ] && name=old
    sync; sleep 3
    s="$(now)"
    "$bin" apply "$SERVERS" --auto-approve >/dev/null
    cold="$(awk -v a="$s" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')"
    plan="$(plan_median "$bin" "$SERVERS")"
    "$bin" apply "$SCHEMA" --auto-approve >/dev/null
    schema_plan="$(plan_median "$bin" "$SCHEMA")"
    "$bin" destroy "$SCHEMA" --auto-approve >/dev/null
    echo "$round,$name,$cold,$plan,$schema_plan"
  done
done
