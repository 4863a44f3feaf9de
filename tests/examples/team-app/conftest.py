"""What the team example's tests share: its local-run helper (examples/team-app/run_locally.py) and the commands of
its README's "Run it locally" section, which the tests run as written there."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from dataclasses import dataclass
from types import ModuleType

import pytest
from team_example import EXAMPLE

LOCAL_RUN_SECTION = "## 3. Run it locally"


def load_helper() -> ModuleType:
    """``run_locally.py`` as a module (it imports boto3 and the contract, both in the project's environment)."""
    name = "team_app_run_locally"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / "run_locally.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclass resolves its annotations through it
    spec.loader.exec_module(module)
    return module


def shell_commands(line: str) -> list[list[str]]:
    """The commands of one shell line, split as the shell does (``&&``, ``;`` and a trailing ``&`` end one)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", ";", "&"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


@dataclass(frozen=True)
class LocalRun:
    """The README's "Run it locally": its shell commands in order, and its producer (the one Python block)."""

    commands: tuple[tuple[str, ...], ...]
    producer: str

    def command(self, *prefix: str) -> list[str]:
        """The one command that starts with ``prefix``."""
        (found,) = [list(c) for c in self.commands if c[: len(prefix)] == prefix]
        return found

    def commands_starting(self, *prefix: str) -> list[list[str]]:
        return [list(c) for c in self.commands if c[: len(prefix)] == prefix]

    @staticmethod
    def option(command: list[str], name: str) -> str:
        """The value of ``name`` in a command (``--name value``)."""
        return command[command.index(name) + 1]

    @staticmethod
    def with_options(command: list[str], **values: str) -> list[str]:
        """``command`` with each ``--option value`` (``redis_port`` for ``--redis-port``) replaced, or added."""
        command = list(command)
        for key, value in values.items():
            name = "--" + key.replace("_", "-")
            if name in command:
                command[command.index(name) + 1] = value
            else:
                command += [name, value]
        return command


def readme_local_run() -> LocalRun:
    text = (EXAMPLE / "README.md").read_text()
    start = text.index(LOCAL_RUN_SECTION)
    section = text[start : text.index("\n## ", start + len(LOCAL_RUN_SECTION))]
    shell = re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)
    (producer,) = re.findall(r"^```python\n(.*?)^```", section, re.M | re.S)
    commands = [tuple(c) for block in shell for line in block.splitlines() for c in shell_commands(line)]
    return LocalRun(commands=tuple(commands), producer=producer)


@pytest.fixture(scope="session")
def local_run() -> LocalRun:
    return readme_local_run()


@pytest.fixture(scope="session")
def run_locally() -> ModuleType:
    return load_helper()
