#!/usr/bin/env bash
# Measures the SIGTERM hand-back and the Spot interruption: runs their integration tests --runs times (default 3),
# one after another, and writes docs/evidence/handback-summary.json (broker_tier/tools/handback_evidence.py).
# A failed run writes nothing and exits non-zero. Then: python -m broker_tier.tools.handback_evidence --write docs/workers.md
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/ensure-redis.sh
source scripts/env.sh
python -m broker_tier.tools.handback_evidence measure "$@"
