"""Every ``broker-tier-ops`` command in the runbooks, the README and docs/ works as written against the real
parser, and ``status`` is the first command of every runbook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tier_testing import ROOT

from broker_tier.ops.cli import COMMANDS, build_parser

DOCUMENTS = sorted((ROOT / "runbooks").glob("*.md")) + [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUNBOOKS = [path for path in DOCUMENTS if path.parent.name == "runbooks" and path.name != "README.md"]
# Inline code spans (which may wrap onto the next line) and the lines of fenced code blocks.
CODE_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL_PROGRAMS = ("broker-tier-ops ", "aws ", "redis-cli ", "npx ", "cdk ", "scripts/", "git ")
# What a runbook's placeholders stand for when the command is parsed.
PLACEHOLDERS = {"<env>": "prod", "<class>": "default", "<az>": "eu-west-1a", "<task>": "team.charge"}


def code_in(text: str) -> list[str]:
    """Every code span and fenced line of ``text``, whitespace collapsed, in order of appearance."""
    found = [(match.start(), line) for match in FENCE.finditer(text) for line in match.group(1).splitlines()]
    unfenced = FENCE.sub(lambda match: " " * len(match.group(0)), text)
    found += [(match.start(), match.group(1)) for match in CODE_SPAN.finditer(unfenced)]
    return [" ".join(code.split()) for _, code in sorted(found)]


def ops_commands(path: Path) -> list[str]:
    """The ``broker-tier-ops`` commands; not the tool's output lines (``broker-tier-ops failover: PASSED``)."""
    return [
        code
        for code in code_in(path.read_text())
        if code.startswith("broker-tier-ops ") and not code.split()[1].endswith(":")
    ]


def as_argv(command: str) -> list[str]:
    command = command.split(" # ", 1)[0]  # a shell comment after the command
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    assert "<" not in command, f"a placeholder the test does not know: {command}"
    return command.split()[1:]


ALL = [(path.relative_to(ROOT).as_posix(), command) for path in DOCUMENTS for command in ops_commands(path)]


def test_the_documents_have_commands_to_check():
    assert len(ALL) >= 20 and {path for path, _ in ALL} >= {"docs/operations.md", "runbooks/dead-letter-redrive.md"}


@pytest.mark.parametrize("document,command", ALL, ids=[f"{path}: {command}" for path, command in ALL])
def test_each_command_parses_as_written(document, command):
    argv = as_argv(command)
    if len(argv) == 1 and not argv[0].startswith("-"):  # a command named in prose: it must exist
        assert argv[0] in {c.name for c in COMMANDS}, f"{document}: no command {argv[0]!r}"
        return
    try:
        build_parser().parse_args(argv)
    except SystemExit as exited:
        assert exited.code == 0, f"{document}: `{command}` does not parse"  # 0: --help


def test_a_misplaced_or_unknown_option_is_caught():
    """The check above can fail: an option the tool does not have is refused by the parser."""
    for command in ("broker-tier-ops failover --env <env> --reboot", "broker-tier-ops redrive --env <env>"):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(as_argv(command))
        assert exited.value.code == 2


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=[path.name for path in RUNBOOKS])
def test_status_is_the_first_command_of_every_runbook(runbook):
    commands = [
        code for code in code_in(runbook.read_text()) if code.startswith(SHELL_PROGRAMS) and " --" in code
    ]  # a command as typed, not a name
    assert commands, f"{runbook.name} has no command"
    assert commands[0] == "broker-tier-ops status --env <env>", f"{runbook.name} starts with `{commands[0]}`"
