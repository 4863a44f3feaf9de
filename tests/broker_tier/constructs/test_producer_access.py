"""ProducerAccess: the managed policies a producer's roles attach, evaluated for what they allow and refuse
(tests/support/policy_evaluator.py), on a bare stack and as synthesized in every environment; its security
group; and a real producer (Celery through the settings package, moto's SQS, a redis-server with AUTH) whose
every AWS call the policy allows."""

from __future__ import annotations

import json

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from bare_stack import BareApp
from botocore.client import BaseClient
from deployment import ACCOUNT, REGION
from moto_server import moto_server
from policy_evaluator import Request, evaluate
from tier_testing import ENVIRONMENTS, tier_context

import broker_tier_contract as contract
from broker_tier.config import CacheConfig, load_environments
from broker_tier.constructs.cache import BrokerCache
from broker_tier.constructs.producer_access import PRODUCER_QUEUE_ACTIONS, ProducerAccess

CONFIGS = load_environments(tier_context())
PRODUCER = {"AWS": "arn:aws:iam::123456789012:role/team-web-app"}


# -- on a bare stack ------------------------------------------------------------------------------------------
BARE_QUEUES = ("team-fast", "team-slow")


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    stack = app.stack("Producers")
    vpc = ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id="vpc-0123456789", availability_zones=["za", "zb"])
    key = kms.Key(stack, "DataKey")
    cache = BrokerCache(
        stack,
        "Cache",
        config=CacheConfig(port=6390),
        replication_group_id="team-cache",
        name_prefix="team",
        auth_token_secret_name="team/auth-token",
        vpc=vpc,
        subnet_ids=["subnet-0a", "subnet-0b"],
        encryption_key=key,
        notification_topic=sns.Topic(stack, "Events"),
        removal_policy=cdk.RemovalPolicy.DESTROY,
        logs_key=kms.Key(stack, "LogsKey"),
    )
    queues = [sqs.Queue(stack, name, queue_name=name) for name in BARE_QUEUES]
    sqs.Queue(stack, "Other", queue_name="team-other")
    producers = ProducerAccess(
        stack,
        "Producers",
        name_prefix="team",
        work_queues=queues,
        encryption_key=key,
        auth_token_secret=cache.auth_token_secret,
        cache=cache,
        vpc=vpc,
    )
    app.built["Producers"] = {
        "policy": app.logical_id(producers.policy),
        "auth_token_policy": app.logical_id(producers.auth_token_policy),
        "security_group": app.logical_id(producers.security_group),
        "cache_security_group": app.logical_id(cache.security_group),
        "secret": app.logical_id(cache.auth_token_secret),
        "key": app.logical_id(key),
    }
    return app.synthesize()


def bare_decision(bare: BareApp, policy: str, action: str, resource: str, **context: str) -> str:
    props = bare.templates["Producers"]["Resources"][bare.built["Producers"][policy]]["Properties"]
    document = bare.resolve("Producers", props["PolicyDocument"])
    return evaluate(document, Request(PRODUCER, action, resource, context)).outcome


def bare_arn(bare: BareApp, name: str, attribute: str = "Arn") -> str:
    return bare.deployment().attribute("Producers", bare.built["Producers"][name], attribute)


def test_bare_policies_are_named_after_the_prefix(bare):
    resources = bare.templates["Producers"]["Resources"]
    names = [
        resources[bare.built["Producers"][p]]["Properties"]["ManagedPolicyName"]
        for p in ("policy", "auth_token_policy")
    ]
    assert names == ["team-producer", "team-producer-auth-token"]


@pytest.mark.parametrize("action", PRODUCER_QUEUE_ACTIONS)
def test_bare_producer_may_send_to_the_given_queues(bare, action):
    assert BARE_QUEUES
    for queue in BARE_QUEUES:
        assert bare_decision(bare, "policy", action, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}") == "allowed"


@pytest.mark.parametrize(
    "action,queue",
    [
        ("sqs:SendMessage", "team-other"),
        ("sqs:ReceiveMessage", "team-fast"),
        ("sqs:DeleteMessage", "team-fast"),
        ("sqs:PurgeQueue", "team-slow"),
    ],
)
def test_bare_producer_may_do_nothing_else_with_queues(bare, action, queue):
    resource = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"
    for policy in ("policy", "auth_token_policy"):
        assert bare_decision(bare, policy, action, resource) == "implicit deny"


