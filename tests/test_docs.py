"""The README and runbooks name only what exists: container variables, stacks and outputs of the contract."""

from __future__ import annotations

import re

import pytest
from tier_testing import ROOT

import broker_tier_contract as contract

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "runbooks").glob("*.md"))]
VARIABLES = {variable.name for variable in contract.ContainerEnvironment.all()}
OUTPUTS = {
    value
    for group in (contract.StateOutputs, contract.ComputeOutputs, contract.MonitoringOutputs)
    for name, value in vars(group).items()
    if name.isupper()
}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_documents_name_only_contract_variables_stacks_and_outputs(document):
    text = document.read_text()
    for variable in set(re.findall(r"\bBROKER_TIER_[A-Z_]+\b", text)):
        assert variable in VARIABLES, f"{document.name} names {variable}, which no container is given"
    for part in set(re.findall(r"\bBrokerTier-(?:<env>|[a-z][a-z0-9]*)-([A-Za-z]+)\b", text)):
        assert part in contract.STACK_PARTS, f"{document.name} names a stack part {part!r}"
    for output_id in set(re.findall(r"`((?:Queue|DeadLetterQueue)<?[A-Z][A-Za-z0-9]*>?(?:Name|Url|Arn))`", text)):
        concrete = output_id.replace("<Class>", "Batch")
        assert contract.parse_queue_output_id(concrete), f"{document.name} names an output {output_id!r}"


def test_the_readme_lists_every_output_the_tools_read():
    text = (ROOT / "README.md").read_text()
    missing = [output_id for output_id in OUTPUTS if f"`{output_id}`" not in text]
    assert not missing, f"README does not list the outputs {missing}"


def architecture_diagram() -> str:
    text = (ROOT / "README.md").read_text()
    (diagram,) = re.findall(r"## Architecture\n.*?```mermaid\n(.*?)```", text, re.S)
    return diagram


def test_the_architecture_names_every_stack_and_command_and_only_what_exists():
    from broker_tier.ops.cli import COMMANDS

    diagram = architecture_diagram()
    parts = set(re.findall(r"BrokerTier-env-([A-Za-z]+)", diagram))
    assert parts == set(contract.STACK_PARTS)
    # the ops subgraph: one node per command, named by the command, e.g. status["status: ..."]
    ops = diagram[diagram.index("subgraph ops[") :]
    ops = ops[: ops.index("  end")]
    drawn = set(re.findall(r'^\s+(\w+)\["(\w+)[: -]', ops, re.M))
    assert all(node == label for node, label in drawn), drawn
    assert {label for _, label in drawn} == {command.name for command in COMMANDS}
    for runbook in set(re.findall(r"([a-z0-9-]+\.md)", diagram)):
        assert (ROOT / "runbooks" / runbook).exists(), f"the architecture names runbooks/{runbook}"
