#!/usr/bin/env bash
# Times synthesis of every environment against a bare one-stack app and, with --test-command, the test command;
# --summary FILE writes the figures with the machine, its load and the versions (docs/measuring.md is generated
# from docs/evidence/benchmark-summary.json by python -m broker_tier.tools.benchmark_table --write docs/measuring.md).
#
#   scripts/benchmark.sh [--runs 3] [--test-command] [--summary docs/evidence/benchmark-summary.json]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/ensure-redis.sh
source scripts/env.sh
python -m broker_tier.tools.benchmark "$@"
