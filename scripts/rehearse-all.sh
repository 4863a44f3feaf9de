#!/usr/bin/env bash
# The failover rehearsal as a series: every broker x fault of broker_tier/rehearsal/faults.py at 10 and 40 tasks/s,
# and promote at split windows of 0 and 100 ms besides the default 10 ms, RUNS times each (default 3: why, and what
# more runs buy, in docs/decisions/rehearsal-run-count.md). Sequential, so that one run never slows another.
# On the project's 2-core machine, RUNS=3 took 60 minutes with other work running (load 2 to 22; the summary
# records the duration and the load).
#
# Writes every run's report (JSON, Markdown, timeline SVG) to DIR (default rehearsal-reports/<UTC time>), the
# series' summary to docs/evidence/rehearsal-summary.json with one timeline per broker x fault beside it, and
# regenerates the measured sections of docs/rehearsal.md and the README's table from it. Exit code 1 when any run
# missed its goals.
#
#   scripts/rehearse-all.sh [DIR]        RUNS=3 and RATES=10,40 by default
#   FAULTS=crash scripts/rehearse-all.sh re-runs only those faults' cells and replaces them in the summary
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/ensure-redis.sh
source scripts/env.sh

dir=${1:-rehearsal-reports/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$dir"
echo "faults: $(python -m broker_tier.rehearsal.faults | paste -sd ' ')" >&2
status=0
python -m broker_tier.rehearsal.series --runs "${RUNS:-3}" --rates "${RATES:-10,40}" --out "$dir" \
  --summary docs/evidence/rehearsal-summary.json --pictures docs/evidence/timelines \
  ${FAULTS:+--faults "$FAULTS"} || status=$?
python -m broker_tier.rehearsal.evidence_doc
python -m broker_tier.rehearsal.readme_table --write README.md
echo "reports in $dir; summary docs/evidence/rehearsal-summary.json; docs/rehearsal.md and README.md regenerated" >&2
exit $status
