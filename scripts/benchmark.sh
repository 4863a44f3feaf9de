#!/usr/bin/env bash
# Times synthesis of every environment against a bare one-stack app (and optionally the test command).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
python -m broker_tier.tools.benchmark "$@"
