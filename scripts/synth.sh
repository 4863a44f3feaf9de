#!/usr/bin/env bash
# Command 1: set everything up and synthesize every environment into cdk.out/.
# Extra arguments go to `cdk synth` (e.g. `-c env=dev`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
cdk synth --quiet "$@"
python -m broker_tier.tools.synth_report cdk.out
