#!/usr/bin/env bash
# Command 2: set everything up and run the whole test suite: ruff (lint and format), synthesis of every environment with
# the pinned CLI (cdk-nag's AwsSolutions pack fails synth on any unacknowledged finding), cfn-lint
# on every template, the replacement guard against baseline/, the monthly cost estimate and its difference
# against baseline/ (printed only; an environment whose region has no prices gets a note), mypy on broker_tier
# and worker/, then pytest (template assertions, guards, integration tests; it also synthesizes every environment
# pinned to us-east-1, with cdk-nag, cfn-lint in that region and the replacement guard, and prod pinned to
# eu-west-1: tests/broker_tier/stacks/test_base.py). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/ensure-redis.sh
source scripts/env.sh
# Cache bytecode (git ignores __pycache__): each pytest process otherwise rewrites every test module's asserts again
# (about 1.6 s of CPU per process), and each Celery worker a test starts compiles the first-party packages again.
unset PYTHONDONTWRITEBYTECODE

step() { printf '\n== %s\n' "$*"; }
step "ruff: lint and format (pyproject.toml [tool.ruff])"
ruff check --quiet .
ruff format --check --quiet .
echo "ruff: 0 findings, every file formatted"

step "synthesize every environment (pinned CDK CLI, cdk-nag AwsSolutions)"
rm -rf cdk.out
cdk synth --quiet
python -m broker_tier.tools.synth_report cdk.out

step "cfn-lint (errors and warnings fail)"
# two processes on the two cores (cfn-lint checks one template after another); any finding fails (xargs: 123)
printf '%s\0' cdk.out/*.template.json | xargs -0 -P 2 -n 5 cfn-lint
echo "cfn-lint: 0 errors, 0 warnings in $(ls cdk.out/*.template.json | wc -l) templates"

step "replacement guard (stateful resources against baseline/)"
python -m broker_tier.tools.replacement_guard

step "monthly cost by environment, and what this change adds against baseline/ (printed; a cost change never fails)"
# broker-tier-ops cost for every environment whose region the price table has; a note for any other
# (broker_tier/tools/cost_step.py): the Fargate lines compare against baseline/services/, so Spot and ARM64 changes show
python -m broker_tier.tools.cost_step --cdk-out cdk.out --baseline baseline --report-dir reports/cost

step "mypy: broker_tier and worker/ (strict: the configuration model, the contract, the Celery settings package)"
mypy broker_tier worker/broker_tier_contract worker/broker_tier_celery worker/broker_tier_worker

step "pytest"
# Six processes (pytest-xdist): most integration tests wait on real processes, which overlaps well even
# on two cores; the tests that share a synthesis run in one of them, and every other test that runs the CDK in its
# process in one more, so that jsii starts twice, not in every process (tests/conftest.py). A later -n wins, e.g.
# `scripts/test.sh -n 0`.
# The session reuses the cdk.out synthesized above (tests/support/tier_testing.py: REUSE_CDK_OUT).
BROKER_TIER_TEST_CDK_OUT="$PWD/cdk.out" python -m pytest -q -n 6 --dist loadgroup "$@"
