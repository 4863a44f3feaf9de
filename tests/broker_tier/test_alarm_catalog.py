"""The alarm catalog: which alarms each configuration yields."""

from __future__ import annotations

from tier_testing import tier_context

import broker_tier_contract as contract
from broker_tier.alarm_catalog import (
    BEAT_TICKS,
    GRAPHS,
    GRAPHS_BY_BROKER,
    OLDEST_MESSAGE,
    OVERDUE_MESSAGES,
    RUNNING_TASKS,
    WAITING_MESSAGES,
    MonitoredResources,
    dashboard_graphs,
    member_cluster_ids,
    tier_alarm_specs,
)
from broker_tier.config import deep_merge, load_environments


def resources(replicas: int, classes: list[str]) -> MonitoredResources:
    return MonitoredResources(
        cache_node_ids=member_cluster_ids("broker-tier-x", replicas),
        queue_names={c: f"q-{c}" for c in classes},
        dead_letter_queue_names={c: f"q-{c}-dlq" for c in classes},
        cluster_name="cluster",
        worker_service_names={c: f"svc-{c}" for c in classes},
        beat_service_name="beat",
    )


def config_with(override: dict):
    context = tier_context()
    context["environments"]["dev"] = deep_merge(context["environments"]["dev"], override)
    return load_environments(context)["dev"]


def test_member_cluster_ids_follow_elasticache_naming():
    assert member_cluster_ids("broker-tier-prod", 2) == (
        "broker-tier-prod-001",
        "broker-tier-prod-002",
        "broker-tier-prod-003",
    )


def test_one_alarm_per_signal_and_class_and_floor():
    config = config_with({"queues": {"batch": {"worker": {"min_tasks": 0}}}})
    names = [spec.name for spec in tier_alarm_specs(config, resources(1, list(config.queues)))]
    assert len(names) == len(set(names))
    assert names == [
        "redis-memory-warning",
        "redis-memory-critical",
        "redis-engine-cpu",
        "redis-replication-lag",
        "redis-connections",
        "redis-evictions",
        "queue-interactive-age",
        "dlq-interactive-messages",
        "queue-default-age",
        "dlq-default-messages",
        "queue-batch-age",
        "dlq-batch-messages",
        "worker-interactive-tasks",
        "worker-default-tasks",
        "beat-tasks",
        "beat-ticks-lost",
        "beat-ticks-fenced-off",
    ]


def test_a_new_class_gets_its_alarms_without_code():
    config = config_with(
        {
            "queues": {
                "reports": {
                    "task_time_limit_seconds": 30,
                    "visibility_timeout_seconds": 120,
                    "latency_objective_seconds": 600,
                    "worker": {"min_tasks": 2},
                }
            }
        }
    )
    specs = {spec.name: spec for spec in tier_alarm_specs(config, resources(1, list(config.queues)))}
    assert specs["queue-reports-age"].threshold == 600
    assert specs["queue-reports-age"].metrics[0].dimensions == {"QueueName": "q-reports"}
    assert specs["dlq-reports-messages"].metrics[0].dimensions == {"QueueName": "q-reports-dlq"}
    assert specs["worker-reports-tasks"].threshold == 2


def test_redis_expression_spans_every_node():
    config = config_with({})
    (memory, *_) = tier_alarm_specs(config, resources(4, list(config.queues)))
    assert memory.expression == "MAX([node1, node2, node3, node4, node5])"
    assert [m.dimensions["CacheClusterId"] for m in memory.metrics] == [f"broker-tier-x-{n:03d}" for n in range(1, 6)]


