"""Deployment units of the tier, composed of ``broker_tier.constructs``."""
