"""Reading the tier's live state: queue depths, alarms in ALARM, the latest value or the sum of CloudWatch metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

ECS_DESCRIBE_LIMIT = 10  # DescribeServices takes at most ten services per call
METRIC_QUERY_LIMIT = 500  # GetMetricData takes at most 500 queries per call


def queue_counts(sqs, url: str) -> dict[str, int]:
    """``{"visible": n, "in_flight": n}`` of the queue at ``url`` (SQS's approximate counts)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    }


def alarms_in_alarm(cloudwatch, prefix: str) -> list[str]:
    """Names of the metric and composite alarms named ``<prefix>...`` that are in ALARM now."""
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, StateValue="ALARM")
    return [
        alarm["AlarmName"]
        for page in pages
        for alarm in page["MetricAlarms"] + page.get("CompositeAlarms", [])
        if alarm["StateValue"] == "ALARM"
    ]  # filtered here too: moto ignores StateValue with a prefix


@dataclass(frozen=True)
class MetricQuery:
    """One metric whose latest value is wanted, under a key of the caller's choosing."""

    key: tuple[str, str]
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str = "Maximum"


def latest_values(
    cloudwatch, queries: list[MetricQuery], *, end: datetime, window: timedelta, period_seconds: int = 60
) -> dict[tuple[str, str], tuple[float, datetime]]:
    """The newest datapoint of each query within ``window`` before ``end``, by the query's key; a metric
    without data in the window is left out."""
    found: dict[tuple[str, str], tuple[float, datetime]] = {}
    for key, timestamp, value in _datapoints(
        cloudwatch, queries, end=end, window=window, period_seconds=period_seconds
    ):
        if key not in found or timestamp > found[key][1]:
            found[key] = (value, timestamp)
    return found


def window_sums(
    cloudwatch, queries: list[MetricQuery], *, end: datetime, window: timedelta, period_seconds: int = 60
) -> dict[tuple[str, str], float]:
    """The sum of each query's datapoints within ``window`` before ``end`` (counts: give the ``Sum`` statistic),
    by the query's key; a metric without data in the window is left out."""
    found: dict[tuple[str, str], float] = {}
    for key, _, value in _datapoints(cloudwatch, queries, end=end, window=window, period_seconds=period_seconds):
        found[key] = found.get(key, 0.0) + value
    return found


def _datapoints(
    cloudwatch, queries: list[MetricQuery], *, end: datetime, window: timedelta, period_seconds: int
) -> Iterator[tuple[tuple[str, str], datetime, float]]:
    """Every datapoint of the queries within ``window`` before ``end``: (the query's key, timestamp, value)."""
    for start in range(0, len(queries), METRIC_QUERY_LIMIT):
        batch = queries[start : start + METRIC_QUERY_LIMIT]
        by_id = {f"m{index}": query for index, query in enumerate(batch)}
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            StartTime=end - window,
            EndTime=end,
            MetricDataQueries=[
                {
                    "Id": query_id,
                    "ReturnData": True,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": query.namespace,
                            "MetricName": query.metric_name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in query.dimensions.items()],
                        },
                        "Period": period_seconds,
                        "Stat": query.statistic,
                    },
                }
                for query_id, query in by_id.items()
            ],
        )
        for page in pages:
            for result in page["MetricDataResults"]:
                key = by_id[result["Id"]].key
                for timestamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                    yield key, timestamp, value
