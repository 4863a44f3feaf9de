"""The synthesis report: each environment's typical monthly total, or why it has none; a missing price is
reported and never fails synthesis."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tier_testing import ENVIRONMENTS, SynthesizedEnvironments

from broker_tier.cost.estimate import Assumptions, estimate_all
from broker_tier.cost.prices import load_prices
from broker_tier.cost.templates import load
from broker_tier.tools.synth_report import main, typical_costs


@pytest.mark.parametrize("synthesis", ["synthesized", "pinned_us_east_1"])
def test_prints_each_environments_typical_monthly_total(request, synthesis):
    synthesized = request.getfixturevalue(synthesis)
    directory = Path(synthesized.assembly.directory)
    lines = typical_costs(directory)
    prices = load_prices()
    region = synthesized.region if synthesized.pinned else prices.default_region  # agnostic: the table's default
    if region not in prices.regions:  # a cdk.json pinned to an unpriced region (the test below covers it)
        assert len(lines) == 1 + len(ENVIRONMENTS)
        assert all(f"({region}): not priced: the price table (prices.json) has " in line for line in lines[1:])
        return
    expected = estimate_all(load(directory), prices=prices, assumptions=Assumptions())

    def line(env: str) -> str:  # a region the table prices in part says which lines its total leaves out
        unpriced = [x.name for x in expected[env].lines if (x.not_estimated or "").startswith("not priced")]
        partial = f" for the priced lines ({len(unpriced)} not priced: {', '.join(unpriced)})" if unpriced else ""
        return f"    {env} ({region}): {expected[env].total.typical:,.2f}{partial}"

    assert lines[1:] == [line(env) for env in ENVIRONMENTS]


def test_an_unpriced_resource_is_named_and_does_not_fail_the_report(tmp_path, capsys):
    (tmp_path / "t.json").write_text(json.dumps({"Resources": {"Db": {"Type": "AWS::RDS::DBInstance"}}}))
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "BrokerTier-qa-State": {
                        "type": "aws:cloudformation:stack",
                        "environment": "aws://unknown-account/unknown-region",
                        "properties": {"templateFile": "t.json"},
                    }
                }
            }
        )
    )
    (line,) = typical_costs(tmp_path)[1:]
    assert line.startswith("    qa (us-east-1): no estimate: ") and "AWS::RDS::DBInstance has no price" in line
    assert main([str(tmp_path)]) == 0
    assert "AWS::RDS::DBInstance has no price" in capsys.readouterr().out


def pinned_elsewhere(pinned: SynthesizedEnvironments, tmp_path: Path, region: str) -> Path:
    """A copy of the pinned assembly whose stacks' artifacts name ``region`` (where the estimate reads it)."""
    outdir = tmp_path / region
    shutil.copytree(pinned.outdir, outdir)
    manifest = (outdir / "manifest.json").read_text()
    assert f"/{pinned.region}" in manifest
    (outdir / "manifest.json").write_text(manifest.replace(f"/{pinned.region}", f"/{region}"))
    return outdir


def test_a_region_without_prices_is_said_to_be_unpriced_and_synthesis_passes(pinned_us_east_1, tmp_path, capsys):
    """A cdk.json pinned to a region the table lacks."""
    assert "af-south-1" not in load_prices().regions
    outdir = pinned_elsewhere(pinned_us_east_1, tmp_path, "af-south-1")
    lines = typical_costs(outdir)
    regions = ", ".join(load_prices().regions)
    assert lines[1:] == [
        f"    {env} (af-south-1): not priced: the price table (prices.json) has {regions} only" for env in ENVIRONMENTS
    ]
    assert main([str(outdir)]) == 0
    assert "not priced" in capsys.readouterr().out


def test_a_region_priced_in_part_says_its_total_covers_the_priced_lines(pinned_us_east_1, tmp_path):
    lines = typical_costs(pinned_elsewhere(pinned_us_east_1, tmp_path, "eu-west-1"))
    assert len(lines) == 1 + len(ENVIRONMENTS)
    for line, env in zip(lines[1:], ENVIRONMENTS, strict=True):
        assert line.startswith(f"    {env} (eu-west-1): ") and " for the priced lines (" in line, line
        assert "NAT gateways" in line.split(" not priced: ")[1]  # no public source for eu-west-1's


def test_a_pinned_environment_of_a_priced_region_is_priced_there(pinned_us_east_1):
    lines = typical_costs(pinned_us_east_1.outdir)
    assert len(lines) == 1 + len(ENVIRONMENTS)
    assert all(line.startswith(f"    {env} (us-east-1): ") for line, env in zip(lines[1:], ENVIRONMENTS, strict=True))
    assert not any("no estimate" in line or "not priced" in line for line in lines)
