"""BrokerMonitoringStack: every alarm the tier promises, per environment, with its metric,
dimensions, threshold, comparison and topic; the dashboard; runbooks that exist."""

from __future__ import annotations

import json
import re

import pytest
from tier_testing import ENVIRONMENTS, REDIS_MODE_CHANGES, ROOT, tier_context, variant_context

import broker_tier_contract as contract
from broker_tier.alarm_catalog import GRAPHS, GRAPHS_BY_BROKER
from broker_tier.config import load_environments
from broker_tier.config.monitoring import DEFAULT_RUNBOOK_BASE_URL

CONFIGS = load_environments(tier_context())


def alarms_of(synthesized, env: str) -> dict[str, dict]:
    """Alarm properties by alarm name."""
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in synthesized.resources(env, "Monitoring", "AWS::CloudWatch::Alarm").values()
    }


def topic_logical_id(synthesized, env: str) -> str:
    (logical_id,) = synthesized.resources(env, "Monitoring", "AWS::SNS::Topic")
    return logical_id


def metric_stats(alarm: dict) -> list[dict]:
    return [query["MetricStat"] for query in alarm["Metrics"] if "MetricStat" in query]


def returned(alarm: dict) -> dict:
    (query,) = [q for q in alarm["Metrics"] if q["ReturnData"]]
    return query


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_alarm_notifies_the_topic_on_alarm_and_ok_and_names_an_existing_runbook(synthesized, env):
    topic = {"Ref": topic_logical_id(synthesized, env)}
    alarms = alarms_of(synthesized, env)
    assert alarms
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic], name
        runbook = re.search(r"Runbook: (https://\S+/)(\S+\.md)$", alarm["AlarmDescription"])
        assert runbook, f"{name}: no absolute runbook URL in {alarm['AlarmDescription']!r}"
        assert runbook[1] == CONFIGS[env].monitoring.runbook_base_url == DEFAULT_RUNBOOK_BASE_URL
        assert (ROOT / "runbooks" / runbook[2]).is_file(), f"{name}: runbooks/{runbook[2]} does not exist"
        assert len(alarm["AlarmDescription"]) <= 1024  # CloudWatch's limit
        assert name.startswith(f"broker-tier-{env}-")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_redis_alarms_take_the_worst_node_of_the_replication_group(synthesized, env):
    config = CONFIGS[env]
    alarms = alarms_of(synthesized, env)
    nodes = [f"broker-tier-{env}-{n:03d}" for n in range(1, config.cache.replicas + 2)]
    monitoring = config.monitoring
    expected = {  # name: (metric, statistic, threshold)
        "redis-memory-warning": ("DatabaseMemoryUsagePercentage", "Maximum", monitoring.redis_memory.warning_percent),
        "redis-memory-critical": ("DatabaseMemoryUsagePercentage", "Maximum", monitoring.redis_memory.critical_percent),
        "redis-engine-cpu": ("EngineCPUUtilization", "Average", monitoring.redis_engine_cpu.threshold_percent),
        "redis-replication-lag": ("ReplicationLag", "Maximum", monitoring.redis_replication_lag.threshold_seconds),
        "redis-connections": ("CurrConnections", "Maximum", monitoring.redis_connections.threshold),
        "redis-evictions": ("Evictions", "Sum", 0),
    }
    for name, (metric, statistic, threshold) in expected.items():
        alarm = alarms[f"broker-tier-{env}-{name}"]
        stats = metric_stats(alarm)
        assert [s["Metric"]["Dimensions"] for s in stats] == [[{"Name": "CacheClusterId", "Value": n}] for n in nodes]
        assert {(s["Metric"]["Namespace"], s["Metric"]["MetricName"], s["Stat"]) for s in stats} == {
            ("AWS/ElastiCache", metric, statistic)
        }
        assert returned(alarm)["Expression"] == f"MAX([{', '.join(f'node{i}' for i in range(1, len(nodes) + 1))}])"
        assert alarm["Threshold"] == threshold and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_prod_thresholds_and_windows_come_from_its_configuration(synthesized):
    alarms = alarms_of(synthesized, "prod")
    assert alarms["broker-tier-prod-redis-memory-critical"]["Threshold"] == 80  # prod overrides 85
    assert alarms["broker-tier-prod-redis-replication-lag"]["Threshold"] == 2
    memory = alarms["broker-tier-prod-redis-memory-warning"]
    assert (memory["EvaluationPeriods"], memory["DatapointsToAlarm"]) == (3, 3)
    periods = [s["Period"] for s in metric_stats(memory)]
    assert periods and set(periods) == {60}
    assert "[warning]" in memory["AlarmDescription"]
    assert "[page]" in alarms["broker-tier-prod-redis-memory-critical"]["AlarmDescription"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_queue_age_and_dead_letter_alarms_per_class(synthesized, env):
    config = CONFIGS[env]
    alarms = alarms_of(synthesized, env)
    assert config.queues
    for name, class_config in config.queues.items():
        age = alarms[f"broker-tier-{env}-queue-{name}-age"]
        (stat,) = metric_stats(age)
        assert stat["Metric"] == {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": [{"Name": "QueueName", "Value": f"broker-tier-{env}-{name}"}],
        }
        assert age["Threshold"] == class_config.latency_objective_seconds
        assert age["ComparisonOperator"] == "GreaterThanThreshold" and age["TreatMissingData"] == "notBreaching"

        dead = alarms[f"broker-tier-{env}-dlq-{name}-messages"]
        (stat,) = metric_stats(dead)
        # Visible messages, not NumberOfMessagesSent: SQS's own moves to the DLQ are not "sent".
        assert stat["Metric"] == {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": f"broker-tier-{env}-{name}-dlq"}],
        }
        assert stat["Stat"] == "Maximum" and dead["Threshold"] == 0
        assert dead["ComparisonOperator"] == "GreaterThanThreshold" and dead["EvaluationPeriods"] == 1


def _service_dimensions(stat: dict) -> dict[str, str]:
    return {d["Name"]: d["Value"]["Fn::GetStackOutput"]["OutputName"] for d in stat["Metric"]["Dimensions"]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_worker_floor_alarms_only_for_classes_with_a_minimum(synthesized, env):
    config = CONFIGS[env]
    alarms = alarms_of(synthesized, env)
    assert any(class_config.worker.min_tasks for class_config in config.queues.values())  # a floor to check
    for name, class_config in config.queues.items():
        alarm = alarms.get(f"broker-tier-{env}-worker-{name}-tasks")
        if class_config.worker.min_tasks == 0:
            assert alarm is None, "a class that scales to zero has no floor"
            continue
        (stat,) = metric_stats(alarm)
        assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"], stat["Stat"]) == (
            "ECS/ContainerInsights",
            "RunningTaskCount",
            "Minimum",
        )
        dimensions = _service_dimensions(stat)
        assert "RefCluster" in dimensions["ClusterName"] and f"Worker{name}" in dimensions["ServiceName"]
        assert alarm["Threshold"] == class_config.worker.min_tasks
        assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["TreatMissingData"] == "breaching"


def test_dev_batch_scales_to_zero_so_has_no_floor_alarm(synthesized):
    assert CONFIGS["dev"].queues["batch"].worker.min_tasks == 0
    assert "broker-tier-dev-worker-batch-tasks" not in alarms_of(synthesized, "dev")
    assert "broker-tier-staging-worker-batch-tasks" in alarms_of(synthesized, "staging")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_beat_alarm_fires_on_any_count_but_one(synthesized, env):
    alarm = alarms_of(synthesized, env)[f"broker-tier-{env}-beat-tasks"]
    stats = metric_stats(alarm)
    assert [s["Stat"] for s in stats] == ["Maximum", "Minimum"]
    assert all("BeatCeleryService" in _service_dimensions(s)["ServiceName"] for s in stats)
    assert returned(alarm)["Expression"] == "IF(FILL(most, 0) > 1 OR FILL(fewest, 0) < 1, 1, 0)"
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "breaching"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alarm_topic_is_encrypted_with_the_tier_key_and_tls_only(synthesized, env):
    topic = synthesized.only(env, "Monitoring", "AWS::SNS::Topic")["Properties"]
    assert topic["TopicName"] == f"broker-tier-{env}-alarms"
    source = topic["KmsMasterKeyId"]["Fn::GetStackOutput"]
    assert source["StackName"] == f"BrokerTier-{env}-State" and source["OutputName"].startswith(
        "PublishOutputFnGetAttKey"
    )
    policy = json.dumps(synthesized.only(env, "Monitoring", "AWS::SNS::TopicPolicy"))
    assert '"aws:SecureTransport": "false"' in policy


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_state_key_lets_cloudwatch_publish_to_the_encrypted_topic(synthesized, env):
    (key,) = [
        key["Properties"]["KeyPolicy"]["Statement"]  # the data key, not the logs key
        for logical_id, key in synthesized.resources(env, "State", "AWS::KMS::Key").items()
        if logical_id.startswith("Key")
    ]
    (statement,) = [s for s in key if s.get("Sid") == "CloudWatchAlarmsToEncryptedTopic"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dashboard_shows_queues_dead_letters_redis_and_services(synthesized, env):
    dashboard = synthesized.only(env, "Monitoring", "AWS::CloudWatch::Dashboard")["Properties"]
    assert dashboard["DashboardName"] == f"broker-tier-{env}"
    body = json.dumps(dashboard["DashboardBody"])
    for title in (*GRAPHS, "Alarms"):
        assert title in body, title
    for name in CONFIGS[env].queues:
        assert f"broker-tier-{env}-{name}-dlq" in body
    # The status widget lists every alarm by ARN (a GetAtt per alarm, nothing else uses GetAtt).
    assert body.count("Fn::GetAtt") == len(alarms_of(synthesized, env))


def test_outputs_for_the_ops_tool(synthesized):
    outputs = synthesized.json("prod", "Monitoring")["Outputs"]
    assert outputs["AlarmNamePrefix"]["Value"] == "broker-tier-prod-"
    assert outputs["DashboardName"]["Value"] == "broker-tier-prod"
    assert "AlarmTopicArn" in outputs


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_sqs_mode_alarms_watch_no_redis_broker_metric_and_beats_fence_in_every_environment(synthesized, env):
    assert CONFIGS[env].compute.broker == "sqs"
    alarms = alarms_of(synthesized, env)
    assert alarms and contract.REDIS_BACKLOG_NAMESPACE not in json.dumps(list(alarms.values()))
    lost, fenced_off = alarms[f"broker-tier-{env}-beat-ticks-lost"], alarms[f"broker-tier-{env}-beat-ticks-fenced-off"]
    assert [(s["Metric"]["Namespace"], s["Metric"]["MetricName"], s["Stat"]) for s in metric_stats(lost)] == [
        (contract.BEAT_NAMESPACE, contract.BEAT_TICKS_SKIPPED, "Sum"),
        (contract.BEAT_NAMESPACE, contract.BEAT_TICKS_MISSED, "Sum"),
    ]
    assert returned(lost)["Expression"] == "FILL(skipped, 0) + FILL(missed, 0)"
    assert [s["Metric"]["MetricName"] for s in metric_stats(fenced_off)] == [contract.BEAT_TICKS_FENCED_OFF]
    for alarm in (lost, fenced_off):
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmDescription"].startswith("[warning]") and alarm["AlarmDescription"].endswith(
            "celery-beat.md"
        )
        assert all(s["Metric"]["Dimensions"] == [{"Name": "Environment", "Value": env}] for s in metric_stats(alarm))


def test_redis_mode_alarms_watch_the_redis_broker_and_no_sqs_queue(redis_mode_dev):
    config = load_environments(variant_context("dev", REDIS_MODE_CHANGES)["broker-tier"])["dev"]
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in redis_mode_dev["Monitoring"]["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert alarms and "AWS/SQS" not in json.dumps(list(alarms.values()))  # the queues this mode leaves empty
    assert config.queues
    for name, class_config in config.queues.items():
        dimensions = [{"Name": "Environment", "Value": "dev"}, {"Name": "QueueClass", "Value": name}]
        age, overdue = alarms[f"broker-tier-dev-queue-{name}-age"], alarms[f"broker-tier-dev-unacked-{name}-overdue"]
        assert metric_stats(age) == [
            {
                "Metric": {
                    "Namespace": contract.REDIS_BACKLOG_NAMESPACE,
                    "MetricName": contract.REDIS_OLDEST_MESSAGE_AGE,
                    "Dimensions": dimensions,
                },
                "Period": 60,
                "Stat": "Maximum",
            }
        ]
        assert age["Threshold"] == class_config.latency_objective_seconds
        assert (age["TreatMissingData"], age["EvaluationPeriods"]) == (
            "breaching",
            config.monitoring.queue_age.evaluation_periods,
        )
        (stat,) = metric_stats(overdue)
        assert (stat["Metric"]["MetricName"], stat["Metric"]["Dimensions"]) == (
            contract.REDIS_MESSAGES_OVERDUE,
            dimensions,
        )
        assert (
            overdue["Threshold"] == 0
            and overdue["EvaluationPeriods"] == config.monitoring.unacked_overdue.evaluation_periods
        )
        for alarm in (age, overdue):
            assert alarm["AlarmDescription"].startswith("[page]") and alarm["AlarmDescription"].endswith(
                "worker-backlog.md"
            )
        assert f"broker-tier-dev-dlq-{name}-messages" not in alarms
    assert "broker-tier-dev-beat-ticks-lost" in alarms
    (dashboard,) = [
        r for r in redis_mode_dev["Monitoring"]["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert all(title in body for title in GRAPHS_BY_BROKER["redis"]) and "AWS/SQS" not in body
