"""``status`` against moto (stacks, queues, ECS, CloudWatch) and the model-validated ElastiCache fake."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
from botocore.stub import Stubber
from fake_aws import ENV, GROUP, REGION, create_stack_with_outputs

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
    put_beat_ticks(aws, contract.BEAT_TICKS_PUBLISHED, 4, 3)


def put_beat_ticks(aws, metric: str, *counts: float, minutes_ago: int = 1) -> None:
    """Beat's count of ``metric``, one datapoint a minute, the newest ``minutes_ago``."""
    for offset, count in enumerate(counts):
        put_metric(
            aws, contract.BEAT_NAMESPACE, metric, (contract.BEAT_DIMENSIONS[0], ENV), count, minutes_ago + offset
        )


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
    assert lines[-2] == "beat      ticks in the last 15 min: TicksPublished 7"
    assert lines[-1] == "alarms    in ALARM: none"
    assert len(lines) <= 24, "one screen"
    assert {c["name"]: c["passed"] for c in report["steady_state"]} == {
        "replication_group_available": True,
        "services_at_desired_count": True,
        "dead_letter_queues_empty": True,
        "no_alarm_in_alarm": True,
        "beat_ticks_none_lost": True,
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
    assert tier["beat_ticks"] == {contract.BEAT_TICKS_PUBLISHED: 7}
    assert [check["passed"] for check in data["checks"]] == [True, True, True, True, True]


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
        for operation in ("get_metric_data", "get_metric_data", "describe_alarms", "list_metrics"):
            stubber.add_client_error(
                operation,
                service_error_code="AccessDenied",
                http_status_code=403,
                service_message=f"not authorized to perform: cloudwatch:{operation}",
            )
        code, out, report = status(aws, capsys, tmp_path, clients={**aws.clients, "cloudwatch": cloudwatch})
    assert code == 5 and report["failure"]["kind"] == "access-denied"
    assert "UNAVAILABLE metrics: access denied (AccessDenied; GetMetricData" in out
    assert "UNAVAILABLE beat ticks: access denied (AccessDenied; GetMetricData" in out
    assert "UNAVAILABLE alarms: access denied (AccessDenied; DescribeAlarms" in out
    assert "SKIP  beat_ticks_none_lost: not read" in out
    assert "UNAVAILABLE keyspace: access denied (AccessDenied; ListMetrics" in out
    assert "alarms    in ALARM: unknown" in out
    assert "interactive" in out and "worker-default" in out and "primary" in out  # read all the same


def test_ticks_a_beat_skipped_or_missed_in_the_window_fail_the_beat_check(aws, capsys, tmp_path):
    put_beat_ticks(aws, contract.BEAT_TICKS_PUBLISHED, 1, 1, 1)
    put_beat_ticks(aws, contract.BEAT_TICKS_FENCED_OFF, 1)  # the other Beat's: refused by the fence, not lost
    put_beat_ticks(aws, contract.BEAT_TICKS_SKIPPED, 1, 1)
    put_beat_ticks(aws, contract.BEAT_TICKS_MISSED, 1, minutes_ago=4)
    put_beat_ticks(aws, contract.BEAT_TICKS_SKIPPED, 5, minutes_ago=40)  # before the window: not counted
    code, out, report = status(aws, capsys, tmp_path)
    assert code == 1 and report["error"] == "the tier is not healthy: beat_ticks_none_lost"
    assert (
        "beat      ticks in the last 15 min: TicksPublished 3, TicksFencedOff 1, TicksSkipped 2, TicksMissed 1" in out
    )
    assert (
        "FAIL  beat_ticks_none_lost: last 15 min: TicksPublished 3, TicksFencedOff 1, TicksSkipped 2, TicksMissed 1"
        " (Beat's log names each lost tick: runbooks/celery-beat.md)" in out
    )


def test_a_beat_that_published_no_tick_counts_leaves_the_beat_check_unknown(aws, capsys, tmp_path):
    code, out, _ = status(aws, capsys, tmp_path)
    assert code == 0 and "SKIP  beat_ticks_none_lost: Beat published no tick counts in the last 15 min" in out


def test_without_the_monitoring_stack_the_alarm_check_is_skipped(aws, capsys, tmp_path):
    aws.clients["cloudformation"].delete_stack(StackName=f"BrokerTier-{ENV}-Monitoring")
    code, out, report = status(aws, capsys, tmp_path)
    assert code == 0 and "alarms    in ALARM: unknown" in out
    assert "SKIP  no_alarm_in_alarm: alarms unknown" in out


def in_redis_broker_mode(aws) -> None:
    """The Compute stack says the workers consume the Redis broker."""
    cloudformation, stack = aws.clients["cloudformation"], contract.stack_name(ENV, contract.COMPUTE)
    cloudformation.delete_stack(StackName=stack)
    create_stack_with_outputs(
        cloudformation, stack, {**aws.tier.compute_outputs, contract.ComputeOutputs.BROKER: "redis"}
    )


def put_redis_broker(aws, class_name: str, **values: float) -> None:
    metrics = {
        "waiting": contract.REDIS_BACKLOG_WAITING,
        "in_progress": contract.REDIS_BACKLOG_IN_PROGRESS,
        "oldest": contract.REDIS_OLDEST_MESSAGE_AGE,
        "overdue": contract.REDIS_MESSAGES_OVERDUE,
    }
    aws.clients["cloudwatch"].put_metric_data(
        Namespace=contract.REDIS_BACKLOG_NAMESPACE,
        MetricData=[
            {
                "MetricName": metrics[name],
                "Dimensions": [{"Name": "Environment", "Value": ENV}, {"Name": "QueueClass", "Value": class_name}],
                "Value": value,
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
            }
            for name, value in values.items()
        ],
    )


def test_redis_broker_mode_shows_the_redis_broker_of_each_class_and_reads_no_sqs_queue(aws, capsys, tmp_path):
    in_redis_broker_mode(aws)
    busy_tier(aws)  # messages in the SQS queue of default: the mode leaves it alone, and so does status
    put_redis_broker(aws, "interactive", waiting=0, in_progress=0, oldest=0, overdue=0)
    put_redis_broker(aws, "default", waiting=12, in_progress=4, oldest=1250, overdue=2)
    aws.api.calls.clear()
    code, out, report = status(aws, capsys, tmp_path)
    lines = out.splitlines()
    assert "queues    " not in out  # no SQS table
    header = lines.index(next(line for line in lines if line.startswith("redis     class")))
    assert lines[header].split() == ["redis", "class", "waiting", "in", "progress", "oldest", "overdue"]
    assert lines[header + 1].split() == ["interactive", "0", "0", "0", "s", "0"]
    assert lines[header + 2].split() == ["default", "12", "4", "1250", "s", "2"]
    assert code == 1 and "FAIL  redis_broker_nothing_overdue: interactive: 0, default: 2" in out
    assert "SKIP  dead_letter_queues_empty: not in use in redis broker mode" in out
    assert aws.api.calls and [op for service, op, _ in aws.api.calls if service == "sqs"] == []
    assert report["measurements"]["redis_broker"][1] == {
        "class_name": "default",
        "waiting": 12,
        "in_progress": 4,
        "oldest_age_seconds": 1250,
        "overdue": 2,
    }


def test_redis_broker_mode_without_beats_metrics_shows_them_unknown(aws, capsys, tmp_path):
    in_redis_broker_mode(aws)
    code, out, _ = status(aws, capsys, tmp_path)
    assert ["default", "-", "-", "-", "-"] in [line.split() for line in out.splitlines()]
    assert "SKIP  redis_broker_nothing_overdue: unknown (Beat published no MessagesOverdue in the window)" in out
    assert code == 0
