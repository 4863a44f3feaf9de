"""TierStack pinned to an account and region: cdk-nag passes, the AZs are still chosen at deploy time (so pinning
an environment deployed agnostic changes no subnet), no context look-up is needed, and cfn-lint passes for
the region. The template tests beside this one run on the pinned syntheses too (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tier_testing import ENVIRONMENTS, PINNED_REGIONS, ROOT, pinned_context, project_context

import broker_tier_contract as contract
from broker_tier.app_builder import synthesize
from broker_tier.config import CONTEXT_KEY, load_environments

PINNED = [f"pinned_{region.replace('-', '_')}" for region in PINNED_REGIONS]


@pytest.fixture(params=PINNED)
def pinned(request):
    return request.getfixturevalue(request.param)


def acknowledged_rules(outdir: Path) -> set[str]:
    found = set()
    for metadata in outdir.glob("*.metadata.json"):
        for entries in json.loads(metadata.read_text()).values():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    found |= {rule.partition("::")[2] for rule in entry["data"]}
    return found


def test_pinned_synthesis_passes_cdk_nag_with_acknowledgments_in_its_own_region_and_account(pinned):
    # the fixture synthesized with cdk-nag: an unacknowledged finding would have failed it; only warnings remain
    # the validation plugins' report (the annotations' warnings go into it too: annotationsInValidationReport)
    reports = json.loads((pinned.outdir / "validation-report.json").read_text())["pluginReports"]
    findings = [finding for report in reports for finding in report["violations"]]
    assert findings  # the production warning of an alarm topic with no subscription at least
    assert all(finding["severity"] == "warning" for finding in findings), findings
    wildcards = {
        rule for rule in acknowledged_rules(pinned.outdir) if rule.startswith("AwsSolutions-IAM5[Resource::arn")
    }
    where = f"{pinned.region}:{pinned.account}"
    payloads = [  # the claim check's payload prefixes, in the environments that turn it on
        f"AwsSolutions-IAM5[Resource::arn:aws:s3:::"
        f"{contract.claim_check_bucket_name(env, '<AWS::AccountId>', '<AWS::Region>')}/{cls}/*]"
        for env, config in load_environments(project_context()[CONTEXT_KEY]).items()
        if config.claim_check.enabled
        for cls in config.queues
    ]
    assert payloads  # cdk.json turns it on in one environment at least: its acknowledgments are checked here
    assert wildcards == {
        f"AwsSolutions-IAM5[Resource::arn:aws:ecs:{where}:task/<ClusterEB0386A7>/*]",
        f"AwsSolutions-IAM5[Resource::arn:aws:logs:{where}:log-group:<OperatorLogs2FF732B9>:*]",
        *payloads,
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnets_take_the_azs_of_fn_getazs_at_deploy_time_as_the_agnostic_baseline_does(pinned, env):
    state = contract.stack_name(env, "State")
    baseline = json.loads((ROOT / "baseline" / f"{state}.json").read_text())
    subnets = pinned.resources(env, "State", "AWS::EC2::Subnet")
    assert subnets and set(subnets) == {lid for lid, r in baseline.items() if r["Type"] == "AWS::EC2::Subnet"}
    for logical_id, subnet in subnets.items():
        zone = subnet["Properties"]["AvailabilityZone"]
        assert zone == baseline[logical_id]["Properties"]["AvailabilityZone"], logical_id
        assert list(zone) == ["Fn::Select"] and zone["Fn::Select"][1] == {"Fn::GetAZs": ""}, logical_id
    template = json.dumps(pinned.json(env, "State"))
    assert f'"{pinned.region}a"' not in template  # the looked-up AZ names (us-east-1's fixture has them) unused


def test_a_pinned_environment_needs_no_context_look_up(tmp_path):
    # pinned to another region and synthesized without cdk.context.json: a look-up would be listed as missing
    # (and CDK's dummy AZs used)
    assembly = synthesize(pinned_context("eu-west-1", looked_up=False), outdir=tmp_path, environment="prod")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["artifacts"] and "missing" not in manifest
    state = assembly.get_stack_by_name(contract.stack_name("prod", "State"))
    assert state.environment.region == "eu-west-1"
    assert "dummy" not in json.dumps(state.template)


def test_pinned_templates_pass_cfn_lint_in_their_region(pinned):
    from cfnlint.api import ManualArgs, lint_by_config

    templates = sorted(str(path) for path in pinned.outdir.glob("*.template.json"))
    assert len(templates) == 3 * len(ENVIRONMENTS)
    # errors and warnings, as scripts/test.sh lints the agnostic templates (one run: the rules load once)
    findings = [str(match) for match in lint_by_config(ManualArgs(templates=templates, regions=[pinned.region]))]
    assert findings == []


def test_the_lint_reports_what_an_az_look_up_would_write(tmp_path):
    """The check above can fail: a subnet with an AZ name, as a CDK look-up would write it, is a warning."""
    from cfnlint.api import ManualArgs, lint_by_config

    template = tmp_path / "looked-up.template.json"
    subnet = {"VpcId": "vpc-0123456789abcdef0", "CidrBlock": "10.64.0.0/24", "AvailabilityZone": "eu-west-1a"}
    template.write_text(json.dumps({"Resources": {"Subnet": {"Type": "AWS::EC2::Subnet", "Properties": subnet}}}))
    findings = list(lint_by_config(ManualArgs(templates=[str(template)], regions=["eu-west-1"])))
    assert [match.rule.id for match in findings] == ["W3010"]
