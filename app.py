#!/usr/bin/env python3
"""broker-tier CDK app: one set of stacks per environment declared in cdk.json.

``npx cdk synth`` synthesizes every environment; ``-c env=NAME`` selects one. ``python app.py`` without the
CDK CLI synthesizes every environment of the cdk.json beside it into cdk.out beside it.
"""

import sys
from pathlib import Path

from broker_tier.config import CONTEXT_KEY, ConfigError, cdk_json_context, cli_context, load_environments

PROJECT = Path(__file__).resolve().parent
"""Where the CDK CLI runs the app: the cdk.json it reads, and the cdk.out it writes by default."""

if __name__ == "__main__":
    context = cli_context()
    standalone = context is None
    if context is None:  # no CLI passed a context: start from cdk.json's, as the CLI does
        context = cdk_json_context(PROJECT / "cdk.json")
    try:
        environments = load_environments(context.get(CONTEXT_KEY), only=context.get("env"))
    except ConfigError as error:
        print(f"broker-tier: invalid configuration; nothing was synthesized:\n{error}", file=sys.stderr)
        sys.exit(1)
    # Only a valid configuration starts the CDK: a refused one never waits for jsii's Node process.
    import aws_cdk as cdk

    from broker_tier.app_builder import build_app

    app = cdk.App(context=context, outdir=str(PROJECT / "cdk.out")) if standalone else cdk.App()
    build_app(app, environments=environments)
    assembly = app.synth()
    if standalone:
        print(
            f"broker-tier: synthesized {len(assembly.stacks)} stacks into {assembly.directory} from cdk.json's "
            f"context alone (without the CDK CLI: no cdk.context.json, no -c options)",
            file=sys.stderr,
        )