def test_bare_producer_uses_the_key_through_sqs_for_queues_and_through_secrets_manager_for_the_token(bare):
    key = bare_arn(bare, "key")
    sqs_service, secrets = f"sqs.{REGION}.amazonaws.com", f"secretsmanager.{REGION}.amazonaws.com"
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert bare_decision(bare, "policy", action, key, **{"kms:ViaService": sqs_service}) == "allowed"
        assert bare_decision(bare, "policy", action, key) == "implicit deny"  # called directly
        assert bare_decision(bare, "policy", action, key, **{"kms:ViaService": secrets}) == "implicit deny"
    assert bare_decision(bare, "auth_token_policy", "kms:Decrypt", key, **{"kms:ViaService": secrets}) == "allowed"
    assert bare_decision(bare, "auth_token_policy", "kms:Decrypt", key) == "implicit deny"
    assert bare_decision(bare, "auth_token_policy", "kms:Encrypt", key, **{"kms:ViaService": secrets}) == (
        "implicit deny"
    )


def test_bare_auth_token_policy_reads_the_token_and_no_other_secret(bare):
    secret = bare_arn(bare, "secret", "Ref")
    assert bare_decision(bare, "auth_token_policy", "secretsmanager:GetSecretValue", secret) == "allowed"
    assert bare_decision(bare, "policy", "secretsmanager:GetSecretValue", secret) == "implicit deny"
    assert bare_decision(bare, "auth_token_policy", "secretsmanager:PutSecretValue", secret) == "implicit deny"
    other = secret.replace("secret:", "secret:another-", 1)
    assert bare_decision(bare, "auth_token_policy", "secretsmanager:GetSecretValue", other) == "implicit deny"


def test_bare_producers_security_group_reaches_the_cache_port_only_and_the_cache_admits_it(bare):
    resources = bare.templates["Producers"]["Resources"]
    built = bare.built["Producers"]
    producers = {"Fn::GetAtt": [built["security_group"], "GroupId"]}
    cache_group = {"Fn::GetAtt": [built["cache_security_group"], "GroupId"]}
    (egress,) = resources[built["security_group"]]["Properties"]["SecurityGroupEgress"]
    assert egress == {
        "Description": "the cache's port",
        "DestinationSecurityGroupId": cache_group,
        "FromPort": 6390,
        "IpProtocol": "tcp",
        "ToPort": 6390,
    }
    assert "SecurityGroupIngress" not in resources[built["security_group"]]["Properties"]
    ((rule_id, rule),) = bare.resources("Producers", "AWS::EC2::SecurityGroupIngress").items()
    assert rule_id.startswith("ProducersRedisIngress")  # in the producers' scope
    assert rule["Properties"] == {
        "Description": "producers outside the tier",
        "FromPort": 6390,
        "GroupId": cache_group,
        "IpProtocol": "tcp",
        "SourceSecurityGroupId": producers,
        "ToPort": 6390,
    }


