"""Offline monthly cost estimates of the tier's environments from their synthesized templates.

``prices.json`` is the dated price table (every price with its source), ``templates`` finds the
templates (a cdk.out, baseline/, or a fresh synthesis of cdk.json), ``estimate`` prices them by
line, ``compare`` diffs two estimates, ``render`` prints them. ``broker-tier-ops cost`` is the
command (``broker_tier/ops/cost.py``).
"""
