"""The README, docs/ and the runbooks move with the code: they name only what the contract defines, their
relative links resolve, the generated parts are what the code generates, and the README stays short."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

import pytest
from tier_testing import ROOT

import broker_tier_contract as contract

README = ROOT / "README.md"
DOCS = ROOT / "docs"
DECISIONS = DOCS / "decisions"
DOCUMENTS = [README, *sorted(DOCS.rglob("*.md")), *sorted((ROOT / "runbooks").glob("*.md"))]
VARIABLES = {variable.name for variable in contract.ContainerEnvironment.all()}
OUTPUTS = {
    value
    for group in (contract.StateOutputs, contract.ComputeOutputs, contract.MonitoringOutputs)
    for name, value in vars(group).items()
    if name.isupper()
}
README_MAX_LINES = 200
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_documents_are_there():
    """Every check below runs over these: it would pass vacuously over an empty or partial collection."""
    names = {name(path) for path in DOCUMENTS}
    assert {"README.md", "docs/configuration.md", "docs/operations.md", "runbooks/failover-drill.md"} <= names
    assert len([n for n in names if n.startswith("docs/decisions/")]) >= 10
    assert len([n for n in names if n.startswith("runbooks/")]) >= 10


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_documents_name_only_contract_variables_stacks_and_outputs(document):
    text = document.read_text()
    variables = set(re.findall(r"\bBROKER_TIER_[A-Z_]+\b", text))
    assert sorted(variables - set(VARIABLES)) == [], f"{name(document)} names variables no container is given"
    parts = set(re.findall(r"\bBrokerTier-(?:<env>|[a-z][a-z0-9]*)-([A-Za-z]+)\b", text))
    assert sorted(parts - set(contract.STACK_PARTS)) == [], f"{name(document)} names stack parts that do not exist"
    outputs = set(re.findall(r"`((?:Queue|DeadLetterQueue)<?[A-Z][A-Za-z0-9]*>?(?:Name|Url|Arn))`", text))
    unknown = [o for o in sorted(outputs) if not contract.parse_queue_output_id(o.replace("<Class>", "Batch"))]
    assert unknown == [], f"{name(document)} names outputs that do not exist"


def test_the_contract_page_lists_every_output_the_tools_read():
    assert OUTPUTS
    text = (DOCS / "contract.md").read_text()
    missing = [output_id for output_id in OUTPUTS if f"`{output_id}`" not in text]
    assert not missing, f"docs/contract.md does not list the outputs {missing}"


def architecture_diagram() -> str:
    text = README.read_text()
    (diagram,) = re.findall(r"## Architecture\n.*?```mermaid\n(.*?)```", text, re.S)
    return diagram


def test_the_architecture_names_every_stack_and_command_and_only_what_exists():
    from broker_tier.ops.cli import COMMANDS

    diagram = architecture_diagram()
    parts = set(re.findall(r"BrokerTier-env-([A-Za-z]+)", diagram))
    assert parts == set(contract.STACK_PARTS)
    # the ops subgraph: one node per command, named by the command, e.g. status["status: ..."] (dead_letters for
    # dead-letters: a mermaid node id has no hyphen)
    ops = diagram[diagram.index("subgraph ops[") :]
    ops = ops[: ops.index("  end")]
    drawn = set(re.findall(r'^\s+(\w+)\["([\w-]+?)(?::| -)', ops, re.M))
    assert drawn and all(node == label.replace("-", "_") for node, label in drawn), drawn
    assert {label for _, label in drawn} == {command.name for command in COMMANDS}
    runbooks = set(re.findall(r"([a-z0-9-]+\.md)", diagram))
    assert runbooks
    for runbook in runbooks:
        assert (ROOT / "runbooks" / runbook).exists(), f"the architecture names runbooks/{runbook}"


def test_the_readme_stays_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"
    for heading in ("## Architecture", "## Run it", "## Layout", "## Where to read on"):
        assert heading in lines, f"README.md lost its section {heading!r}"
    assert "scripts/synth.sh" in README.read_text() and "scripts/test.sh" in README.read_text()


def test_every_page_of_docs_is_linked_from_the_readme():
    pages = sorted(DOCS.glob("*.md"))
    assert pages
    text = README.read_text()
    missing = [name(page) for page in pages if f"({name(page)})" not in text]
    assert not missing, f"README.md's 'Where to read on' does not link {missing}"


# Relative links, and their anchors


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered -1, -2, ...; explicit ``<a name="...">`` anchors too."""
    text = FENCE.sub("", path.read_text())
    found: set[str] = set(re.findall(r'<a name="([^"]+)"', text))
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(document: Path) -> list[str]:
    """The targets of the document's Markdown links outside code, except absolute URLs and mail links."""
    text = CODE_SPAN.sub("", FENCE.sub("", document.read_text()))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


LINKS = [(document, target) for document in DOCUMENTS for target in relative_links(document)]


def test_the_documents_link_to_each_other():
    assert len(LINKS) >= 50
    assert {name(document) for document, _ in LINKS} >= {"README.md", "docs/extending.md"}


