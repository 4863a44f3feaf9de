"""AlarmTopic: encryption, TLS-only, subscriptions on the alarm topic and on further topics."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from broker_tier.config import Subscription
from broker_tier.constructs.alarm_topic import AlarmTopic

EVENTS_TOPIC_ARN = "arn:aws:sns:eu-west-1:111111111111:broker-tier-dev-cache-events"


def test_configured_endpoints_are_subscribed_to_alarms_and_to_cache_events():
    stack = cdk.Stack(cdk.App())
    key = kms.Key(stack, "Key")
    subscriptions = [
        Subscription(protocol="email", endpoint="oncall@example.com"),
        Subscription(protocol="https", endpoint="https://events.pagerduty.com/integration/x/enqueue"),
    ]
    alarm_topic = AlarmTopic(
        stack,
        "AlarmTopic",
        topic_name="broker-tier-dev-alarms",
        display_name="alarms",
        encryption_key=key,
        subscriptions=subscriptions,
    )
    alarm_topic.subscribe(EVENTS_TOPIC_ARN, "CacheEvents")
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::SNS::Topic",
        {
            "TopicName": "broker-tier-dev-alarms",
            "KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]},
        },
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    subscribed = template.find_resources("AWS::SNS::Subscription")
    pairs = {
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"], str(s["Properties"]["TopicArn"]))
        for s in subscribed.values()
    }
    topic_ref = str({"Ref": template.find_resources("AWS::SNS::Topic").popitem()[0]})
    assert pairs == {
        (sub.protocol, sub.endpoint, topic) for sub in subscriptions for topic in (topic_ref, EVENTS_TOPIC_ARN)
    }


def test_no_subscriptions_configured_means_none_created():
    stack = cdk.Stack(cdk.App())
    AlarmTopic(
        stack, "AlarmTopic", topic_name="t", display_name="t", encryption_key=kms.Key(stack, "Key"), subscriptions=[]
    )
    Template.from_stack(stack).resource_count_is("AWS::SNS::Subscription", 0)
