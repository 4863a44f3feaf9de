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
from pathlib import Path

from broker_tier.cost import compare, estimate, render, templates, what_if
from broker_tier.cost.prices import CostError, load_prices
from broker_tier.evidence.errors import OpsError
from broker_tier.evidence.report import Report
from broker_tier.ops.command import Command, environment_name, number
from broker_tier.ops.resources import TierResources

# The assumptions a user sets on the command line: option, metavar, help (the default is appended).
ASSUMPTION_OPTIONS = {
    "typical_load_percent": (
        "--typical-load",
        "PERCENT",
        "typical tasks of a scaled service: its minimum plus "
        "this share of the way to its maximum, as a monthly average",
    ),
    "messages_per_second": (
        "--messages-per-second",
        "N",
        "task messages per second across the environment's queues (3 SQS requests each)",
    ),
    "log_gb_per_group": ("--log-gb-per-group", "GB", "GB ingested per log group per month"),
    "nat_gb": ("--nat-gb", "GB", "GB processed by the environment's NAT gateways per month"),
    "snapshot_gb": (
        "--snapshot-gb",
        "GB",
        "GB of one cache snapshot (one a day is kept for the retention period; one is free)",
    ),
    "what_if_spot_percent": (
        "--what-if-spot-percent",
        "PERCENT",
        "--what-if: share of a class's tasks above an on-demand floor of one that the Spot line puts on Spot",
    ),
}


def _default_cdk_json() -> Path:
    here = Path("cdk.json")
    return here if here.is_file() else templates.REPOSITORY / "cdk.json"


def _price_region(args: argparse.Namespace) -> str | None:
    """The tool's own --region (the AWS region of every command) also picks the region of the prices."""
    return getattr(args, "region", None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    prices = load_prices()
    source = parser.add_argument_group("templates")
    source.add_argument(
        "--cdk-out",
        type=Path,
        metavar="DIR",
        help="read this cloud assembly (e.g. cdk.out after `cdk synth`) instead of synthesizing",
    )
    source.add_argument(
        "--cdk-json",
        type=Path,
        metavar="FILE",
        help="the app's cdk.json to synthesize (default: ./cdk.json, else the repository's)",
    )
    source.add_argument(
        "--env", metavar="NAME", type=environment_name, help="only this environment (default: every environment)"
    )
    source.add_argument(
        "--compare",
        type=Path,
        metavar="BASE",
        help="also print the difference, by line, against BASE: another cdk.out, or baseline/ "
        "(stateful resources only: cache, KMS keys, secrets, logs compare; the rest is "
        "listed as not compared)",
    )
    options = parser.add_argument_group(
        "prices and assumptions (printed with the estimate)",
        f"The tool's --region picks the prices' region (default: an environment's own region, else "
        f"{prices.default_region}; regions in the table: {', '.join(prices.regions)}).",
    )
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
        "--free-tier",
        action="store_true",
        help="subtract the account-wide free allowances (CloudWatch, SQS) from each environment "
        "as if it had the account to itself (default: not subtracted)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print JSON instead of tables")
    output.add_argument("--markdown", action="store_true", help="print Markdown tables (totals, then lines)")
    output.add_argument(
        "--what-if",
        action="store_true",
        help="also print, per environment, what each option would save a month (ARM64, Spot per class, Valkey, "
        "reserved cache nodes, fewer NAT gateways), the setting to change and the assumption behind it",
    )


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


def run(args: argparse.Namespace, _resources: TierResources | None, _clients: dict | None) -> Report:
    prices = load_prices()
    assumptions = estimate.Assumptions(
        free_tier=args.free_tier, **{name: getattr(args, name) for name in ASSUMPTION_OPTIONS}
    )
    environments = [args.env] if args.env else None
    cdk_json = None if args.cdk_out else args.cdk_json or _default_cdk_json()
    # The report first: a refusal (a bad cdk.json, a missing price) is then written under the name and target
    # of this run (cost-<env or all>-...), not as a stand-in's.
    report = Report(
        command="cost",
        environment=args.env or "all",
        target=str(args.cdk_out) if args.cdk_out else f"synthesized {cdk_json}",
        dry_run=False,
    )
    try:
        directory = args.cdk_out or templates.synthesize(cdk_json=cdk_json or _default_cdk_json(), environment=args.env)
        current = estimate.estimate_all(
            templates.load(directory),
            prices=prices,
            assumptions=assumptions,
            region=_price_region(args),
            environments=environments,
        )
        changes, base_label, base_note = None, None, None
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
            changes = compare.compare(base, current, base_holds_only=holds_only)
            base_label = str(args.compare)
            if holds_only is not None:
                base_note = (
                    f"{args.compare} holds the stateful resources the replacement guard reviews and the services' "
                    f"compute footprint; compare against another cdk.out for every line"
                )
        savings = _what_if(args, directory, assumptions, environments)
    except CostError as error:
        raise OpsError(str(error), error.problems) from None
    if args.json:
        print(json.dumps(render.as_json(current, prices, assumptions, changes, base_label, savings), indent=2))
    elif args.markdown:
        print(render.markdown(current, prices, savings), end="")
    else:
        print(render.text(current, prices, assumptions), end="")
        if changes is not None:
            print()
            print(render.comparison_text(changes, base_label=base_label or "", base_note=base_note), end="")
        if savings is not None:
            print()
            print(render.what_if_text(savings, current), end="")
    report.measurements = {
        f"{name} monthly {prices.currency} (min/typical/max)": estimate_.total.rounded()
        for name, estimate_ in current.items()
    }
    report.measurements["prices as of"] = prices.as_of
    if changes is not None:
        report.measurements.update(
            {
                f"{change.environment} change against {base_label} (typical)": round(change.delta.typical, 2)
                for change in changes
            }
        )
    report.measurements.update(render.what_if_measurements(savings or {}))
    report.finish("passed")
    return report


COMMAND = Command(
    name="cost",
    help="offline monthly cost estimate of every environment, by line (no credentials)",
    add_arguments=add_arguments,
    run=run,
    aws=False,
)
