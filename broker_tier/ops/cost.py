"""``broker-tier-ops cost``: an offline monthly cost estimate of every environment, by line.

Reads the synthesized templates (``--cdk-out``; by default it synthesizes cdk.json first, which
needs neither credentials nor network), prices them with the dated table in
``broker_tier/cost/prices.json`` and prints a table per environment (at minimum tasks, typical
load, maximum tasks), or JSON. ``--compare BASE`` prints what the current templates add or
remove against another cdk.out or the replacement guard's ``baseline/``; ``--what-if`` what each option
would save (``broker_tier/cost/what_if.py``). A resource or region
without a price stops it with exit code 2; a cost difference never fails it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import broker_tier_contract as contract
from broker_tier.cost import compare, estimate, render, templates, what_if
from broker_tier.cost.prices import CostError, load_prices
from broker_tier.evidence.errors import OpsError
from broker_tier.evidence.report import Report
from broker_tier.ops.command import Command, environment_name, number
from broker_tier.ops.resources import TierResources

# The assumptions a user sets on the command line: option, metavar, help (the default is appended).
ASSUMPTION_OPTIONS = {
    "typical_load_percent": ("--typical-load", "PERCENT", "a scaled service's share of the way from min to max"),
    "messages_per_second": ("--messages-per-second", "N", "task messages/s across the queues (3 SQS requests)"),
    "log_gb_per_group": ("--log-gb-per-group", "GB", "ingested per log group per month"),
    "nat_gb": ("--nat-gb", "GB", "processed by the NAT gateways per month"),
    "snapshot_gb": ("--snapshot-gb", "GB", "of one daily cache snapshot (one is free)"),
    "what_if_spot_percent": ("--what-if-spot-percent", "PERCENT", "--what-if: tasks above one put on Spot"),
}


def _default_cdk_json() -> Path:
    here = Path("cdk.json")
    return here if here.is_file() else templates.REPOSITORY / "cdk.json"


def _price_region(args: argparse.Namespace) -> str | None:
    """The tool's own --region (the AWS region of every command) also picks the region of the prices."""
    return getattr(args, "region", None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    prices = load_prices()
    parser.description = (
        "Offline monthly cost estimate of every environment, by line (docs/cost.md): synthesizes cdk.json (no "
        "credentials, no network) or reads --cdk-out, and prices the templates with the dated table "
        "broker_tier/cost/prices.json. The global --region picks the prices' region (default: each "
        f"environment's own, else {prices.default_region}; priced: {', '.join(prices.regions)})."
    )
    source = parser.add_argument_group("templates")
    source.add_argument("--cdk-out", type=Path, metavar="DIR", help="read this cloud assembly instead of synthesizing")
    source.add_argument(
        "--cdk-json", type=Path, metavar="FILE", help="synthesize this cdk.json (default: ./cdk.json, else the repo's)"
    )
    source.add_argument("--env", metavar="NAME", type=environment_name, help="only this environment (default: all)")
    source.add_argument(
        "--compare", type=Path, metavar="BASE", help="also the difference against another cdk.out, or baseline/"
    )
    options = parser.add_argument_group("assumptions (printed with the estimate)")
    defaults = estimate.assumption_fields()
    for name, (flag, metavar, text) in ASSUMPTION_OPTIONS.items():
        options.add_argument(
            flag,
            dest=name,
            metavar=metavar,
            default=defaults[name],
            type=number(float, at_least=0, at_most=100)
            if name in ("typical_load_percent", "what_if_spot_percent")
            else number(float, at_least=0),
            help=f"{text} (default: {defaults[name]:g})",
        )
    options.add_argument(
        "--free-tier", action="store_true", help="subtract the account-wide free allowances (default: not)"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print JSON instead of tables")
    output.add_argument("--markdown", action="store_true", help="print Markdown tables")
    output.add_argument("--what-if", action="store_true", help="also what each option would save a month, and how")


def _what_if(
    args: argparse.Namespace, directory: Path, assumptions: estimate.Assumptions, environments: list[str] | None
) -> dict[str, list[what_if.Saving]] | None:
    """``--what-if``: each environment's savings, priced as its estimate is; None without the option."""
    if not args.what_if:
        return None
    return what_if.savings_all(
        templates.load(directory),
        prices=load_prices(),
        assumptions=assumptions,
        region=_price_region(args),
        environments=environments,
    )


SYNTHESIZE = "run scripts/synth.sh (it synthesizes every environment into cdk.out), or leave out --cdk-out"


def _declared(cdk_json: Path) -> set[str] | None:
    """The environments ``cdk_json`` declares, or None when it cannot be read (then nothing is compared)."""
    from broker_tier.config import CONTEXT_KEY  # pydantic: only when a cdk.out is checked

    try:
        tier = json.loads(cdk_json.read_text()).get("context", {}).get(CONTEXT_KEY, {})
        return set(tier.get("environments") or {})
    except (OSError, ValueError, AttributeError):
        return None


def check_synthesized(cdk_out: Path, cdk_json: Path) -> None:
    """Refuse a ``--cdk-out`` that holds nothing, or that was synthesized before ``cdk_json`` last changed or from
    another one: the estimate would price templates the app no longer makes."""
    if not cdk_out.is_dir():
        raise OpsError(f"--cdk-out {cdk_out}: no such directory; {SYNTHESIZE}")
    manifest = cdk_out / "manifest.json"
    if not manifest.is_file():
        if any(cdk_out.glob("BrokerTier-*.json")):
            return  # the replacement guard's baseline/: reviewed by hand, not synthesized
        raise OpsError(f"--cdk-out {cdk_out}: nothing is synthesized there (no manifest.json); {SYNTHESIZE}")
    synthesized = {
        parsed[0]
        for name in json.loads(manifest.read_text()).get("artifacts", {})
        if (parsed := contract.parse_stack_name(name))
    }
    if not synthesized:
        raise OpsError(f"--cdk-out {cdk_out}: holds no BrokerTier-<env>-<part> stack; {SYNTHESIZE}")
    declared = _declared(cdk_json)
    if declared is not None and not synthesized <= declared:
        raise OpsError(
            f"--cdk-out {cdk_out} is stale: it holds environment(s) {', '.join(sorted(synthesized - declared))}, "
            f"which {cdk_json} does not declare; {SYNTHESIZE}"
        )
    if cdk_json.is_file() and cdk_json.stat().st_mtime > manifest.stat().st_mtime:
        raise OpsError(f"--cdk-out {cdk_out} is stale: {cdk_json} changed after it was synthesized; {SYNTHESIZE}")


def _estimate(args: argparse.Namespace, directory: Path, prices, assumptions) -> dict:
    """The estimate of the templates in ``directory``, with the comparison and the savings the options ask for."""
    environments = [args.env] if args.env else None
    current = estimate.estimate_all(
        templates.load(directory),
        prices=prices,
        assumptions=assumptions,
        region=_price_region(args),
        environments=environments,
    )
    found: dict[str, Any] = {"current": current, "changes": None, "base_label": None, "base_note": None}
    if args.compare:
        base_found = templates.load(args.compare)
        holds_only = next(iter(base_found.values())).holds_only
        base = estimate.estimate_all(
            base_found,
            prices=prices,
            assumptions=assumptions,
            region=_price_region(args),
            environments=[name for name in (environments or base_found) if name in base_found],
        )
        found["changes"] = compare.compare(base, current, base_holds_only=holds_only)
        found["base_label"] = str(args.compare)
        if holds_only is not None:
            found["base_note"] = (
                f"{args.compare} holds the stateful resources the replacement guard reviews and the services' "
                f"compute footprint; compare against another cdk.out for every line"
            )
    found["savings"] = _what_if(args, directory, assumptions, environments)
    return found


def _synthesized_estimate(args: argparse.Namespace, cdk_json: Path, report: Report, prices, assumptions) -> dict:
    """Synthesize ``cdk_json`` into a temporary directory, estimate, and remove the directory."""
    with tempfile.TemporaryDirectory(prefix="broker-tier-cost-") as scratch:
        directory = templates.synthesize(cdk_json=cdk_json, environment=args.env, outdir=Path(scratch))
        warnings = templates.validation_warnings(directory)
        if warnings:
            report.measurements["synthesis warnings"] = warnings
            report.say(f"the synthesis warned {len(warnings)} time(s) (in the report; scripts/synth.sh shows them)")
        return _estimate(args, directory, prices, assumptions)


def _print(args: argparse.Namespace, found: dict, prices, assumptions, verdict: str) -> None:
    current, changes, savings = found["current"], found["changes"], found["savings"]
    if args.json:
        data = render.as_json(current, prices, assumptions, changes, found["base_label"], savings)
        print(json.dumps({"verdict": verdict, **data}, indent=2))
        return
    print(verdict, end="\n\n")
    if args.markdown:
        print(render.markdown(current, prices, savings), end="")
        return
    print(render.text(current, prices, assumptions), end="")
    if changes is not None:
        print()
        print(
            render.comparison_text(changes, base_label=found["base_label"] or "", base_note=found["base_note"]), end=""
        )
    if savings is not None:
        print()
        print(render.what_if_text(savings, current), end="")


def _measure(report: Report, found: dict, prices) -> None:
    report.measurements.update(
        {
            f"{name} monthly {prices.currency} (min/typical/max)": estimate_.total.rounded()
            for name, estimate_ in found["current"].items()
        }
    )
    report.measurements["prices as of"] = prices.as_of
    for change in found["changes"] or ():
        report.measurements[f"{change.environment} change against {found['base_label']} (typical)"] = round(
            change.delta.typical, 2
        )
    report.measurements.update(render.what_if_measurements(found["savings"] or {}))


def run(args: argparse.Namespace, _resources: TierResources | None, _clients: dict | None) -> Report:
    prices = load_prices()
    assumptions = estimate.Assumptions(
        free_tier=args.free_tier, **{name: getattr(args, name) for name in ASSUMPTION_OPTIONS}
    )
    cdk_json = args.cdk_json or _default_cdk_json()
    # The report first: a refusal (a bad cdk.json, a missing price) is then written under the name and target
    # of this run (cost-<env or all>-...), not as a stand-in's.
    report = Report(
        command="cost",
        environment=args.env or "all",
        target=str(args.cdk_out) if args.cdk_out else f"synthesized {cdk_json}",
        dry_run=False,
    )
    try:
        if args.cdk_out:
            check_synthesized(args.cdk_out, cdk_json)
            found = _estimate(args, args.cdk_out, prices, assumptions)
        else:
            found = _synthesized_estimate(args, cdk_json, report, prices, assumptions)
    except CostError as error:
        raise OpsError(str(error), error.problems) from None
    _measure(report, found, prices)
    report.finish("passed")
    _print(args, found, prices, assumptions, report.verdict)
    return report


COMMAND = Command(
    name="cost",
    help="offline monthly cost estimate of every environment, by line",
    usage="",
    add_arguments=add_arguments,
    run=run,
    aws=False,
)
