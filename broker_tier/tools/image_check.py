"""Checks the reference worker image without Docker: install its packages as the Dockerfile does.

Runs the Dockerfile's ``pip install`` line (and ``pip check``) in a clean virtual environment and stages the
``COPY``'d packages as the image's ``WORKDIR``, so that a missing or conflicting pin fails here, not at a deploy
(the project's machines have no Docker engine).

``python -m broker_tier.tools.image_check [--keep DIR]`` runs the install and import by hand.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

WORKER_DIR = Path(__file__).resolve().parents[2] / "worker"


class ImageCheckError(RuntimeError):
    """The image's packages do not install, or the worker does not import, as the Dockerfile says."""


@dataclass(frozen=True)
class DockerfileRecipe:
    pip_install_args: list[str]
    """The arguments after ``pip install`` in the Dockerfile's RUN line."""
    pip_check: bool
    """Whether that RUN line runs ``pip check`` after the install."""
    copies: list[tuple[str, str]]
    """``COPY`` sources and destinations after the install (the application's packages)."""


def _instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    return lines


def read_recipe(dockerfile: Path) -> DockerfileRecipe:
    pip_args: list[str] | None = None
    pip_check = False
    copies: list[tuple[str, str]] = []
    for instruction in _instructions(dockerfile.read_text()):
        keyword, _, rest = instruction.partition(" ")
        if keyword == "RUN" and "pip install" in rest:
            commands = [shlex.split(part) for part in rest.split("&&")]
            install = next(c for c in commands if c[:2] == ["pip", "install"])
            pip_args = install[2:]
            pip_check = any(c[:2] == ["pip", "check"] for c in commands)
        elif keyword == "COPY" and pip_args is not None:
            source, destination = shlex.split(rest)
            copies.append((source, destination))
    if pip_args is None:
        raise ImageCheckError(f"{dockerfile}: no RUN line with 'pip install'")
    return DockerfileRecipe(pip_args, pip_check, copies)


def _run(command: list[str], *, cwd: Path, what: str) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageCheckError(f"{what} failed ({shlex.join(command)}):\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return result.stdout


def install_like_the_image(venv: Path, *, context: Path = WORKER_DIR, python: str = sys.executable) -> Path:
    """A new virtual environment at ``venv`` with the image's packages; returns its Python."""
    recipe = read_recipe(context / "Dockerfile")
    _run([python, "-m", "venv", str(venv)], cwd=context, what="creating the virtual environment")
    venv_python = venv / "bin" / "python"
    _run(
        [str(venv_python), "-m", "pip", "install", "--disable-pip-version-check", *recipe.pip_install_args],
        cwd=context,
        what="the Dockerfile's pip install",
    )
    if recipe.pip_check:
        _run([str(venv_python), "-m", "pip", "check"], cwd=context, what="pip check")
    return venv_python


def stage_application(app_dir: Path, *, context: Path = WORKER_DIR) -> Path:
    """Copy what the Dockerfile copies after the install into ``app_dir`` (the image's WORKDIR)."""
    for source, destination in read_recipe(context / "Dockerfile").copies:
        target = app_dir / destination
        if (context / source).is_dir():
            shutil.copytree(context / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / source, target)
    return app_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="image-check-"))
    try:
        venv_python = install_like_the_image(root / "venv")
        app_dir = stage_application(root / "app")
        print(
            _run(
                [
                    str(venv_python),
                    "-c",
                    "import broker_tier_celery, broker_tier_contract, kombu.transport.SQS, "
                    "pycurl; print('imports ok:', pycurl.version)",
                ],
                cwd=app_dir,
                what="importing the worker",
            )
        )
    except ImageCheckError as error:
        print(f"image check: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print("image check: the Dockerfile's pip install and pip check pass in a clean virtual environment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
