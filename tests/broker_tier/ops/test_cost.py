"""broker-tier-ops cost: the installed command, offline, with no AWS variable at all."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from tier_testing import ENVIRONMENTS, ROOT

from broker_tier.cost.estimate import Assumptions, estimate_all
from broker_tier.cost.prices import load_prices
from broker_tier.cost.templates import load
from broker_tier.ops.cli import main

SCRIPT = Path(sys.executable).parent / "broker-tier-ops"
TABLE_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1")
"""The regions the issue asks the price table to cover (issue 24)."""
PRICED = ("--region", "us-east-1")
"""The tool's --region, which also picks the prices' region: given where a test is not about regions, so that the
tests hold for a cdk.json pinned to a region the price table lacks (the estimate then refuses that region)."""


def offline(tmp_path: Path, *args: str, before: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The installed command with no AWS variable, no AWS config or credentials file, and an empty HOME;
    ``before``: the tool's global options, given before the command."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path / "tmp")}
    assert not any(name.startswith("AWS") for name in environment)
    return subprocess.run(
        [str(SCRIPT), *before, "cost", "--report-dir", str(tmp_path / "reports"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=tmp_path,
    )


def test_prints_a_table_per_environment_from_a_cdk_out_without_credentials(synthesized, tmp_path):
    result = offline(tmp_path, "--cdk-out", str(synthesized.assembly.directory), before=PRICED)
    assert result.returncode == 0, result.stderr
    expected = estimate_all(
        load(Path(synthesized.assembly.directory)), prices=load_prices(), assumptions=Assumptions(), region=PRICED[1]
    )
    assert ENVIRONMENTS
    for env in ENVIRONMENTS:
        total = expected[env].total
        assert f"\n{env} (us-east-1):\n" in result.stdout
        assert re.search(
            rf"\n  total +{total.minimum:,.2f} +{total.typical:,.2f} +{total.maximum:,.2f}\n",
            result.stdout.split(f"\n{env} (")[1],
        ), env
    assert f"prices as of {load_prices().as_of}" in result.stdout and "Assumptions" in result.stdout
    assert "not estimated: Container Insights" in result.stdout
    (report,) = (tmp_path / "reports").glob("cost-all-*.json")
    assert json.loads(report.read_text())["outcome"] == "passed"


def test_json_output_carries_lines_assumptions_and_the_baseline_comparison(synthesized, tmp_path):
    result = offline(
        tmp_path,
        "--cdk-out",
        str(synthesized.assembly.directory),
        "--json",
        "--messages-per-second",
        "5",
        "--compare",
        str(ROOT / "baseline"),
        before=PRICED,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data["environments"]) == ENVIRONMENTS
    assert data["assumptions"]["messages_per_second"] == 5 and data["prices_as_of"] == load_prices().as_of
    prod = data["environments"]["prod"]
    assert prod["total"]["typical"] == pytest.approx(
        sum(line["monthly"]["typical"] for line in prod["lines"] if line["monthly"]), abs=0.05
    )
    comparison = {entry["environment"]: entry for entry in data["comparison"]["environments"]}
    assert comparison["prod"]["delta"]["typical"] == 0 and "NAT gateways" in comparison["prod"]["not_compared"]


@pytest.mark.slow  # synthesizes in a subprocess (scheduled first: tests/conftest.py)
def test_with_no_cdk_out_it_synthesizes_cdk_json_itself(tmp_path, monkeypatch, capsys):
    # In this process, whose jsii runtime other tests have started (a subprocess would start its own: ~10 s of
    # CPU); with no AWS variable and an empty HOME, as offline() runs the installed command.
    for name in [name for name in os.environ if name.startswith("AWS")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the synthesis's directory goes
    code = main(
        [
            *PRICED,
            "cost",
            "--report-dir",
            str(tmp_path / "reports"),
            "--env",
            "dev",
            "--cdk-json",
            str(ROOT / "cdk.json"),
        ]
    )
    output = capsys.readouterr()
    assert code == 0, output.err
    assert output.out.startswith("Monthly cost estimate from synthesized ")  # the verdict first
    assert list((tmp_path / "tmp").iterdir()) == []  # the synthesis's directory is gone
    assert "\ndev (us-east-1):\n" in output.out and "\nprod (" not in output.out
    assert "ElastiCache nodes" in output.out


def test_a_region_without_prices_exits_2_naming_the_regions_the_table_has(synthesized, tmp_path):
    result = offline(tmp_path, "--cdk-out", str(synthesized.assembly.directory), before=("--region", "mars-1"))
    assert result.returncode == 2 and result.stdout == ""
    assert "region 'mars-1' has no prices in prices.json" in result.stderr
    table = result.stderr.split("regions in the table: ")[1]
    assert all(region in table for region in TABLE_REGIONS), table
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--typical-load", "150", "at most 100"),
        ("--messages-per-second", "-1", "0 or more"),
        ("--nat-gb", "lots", "not a number"),
    ],
)
def test_bad_assumptions_are_usage_errors(option, value, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["cost", option, value])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_an_unknown_environment_is_refused_naming_the_found_ones(synthesized, tmp_path, capsys):
    code = main(
        ["cost", "--cdk-out", str(synthesized.assembly.directory), "--env", "qa", "--report-dir", str(tmp_path)]
    )
    assert code == 2 and "environment(s) qa not found; found: dev, staging, prod" in capsys.readouterr().err


def test_help_lists_every_assumption_with_its_default(tmp_path):
    result = subprocess.run([str(SCRIPT), "cost", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: broker-tier-ops cost")
    text = " ".join(result.stdout.split())
    for flag, default in [
        ("--typical-load", "25"),
        ("--messages-per-second", "1"),
        ("--log-gb-per-group", "1"),
        ("--nat-gb", "10"),
        ("--snapshot-gb", "1"),
        ("--what-if-spot-percent", "75"),
    ]:
        assert flag in text and f"(default: {default})" in text, flag


# Three invalid values in three environments, each with a message long enough that cutting the line loses one.
THREE_PROBLEMS = {
    ("dev", "cache", "node_type"): "cache.x9.huge",
    ("staging", "network", "cidr"): "10.65.0.0/33",
    ("prod", "cache", "snapshot_retention_days"): 99999,
}


def test_every_configuration_problem_is_reported_whole_and_apart(tmp_path, capsys):
    document = json.loads((ROOT / "cdk.json").read_text())
    for (env, block, key), value in THREE_PROBLEMS.items():
        document["context"]["broker-tier"]["environments"][env][block][key] = value
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps(document))
    code = main(["cost", "--cdk-json", str(cdk_json), "--report-dir", str(tmp_path / "reports")])
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    (json_path,) = (tmp_path / "reports").glob("cost-all-*.json")  # named as a successful run's, not cost---
    report = json.loads(json_path.read_text())
    markdown = json_path.with_suffix(".md").read_text()
    problems = report["failure"]["problems"]
    assert code == 2 and report["outcome"] == "refused" and report["target"] == f"synthesized {cdk_json}"
    assert [problem.split(":")[0] for problem in problems] == [
        "environment 'dev'",
        "environment 'staging'",
        "environment 'prod'",
    ]
    assert report["failure"]["cause"] == f"{cdk_json} has 3 configuration problems, so nothing was estimated"
    for number, problem in enumerate(problems, start=1):
        assert f"({number}) {problem}" in last_line and f"({number}) {problem}" in report["error"]
        assert f"\n- {problem}\n" in markdown.split("## Problems")[1]
    assert "…" not in last_line + report["error"] + markdown
    assert "allowed: 1 to 35; nothing was changed" in last_line  # the last problem whole, then the remedy


def test_a_cdk_json_that_is_not_json_is_refused(tmp_path, capsys):
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text('{"context": {')
    code = main(["cost", "--cdk-json", str(cdk_json), "--report-dir", str(tmp_path / "reports")])
    assert code == 2 and f"{cdk_json} is not valid JSON (Expecting" in capsys.readouterr().err


def test_what_if_lists_each_environments_savings_with_the_setting_and_the_assumption(synthesized, tmp_path):
    result = offline(tmp_path, "--cdk-out", str(synthesized.assembly.directory), "--what-if", before=PRICED)
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("What each option would save a month")[1]
    for env in ENVIRONMENTS:
        block = section.split(f"\n{env} (us-east-1, now ")[1]
        assert "  - workers and Beat on ARM64 (Graviton): " in block
        assert '      set: compute.cpu_architecture: "ARM64"' in block and "      assumes: " in block
        assert "  - class interactive on Fargate Spot: " in block and "  - one-year reserved cache nodes: " in block
    (markdown,) = (tmp_path / "reports").glob("cost-all-*.md")
    assert "prod what-if: fewer NAT gateways (set network.nat_gateways: 1)" in markdown.read_text()
    as_json = offline(tmp_path, "--cdk-out", str(synthesized.assembly.directory), "--what-if", "--json", before=PRICED)
    what_if = json.loads(as_json.stdout)["what_if"]
    assert list(what_if) == ENVIRONMENTS
    arm = next(saving for saving in what_if["prod"] if saving["option"].startswith("workers and Beat on ARM64"))
    assert arm["monthly_saving"]["typical"] > 0 and arm["setting"] == 'compute.cpu_architecture: "ARM64"'


def pinned_assembly(synthesized, tmp_path: Path, environments: dict[str, str]) -> Path:
    """A copy of the synthesized cloud assembly with ``environments`` pinned (environment -> region), as a cdk.json
    pinned to those regions would synthesize them (the stacks' artifacts name their region)."""
    import shutil

    copy = tmp_path / "pinned-cdk.out"
    shutil.copytree(synthesized.assembly.directory, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for name, artifact in manifest["artifacts"].items():
        for env, region in environments.items():
            if name.startswith(f"BrokerTier-{env}-") and artifact["type"] == "aws:cloudformation:stack":
                artifact["environment"] = f"aws://123456789012/{region}"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_a_cdk_json_pinned_to_an_unpriced_region_is_a_clear_error_of_cost_and_a_note_of_the_test_step(
    synthesized, tmp_path, capfd
):
    from broker_tier.tools import cost_step

    assert "af-south-1" not in load_prices().regions
    every = pinned_assembly(synthesized, tmp_path / "every", {env: "af-south-1" for env in ENVIRONMENTS})
    result = offline(tmp_path, "--cdk-out", str(every))
    assert result.returncode == 2 and "region 'af-south-1' has no prices in prices.json" in result.stderr
    assert cost_step.main(["--cdk-out", str(every), "--report-dir", str(tmp_path / "step")]) == 0
    printed = capfd.readouterr().out
    assert printed.count("which broker_tier/cost/prices.json has no prices for") == len(ENVIRONMENTS)
    assert "note: environment 'prod' targets af-south-1" in printed and "ElastiCache nodes" not in printed
    # one environment pinned there: the others are still estimated and compared against baseline/
    one = pinned_assembly(synthesized, tmp_path / "one", {"prod": "af-south-1"})
    assert cost_step.main(["--cdk-out", str(one), "--report-dir", str(tmp_path / "step")]) == 0
    printed = capfd.readouterr().out
    assert "note: environment 'prod' targets af-south-1" in printed
    region = synthesized.region if synthesized.pinned else load_prices().default_region  # cdk.json's, or the default
    assert f"\ndev ({region}):\n" in printed and f"\nstaging ({region}):\n" in printed and "\nprod (" not in printed


def _assembly(directory: Path, *environments: str) -> Path:
    """A cloud assembly's manifest naming each environment's State stack (enough for the freshness check)."""
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = {f"BrokerTier-{env}-State": {"type": "aws:cloudformation:stack"} for env in environments}
    (directory / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    return directory


def test_an_empty_or_stale_cdk_out_is_refused_with_the_command_that_makes_a_fresh_one(tmp_path, capsys):
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"broker-tier": {"environments": {"dev": {}, "prod": {}}}}}))
    empty = tmp_path / "empty"
    empty.mkdir()
    stale = _assembly(tmp_path / "stale", "dev", "qa")
    older = _assembly(tmp_path / "older", "dev")
    os.utime(older / "manifest.json", (1, 1))  # synthesized before cdk.json last changed
    for directory, why in (
        (empty, "nothing is synthesized there"),
        (stale, "holds environment(s) qa, which"),
        (older, "changed after it was synthesized"),
    ):
        code = main(["cost", "--cdk-out", str(directory), "--cdk-json", str(cdk_json), "--report-dir", str(tmp_path)])
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert code == 2 and why in last and "run scripts/synth.sh" in last, last


def test_the_synthesis_warnings_are_read_from_the_cdks_own_report(tmp_path):
    from broker_tier.cost.templates import validation_warnings

    (tmp_path / "validation-report.json").write_text(
        json.dumps(
            {
                "pluginReports": [
                    {
                        "conclusion": "success",
                        "violations": [
                            {
                                "description": "prod's alarms reach no one",
                                "severity": "warning",
                                "violatingConstructs": [{"constructPath": "BrokerTier-prod-Monitoring"}],
                            }
                        ],
                    }
                ]
            }
        )
    )
    assert validation_warnings(tmp_path) == ["BrokerTier-prod-Monitoring: prod's alarms reach no one"]
    assert validation_warnings(tmp_path / "nothing") == []
