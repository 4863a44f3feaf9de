"""Every document the worker packages link to exists; a decision record has its four sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\bdocs/([a-z0-9/-]+\.md)(?:#([a-z0-9-]+))?")
SECTIONS = ("## Context", "## Decision", "## Evidence", "## Source")


def linked_documents() -> dict[tuple[str, str], list[str]]:
    """(document under docs/, section anchor or "") -> the worker files that link to it."""
    links: dict[tuple[str, str], list[str]] = {}
    for path in sorted((ROOT / "worker").rglob("*.py")):
        for document, anchor in LINK.findall(path.read_text()):
            links.setdefault((document, anchor), []).append(str(path.relative_to(ROOT)))
    return links


LINKS = linked_documents()


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a Markdown document's headings."""
    return {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("#")
    }


def test_the_worker_code_links_its_documents():
    documents = {document for document, _ in LINKS}
    assert {"decisions/redis-silent-primary.md", "decisions/container-health-checks.md", "workers.md"} <= documents


@pytest.mark.parametrize("document, anchor", sorted(LINKS), ids=["#".join(link).rstrip("#") for link in sorted(LINKS)])
def test_a_linked_document_exists_and_a_decision_record_has_its_sections(document, anchor):
    path = ROOT / "docs" / document
    assert path.exists(), f"{LINKS[document, anchor]} link to {path.relative_to(ROOT)}, which does not exist"
    text = path.read_text()
    if anchor:
        assert anchor in anchors(text), f"{LINKS[document, anchor]} link to a section {document} does not have"
    if document.startswith("decisions/"):
        assert [section for section in SECTIONS if section not in text] == []
