#!/usr/bin/env bash
# Command 1: set everything up and synthesize every environment into cdk.out/.
# Extra arguments go to `cdk synth` (e.g. `-c env=dev`). The previous cdk.out/ is removed first, so a
# failed synthesis never leaves an older, good-looking output behind.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
rm -rf cdk.out
cdk synth --quiet "$@"
python -m broker_tier.tools.synth_report cdk.out
