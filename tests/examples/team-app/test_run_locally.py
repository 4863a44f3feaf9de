"""The team example's local run (README.md, "Run it locally") without starting Celery: its helper
(``run_locally.py``) creates the queues as the State stack does and writes variables the settings package accepts,
its classes are cdk.json's, and the README's commands are the image's install and the commands the team-app test
runs (tests/examples/team-app/test_team_app.py runs them)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import uuid

from loopback import REGION
from team_example import EXAMPLE, readme_compute
from tier_testing import tier_context

import broker_tier_contract as contract
from broker_tier.config.queues import QueueClassConfig
from broker_tier_celery import TierEnvironment, settings_from_environment

VARIABLES = contract.ContainerEnvironment


def sourced(env_file) -> dict[str, str]:
    """The variables a POSIX shell has after ``set -a; . ./env_file; set +a`` (the README's line), that it did not
    have before."""
    script = 'env -0 > "$1.before"; set -a; . "$1"; set +a; env -0'
    after = subprocess.run(
        ["sh", "-c", script, "sh", str(env_file)], capture_output=True, check=True, env={"PATH": os.environ["PATH"]}
    ).stdout
    before = (env_file.parent / f"{env_file.name}.before").read_bytes()

    def pairs(raw: bytes) -> dict[str, str]:
        return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if item)

    old = pairs(before)
    return {name: value for name, value in pairs(after).items() if old.get(name) != value and name != "_"}


def test_the_helpers_classes_are_cdk_jsons_queues_and_the_routes_classes(run_locally):
    shipped = tier_context()["defaults"]["queues"]
    assert list(run_locally.CLASSES) == list(shipped)
    for name, limits in run_locally.CLASSES.items():
        config = QueueClassConfig.model_validate(shipped[name])
        assert dataclasses.asdict(limits) == {field: getattr(config, field) for field in dataclasses.asdict(limits)}
    routing = (EXAMPLE / "team_app" / "routing.py").read_text()
    assert set(re.findall(r'\{"queue": "(\w+)"\}', routing)) == set(run_locally.CLASSES)


def test_the_helper_creates_each_class_queue_and_dead_letter_queue_as_the_stack_names_and_sizes_them(
    run_locally, sqs_server, tmp_path
):
    environment = f"local{uuid.uuid4().hex[:8]}"
    arguments = ["--redis-port", "6380", "--sqs-endpoint", sqs_server["endpoint"], "--environment", environment]
    arguments += ["--region", REGION]  # the region of the session's client
    first, second = tmp_path / "first.env", tmp_path / "second.env"
    assert run_locally.main([*arguments, "--env-file", str(first)]) == 0
    assert run_locally.main([*arguments, "--env-file", str(second)]) == 0  # again: the same queues and variables
    assert first.read_text() == second.read_text()

    client = sqs_server["client"]
    urls = json.loads(sourced(first)[VARIABLES.QUEUE_URLS.name])
    assert list(urls) == list(run_locally.CLASSES)
    for name, limits in run_locally.CLASSES.items():
        assert urls[name].endswith("/" + contract.queue_name(environment, name))
        attributes = client.get_queue_attributes(QueueUrl=urls[name], AttributeNames=["All"])["Attributes"]
        dead_letters = client.get_queue_url(QueueName=contract.dead_letter_queue_name(environment, name))["QueueUrl"]
        dead_letter_attributes = client.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["All"])[
            "Attributes"
        ]
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": dead_letter_attributes["QueueArn"],
            "maxReceiveCount": limits.max_receive_count,
        }
        assert int(attributes["VisibilityTimeout"]) == limits.visibility_timeout_seconds
        assert int(attributes["MessageRetentionPeriod"]) == limits.retention_seconds
        assert int(dead_letter_attributes["MessageRetentionPeriod"]) == limits.dead_letter_retention_seconds
        for queue in (attributes, dead_letter_attributes):
            assert int(queue["MaximumMessageSize"]) == contract.SQS_MAX_MESSAGE_BYTES


def test_the_variables_are_what_the_settings_package_reads_for_a_local_redis_and_sqs(run_locally, tmp_path):
    env_file = tmp_path / "local.env"
    urls = {name: f"http://127.0.0.1:5001/123456789012/q-{name}" for name in run_locally.CLASSES}
    environ = run_locally.local_environment(
        urls, redis_port=6380, sqs_endpoint="http://127.0.0.1:5001", redis_password="p @'ss", task_time_limit=3600
    )
    env_file.write_text("\n".join(run_locally.shell_lines(environ, ["a comment"])) + "\n")
    variables = sourced(env_file)
    assert variables == environ  # the shell reads back every value as written, quotes and all

    tier = TierEnvironment.from_environ(variables)
    assert (tier.broker, tier.queue_urls, tier.queue) == ("sqs", urls, None)
    assert (tier.redis_host, tier.redis_port, tier.redis_tls, tier.redis_auth_token) == (
        "127.0.0.1",
        6380,
        False,
        "p @'ss",
    )
    assert tier.sqs_endpoint_url == "http://127.0.0.1:5001" and tier.region == run_locally.REGION
    settings = settings_from_environment(variables)
    assert settings["task_time_limit"] == 3600
    assert settings["result_backend"].endswith("+redis://:p%20%40%27ss@127.0.0.1:6380/2")  # plain TCP: no rediss://
    # boto3 needs credentials even for moto; every other variable is one the stack gives a container
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} <= set(variables)
    assert set(variables) - {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} <= {
        variable.name for variable in VARIABLES.all()
    }


def test_the_time_limit_is_the_longest_classs_unless_given(run_locally, sqs_server, tmp_path):
    arguments = ["--redis-port", "6380", "--sqs-endpoint", sqs_server["endpoint"], "--environment", "locallimit"]
    longest = max(limits.task_time_limit_seconds for limits in run_locally.CLASSES.values())
    for extra, limit in (([], longest), (["--task-time-limit", "60"], 60)):
        run_locally.main([*arguments, *extra, "--env-file", str(tmp_path / "local.env")])
        assert sourced(tmp_path / "local.env")[VARIABLES.TASK_TIME_LIMIT.name] == str(limit)


def test_the_readmes_local_run_installs_as_the_image_does_and_runs_the_commands_the_test_runs(run_locally, local_run):
    # the Dockerfile's two pip lines, exactly
    dockerfile_pip = re.findall(r"^RUN (pip install .*)$", (EXAMPLE / "Dockerfile").read_text(), re.M)
    assert len(dockerfile_pip) == 2
    readme = (EXAMPLE / "README.md").read_text()
    assert all(f"\n{line}\n" in readme for line in dockerfile_pip)
    assert len(local_run.commands_starting("pip", "install")) == 2

    # the servers the helper is pointed at are the ones started above it
    helper = local_run.command("python", "run_locally.py")
    arguments = run_locally.parse_arguments(helper[2:])  # a command its parser accepts
    (redis,) = local_run.commands_starting("redis-server")
    assert local_run.option(redis, "--port") == str(arguments.redis_port)
    (moto,) = [command for command in local_run.commands if command[0].endswith("moto_server")]
    assert arguments.sqs_endpoint.endswith(":" + local_run.option(moto, "-p"))
    assert ("set", "-a") in local_run.commands and (".", f"./{arguments.env_file}") in local_run.commands

    # the worker and Beat: the app the stack runs, every class, the task definitions' worker options
    app = readme_compute()["celery_app"]
    worker = local_run.command("celery", "-A", app, "worker")
    assert local_run.option(worker, "--queues") == ",".join(run_locally.CLASSES)
    assert set(contract.WORKER_EVENT_OPTIONS) <= set(worker)
    beat = local_run.command("celery", "-A", app, "beat")
    assert local_run.option(beat, "--schedule") and local_run.option(beat, "--loglevel") == "INFO"
    assert "settings_from_environment()" in local_run.producer and "TASK_ROUTES" in local_run.producer
