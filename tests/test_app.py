"""app.py as the CDK CLI runs it: an invalid configuration fails synthesis with one message per problem,
no traceback, and nothing written to the output directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import aws_cdk as cdk  # noqa: E402
from tier_testing import ROOT, project_context  # first: puts the pinned Node on PATH for jsii

from broker_tier.app_builder import build_app  # noqa: E402


def run_app(context: dict, outdir) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(outdir)}
    return subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def assert_refused_cleanly(result: subprocess.CompletedProcess, outdir, expected_lines: list[str]) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    assert lines[0] == "broker-tier: invalid configuration; nothing was synthesized:"
    assert lines[1:] == expected_lines
    assert not outdir.exists() or not any(outdir.iterdir()), "nothing may be written to the output directory"


def test_mistakes_that_once_ended_in_a_traceback_or_passed_are_refused_in_one_message(tmp_path):
    context = project_context()
    tier = context["broker-tier"]
    tier["defaults"]["compute"]["stop_timeout_seconds"] = "120"  # a string for a number
    tier["environments"]["dev"]["network"]["cidr"] = "10.300.0.0/16"  # once a traceback from CDK
    tier["environments"]["staging"]["cache"]["node_type"] = "cache.m7g.lage"  # once accepted until deploy time
    tier["environments"]["prod"].pop("account", None)  # as shipped (a team may have pinned it)
    tier["environments"]["prod"]["region"] = "eu-west-1"  # once silently dropped
    outdir = tmp_path / "cdk.out"
    assert_refused_cleanly(
        run_app(context, outdir),
        outdir,
        [
            "defaults (inherited by 'dev', 'staging', 'prod'): compute.stop_timeout_seconds = \"120\" is not allowed; "
            "allowed: a JSON integer, 20 to 120",
            "environment 'dev': network.cidr = \"10.300.0.0/16\" is not allowed; allowed: an IPv4 network in CIDR "
            "notation such as 10.64.0.0/16 (Octet 300 (> 255) not permitted in '10.300.0.0')",
            "environment 'staging': cache.node_type = \"cache.m7g.lage\" is not allowed; allowed: an m- or r-class "
            "node type ElastiCache offers, such as cache.m7g.large or cache.r7g.xlarge (catalogue "
            'elasticache_node_types.json of 2026-11-23); did you mean "cache.m7g.large"?',
            "environment 'prod': account is missing; allowed: an account beside region \"eu-west-1\": set both account "
            "and region (a pinned environment), or neither (environment-agnostic)",
        ],
    )


def test_a_vpc_too_small_for_its_subnets_is_refused_before_cdk_sees_it(tmp_path):
    context = {**project_context(), "env": "prod"}
    context["broker-tier"]["environments"]["prod"]["network"]["cidr"] = "10.66.0.0/20"
    outdir = tmp_path / "cdk.out"
    assert_refused_cleanly(
        run_app(context, outdir),
        outdir,
        [
            "environment 'prod': network.cidr = \"10.66.0.0/20\" is not allowed; allowed: a network of /18 or larger "
            "(e.g. 10.66.0.0/18) for max_azs 3: the VPC gets a /24 public and a /20 private subnet in each AZ, each on "
            "a boundary of its size, 16384 addresses in all"
        ],
    )


def test_unknown_selected_environment_is_refused(tmp_path):
    outdir = tmp_path / "cdk.out"
    assert_refused_cleanly(
        run_app({**project_context(), "env": "qa"}, outdir),
        outdir,
        ["context 'env' = \"qa\" is not allowed; allowed: one of dev, prod, staging (declared in cdk.json)"],
    )


def test_a_broken_environment_does_not_block_synthesizing_another_one(tmp_path):
    context = {**project_context(), "env": "dev"}
    context["broker-tier"]["environments"]["prod"]["network"]["cidr"] = "10.300.0.0/16"
    stacks = build_app(cdk.App(context=context, outdir=str(tmp_path)), nag=False)
    assert list(stacks) == ["dev"]
