#!/usr/bin/env bash
# The reviewed step that accepts a change to the tier's stateful resources: synthesize every
# environment, write their stateful resources to baseline/, and show the diff to commit for review.
# See runbooks/intentional-replacement.md before running it for a replacing change.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
rm -rf cdk.out
cdk synth --quiet
python -m broker_tier.tools.replacement_guard || true
python -m broker_tier.tools.replacement_guard --update
# the compute footprint the cost step compares Fargate lines against (broker_tier/cost/baseline.py)
python -m broker_tier.cost.baseline --update
git --no-pager diff --stat -- baseline/ || true
