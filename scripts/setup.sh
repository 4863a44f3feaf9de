#!/usr/bin/env bash
# Sets up everything the repository needs, idempotently: a Python virtual environment with the
# pinned packages, and the pinned CDK CLI and Node 22 as local npm packages. No global installs.
# Re-running is cheap: each step is skipped while its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "broker-tier needs Python 3.11+")'

stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
py_stamp=$(stamp requirements.txt requirements-dev.txt constraints.txt pyproject.toml)
if [ "$(cat .venv/.broker-tier-stamp 2>/dev/null)" != "$py_stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
  .venv/bin/python -m pip install --quiet --no-deps -e .
  echo "$py_stamp" > .venv/.broker-tier-stamp
fi

node_stamp=$(stamp package.json package-lock.json)
if [ "$(cat node_modules/.broker-tier-stamp 2>/dev/null)" != "$node_stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$node_stamp" > node_modules/.broker-tier-stamp
fi
