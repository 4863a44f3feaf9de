"""``status`` against moto (stacks, queues, ECS, CloudWatch) and the model-validated ElastiCache fake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
from botocore.stub import Stubber
from fake_aws import ENV, GROUP, REGION

import broker_tier_contract as contract
from broker_tier.ops.cli import main


def put_metric(aws, namespace: str, name: str, dimension: tuple[str, str], value: float, minutes_ago: int = 1):
    aws.clients["cloudwatch"].put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
                "Value": value,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=minutes_ago),
            }
        ],
    )


def status(aws, capsys, tmp_path, *extra: str, clients: dict | None = None) -> tuple[int, str, dict]:
    code = main(["status", "--env", ENV, "--report-dir", str(tmp_path), *extra], clients=clients or aws.clients)
    out = capsys.readouterr().out
    (report,) = tmp_path.glob("status-*.json")
    return code, out, json.loads(report.read_text())


def busy_tier(aws) -> None:
    """Two nodes with memory, the replica with lag, messages waiting in the default class."""
    for node, memory in ((f"{GROUP}-001", 41.5), (f"{GROUP}-002", 40.2)):
        put_metric(aws, "AWS/ElastiCache", "DatabaseMemoryUsagePercentage", ("CacheClusterId", node), memory)
    put_metric(
        aws, "AWS/ElastiCache", "DatabaseMemoryUsagePercentage", ("CacheClusterId", f"{GROUP}-001"), 12.0, minutes_ago=9
    )  # older: the latest value is shown
    put_metric(aws, "AWS/SQS", "ApproximateAgeOfOldestMessage", ("QueueName", f"broker-tier-{ENV}-default"), 95)
    for n in range(3):
        aws.clients["sqs"].send_message(QueueUrl=aws.tier.queues["default"]["url"], MessageBody=f"task {n}")


def test_healthy_tier_on_one_screen(aws, capsys, tmp_path):
    busy_tier(aws)
    aws.api.calls.clear()
    code, out, report = status(aws, capsys, tmp_path)
    assert code == 0 and report["outcome"] == "passed", out
    verdict, _, screen = out.partition("\n\n")
    assert verdict == (
        f"{ENV} in {REGION} is healthy: the cache is available, every service runs its desired tasks, no dead letter "
        f"waits and no alarm is in ALARM, so tasks are being taken and run."
    )
    lines = screen.splitlines()
    assert lines[0].startswith(f"broker-tier {ENV} in {REGION} at ")
    assert lines[1] == (f"cache     {GROUP}: available; Multi-AZ enabled, automatic failover enabled")
    assert lines[2].split() == ["primary", f"{GROUP}-001", "eu-west-1a", "memory", "41.5%"]
    assert lines[3].split() == ["replica", f"{GROUP}-002", "eu-west-1b", "memory", "40.2%", "lag", "0.2", "s"]
    queues = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("          ")}
    assert queues["interactive"] == ["0", "0", "-", "0"]
    assert queues["default"] == ["3", "0", "95", "s", "0"]
    assert queues["worker-default"] == ["0/0"] and queues["beat"] == ["0/0"]
    assert lines[-1] == "alarms    in ALARM: none"
    assert len(lines) <= 24, "one screen"
    assert {c["name"]: c["passed"] for c in report["steady_state"]} == {
        "replication_group_available": True,
        "services_at_desired_count": True,
        "dead_letter_queues_empty": True,
        "no_alarm_in_alarm": True,
    }
    assert report["measurements"]["queues"][1]["oldest_age_seconds"] == 95
    assert aws.api.mutating_calls() == []  # status changes nothing


def test_unhealthy_tier_exits_1_and_says_why(aws, capsys, tmp_path):
    aws.tier.send_dead_letter("interactive")
    aws.tier.add_alarm("dlq-interactive-messages", "ALARM")
    aws.tier.unsteady("beat")
    aws.group.status = "modifying"
    code, out, report = status(aws, capsys, tmp_path)
    assert code == 1 and report["outcome"] == "failed"
    assert f"alarms    in ALARM: broker-tier-{ENV}-dlq-interactive-messages" in out
    assert "FAIL  dead_letter_queues_empty: interactive: 1, default: 0" in out
    assert "FAIL  services_at_desired_count: not at desired count: beat 0/1" in out
    assert "FAIL  replication_group_available: status is modifying" in out
    assert report["error"].startswith(
        "the tier is not healthy: replication_group_available, "
        "services_at_desired_count, dead_letter_queues_empty, no_alarm_in_alarm"
    )


def test_json_has_every_section(aws, capsys, tmp_path):
    busy_tier(aws)
    code, out, _ = status(aws, capsys, tmp_path, "--json")
    data = json.loads(out)
    assert code == 0
    tier = data["status"]
    assert (tier["replication_group_id"], tier["group_status"]) == (GROUP, "available")
    assert [(n["cluster_id"], n["role"], n["zone"]) for n in tier["nodes"]] == [
        (f"{GROUP}-001", "primary", "eu-west-1a"),
        (f"{GROUP}-002", "replica", "eu-west-1b"),
    ]
    assert tier["nodes"][1]["replication_lag_seconds"] == 0.2
    assert [q["class_name"] for q in tier["queues"]] == ["interactive", "default"]
    assert tier["queues"][1]["dead_letter_url"] == aws.tier.queues["default"]["dlq_url"]  # the runbook's look-up
    assert tier["queues"][1]["queue_url"] == aws.tier.queues["default"]["url"]
    assert {s["service_name"]: (s["running"], s["desired"]) for s in tier["services"]} == {
        "worker-interactive": (0, 0),
        "worker-default": (0, 0),
        "beat": (0, 0),
    }
    assert tier["alarms_in_alarm"] == [] and tier["unavailable"] == {}
    assert [check["passed"] for check in data["checks"]] == [True, True, True, True]


def put_keyspace(aws, database: int, keys: int, without_ttl: int, environment: str = ENV) -> None:
    """What Beat publishes each minute for one database (``broker_tier_celery.keyspace_metrics``)."""
    names = contract.REDIS_KEYSPACE_DIMENSIONS
    aws.clients["cloudwatch"].put_metric_data(
        Namespace=contract.REDIS_KEYSPACE_NAMESPACE,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": names[0], "Value": environment}, {"Name": names[1], "Value": str(database)}],
                "Value": value,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
            }
            for metric, value in (
                (contract.REDIS_KEYSPACE_KEYS, keys),
                (contract.REDIS_KEYSPACE_KEYS_WITHOUT_TTL, without_ttl),
            )
        ],
    )


def test_the_biggest_databases_and_their_share_of_keys_without_a_ttl_are_shown(aws, capsys, tmp_path):
    for database, keys, without_ttl in ((0, 350, 300), (1, 1, 1), (2, 520, 20), (5, 7, 0)):
        put_keyspace(aws, database, keys, without_ttl)
    put_keyspace(aws, 3, 99_999, 99_999, environment="other")  # another environment's tier: not shown
    code, out, report = status(aws, capsys, tmp_path)
    assert code == 0, out
    lines = out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("keyspace")))
    assert lines[at].split() == ["keyspace", "database", "keys", "no", "TTL"]
    assert [line.split() for line in lines[at + 1 : at + 4]] == [
        ["db2", "520", "3.8%"],
        ["db0", "350", "85.7%"],
        ["db5", "7", "0%"],
    ]  # the three biggest by keys; the results' few keys without TTL, the cache's many
    keyspace = report["measurements"]["keyspace"]
    assert [(row["database"], row["keys"], row["without_ttl"]) for row in keyspace] == [
        (2, 520, 20),
        (0, 350, 300),
        (5, 7, 0),
        (1, 1, 1),
    ]


def test_a_section_it_cannot_read_is_shown_as_unavailable_and_the_rest_still_is(aws, capsys, tmp_path):
    cloudwatch = boto3.client(
        "cloudwatch", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(cloudwatch) as stubber:
        for operation in ("get_metric_data", "describe_alarms", "list_metrics"):
            stubber.add_client_error(
                operation,
                service_error_code="AccessDenied",
                http_status_code=403,
                service_message=f"not authorized to perform: cloudwatch:{operation}",
            )
        code, out, report = status(aws, capsys, tmp_path, clients={**aws.clients, "cloudwatch": cloudwatch})
    assert code == 5 and report["failure"]["kind"] == "access-denied"
    assert "UNAVAILABLE metrics: access denied (AccessDenied; GetMetricData" in out
    assert "UNAVAILABLE alarms: access denied (AccessDenied; DescribeAlarms" in out
    assert "UNAVAILABLE keyspace: access denied (AccessDenied; ListMetrics" in out
    assert "alarms    in ALARM: unknown" in out
    assert "interactive" in out and "worker-default" in out and "primary" in out  # read all the same


def test_without_the_monitoring_stack_the_alarm_check_is_skipped(aws, capsys, tmp_path):
    aws.clients["cloudformation"].delete_stack(StackName=f"BrokerTier-{ENV}-Monitoring")
    code, out, report = status(aws, capsys, tmp_path)
    assert code == 0 and "alarms    in ALARM: unknown" in out
    assert "SKIP  no_alarm_in_alarm: alarms unknown" in out