def test_every_alarm_is_drawn_on_the_dashboard_with_its_threshold():
    config = config_with({"queues": {"batch": {"worker": {"min_tasks": 0}}}})
    monitored = resources(2, list(config.queues))
    specs = tier_alarm_specs(config, monitored)
    graphs = {graph.title: graph for graph in dashboard_graphs(config, monitored, specs)}
    assert list(graphs) == list(GRAPHS)
    for spec in specs:
        graph = graphs[spec.graph]
        drawn = {(m.namespace, m.metric_name, tuple(m.dimensions.items())) for m in graph.metrics}
        assert {(m.namespace, m.metric_name, tuple(m.dimensions.items())) for m in spec.metrics} <= drawn, spec.name
        if spec.graph != RUNNING_TASKS or spec.expression is None:
            assert (spec.name, spec.threshold) in graph.thresholds
    # a class that scales to zero has no floor alarm, but its running tasks are still graphed
    assert "svc-batch" in {m.dimensions.get("ServiceName") for m in graphs[RUNNING_TASKS].metrics}
    # memory warning and critical share one set of node lines
    assert len(graphs["Redis memory (% of maxmemory)"].metrics) == 3


def test_each_class_on_spot_gets_a_warning_on_tasks_left_pending_and_on_demand_classes_none():
    config = config_with(
        {"queues": {"interactive": {"worker": {"capacity": {"spot_percent": 75, "on_demand_base": 2}}}}}
    )
    specs = {spec.name: spec for spec in tier_alarm_specs(config, resources(1, list(config.queues)))}
    assert [name for name in specs if name.endswith("-spot-capacity")] == ["worker-interactive-spot-capacity"]
    spec = specs["worker-interactive-spot-capacity"]
    assert (spec.severity, spec.runbook, spec.graph) == ("warning", "worker-spot-capacity.md", RUNNING_TASKS)
    assert spec.expression == "FILL(desired, 0) - FILL(running, 0)" and spec.threshold == 0
    assert [(m.id, m.metric_name, m.statistic) for m in spec.metrics] == [
        ("desired", "DesiredTaskCount", "Minimum"),
        ("running", "RunningTaskCount", "Maximum"),
    ]
    assert all(m.dimensions == {"ClusterName": "cluster", "ServiceName": "svc-interactive"} for m in spec.metrics)
    assert spec.window.evaluation_periods == 10 and "for 10 minutes" in spec.summary
    assert "The 2 on-demand task(s) of the floor carry the class" in spec.summary
    # a warning, not a page: the FIS experiments do not stop on it (the queue-age alarm pages if work suffers)
    from broker_tier.alarm_catalog import fault_injection_stop_specs

    assert spec not in fault_injection_stop_specs(list(specs.values()))


def test_the_spot_capacity_window_is_configurable():
    config = config_with(
        {
            "queues": {"interactive": {"worker": {"capacity": {"spot_percent": 50}}}},
            "monitoring": {"worker_spot_capacity": {"evaluation_periods": 20}},
        }
    )
    (spec,) = [s for s in tier_alarm_specs(config, resources(1, list(config.queues))) if s.name.endswith("capacity")]
    assert spec.window.evaluation_periods == 20 and "for 20 minutes" in spec.summary


def test_redis_mode_watches_the_redis_broker_per_class_and_no_queue_it_leaves_empty():
    """In redis mode no alarm watches an SQS queue (the mode leaves them empty): each class's oldest waiting message
    and its overdue messages in progress, as Beat publishes them, with the class's objective and time-out."""
    config = config_with(
        {"compute": {"broker": "redis"}, "queues": {"batch": {"latency_objective_seconds": 7200, "worker": {}}}}
    )
    specs = {spec.name: spec for spec in tier_alarm_specs(config, resources(1, list(config.queues)))}
    assert specs and [spec for spec in specs.values() if any(m.namespace == "AWS/SQS" for m in spec.metrics)] == []
    assert [name for name in specs if name.startswith(("queue-", "unacked-", "dlq-"))] == [
        f"{kind}-{name}-{what}" for name in config.queues for kind, what in (("queue", "age"), ("unacked", "overdue"))
    ]
    for name, class_config in config.queues.items():
        age, overdue = specs[f"queue-{name}-age"], specs[f"unacked-{name}-overdue"]
        dimensions = {"Environment": "dev", "QueueClass": name}
        assert [(m.namespace, m.metric_name, m.statistic, m.dimensions) for m in age.metrics] == [
            (contract.REDIS_BACKLOG_NAMESPACE, "OldestMessageAge", "Maximum", dimensions)
        ]
        assert age.threshold == class_config.latency_objective_seconds and age.comparison == "GreaterThanThreshold"
        # Beat publishes every minute, so no data means nobody measures: a stalled tier must not look healthy
        assert (age.treat_missing_data, age.window, age.runbook) == (
            "breaching",
            config.monitoring.queue_age,
            "worker-backlog.md",
        )
        assert [(m.metric_name, m.dimensions) for m in overdue.metrics] == [("MessagesOverdue", dimensions)]
        assert (overdue.threshold, overdue.window, overdue.severity) == (0, config.monitoring.unacked_overdue, "page")
        assert str(class_config.visibility_timeout_seconds) in overdue.summary
    assert specs["queue-batch-age"].threshold == 7200


