"""The image's packages in a clean virtual environment, installed as the Dockerfile does, and the reference
worker started from them against the loopback SQS and Redis: a missing or conflicting pin fails here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest
from celery import Celery
from loopback import celery_worker, ledger, tier_environ

import broker_tier_contract as contract
from broker_tier.tools.image_check import WORKER_DIR, ImageCheckError, install_like_the_image, stage_application
from broker_tier_celery import settings_from_environment
from broker_tier_contract import CANARY_TASK

pytestmark = pytest.mark.slow  # real worker processes and pip installs (scheduled first: tests/conftest.py)


@pytest.fixture(scope="module")
def image_like(image_venvs, tmp_path_factory):
    """The image's packages (the session's shared install of these pins) and its /app."""
    python = image_venvs.python_for(WORKER_DIR)
    return {"python": python, "app_dir": stage_application(tmp_path_factory.mktemp("image") / "app")}


def test_the_worker_starts_from_the_images_packages_and_runs_a_task(
    image_like, redis_server, sqs_server, tmp_path, monkeypatch
):
    environ = tier_environ(redis_server, sqs_server, broker="sqs", queue=None)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    producer = Celery("image-producer")
    producer.conf.update(settings_from_environment(environ))
    worker_environ = {
        **tier_environ(redis_server, sqs_server, broker="sqs", queue="interactive"),
        "REMAP_SIGTERM": "SIGQUIT",
        contract.ContainerEnvironment.HEARTBEAT_DIR.name: str(tmp_path / "heartbeat"),
    }
    celery = [str(image_like["python"].parent / "celery")]  # the console script, as the image's CMD
    with celery_worker(
        worker_environ,
        "interactive",
        tmp_path / "worker.log",
        pool="prefork",
        name="image",
        celery=celery,
        app_dir=image_like["app_dir"],
    ):
        token = uuid.uuid4().hex
        assert producer.send_task(CANARY_TASK, args=[token], queue="interactive").get(timeout=60)["token"] == token
        # the container health check, as the task definition runs it, from the image's packages and layout
        _, program, *arguments = contract.health_check_command("worker")
        checked = subprocess.run(
            [str(image_like["python"].parent / program), *arguments],
            env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **worker_environ},
            cwd=image_like["app_dir"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0 and checked.stdout.startswith("worker: heartbeat "), checked
    log = (tmp_path / "worker.log").read_text()
    assert len(ledger(tmp_path / "worker.log", token)) == 1
    assert "broker_tier_celery.claim_check:Transport" in log  # the settings package from the staged copy


def dockerfile_python_version() -> str:
    base = next(line for line in (WORKER_DIR / "Dockerfile").read_text().splitlines() if line.startswith("FROM "))
    return re.search(r"python:(\d+\.\d+)", base)[1]


@pytest.mark.parametrize("platform", ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64"])
def test_every_pin_has_a_wheel_for_the_images_python_and_both_architectures(platform, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            dockerfile_python_version(),
            "--platform",
            platform,
            "--target",
            str(tmp_path / "t"),
            "-r",
            str(WORKER_DIR / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_missing_or_conflicting_pin_fails_the_install(tmp_path):
    context = tmp_path / "worker"
    shutil.copytree(WORKER_DIR, context, ignore=shutil.ignore_patterns("__pycache__"))
    requirements = context / "requirements.txt"
    text = requirements.read_text()
    text = re.sub(r"^vine==.*\n", "", text, flags=re.M)  # kombu and celery need it
    text = text.replace("click==8.5.1", "click==7.1.2")  # celery 5.7 needs click 8
    requirements.write_text(text)
    with pytest.raises(ImageCheckError, match="pip check failed") as failed:
        install_like_the_image(tmp_path / "venv", context=context)
    assert "vine, which is not installed" in str(failed.value)
    assert "click" in str(failed.value) and "7.1.2" in str(failed.value)
