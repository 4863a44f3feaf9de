"""The team example (examples/team-app): where it is, and the ``cdk.json`` lines its README gives."""

from __future__ import annotations

import json
import re
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "team-app"


def readme_compute() -> dict:
    """The ``compute`` block of the README's ``cdk.json`` lines (its one JSON block that has one)."""
    blocks = re.findall(r"^```json\n(.*?)^```", (EXAMPLE / "README.md").read_text(), re.M | re.S)
    (compute,) = [json.loads(block)["compute"] for block in blocks if '"compute"' in block]
    return compute
