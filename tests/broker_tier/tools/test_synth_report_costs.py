"""The synthesis report: each environment's typical monthly total, and a clear failure for a missing price."""

from __future__ import annotations

import json
from pathlib import Path

from tier_testing import ENVIRONMENTS

from broker_tier.cost.estimate import Assumptions, estimate_all
from broker_tier.cost.prices import load_prices
from broker_tier.cost.templates import load
from broker_tier.tools.synth_report import typical_costs


def test_prints_each_environments_typical_monthly_total(synthesized):
    directory = Path(synthesized.assembly.directory)
    lines, priced = typical_costs(directory)
    expected = estimate_all(load(directory), prices=load_prices(), assumptions=Assumptions())
    assert priced
    assert lines[1:] == [f"    {env} (us-east-1): {expected[env].total.typical:,.2f}" for env in ENVIRONMENTS]


def test_an_unpriced_resource_fails_the_report_naming_it(tmp_path):
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
    lines, priced = typical_costs(tmp_path)
    assert not priced and "resource type AWS::RDS::DBInstance has no price" in lines[0]
