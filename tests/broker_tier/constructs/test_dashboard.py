"""TierDashboard on a bare stack: the graphs three to a row in reading order, each metric with its statistic and
each threshold as a line, then one alarm-status widget across the bottom (the tier's graphs, as synthesized in
every environment, are tested in tests/broker_tier/stacks/test_monitoring_stack.py)."""

from __future__ import annotations

import json

import pytest
from bare_stack import BareApp
from deployment import REGION

from broker_tier.alarm_catalog import Graph, MetricQuery
from broker_tier.constructs.dashboard import TierDashboard


def queue_depth(queue: str) -> MetricQuery:
    return MetricQuery(
        id="queue",
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": queue},
        statistic="Maximum",
        label=queue,
    )


GRAPHS = [
    Graph(title="Visible", metrics=(queue_depth("team-default"), queue_depth("team-batch"))),
    Graph(title="Dead letters", metrics=(queue_depth("team-default-dlq"),), thresholds=(("alarm", 0),)),
    Graph(title="Redis memory", metrics=(), thresholds=(("warning", 75), ("critical", 90))),
    Graph(title="Fourth", metrics=(queue_depth("team-fourth"),)),
]
ALARM_ARNS = [f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:team-{name}" for name in ("a", "b")]


@pytest.fixture(scope="module")
def bare() -> BareApp:
    app = BareApp()
    for name, period in (("Default", None), ("FiveMinutes", 300)):
        options = {} if period is None else {"period_seconds": period}
        app.built[name] = TierDashboard(
            app.stack(name), "Dashboard", dashboard_name=f"team-{name}", graphs=GRAPHS, alarm_arns=ALARM_ARNS, **options
        )
    return app.synthesize()


def widgets(bare: BareApp, stack: str) -> list[dict]:
    props = bare.only(stack, "AWS::CloudWatch::Dashboard")[1]["Properties"]
    assert props["DashboardName"] == f"team-{stack}" == bare.built[stack].dashboard_name
    return json.loads(bare.resolve(stack, props["DashboardBody"]))["widgets"]


def test_graphs_three_to_a_row_in_reading_order_then_the_alarms_across_the_bottom(bare):
    found = widgets(bare, "Default")
    assert [(w["x"], w["y"], w["width"], w["height"]) for w in found] == [
        (0, 0, 8, 6),
        (8, 0, 8, 6),
        (16, 0, 8, 6),
        (0, 6, 8, 6),
        (0, 12, 24, 4),
    ]
    assert [w["properties"]["title"] for w in found] == [graph.title for graph in GRAPHS] + ["Alarms"]
    assert found[-1] == {
        "type": "alarm",
        "x": 0,
        "y": 12,
        "width": 24,
        "height": 4,
        "properties": {"title": "Alarms", "alarms": ALARM_ARNS},
    }


def test_each_graph_shows_its_metrics_with_their_statistic_and_its_thresholds_in_the_stacks_region(bare):
    found = widgets(bare, "Default")[: len(GRAPHS)]
    assert {(w["type"], w["properties"]["view"], w["properties"]["region"]) for w in found} == {
        ("metric", "timeSeries", REGION)
    }
    assert found[0]["properties"]["metrics"] == [
        [
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            queue,
            {"stat": "Maximum", "label": queue},
        ]
        for queue in ("team-default", "team-batch")
    ]
    assert [w["properties"]["annotations"]["horizontal"] for w in found] == [
        [],
        [{"label": "alarm", "value": 0}],
        [{"label": "warning", "value": 75}, {"label": "critical", "value": 90}],
        [],
    ]


@pytest.mark.parametrize("stack,period", [("Default", 60), ("FiveMinutes", 300)])
def test_every_graph_has_the_period_given_or_a_minute(bare, stack, period):
    graphs = widgets(bare, stack)[: len(GRAPHS)]
    assert [w["properties"]["period"] for w in graphs] == [period] * len(GRAPHS)
