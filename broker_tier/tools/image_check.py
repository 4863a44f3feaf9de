"""Checks a Celery image without Docker: install its packages as its Dockerfile does.

Runs each of the Dockerfile's ``pip install`` lines (and their ``pip check``) in a clean virtual environment and
stages the ``COPY``'d packages as the image's ``WORKDIR``, so that a missing or conflicting pin fails here, not at a
deploy (the project's machines have no Docker engine). It reads the reference worker's ``worker/Dockerfile``, or a
team's (``examples/team-app/``), whose build context holds broker-tier's files only once the team has copied them
beside its own package: :func:`stage_build_context` does that copy step (``TIER_FILES``).

``python -m broker_tier.tools.image_check [--context DIR] [--keep DIR] [--stage-context DIR]`` runs the install and
import by hand, or only writes the build context for ``docker build``.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

WORKER_DIR = Path(__file__).resolve().parents[2] / "worker"

TIER_FILES: dict[str, Path] = {
    "broker_tier_contract": WORKER_DIR / "broker_tier_contract",
    "broker_tier_celery": WORKER_DIR / "broker_tier_celery",
    "requirements-tier.txt": WORKER_DIR / "requirements.txt",
}
"""What a team's build context copies from broker-tier, by the name its Dockerfile gives each: the contract, the
settings package and the tier's pins (examples/team-app/README.md's copy step)."""

_IGNORED = shutil.ignore_patterns("__pycache__")


class ImageCheckError(RuntimeError):
    """The image's packages do not install, or the worker does not import, as the Dockerfile says."""


@dataclass(frozen=True)
class PipStep:
    """One ``RUN pip install ...`` line of the Dockerfile (an image layer)."""

    install_args: list[str]
    """The arguments after ``pip install``."""
    check: bool
    """Whether the line runs ``pip check`` after the install."""

    def requirement_files(self) -> list[str]:
        """The files its ``-r``/``-c`` options name, relative to the ``WORKDIR`` (the build context here)."""
        options = ("-r", "--requirement", "-c", "--constraint")
        return [value for option, value in pairwise(self.install_args) if option in options]


@dataclass(frozen=True)
class DockerfileRecipe:
    pip_steps: list[PipStep]
    """Every ``pip install`` line, in order."""
    copies: list[tuple[str, str]]
    """``COPY`` sources and destinations after the first install (the application's packages)."""
    sources: list[str]
    """Every ``COPY`` source: what the build context must hold."""

    @property
    def pip_install_args(self) -> list[str]:
        """The first ``pip install`` line's arguments (the reference worker's only one)."""
        return self.pip_steps[0].install_args

    @property
    def pip_check(self) -> bool:
        """Whether the first ``pip install`` line runs ``pip check``."""
        return self.pip_steps[0].check


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


def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    """The variables the Dockerfile's ``ENV`` lines (``ENV NAME=value ...``) set in the image."""
    found: dict[str, str] = {}
    for instruction in _instructions(dockerfile.read_text()):
        keyword, _, rest = instruction.partition(" ")
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, equals, value = item.partition("=")
                if equals:
                    found[name] = value
    return found


def _pip_step(run: str) -> PipStep:
    commands = [shlex.split(part) for part in run.split("&&")]
    install = next(c for c in commands if c[:2] == ["pip", "install"])
    return PipStep(install[2:], any(c[:2] == ["pip", "check"] for c in commands))


def read_recipe(dockerfile: Path) -> DockerfileRecipe:
    steps: list[PipStep] = []
    copies: list[tuple[str, str]] = []
    sources: list[str] = []
    for instruction in _instructions(dockerfile.read_text()):
        keyword, _, rest = instruction.partition(" ")
        if keyword == "RUN" and "pip install" in rest:
            steps.append(_pip_step(rest))
        elif keyword == "COPY":
            source, destination = shlex.split(rest)
            sources.append(source)
            if steps:
                copies.append((source, destination))
    if not steps:
        raise ImageCheckError(f"{dockerfile}: no RUN line with 'pip install'")
    return DockerfileRecipe(steps, copies, sources)