# -- as synthesized in every environment ----------------------------------------------------------------------
class ProducerView:
    """One environment's producer policies and the ARNs they are about, as deployed (``synthesized.deployment``)."""

    def __init__(self, synthesized, env: str) -> None:
        self.state = contract.stack_name(env, "State")
        self.deployment = deployment = synthesized.deployment(env)
        self.region, self.account = synthesized.region, synthesized.account
        resources = synthesized.resources(env, "State", "AWS::IAM::ManagedPolicy")
        self.outputs = outputs = deployment.outputs(self.state)
        by_arn = {
            deployment.resolve(self.state, {"Ref": logical_id}): resource for logical_id, resource in resources.items()
        }
        assert len(by_arn) == 2
        self.policy = by_arn[outputs[contract.ProducerOutputs.POLICY_ARN]]["Properties"]
        self.auth_token_policy = by_arn[outputs[contract.ProducerOutputs.AUTH_TOKEN_POLICY_ARN]]["Properties"]
        self.documents = [
            deployment.resolve(self.state, policy["PolicyDocument"]) for policy in (self.policy, self.auth_token_policy)
        ]
        self.work_queues = [outputs[contract.queue_output_id("Queue", name, "Arn")] for name in CONFIGS[env].queues]
        self.dead_letter_queues = [
            outputs[contract.queue_output_id("DeadLetterQueue", name, "Arn")] for name in CONFIGS[env].queues
        ]
        self.secret = outputs[contract.StateOutputs.AUTH_TOKEN_SECRET_ARN]
        self.bucket = outputs[contract.StateOutputs.CLAIM_CHECK_BUCKET_NAME]
        self.payload_prefixes = [
            f"arn:aws:s3:::{self.bucket}/{contract.claim_check_key_prefix(name)}*" for name in CONFIGS[env].queues
        ]
        (self.key,) = [
            deployment.attribute(self.state, logical_id, "Arn")
            for logical_id in synthesized.resources(env, "State", "AWS::KMS::Key")
            if not logical_id.startswith("LogsKey")
        ]

    def decide(self, action: str, resource: str, *, policy: int | None = None, **context: str):
        """The decision of a role with both policies attached (or only ``documents[policy]``)."""
        documents = self.documents if policy is None else [self.documents[policy]]
        statements = [statement for document in documents for statement in document["Statement"]]
        return evaluate({"Statement": statements}, Request(PRODUCER, action, resource, context))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_producer_policies_are_outputs_named_after_their_environment_without_a_wildcard(synthesized, env):
    view = ProducerView(synthesized, env)
    assert (view.policy["ManagedPolicyName"], view.auth_token_policy["ManagedPolicyName"]) == (
        f"broker-tier-{env}-producer",
        f"broker-tier-{env}-producer-auth-token",
    )
    claim_check = CONFIGS[env].claim_check.enabled
    assert [[s["Sid"] for s in document["Statement"]] for document in view.documents] == [
        ["SendToWorkQueues", "QueueEncryptionThroughSqs"]
        + (["PutClaimCheckPayloads", "EncryptPayloadsThroughS3"] if claim_check else []),
        ["ReadAuthToken", "DecryptAuthTokenThroughSecretsManager"],
    ]
    for statement in [s for document in view.documents for s in document["Statement"]]:
        assert statement["Effect"] == "Allow"
        for field in ("Action", "Resource"):
            values = statement[field] if isinstance(statement[field], list) else [statement[field]]
            if (statement["Sid"], field) == ("PutClaimCheckPayloads", "Resource"):  # one prefix per class: its objects
                assert sorted(values) == sorted(view.payload_prefixes), values
                continue
            assert values and not any("*" in value for value in values), (statement["Sid"], field)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_producer_may_send_to_every_work_queue_and_do_nothing_else_with_the_queues(synthesized, env):
    view = ProducerView(synthesized, env)
    assert len(view.work_queues) == len(CONFIGS[env].queues) >= 1
    for queue in view.work_queues:
        for action in PRODUCER_QUEUE_ACTIONS:
            assert view.decide(action, queue, policy=0).allowed, (action, queue)
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue", "sqs:SetQueueAttributes"):
            assert view.decide(action, queue).outcome == "implicit deny", (action, queue)
        assert view.decide("sqs:SendMessage", queue, policy=1).outcome == "implicit deny"  # the token's policy
    for queue in view.dead_letter_queues:
        assert view.decide("sqs:SendMessage", queue).outcome == "implicit deny", queue
    other = view.work_queues[0].replace(f"broker-tier-{env}-", "broker-tier-other-")
    assert view.decide("sqs:SendMessage", other).outcome == "implicit deny"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_producer_uses_the_key_only_through_sqs_and_secrets_manager(synthesized, env):
    view = ProducerView(synthesized, env)
    sqs, secrets = f"sqs.{view.region}.amazonaws.com", f"secretsmanager.{view.region}.amazonaws.com"
    s3 = f"s3.{view.region}.amazonaws.com"
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert view.decide(action, view.key, policy=0, **{"kms:ViaService": sqs}).allowed, action
        assert view.decide(action, view.key).outcome == "implicit deny", action  # called directly
        # through S3: only a put's data key, and only with the claim check on (reading is the workers')
        through_s3 = view.decide(action, view.key, **{"kms:ViaService": s3}).outcome
        assert through_s3 == (
            "allowed" if CONFIGS[env].claim_check.enabled and action == "kms:GenerateDataKey" else ("implicit deny")
        ), action
    assert view.decide("kms:Decrypt", view.key, policy=1, **{"kms:ViaService": secrets}).allowed
    assert view.decide("kms:Decrypt", view.key, policy=0, **{"kms:ViaService": secrets}).outcome == "implicit deny"
    assert view.decide("kms:GenerateDataKey", view.key, **{"kms:ViaService": secrets}).outcome == "implicit deny"
    for action in ("kms:Encrypt", "kms:ReEncryptFrom", "kms:CreateGrant"):
        assert view.decide(action, view.key, **{"kms:ViaService": sqs}).outcome == "implicit deny", action


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_auth_token_policy_reads_the_auth_token_and_no_other_secret(synthesized, env):
    view = ProducerView(synthesized, env)
    assert view.decide("secretsmanager:GetSecretValue", view.secret, policy=1).allowed
    assert view.decide("secretsmanager:GetSecretValue", view.secret, policy=0).outcome == "implicit deny"
    for action in ("secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:ListSecrets"):
        assert view.decide(action, view.secret).outcome == "implicit deny", action
    other = view.secret.replace("secret:", "secret:another-", 1)
    assert view.decide("secretsmanager:GetSecretValue", other).outcome == "implicit deny"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_producers_security_group_reaches_the_cache_port_only_and_the_cache_admits_it(synthesized, env):
    state = synthesized.json(env, "State")["Resources"]
    port = CONFIGS[env].cache.port
    (producers,) = [lid for lid in state if lid.startswith("ProducersSecurityGroup")]
    (cache_group,) = [lid for lid in state if lid.startswith("CacheSecurityGroup")]
    (egress,) = state[producers]["Properties"]["SecurityGroupEgress"]
    assert egress["DestinationSecurityGroupId"] == {"Fn::GetAtt": [cache_group, "GroupId"]}
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", port, port)
    admitted = [
        rule["Properties"]
        for rule in state.values()
        if rule["Type"] == "AWS::EC2::SecurityGroupIngress"
        and rule["Properties"]["SourceSecurityGroupId"] == {"Fn::GetAtt": [producers, "GroupId"]}
    ]
    assert admitted == [
        {
            "Description": "producers outside the tier",
            "FromPort": port,
            "GroupId": {"Fn::GetAtt": [cache_group, "GroupId"]},
            "IpProtocol": "tcp",
            "SourceSecurityGroupId": {"Fn::GetAtt": [producers, "GroupId"]},
            "ToPort": port,
        }
    ]
    outputs = synthesized.json(env, "State")["Outputs"]
    assert outputs[contract.ProducerOutputs.SECURITY_GROUP_ID]["Value"] == {"Fn::GetAtt": [producers, "GroupId"]}
    subnets = outputs[contract.ProducerOutputs.SUBNET_IDS]["Value"]["Fn::Join"]
    assert subnets[0] == "," and len(subnets[1]) == CONFIGS[env].network.max_azs


