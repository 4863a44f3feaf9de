#!/usr/bin/env python3
"""broker-tier CDK app: one set of stacks per environment declared in cdk.json.

``npx cdk synth`` synthesizes every environment; ``-c env=NAME`` selects one.
"""

import sys

import aws_cdk as cdk

from broker_tier.app_builder import build_app
from broker_tier.config import ConfigError

if __name__ == "__main__":
    app = cdk.App()
    try:
        build_app(app)
    except ConfigError as error:
        print(f"broker-tier: invalid configuration; nothing was synthesized:\n{error}", file=sys.stderr)
        sys.exit(1)
    app.synth()