def _run(command: list[str], *, cwd: Path, what: str) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageCheckError(f"{what} failed ({shlex.join(command)}):\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return result.stdout


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if len(found) != 1:
        raise ImageCheckError(f"{venv}: expected one lib/python*/site-packages, found {found}")
    return found[0]


def new_venv(venv: Path, *, python: str = sys.executable, base: Path | None = None) -> Path:
    """An empty virtual environment at ``venv``; returns its Python. Without pip of its own (creating one with pip
    costs more CPU than the install): this interpreter's pip installs into it (``pip --python``). With ``base``
    (another such environment), its packages are importable here too, after this one's own, as an image layer sees
    the layers below it."""
    _run([python, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent, what="creating the virtual environment")
    if base is not None:
        (site_packages(venv) / "image-layers-below.pth").write_text(f"{site_packages(base)}\n")
    return venv / "bin" / "python"


def run_pip_step(venv_python: Path, step: PipStep, *, context: Path) -> None:
    """One ``pip install`` line of the Dockerfile, and its ``pip check``, in the environment of ``venv_python``, with
    the build context as the working directory (the Dockerfile's ``COPY``s put the requirement files there)."""
    pip = [sys.executable, "-m", "pip", "--python", str(venv_python), "--disable-pip-version-check"]
    _run([*pip, "install", *step.install_args], cwd=context, what="the Dockerfile's pip install")
    if step.check:
        _run([*pip, "check"], cwd=context, what="pip check")


def install_like_the_image(venv: Path, *, context: Path = WORKER_DIR, python: str = sys.executable) -> Path:
    """A new virtual environment at ``venv`` with the image's packages (every ``pip install`` line); returns its
    Python."""
    venv_python = new_venv(venv, python=python)
    for step in read_recipe(context / "Dockerfile").pip_steps:
        run_pip_step(venv_python, step, context=context)
    return venv_python


def stage_build_context(context: Path, into: Path, *, tier_files: dict[str, Path] | None = None) -> Path:
    """``context`` copied to ``into``, with every ``COPY`` source it lacks taken from broker-tier's files
    (``TIER_FILES``): the copy step a team does once. A source in neither fails, naming it."""
    tier_files = TIER_FILES if tier_files is None else tier_files
    shutil.copytree(context, into, ignore=_IGNORED)
    for source in read_recipe(context / "Dockerfile").sources:
        target = into / source
        if target.exists():
            continue
        if source not in tier_files:
            raise ImageCheckError(
                f"{context / 'Dockerfile'}: COPY {source}: not in the build context {context}, and not one of "
                f"broker-tier's files a team copies ({', '.join(tier_files)})"
            )
        _copy(tier_files[source], into, source)
    return into


def _copy(source: Path, root: Path, destination: str) -> None:
    """As ``COPY source destination`` with ``root`` as the ``WORKDIR``: a folder's contents into the destination; a
    file to it, or into it when it names a folder (``.``, a trailing ``/``, or an existing folder)."""
    target = root / destination
    if source.is_dir():
        shutil.copytree(source, target, ignore=_IGNORED, dirs_exist_ok=True)
        return
    if destination.rstrip("/") in ("", ".") or destination.endswith("/") or target.is_dir():
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def stage_application(app_dir: Path, *, context: Path = WORKER_DIR) -> Path:
    """Copy what the Dockerfile copies after the install into ``app_dir`` (the image's WORKDIR)."""
    for source, destination in read_recipe(context / "Dockerfile").copies:
        _copy(context / source, app_dir, destination)
    return app_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--context", type=Path, default=WORKER_DIR, help="the folder of the Dockerfile (default: worker/)"
    )
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temporary folder)")
    parser.add_argument(
        "--stage-context",
        type=Path,
        metavar="DIR",
        help="only write the build context, broker-tier's files included, to DIR (a new folder) for docker build",
    )
    args = parser.parse_args(argv)
    if args.stage_context:
        stage_build_context(args.context, args.stage_context)
        print(f"image check: build context written to {args.stage_context}")
        return 0
    root = args.keep or Path(tempfile.mkdtemp(prefix="image-check-"))
    try:
        context = stage_build_context(args.context, root / "context")
        venv_python = install_like_the_image(root / "venv", context=context)
        app_dir = stage_application(root / "app", context=context)
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