def test_sqs_mode_watches_no_redis_broker_metric():
    config = config_with({})
    specs = tier_alarm_specs(config, resources(1, list(config.queues)))
    assert config.compute.broker == "sqs" and specs
    assert [s.name for s in specs if any(m.namespace == contract.REDIS_BACKLOG_NAMESPACE for m in s.metrics)] == []


def test_beat_tick_alarms_in_either_mode_warn_on_lost_ticks_and_on_a_second_beat():
    for broker in ("sqs", "redis"):
        config = config_with({"compute": {"broker": broker}})
        specs = {spec.name: spec for spec in tier_alarm_specs(config, resources(1, list(config.queues)))}
        lost, fenced_off = specs["beat-ticks-lost"], specs["beat-ticks-fenced-off"]
        assert [(m.id, m.namespace, m.metric_name, m.statistic, m.dimensions) for m in lost.metrics] == [
            ("skipped", "BrokerTier/Beat", "TicksSkipped", "Sum", {"Environment": "dev"}),
            ("missed", "BrokerTier/Beat", "TicksMissed", "Sum", {"Environment": "dev"}),
        ]
        assert lost.expression == "FILL(skipped, 0) + FILL(missed, 0)" and lost.threshold == 0
        assert [m.metric_name for m in fenced_off.metrics] == ["TicksFencedOff"] and fenced_off.threshold == 0
        assert {s.severity for s in (lost, fenced_off)} == {"warning"}
        assert {s.runbook for s in (lost, fenced_off)} == {"celery-beat.md"}
        assert {s.window for s in (lost, fenced_off)} == {config.monitoring.beat_ticks}


def test_redis_mode_dashboard_graphs_the_redis_broker_and_every_alarm():
    config = config_with({"compute": {"broker": "redis"}})
    monitored = resources(1, list(config.queues))
    specs = tier_alarm_specs(config, monitored)
    graphs = {graph.title: graph for graph in dashboard_graphs(config, monitored, specs)}
    assert list(graphs) == list(GRAPHS_BY_BROKER["redis"])
    assert [(m.metric_name, m.dimensions["QueueClass"]) for m in graphs[WAITING_MESSAGES].metrics] == [
        (metric, name) for name in config.queues for metric in ("MessagesWaiting", "MessagesInProgress")
    ]
    assert {m.metric_name for m in graphs[OLDEST_MESSAGE].metrics} == {"OldestMessageAge"}
    assert {m.metric_name for m in graphs[OVERDUE_MESSAGES].metrics} == {"MessagesOverdue"}
    assert {m.metric_name for m in graphs[BEAT_TICKS].metrics} == set(contract.BEAT_TICK_METRICS)
    assert all(m.namespace != "AWS/SQS" for graph in graphs.values() for m in graph.metrics)
    for spec in specs:
        drawn = [(m.metric_name, m.dimensions) for m in graphs[spec.graph].metrics]
        assert all((m.metric_name, m.dimensions) in drawn for m in spec.metrics), spec.name
