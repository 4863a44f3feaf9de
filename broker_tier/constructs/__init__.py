"""The tier's constructs, one concept per module.

This package is ``broker_tier.constructs`` (never a top-level ``constructs``, which would
shadow the ``constructs`` library that aws-cdk-lib imports).
"""
