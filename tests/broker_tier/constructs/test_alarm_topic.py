"""AlarmTopic on bare stacks: encryption, TLS only, CloudWatch alarms of this account (and no one else) may
publish, and the configured endpoints subscribed to the alarm topic and to further topics."""

from __future__ import annotations

import pytest
from aws_cdk import aws_kms as kms
from bare_stack import BareApp
from deployment import ACCOUNT, REGION
from policy_evaluator import Request, evaluate

from broker_tier.config import Subscription
from broker_tier.constructs.alarm_topic import AlarmTopic

EVENTS_TOPIC_ARN = "arn:aws:sns:eu-west-1:111111111111:broker-tier-dev-cache-events"
SUBSCRIPTIONS = [
    Subscription(protocol="email", endpoint="oncall@example.com"),
    Subscription(protocol="https", endpoint="https://events.pagerduty.com/integration/x/enqueue"),
]
CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}
OWN_ALARM = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:broker-tier-dev-redis-memory-critical"


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    for stack_name, options in (("Subscribed", {"subscriptions": SUBSCRIPTIONS}), ("Unsubscribed", {})):
        stack = app.stack(stack_name)
        topic = AlarmTopic(
            stack,
            "AlarmTopic",
            topic_name=f"team-{stack_name.lower()}-alarms",
            display_name="team alarms",
            encryption_key=kms.Key(stack, "Key"),
            **options,
        )
        topic.subscribe(EVENTS_TOPIC_ARN, "CacheEvents")
        app.built[stack_name] = topic
    return app.synthesize()


def publish(bare: BareApp, *, tls: bool = True, **context: str) -> str:
    """The topic policy's decision on CloudWatch publishing to the topic of "Subscribed" with ``context``."""
    deployment = bare.deployment()
    topic_id, _ = bare.only("Subscribed", "AWS::SNS::Topic")
    (policy,) = bare.resources("Subscribed", "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    document = deployment.resolve("Subscribed", policy["Properties"]["PolicyDocument"])
    topic_arn = deployment.attribute("Subscribed", topic_id, "Ref")
    request = Request(CLOUDWATCH, "sns:Publish", topic_arn, {"aws:SecureTransport": str(tls).lower(), **context})
    return evaluate(document, request).outcome


def test_topic_is_named_and_encrypted_with_the_given_key(bare):
    (key,) = bare.resources("Subscribed", "AWS::KMS::Key")
    assert bare.only("Subscribed", "AWS::SNS::Topic")[1]["Properties"] == {
        "TopicName": "team-subscribed-alarms",
        "DisplayName": "team alarms",
        "KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]},
    }


def test_cloudwatch_alarms_of_this_account_and_region_may_publish(bare):
    assert publish(bare, **{"aws:SourceAccount": ACCOUNT, "aws:SourceArn": OWN_ALARM}) == "allowed"


@pytest.mark.parametrize(
    "context",
    [
        {"aws:SourceAccount": "210987654321", "aws:SourceArn": OWN_ALARM.replace(ACCOUNT, "210987654321")},
        {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": OWN_ALARM.replace(REGION, "us-east-1")},
        {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/other"},
        {"aws:SourceAccount": ACCOUNT},
        {},
    ],
    ids=["another-account", "another-region", "not-an-alarm", "no-source-arn", "no-source"],
)
def test_no_one_else_may_publish(bare, context):
    assert publish(bare, **context) == "implicit deny"


def test_publishing_without_tls_is_denied_explicitly(bare):
    assert publish(bare, tls=False, **{"aws:SourceAccount": ACCOUNT, "aws:SourceArn": OWN_ALARM}) == "explicit deny"


def test_configured_endpoints_are_subscribed_to_alarms_and_to_further_topics(bare):
    topic_id, _ = bare.only("Subscribed", "AWS::SNS::Topic")
    subscribed = bare.resources("Subscribed", "AWS::SNS::Subscription").values()
    pairs = {
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"], str(s["Properties"]["TopicArn"])) for s in subscribed
    }
    assert pairs == {
        (sub.protocol, sub.endpoint, topic)
        for sub in SUBSCRIPTIONS
        for topic in (str({"Ref": topic_id}), EVENTS_TOPIC_ARN)
    }


def test_no_subscriptions_by_default(bare):
    assert bare.count("Unsubscribed", "AWS::SNS::Subscription") == 0
    assert bare.count("Unsubscribed", "AWS::SNS::Topic") == 1