# -- a real producer ------------------------------------------------------------------------------------------
@pytest.fixture
def moto_sqs():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def recorded_aws_calls(monkeypatch) -> list[tuple[str, str, dict]]:
    """Every AWS API call made in the test: (service, operation, parameters)."""
    calls: list[tuple[str, str, dict]] = []
    make_api_call = BaseClient._make_api_call

    def recording(client, operation, params):
        calls.append((client.meta.service_model.service_name, operation, dict(params)))
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


def producer_app(environ: dict[str, str]):
    from celery import Celery

    from broker_tier_celery.settings import settings_from_environment

    app = Celery("team-web-app")
    app.conf.update(settings_from_environment(environ))
    return app


def test_every_call_a_producer_makes_through_the_settings_package_is_allowed(
    agnostic, moto_sqs, lone_redis, recorded_aws_calls, monkeypatch
):
    view = ProducerView(agnostic, "dev")  # deployed to the stand-in account and region, which moto uses too
    for variable, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(variable, value)
    sqs = boto3.client("sqs", endpoint_url=moto_sqs, region_name=view.region)
    urls = {
        name: sqs.create_queue(QueueName=contract.queue_name("dev", name))["QueueUrl"] for name in CONFIGS["dev"].queues
    }
    arns = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in urls.values()
    }
    assert sorted(arns.values()) == sorted(view.work_queues)  # moto's ARNs are the deployment's
    environ = {
        "BROKER_TIER_BROKER": "sqs",
        "BROKER_TIER_QUEUE_URLS": json.dumps(urls),
        "BROKER_TIER_REGION": view.region,
        "BROKER_TIER_SQS_ENDPOINT_URL": moto_sqs,
        "BROKER_TIER_REDIS_HOST": "127.0.0.1",
        "BROKER_TIER_REDIS_PORT": str(lone_redis.port),
        "BROKER_TIER_REDIS_TLS": "false",
        "BROKER_TIER_REDIS_AUTH_TOKEN": lone_redis.password,
        "BROKER_TIER_REDIS_DB_RESULTS": "2",
        "BROKER_TIER_REDIS_DB_BROKER": "1",
        "BROKER_TIER_SOFT_SHUTDOWN_TIMEOUT": "2",
    }
    recorded_aws_calls.clear()
    app = producer_app(environ)
    for name in urls:
        app.send_task("team.report", args=[name], queue=name)
    app.close()
    sqs_calls = [(operation, params["QueueUrl"]) for service, operation, params in recorded_aws_calls]
    assert {operation for operation, _ in sqs_calls} == {"SendMessage", "GetQueueAttributes"}
    assert {url for _, url in sqs_calls} == set(urls.values())
    for operation, url in sqs_calls:
        decision = view.decide(f"sqs:{operation}", arns[url], policy=0)
        assert decision.allowed, (operation, url, decision)
    for url in urls.values():
        visible = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert visible["Attributes"]["ApproximateNumberOfMessages"] == "1"

    # Without the AUTH token the same producer cannot send at all, in sqs broker mode too: Celery subscribes
    # to the task's result on the Redis result backend before it publishes. (Its reconnection retries, 20
    # about a second apart by default, are cut to one here to fail fast.)
    recorded_aws_calls.clear()
    app = producer_app({**environ, "BROKER_TIER_REDIS_AUTH_TOKEN": "not-the-token-0123456789"})
    app.conf.result_backend_transport_options = {"retry_policy": {"max_retries": 1}}
    with pytest.raises(RuntimeError, match="result store"):
        app.send_task("team.report", args=["x"], queue="default")
    assert [call for call in recorded_aws_calls if call[1] == "SendMessage"] == []
    app.send_task("team.report", args=["y"], queue="default", ignore_result=True)  # no subscription: sent
    app.close()
    assert [call[1] for call in recorded_aws_calls if call[1] == "SendMessage"] == ["SendMessage"]


