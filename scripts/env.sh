# Sourced by the scripts: the pinned Node 22 and CDK CLI first on PATH, no CLI telemetry.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/node_modules/.bin:$ROOT/.venv/bin:$PATH"
export CDK_DISABLE_CLI_TELEMETRY=true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION=1
