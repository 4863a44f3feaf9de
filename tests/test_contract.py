"""The contract end to end: what the stacks synthesize is what the ops tool and the containers read.

Every environment's synthesized outputs are resolved as CloudFormation would resolve them, put into
moto's CloudFormation, and discovered by ``broker-tier-ops``; every worker and Beat task definition's
environment and secrets are resolved and given to the Celery settings package, which must produce the
configuration the stack intended. No name is written here by hand: a name changed on one side only
fails these tests instead of a deployed drill.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import boto3
import pytest
from deployment import Deployment, container_definitions
from fake_aws import create_stack_with_outputs
from moto import mock_aws
from tier_testing import ENVIRONMENTS, REDIS_MODE_CHANGES, tier_context, variant_context

import broker_tier_contract as contract
from broker_tier.config import load_environments
from broker_tier.ops.resources import discover
from broker_tier_celery import TierEnvironment, build_settings

CONFIGS = load_environments(tier_context())
ONLY_WITH = {None: lambda config: True, "claim_check.enabled": lambda config: config.claim_check.enabled}
"""Each condition a variable is set under (``Variable.only_with``), as a test of an environment's configuration."""
AUTH_TOKEN = "token-from-the-secret-0123456789"
VARIABLES = {variable.name: variable for variable in contract.ContainerEnvironment.all()}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ops_discovery_finds_what_each_environment_outputs(synthesized, env, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    config = CONFIGS[env]
    with mock_aws():
        sqs = boto3.client("sqs", aws_access_key_id="x", aws_secret_access_key="x")
        deployment = synthesized.deployment(env)
        state = contract.stack_name(env, contract.STATE)
        for logical_id, resource in deployment.templates[state]["Resources"].items():
            if resource["Type"] == "AWS::SQS::Queue":  # real queues, so the URLs are moto's own
                url = sqs.create_queue(QueueName=resource["Properties"]["QueueName"])["QueueUrl"]
                deployment.overrides[(state, logical_id, "Ref")] = url
        cloudformation = boto3.client("cloudformation", aws_access_key_id="x", aws_secret_access_key="x")
        for stack in deployment.templates:
            create_stack_with_outputs(cloudformation, stack, deployment.outputs(stack))
        resources = discover(cloudformation, env)

    assert resources.replication_group_id == config.replication_group_id
    assert set(resources.queues) == set(config.queues)
    for name, pair in resources.queues.items():
        assert urlsplit(pair.queue_url).path.endswith("/" + contract.queue_name(env, name))
        assert urlsplit(pair.dead_letter_url).path.endswith("/" + contract.dead_letter_queue_name(env, name))
        assert pair.queue_arn.endswith(":" + contract.queue_name(env, name))
        assert pair.dead_letter_arn.endswith(":" + contract.dead_letter_queue_name(env, name))
    assert set(resources.service_names) == {*config.queues, contract.BEAT_PROCESS}
    assert resources.cluster_name and all(resources.service_names.values())
    assert resources.alarm_name_prefix == contract.alarm_name_prefix(env)
    assert resources.broker == config.compute.broker  # the drill's canary depends on it
    assert resources.redis_port == str(config.cache.port)
    assert resources.redis_endpoint == deployment.attribute(
        state, cache_id(deployment, state), "PrimaryEndPoint.Address"
    )
    toolbox = resources.toolbox
    assert toolbox and toolbox.task_definition_arn and toolbox.security_group_id
    assert len(toolbox.subnet_ids) == config.network.max_azs  # one private subnet per AZ
    assert toolbox.log_group_name == contract.operator_log_group_name(env)
    experiments = config.fault_injection.az_power.enabled
    assert len(resources.az_power_template_ids) == (config.network.max_azs if experiments else 0)


def cache_id(deployment, stack: str) -> str:
    (logical_id,) = [
        logical_id
        for logical_id, resource in deployment.templates[stack]["Resources"].items()
        if resource["Type"] == "AWS::ElastiCache::ReplicationGroup"
    ]
    return logical_id


def containers(templates: dict[str, dict], deployment) -> list[tuple[str, dict, dict[str, str]]]:
    """(process, container definition, the environ a container gets: variables and injected secrets)."""
    compute = next(stack for stack in deployment.templates if stack.endswith(contract.COMPUTE))
    state = next(stack for stack in deployment.templates if stack.endswith(contract.STATE))
    secret_arn = deployment.outputs(state)[contract.StateOutputs.AUTH_TOKEN_SECRET_ARN]
    found = []
    for container in container_definitions(templates[compute]).values():
        if container.get("Command", [""])[0] != "celery":
            continue  # the operators' toolbox: test_the_toolbox_gets_the_auth_token_for_redis_cli
        environ = {item["Name"]: deployment.resolve(compute, item["Value"]) for item in container["Environment"]}
        for secret in container.get("Secrets", []):
            assert VARIABLES[secret["Name"]].secret, (
                f"{secret['Name']} is injected as a secret but the contract does not say it is one"
            )
            assert deployment.resolve(compute, secret["ValueFrom"]) == secret_arn
            environ[secret["Name"]] = AUTH_TOKEN  # what ECS injects from that secret
        queue = environ.get(contract.ContainerEnvironment.QUEUE.name)
        found.append((contract.worker_process(queue) if queue else contract.BEAT_PROCESS, container, environ))
    return found


def assert_settings_match_the_stack(config, deployment, process: str, container: dict, environ: dict[str, str]):
    variables = contract.ContainerEnvironment
    state_outputs = deployment.outputs(contract.stack_name(config.name, contract.STATE))
    unknown = set(environ) - set(VARIABLES)
    assert not unknown, f"{process}: variables the settings package does not know: {unknown}"
    expected = {v.name for v in VARIABLES.values() if v.set_by_stack and ONLY_WITH[v.only_with](config)}
    if process == contract.BEAT_PROCESS:
        expected -= {variables.QUEUE.name, variables.TASK_TIME_LIMIT.name, variables.VISIBILITY_TIMEOUT.name}
    assert set(environ) == expected, f"{process}: the stack sets {sorted(environ)}; the contract {sorted(expected)}"

    tier = TierEnvironment.from_environ(environ)
    settings = build_settings(tier)
    compute = config.compute
    assert tier.broker == compute.broker
    assert [queue.name for queue in settings["task_queues"]] == list(config.queues)
    assert tier.queue_urls == {
        name: state_outputs[contract.queue_output_id("Queue", name, "Url")] for name in config.queues
    }
    if compute.broker == "sqs":
        assert settings["broker_url"].startswith("sqs://")
        assert {
            name: queue["url"] for name, queue in settings["broker_transport_options"]["predefined_queues"].items()
        } == tier.queue_urls
        assert settings["broker_transport_options"]["region"] == deployment.region
        claim_check = settings["broker_transport_options"].get("claim_check")
        if config.claim_check.enabled:  # the bucket the State stack made, the threshold configured
            assert claim_check == {
                "bucket": state_outputs[contract.StateOutputs.CLAIM_CHECK_BUCKET_NAME],
                "threshold_bytes": config.claim_check.threshold_bytes,
                "endpoint_url": None,
            }
        else:
            assert claim_check is None
    else:
        broker = urlsplit(settings["broker_url"])
        assert (broker.scheme, broker.hostname, broker.port, broker.path) == (
            "rediss",
            state_outputs[contract.StateOutputs.PRIMARY_ENDPOINT_ADDRESS],
            int(state_outputs[contract.StateOutputs.REDIS_PORT]),
            f"/{config.cache.databases.broker}",
        )
        assert broker.password == AUTH_TOKEN
    backend_class, _, backend_url = settings["result_backend"].rpartition("+")
    assert backend_class == "broker_tier_celery.failover:FailoverRedisBackend"  # follows the primary endpoint
    backend = urlsplit(backend_url)
    assert (backend.scheme, backend.hostname, backend.port, backend.path, backend.password) == (
        "rediss",
        state_outputs[contract.StateOutputs.PRIMARY_ENDPOINT_ADDRESS],
        int(state_outputs[contract.StateOutputs.REDIS_PORT]),
        f"/{config.cache.databases.results}",
        AUTH_TOKEN,
    )
    assert (
        contract.parse_databases(state_outputs[contract.StateOutputs.REDIS_DATABASES])
        == config.cache.databases.model_dump()
    )
    assert settings["result_expires"] == compute.result_expires_seconds
    # shutdown timing: ECS's SIGTERM -> SIGKILL window, Celery's soft shutdown inside it
    assert container["StopTimeout"] == compute.stop_timeout_seconds
    assert settings["worker_soft_shutdown_timeout"] == contract.soft_shutdown_seconds(compute.stop_timeout_seconds)
    assert environ[variables.REMAP_SIGTERM.name] == "SIGQUIT"
    if process == contract.BEAT_PROCESS:
        assert tier.queue is None and "task_time_limit" not in settings
        assert container["Command"][3] == "beat"
    else:
        class_name = tier.queue
        assert process == contract.worker_process(class_name)
        assert settings["task_time_limit"] == config.queues[class_name].task_time_limit_seconds
        if compute.broker == "redis":  # kombu's visibility timeout is the class's, as its SQS queue's would be
            assert (
                settings["broker_transport_options"]["visibility_timeout"]
                == config.queues[class_name].visibility_timeout_seconds
            )
        assert container["Command"][container["Command"].index("--queues") + 1] == class_name
    assert container["Command"][:3] == ["celery", "-A", compute.celery_app]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_container_gets_the_settings_its_stack_intended(synthesized, env):
    deployment = synthesized.deployment(env)
    templates = deployment.templates
    found = containers(templates, deployment)
    assert sorted(process for process, _, _ in found) == sorted(
        [contract.worker_process(name) for name in CONFIGS[env].queues] + [contract.BEAT_PROCESS]
    )
    for process, container, environ in found:
        assert_settings_match_the_stack(CONFIGS[env], deployment, process, container, environ)


def test_redis_broker_mode_containers_get_the_broker_database(redis_mode_dev):
    config = load_environments(variant_context("dev", REDIS_MODE_CHANGES)["broker-tier"])["dev"]
    deployment = Deployment({contract.stack_name("dev", part): template for part, template in redis_mode_dev.items()})
    found = containers(deployment.templates, deployment)
    assert sorted(process for process, _, _ in found) == sorted(
        [contract.worker_process(name) for name in config.queues] + [contract.BEAT_PROCESS]
    )
    for process, container, environ in found:
        assert_settings_match_the_stack(config, deployment, process, container, environ)


def test_a_stack_variable_the_contract_does_not_know_fails_the_loop(synthesized):
    deployment = synthesized.deployment("dev")
    process, container, environ = containers(deployment.templates, deployment)[0]
    with pytest.raises(AssertionError, match="does not know"):
        assert_settings_match_the_stack(
            CONFIGS["dev"], deployment, process, container, {**environ, "BROKER_TIER_RESULT_EXPIRY": "60"}
        )


def test_the_toolbox_gets_the_auth_token_for_redis_cli_from_the_same_secret(synthesized):
    deployment = synthesized.deployment("prod")
    compute, state = (contract.stack_name("prod", part) for part in (contract.COMPUTE, contract.STATE))
    (toolbox,) = [
        c
        for c in container_definitions(deployment.templates[compute]).values()
        if c.get("Command", [""])[0] != "celery"
    ]
    variables = contract.ToolboxEnvironment
    assert [(s["Name"], deployment.resolve(compute, s["ValueFrom"])) for s in toolbox["Secrets"]] == [
        (variables.REDIS_CLI_AUTH.name, deployment.outputs(state)[contract.StateOutputs.AUTH_TOKEN_SECRET_ARN])
    ]
    environ = {item["Name"]: deployment.resolve(compute, item["Value"]) for item in toolbox["Environment"]}
    assert environ == {
        variables.REDIS_HOST.name: deployment.outputs(state)[contract.StateOutputs.PRIMARY_ENDPOINT_ADDRESS],
        variables.REDIS_PORT.name: deployment.outputs(state)[contract.StateOutputs.REDIS_PORT],
    }
