"""TierAlarms on a bare stack: each spec rendered as exactly one CloudWatch alarm (the whole catalog, as
synthesized in every environment, is tested in tests/broker_tier/stacks/test_monitoring_stack.py)."""

from __future__ import annotations

import pytest
from bare_stack import BareApp

from broker_tier.alarm_catalog import AlarmSpec, MetricQuery
from broker_tier.config import AlarmWindow
from broker_tier.constructs.tier_alarms import TierAlarms

TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:team-alarms"
RUNBOOKS = "https://example.com/runbooks/"


def node(index: int) -> MetricQuery:
    return MetricQuery(
        id=f"node{index}",
        namespace="AWS/ElastiCache",
        metric_name="DatabaseMemoryUsagePercentage",
        dimensions={"CacheClusterId": f"team-00{index}"},
        statistic="Maximum",
        label=f"team-00{index}",
    )


SPECS = [
    AlarmSpec(
        name="dead-letters",
        summary="Messages in the dead-letter queue.",
        runbook="dead-letters.md",
        graph="Dead-letter messages per class",
        window=AlarmWindow(period_seconds=300, evaluation_periods=1),
        threshold=0,
        comparison="GreaterThanThreshold",
        metrics=(
            MetricQuery(
                id="queue",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": "team-default-dlq"},
                statistic="Maximum",
                label="team-default-dlq",
            ),
        ),
        treat_missing_data="notBreaching",
    ),
    AlarmSpec(
        name="redis-memory-warning",
        summary="Redis memory high on a node.",
        runbook="redis-memory-pressure.md",
        graph="Redis memory (% of maxmemory)",
        window=AlarmWindow(evaluation_periods=5, datapoints_to_alarm=3),
        threshold=75,
        comparison="GreaterThanThreshold",
        metrics=(node(1), node(2)),
        treat_missing_data="missing",
        expression="MAX([node1, node2])",
        severity="warning",
    ),
]


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    alarms = TierAlarms(
        app.stack("Alarms"), "Alarms", specs=SPECS, name_prefix="team-", topic_arn=TOPIC_ARN, runbook_base_url=RUNBOOKS
    )
    app.built["Alarms"] = {name: app.logical_id(alarm) for name, alarm in alarms.alarms.items()}
    assert alarms.specs == SPECS
    return app.synthesize()


def alarm(bare: BareApp, name: str) -> dict:
    return bare.resources("Alarms", "AWS::CloudWatch::Alarm")[bare.built["Alarms"][name]]["Properties"]


def test_one_alarm_per_spec_named_with_the_prefix_and_notifying_the_topic_on_alarm_and_ok(bare):
    assert bare.count("Alarms", "AWS::CloudWatch::Alarm") == len(SPECS) == len(bare.built["Alarms"])
    for spec in SPECS:
        props = alarm(bare, spec.name)
        assert props["AlarmName"] == f"team-{spec.name}"
        assert (props["AlarmActions"], props["OKActions"]) == ([TOPIC_ARN], [TOPIC_ARN])
        assert props["AlarmDescription"] == f"[{spec.severity}] {spec.summary} Runbook: {RUNBOOKS}{spec.runbook}"


def test_a_single_metric_alarm_carries_its_spec(bare):
    assert alarm(bare, "dead-letters") == {
        "AlarmName": "team-dead-letters",
        "AlarmDescription": "[page] Messages in the dead-letter queue. Runbook: https://example.com/runbooks/dead-letters.md",
        "Metrics": [
            {
                "Id": "queue",
                "Label": "team-default-dlq",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateNumberOfMessagesVisible",
                        "Dimensions": [{"Name": "QueueName", "Value": "team-default-dlq"}],
                    },
                    "Period": 300,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            }
        ],
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,  # the window's default: every evaluation period
        "TreatMissingData": "notBreaching",
        "AlarmActions": [TOPIC_ARN],
        "OKActions": [TOPIC_ARN],
    }


def test_an_expression_alarm_returns_only_the_expression(bare):
    props = alarm(bare, "redis-memory-warning")
    queries = props["Metrics"]
    assert [(q["Id"], q["ReturnData"]) for q in queries] == [("node1", False), ("node2", False), ("alarmed", True)]
    assert queries[-1] == {
        "Id": "alarmed",
        "Expression": "MAX([node1, node2])",
        "Label": "redis-memory-warning",
        "ReturnData": True,
    }
    assert [q["MetricStat"]["Metric"]["Dimensions"] for q in queries[:-1]] == [
        [{"Name": "CacheClusterId", "Value": "team-001"}],
        [{"Name": "CacheClusterId", "Value": "team-002"}],
    ]
    assert {q["MetricStat"]["Period"] for q in queries[:-1]} == {60}
    assert (props["EvaluationPeriods"], props["DatapointsToAlarm"], props["Threshold"]) == (5, 3, 75)
