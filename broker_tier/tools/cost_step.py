"""The cost step of ``scripts/test.sh``: the estimate of every environment and its difference against ``baseline/``,
through ``broker-tier-ops cost``; an environment whose region the price table lacks gets a note instead, so an
unpriced region never fails the test command (``broker-tier-ops cost`` itself refuses it, exit code 2).

Usage: ``python -m broker_tier.tools.cost_step [--cdk-out cdk.out] [--baseline baseline] [--report-dir reports/cost]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from broker_tier.cost import templates
from broker_tier.cost.prices import load_prices


def unpriced_regions(cdk_out: Path) -> dict[str, str]:
    """The environments of ``cdk_out`` whose region the price table lacks, with that region."""
    prices = load_prices()
    found = templates.load(cdk_out)
    return {
        name: region
        for name, environment in found.items()
        if (region := environment.region or prices.default_region) not in prices.regions
    }


def ops(arguments: list[str]) -> int:
    """``broker-tier-ops`` with ``arguments``, as the installed command (its output goes to this one's)."""
    command = Path(sys.executable).parent / "broker-tier-ops"
    sys.stdout.flush()
    return subprocess.run([str(command), *arguments], check=False).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--baseline", type=Path, default=Path("baseline"))
    parser.add_argument("--report-dir", type=Path, default=Path("reports/cost"))
    args = parser.parse_args(argv)
    unpriced = unpriced_regions(args.cdk_out)
    regions = ", ".join(load_prices().regions)
    for name, region in unpriced.items():
        print(
            f"note: environment '{name}' targets {region}, which broker_tier/cost/prices.json has no prices for "
            f"(regions: {regions}): not estimated here; add the region's prices with their sources to estimate it"
        )
    command = ["cost", "--cdk-out", str(args.cdk_out), "--compare", str(args.baseline)]
    command += ["--report-dir", str(args.report_dir)]
    priced = [name for name in templates.load(args.cdk_out) if name not in unpriced]
    if not unpriced:
        return ops(command)
    worst = 0
    for name in priced:
        worst = max(worst, ops([*command, "--env", name]))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