def test_a_producer_with_the_claim_check_puts_a_large_payload_as_its_policy_allows_and_reads_none(
    agnostic, moto_sqs, lone_redis, recorded_aws_calls, monkeypatch
):
    env = next(name for name in ENVIRONMENTS if CONFIGS[name].claim_check.enabled)  # cdk.json turns it on in one
    view = ProducerView(agnostic, env)
    for variable, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(variable, value)
    sqs = boto3.client("sqs", endpoint_url=moto_sqs, region_name=view.region)
    s3 = boto3.client("s3", endpoint_url=moto_sqs, region_name=view.region)
    # S3 refuses a location constraint of us-east-1, its default region
    where = {} if view.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": view.region}}
    s3.create_bucket(Bucket=view.bucket, **where)
    name = next(iter(CONFIGS[env].queues))
    url = sqs.create_queue(QueueName=contract.queue_name(env, name))["QueueUrl"]
    variables = contract.ContainerEnvironment
    environ = {
        variables.BROKER.name: "sqs",
        variables.QUEUE_URLS.name: json.dumps({name: url}),
        variables.REGION.name: view.region,
        variables.SQS_ENDPOINT_URL.name: moto_sqs,
        variables.S3_ENDPOINT_URL.name: moto_sqs,
        variables.CLAIM_CHECK_BUCKET.name: view.bucket,  # the output, as deployed
        variables.REDIS_HOST.name: "127.0.0.1",
        variables.REDIS_PORT.name: str(lone_redis.port),
        variables.REDIS_TLS.name: "false",
        variables.REDIS_AUTH_TOKEN.name: lone_redis.password,
    }
    recorded_aws_calls.clear()
    app = producer_app(environ)
    app.send_task("team.report", args=["z" * 600_000], queue=name)  # over the 256 KiB threshold once encoded
    app.close()
    puts = [params for service, operation, params in recorded_aws_calls if service == "s3"]
    assert [(call["Bucket"], call["Key"].startswith(f"{name}/")) for call in puts] == [(view.bucket, True)]
    (key,) = [call["Key"] for call in puts]
    obj = f"arn:aws:s3:::{view.bucket}/{key}"
    assert view.decide("s3:PutObject", obj, policy=0).allowed
    for action in ("s3:GetObject", "s3:DeleteObject", "s3:ListBucket", "s3:PutObjectAcl"):
        assert view.decide(action, obj).outcome == "implicit deny", action  # reading is the workers'
    assert view.decide("s3:PutObject", f"arn:aws:s3:::{view.bucket}/elsewhere/{key}").outcome == "implicit deny"
    assert view.decide("s3:PutObject", f"arn:aws:s3:::another-bucket/{key}").outcome == "implicit deny"
    assert sorted(operation for service, operation, _ in recorded_aws_calls if service == "sqs") == [
        "GetQueueAttributes",
        "SendMessage",
    ]
