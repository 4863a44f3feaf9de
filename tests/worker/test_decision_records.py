"""Every decision record the worker packages link to exists and has its four sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"docs/decisions/([a-z0-9-]+)\.md")
SECTIONS = ("## Context", "## Decision", "## Evidence", "## Source")


def linked_records() -> dict[str, list[str]]:
    """Record slug -> the worker files that link to it."""
    links: dict[str, list[str]] = {}
    for path in sorted((ROOT / "worker").rglob("*.py")):
        for slug in LINK.findall(path.read_text()):
            links.setdefault(slug, []).append(str(path.relative_to(ROOT)))
    return links


LINKS = linked_records()


def test_the_worker_code_links_its_records():
    assert {"celery-settings", "redis-follow-the-primary", "sigterm-hand-back"} <= set(LINKS)


@pytest.mark.parametrize("slug", sorted(LINKS))
def test_a_linked_record_exists_with_context_decision_evidence_and_source(slug):
    path = ROOT / "docs" / "decisions" / f"{slug}.md"
    assert path.exists(), f"{LINKS[slug]} link to {path.relative_to(ROOT)}, which does not exist"
    text = path.read_text()
    assert [section for section in SECTIONS if section not in text] == []
    assert "seed" not in text.lower() and "domain notes" not in text.lower()  # public sources only