def broken(document: Path, target: str) -> str | None:
    """Why a relative link does not resolve, or None."""
    path_part, _, anchor = target.partition("#")
    resolved = (document.parent / unquote(path_part)).resolve() if path_part else document.resolve()
    if ROOT.resolve() not in resolved.parents:
        return f"{name(document)} links to {target}, outside the repository"
    if not resolved.exists():
        return f"{name(document)} links to {target}: {path_part} does not exist"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{name(document)} links to {target}: {resolved.name} has no heading #{anchor}"
    return None


@pytest.mark.parametrize("document,target", LINKS, ids=[f"{name(d)} -> {t}" for d, t in LINKS])
def test_every_relative_link_resolves_to_a_file_and_anchor(document, target):
    problem = broken(document, target)
    assert problem is None, problem


def test_a_broken_link_or_anchor_is_caught():
    """The check above can fail: a missing file, a missing heading and a path out of the repository."""
    document = DOCS / "extending.md"
    assert broken(document, "configuration.md#reference") is None
    assert "does not exist" in broken(document, "no-such-page.md")
    assert "no heading #no-such-heading" in broken(document, "configuration.md#no-such-heading")
    assert "outside the repository" in broken(document, "../../README.md")


def test_github_anchors_of_punctuated_and_repeated_headings(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# What it costs: `broker-tier-ops cost`\n## An operator's way in\n## Measured\n## Measured\n")
    assert anchors(page) == {"what-it-costs-broker-tier-ops-cost", "an-operators-way-in", "measured", "measured-1"}


CODE_REFERENCE = re.compile(
    r"(?<![\w./-])((?:tests|worker|broker_tier|scripts|examples|baseline|runbooks|docs)/[\w./<>*-]*)"
)
"""A repository path in a document, possibly followed by ``::`` and the test or class it names."""


def missing_code(text: str) -> list[str]:
    """The paths and ``path::name`` references of ``text`` that do not exist in the repository (a placeholder such
    as ``baseline/BrokerTier-<env>`` or a glob is not a reference)."""
    missing = []
    for match in CODE_REFERENCE.finditer(text):
        reference = match.group(1).rstrip(".-")
        if "<" in reference or "*" in reference:
            continue
        names = re.match(r"::(\w+(?:::\w+)*)", text[match.end(1) :])
        path = ROOT / reference
        if not path.exists():
            missing.append(reference)
        elif names and path.is_file():
            defined = rf"^\s*(?:async\s+)?(?:def|class)\s+{names.group(1).split('::')[-1]}\b"
            if not re.search(defined, path.read_text(), re.M):
                missing.append(f"{reference}{names.group(0)}")
    return missing


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_every_path_and_test_a_document_names_exists(document):
    """Evidence is cited by path and test name: a renamed test or a moved file must not leave a dead citation."""
    assert missing_code(document.read_text()) == []


def test_a_dead_citation_is_caught():
    assert missing_code("`tests/test_docs.py::test_a_dead_citation_is_caught`, `scripts/test.sh`") == []
    assert missing_code("tests/test_docs.py::no_such_test and scripts/no-such.sh") == [
        "tests/test_docs.py::no_such_test",
        "scripts/no-such.sh",
    ]
    assert missing_code("`baseline/BrokerTier-<env>-<Part>.json`") == []


# Decision records


RECORDS = sorted(path for path in DECISIONS.glob("*.md") if path.name != "README.md")


@pytest.mark.parametrize("record", RECORDS, ids=lambda path: path.stem)
def test_each_decision_record_has_context_decision_evidence_and_source(record):
    headings = re.findall(r"^## (.+)$", record.read_text(), re.M)
    assert headings == ["Context", "Decision", "Evidence", "Source"], f"{record.name}: {headings}"


def test_the_decision_index_lists_every_record():
    assert RECORDS
    index = (DECISIONS / "README.md").read_text()
    missing = [record.name for record in RECORDS if f"]({record.name})" not in index]
    assert not missing, f"docs/decisions/README.md does not list {missing}"


# Generated sections: the configuration reference (tests/broker_tier/tools/test_config_reference.py) and
# the cost tables


def between(text: str, begin: str, end: str) -> str:
    start = text.index(begin)
    return text[text.index("\n", start) + 1 : text.index(end, start)]


def test_the_cost_tables_are_what_the_estimator_prints(synthesized):
    from broker_tier.cost.estimate import Assumptions, estimate_all
    from broker_tier.cost.prices import load_prices
    from broker_tier.cost.render import markdown
    from broker_tier.cost.templates import load

    prices = load_prices()
    # the environments as cdk.json configures them, at the default region's prices (as shipped, agnostic): pinning an
    # environment to a region changes where it is deployed, not what the docs show
    shipped = {env: replace(t, region=None) for env, t in load(Path(synthesized.assembly.directory)).items()}
    printed = markdown(estimate_all(shipped, prices=prices, assumptions=Assumptions()), prices)
    documented = between((DOCS / "cost.md").read_text(), "<!-- cost-tables:", "<!-- /cost-tables -->")
    assert "| **total** |" in documented
    assert documented.strip() == printed.strip(), (
        "docs/cost.md's tables differ from the estimate; paste what "
        "`broker-tier-ops cost --cdk-out cdk.out --markdown` prints between its markers"
    )
