"""The tier's CloudWatch dashboard: the signals the alarms watch, side by side."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from broker_tier.alarm_catalog import Graph

WIDGET_WIDTH = 8  # three graphs per 24-unit row
WIDGET_HEIGHT = 6


def _widget(graph: Graph, region: str, period_seconds: int, position: int) -> dict:
    return {
        "type": "metric",
        "width": WIDGET_WIDTH,
        "height": WIDGET_HEIGHT,
        "x": (position * WIDGET_WIDTH) % 24,
        "y": (position * WIDGET_WIDTH) // 24 * WIDGET_HEIGHT,
        "properties": {
            "title": graph.title,
            "region": region,
            "view": "timeSeries",
            "period": period_seconds,
            "metrics": [
                [
                    query.namespace,
                    query.metric_name,
                    *[part for item in query.dimensions.items() for part in item],
                    {"stat": query.statistic, "label": query.label},
                ]
                for query in graph.metrics
            ],
            "annotations": {"horizontal": [{"label": label, "value": value} for label, value in graph.thresholds]},
        },
    }


class TierDashboard(Construct):
    """A CloudWatch dashboard of line graphs, then one alarm-status widget for every alarm.

    The body is built here as JSON (one CfnDashboard, no per-metric constructs), which keeps
    synthesis cheap; tokens (names from other stacks, the region) resolve in the template.

    Attributes:
        dashboard: the CfnDashboard.
        dashboard_name: its name.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        graphs: list[Graph],
        alarm_arns: list[str],
        period_seconds: int = 60,
    ) -> None:
        """
        :param dashboard_name: physical name.
        :param graphs: the graphs, in reading order (``alarm_catalog.dashboard_graphs``).
        :param alarm_arns: alarms shown in the status widget at the bottom.
        :param period_seconds: period of every graph. Default: 60.
        """
        super().__init__(scope, construct_id)
        widgets = [_widget(graph, cdk.Aws.REGION, period_seconds, position) for position, graph in enumerate(graphs)]
        rows = -(-len(graphs) * WIDGET_WIDTH // 24)
        widgets.append(
            {
                "type": "alarm",
                "x": 0,
                "y": rows * WIDGET_HEIGHT,
                "width": 24,
                "height": 4,
                "properties": {"title": "Alarms", "alarms": alarm_arns},
            }
        )
        self.dashboard_name = dashboard_name
        self.dashboard = cloudwatch.CfnDashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            dashboard_body=cdk.Stack.of(self).to_json_string({"widgets": widgets}),
        )
