#!/usr/bin/env bash
# The failover rehearsal as a benchmark: every broker mode and fault with the default (full) phases
# (the reboot with 5 s of backlog), then the redis broker's power loss REPEAT times in a row (its
# goal: no worker exit in 10 runs).
# Reports go to DIR (default: rehearsal-reports/<UTC time>); the table printed at the end is the
# README's "Failover rehearsal". Exit code 1 when any run missed its goals.
#
#   scripts/rehearse-all.sh [DIR]        REPEAT=10 by default; extra options via REHEARSE_OPTIONS
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/ensure-redis.sh
source scripts/env.sh

dir=${1:-rehearsal-reports/$(date -u +%Y%m%dT%H%M%SZ)}
repeat=${REPEAT:-10}
mkdir -p "$dir"
status=0
rehearse() {
  echo "== broker-tier-ops rehearse $*" >&2
  broker-tier-ops rehearse --report-dir "$dir" ${REHEARSE_OPTIONS:-} "$@" || status=1
}
for broker in sqs redis; do
  for fault in promote power-loss; do
    rehearse --broker "$broker" --fault "$fault"
  done
  # a backlog queued behind paused pool processes shows what the reboot does to waiting work
  rehearse --broker "$broker" --fault reboot --backlog 5
done
for _ in $(seq 2 "$repeat"); do  # the first of the REPEAT runs is the one above
  rehearse --broker redis --fault power-loss
done
python -m broker_tier.rehearsal.summary "$dir"
exit $status
