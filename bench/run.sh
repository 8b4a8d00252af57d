#!/usr/bin/env bash
# dbtopo benchmarks, run on demand (not part of the tests):
#   1. cold apply of the default topology's servers (without its schema, which compose does not
#      load) until the replica streams,
#      side by side with `docker-compose up` of bench/compose.yml waited to healthy;
#   2. `plan` on a converged environment;
#   3. a reload-only setting change, checked to cause no restart.
# Usage: bench/run.sh [rounds]   (needs the postgres:17 image: dbtopo builds it on first apply)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
PLAN_RUNS=20
ENV_NAME="dbtopo-bench"
PROJECT="dbtopobenchcompose"

cargo build --release -q
BIN="$PWD/target/release/dbtopo"
WORK="$(mktemp -d)"
TOPOLOGY="$WORK/topology.yaml"
sed -e "s/^name: ecommerce/name: $ENV_NAME/" -e 's/port: 5433/port: 25433/' -e 's/port: 5434/port: 25434/' \
    -e 's/port: 5435/port: 25435/' -e 's/port: 5436/port: 25436/' \
    -e 's/^    shared_buffers: 128MB/    shared_buffers: 128MB\n    work_mem: 4MB/' \
    -e '/^  schema:/,$d' topology.yaml > "$TOPOLOGY"

cleanup() {
  "$BIN" destroy "$TOPOLOGY" --auto-approve >/dev/null 2>&1 || true
  docker-compose -p "$PROJECT" -f bench/compose.yml down -v >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Make sure the image is present before timing anything (built from Debian packages if needed).
"$BIN" apply "$TOPOLOGY" --auto-approve >/dev/null
"$BIN" destroy "$TOPOLOGY" --auto-approve >/dev/null

compose_ready() {
  local ids
  ids="$(docker-compose -p "$PROJECT" -f bench/compose.yml ps -q)"
  [ "$(echo "$ids" | wc -l)" -eq 4 ] || return 1
  ! docker inspect -f '{{.State.Health.Status}}' $ids | grep -qv '^healthy$'
}

password() {
  python3 -c "import json,os,sys; d=os.environ.get('DBTOPO_STATE_DIR') or os.path.expanduser('~/.local/state/dbtopo'); print(json.load(open(os.path.join(d, sys.argv[1] + '.secrets.json')))['superuser'])" "$ENV_NAME"
}

# Each timed run starts on a settled machine: the previous round's writes flushed.
settle() { sync; sleep 5; }

echo "round,dbtopo_apply_s,compose_up_s,plan_median_ms,plan_max_ms,reload_apply_s,restarted"
for round in $(seq 1 "$ROUNDS"); do
  settle
  start="$(now)"
  "$BIN" apply "$TOPOLOGY" --auto-approve >/dev/null
  dbtopo_s="$(elapsed "$start" "$(now)")"

  plans="$WORK/plans"
  : > "$plans"
  for _ in $(seq 1 "$PLAN_RUNS"); do
    s="$(now)"
    "$BIN" plan "$TOPOLOGY" --detailed-exitcode >/dev/null
    awk -v a="$s" -v b="$(now)" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }' >> "$plans"
  done
  plan_median="$(median < "$plans" | xargs printf '%.1f')"
  plan_max="$(sort -n "$plans" | tail -1 | xargs printf '%.1f')"

  export PGPASSWORD="$(password)"
  before="$(psql -h 127.0.0.1 -p 25433 -U postgres -Atc 'SELECT pg_postmaster_start_time()')"
  sed -i "s/work_mem: [0-9]*MB/work_mem: $((round + 4))MB/" "$TOPOLOGY"
  s="$(now)"
  "$BIN" apply "$TOPOLOGY" --auto-approve >/dev/null
  reload_s="$(elapsed "$s" "$(now)")"
  after="$(psql -h 127.0.0.1 -p 25433 -U postgres -Atc 'SELECT pg_postmaster_start_time()')"
  work_mem="$(psql -h 127.0.0.1 -p 25433 -U postgres -Atc 'SHOW work_mem')"
  [ "$work_mem" = "$((round + 4))MB" ] || { echo "reload did not apply work_mem ($work_mem)" >&2; exit 1; }
  restarted=no; [ "$before" = "$after" ] || restarted=yes
  "$BIN" destroy "$TOPOLOGY" --auto-approve >/dev/null

  settle
  start="$(now)"
  docker-compose -p "$PROJECT" -f bench/compose.yml up -d >/dev/null 2>&1
  until compose_ready; do sleep 0.05; done
  compose_s="$(elapsed "$start" "$(now)")"
  docker-compose -p "$PROJECT" -f bench/compose.yml down -v >/dev/null 2>&1

  echo "$round,$dbtopo_s,$compose_s,$plan_median,$plan_max,$reload_s,$restarted"
done

# 4. `plan` on a converged environment that also carries the schema (nine tables on the
#    primary): the catalog is read and the manifest checked on the server at every plan.
SCHEMA_TOPOLOGY="$WORK/with-schema.yaml"
sed -e "s/^name: ecommerce/name: $ENV_NAME/" -e 's/port: 5433/port: 25433/' -e 's/port: 5434/port: 25434/' \
    -e 's/port: 5435/port: 25435/' -e 's/port: 5436/port: 25436/' \
    -e "s|file: manifests/|file: $PWD/manifests/|" \
    -e "s|collections: manifests/|collections: $PWD/manifests/|" topology.yaml > "$SCHEMA_TOPOLOGY"
"$BIN" apply "$SCHEMA_TOPOLOGY" --auto-approve >/dev/null
plans="$WORK/schema-plans"
: > "$plans"
for _ in $(seq 1 "$PLAN_RUNS"); do
  s="$(now)"
  "$BIN" plan "$SCHEMA_TOPOLOGY" --detailed-exitcode >/dev/null
  awk -v a="$s" -v b="$(now)" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }' >> "$plans"
done
echo "plan_with_schema_median_ms,$(median < "$plans" | xargs printf '%.1f'),max_ms,$(sort -n "$plans" | tail -1)"
"$BIN" destroy "$SCHEMA_TOPOLOGY" --auto-approve >/dev/null
