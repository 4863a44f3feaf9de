"""The configuration model: the project's cdk.json is valid, and every guard fires with a clear message."""

from __future__ import annotations

import pytest

from broker_tier.config import ConfigError, EnvironmentConfig, deep_merge, load_environments, select_environments
from tier_testing import tier_context


def load_with(env: str, override: dict) -> dict:
    context = tier_context()
    context["environments"][env] = deep_merge(context["environments"][env], override)
    return load_environments(context)


def test_project_configuration_declares_dev_staging_prod():
    environments = load_environments(tier_context())
    assert {"dev", "staging", "prod"} <= set(environments)
    prod = environments["prod"]
    assert prod.production and prod.network.max_azs == 3 and prod.cache.deletion_policy == "snapshot"
    assert list(prod.queues) == ["interactive", "default", "batch"]


def test_defaults_are_merged_under_each_environment():
    environments = load_environments(tier_context())
    assert environments["dev"].queues["batch"].max_receive_count == 3  # from "defaults"
    assert environments["dev"].cache.deletion_policy == "delete"  # the environment's own value


# (environment, override, substrings the message must contain: environment, key, value, what is allowed)
INVALID = {
    "t-class node": ("dev", {"cache": {"node_type": "cache.t3.medium"}},
                     ["'dev'", "cache.node_type", "'cache.t3.medium'", "m- or r-class", "Multi-AZ"]),
    "small m node": ("dev", {"cache": {"node_type": "cache.m1.small"}}, ["cache.node_type", "m- or r-class"]),
    "data tiering node": ("prod", {"cache": {"node_type": "cache.r6gd.xlarge"}}, ["cache.node_type", "data-tiering"]),
    "default port": ("staging", {"cache": {"port": 6379}}, ["'staging'", "cache.port", "6379", "AEC5"]),
    "unknown engine": ("dev", {"cache": {"engine": "memcached"}}, ["cache.engine", "'memcached'", "redis", "valkey"]),
    "version of other engine": ("dev", {"cache": {"engine": "valkey", "engine_version": "7.1"}},
                                ["cache.engine_version", "'7.1'", "'7.2'", "'8.0'", "valkey"]),
    "family mismatch": ("prod", {"cache": {"engine": "valkey", "engine_version": "8.0",
                                           "parameter_group_family": "redis7"}},
                        ["'prod'", "cache.parameter_group_family", "'redis7'", "'valkey8'"]),
    "eviction policy": ("dev", {"cache": {"parameters": {"maxmemory-policy": "allkeys-lru"}}},
                        ["cache.parameters.maxmemory-policy", "'allkeys-lru'", "noeviction"]),
    "aof": ("dev", {"cache": {"parameters": {"appendonly": "yes"}}}, ["cache.parameters.appendonly", "Multi-AZ"]),
    "no replica": ("dev", {"cache": {"replicas": 0}}, ["cache.replicas", "0", "greater than or equal to 1"]),
    "overlapping windows": ("dev", {"cache": {"snapshot_window": "05:00-06:00",
                                              "maintenance_window": "sun:05:30-sun:06:30"}},
                            ["cache.maintenance_window", "does not overlap", "05:00-06:00"]),
    "short snapshot window": ("dev", {"cache": {"snapshot_window": "03:00-03:30"}},
                              ["cache.snapshot_window", "at least 60 minutes"]),
    "bad window format": ("dev", {"cache": {"maintenance_window": "sunday 05:00"}}, ["cache.maintenance_window"]),
    "bad log retention": ("dev", {"cache": {"log_retention_days": 45}}, ["cache.log_retention_days", "45", "30, 60"]),
    "shared database": ("dev", {"cache": {"databases": {"broker": 0}}},
                        ["cache.databases.broker", "0", "not already used by 'cache'"]),
    "bad replication group id": ("dev", {"cache": {"replication_group_id": "Broker_Tier"}},
                                 ["cache.replication_group_id", "'Broker_Tier'"]),
    "unknown cache key": ("dev", {"cache": {"nodetype": "cache.m7g.large"}},
                          ["unknown key 'cache.nodetype'", "node_type"]),
    "unknown top-level key": ("staging", {"regoin": "eu-west-1"}, ["unknown key 'regoin'", "region"]),
    "unknown queue key": ("dev", {"queues": {"batch": {"visibility": 10}}},
                          ["unknown key 'queues.batch.visibility'", "visibility_timeout_seconds"]),
    "visibility below time limit": ("dev", {"queues": {"batch": {"visibility_timeout_seconds": 3600}}},
                                    ["queues.batch.visibility_timeout_seconds", "3600", "3660", "again"]),
    "visibility below eta": ("dev", {"queues": {"default": {"max_eta_seconds": 7200}}},
                             ["queues.default.visibility_timeout_seconds", "4200", "7560", "ETA"]),
    "eta beyond sqs ceiling": ("dev", {"queues": {"default": {"max_eta_seconds": 43200,
                                                              "visibility_timeout_seconds": 43200}}},
                               ["queues.default.visibility_timeout_seconds", "43200"]),
    "short dead-letter retention": ("dev", {"queues": {"batch": {"dead_letter_retention_seconds": 86400}}},
                                    ["queues.batch.dead_letter_retention_seconds", "86400", "345600",
                                     "original enqueue time"]),
    "bad class name": ("dev", {"queues": {"Batch-1": {}}}, ["queues.Batch-1", "lowercase"]),
    "nat beyond azs": ("dev", {"network": {"nat_gateways": 3}}, ["network.nat_gateways", "3", "max_azs (2)"]),
    "one az": ("dev", {"network": {"max_azs": 1}}, ["network.max_azs", "1"]),
    "vpc lookup without env": ("dev", {"network": {"vpc_id": "vpc-0123456789abcdef0"}},
                               ["network.vpc_id", "account and region"]),
    "production destroys": ("prod", {"removal_policy": "destroy"}, ["'prod'", "removal_policy", "'retain'"]),
    "production deletes cache": ("prod", {"cache": {"deletion_policy": "delete"}},
                                 ["cache.deletion_policy", "'snapshot'"]),
    "bad account": ("prod", {"account": "12345"}, ["account", "'12345'"]),
    "second beat": ("prod", {"compute": {"beat": {"desired_count": 2}}},
                    ["compute.beat.desired_count", "2", "only 1", "exactly one Celery Beat"]),
    "overlapping beat deploy": ("dev", {"compute": {"beat": {"maximum_percent": 200}}},
                                ["compute.beat.maximum_percent", "200", "only 100"]),
    "beat min healthy": ("dev", {"compute": {"beat": {"minimum_healthy_percent": 50}}},
                         ["compute.beat.minimum_healthy_percent", "only 0"]),
    "beat autoscaling key": ("dev", {"compute": {"beat": {"max_tasks": 3}}}, ["unknown key 'compute.beat.max_tasks'"]),
    "fargate memory": ("dev", {"queues": {"batch": {"worker": {"cpu": 1024, "memory_mib": 1024}}}},
                       ["queues.batch.worker.memory_mib", "1024", "2048 to 8192 MiB"]),
    "fargate cpu": ("dev", {"queues": {"batch": {"worker": {"cpu": 300}}}}, ["queues.batch.worker.cpu", "300"]),
    "max below min": ("dev", {"queues": {"default": {"worker": {"min_tasks": 3, "max_tasks": 2}}}},
                      ["queues.default.worker.max_tasks", "at least min_tasks (3)"]),
    "stop timeout above fargate": ("dev", {"compute": {"stop_timeout_seconds": 300}},
                                   ["compute.stop_timeout_seconds", "300", "less than or equal to 120"]),
    "unknown broker": ("dev", {"compute": {"broker": "rabbitmq"}}, ["compute.broker", "'sqs'", "'redis'"]),
    "image with tag and digest": ("dev", {"compute": {"image": {"repository_name": "team/app", "tag": "v1",
                                                                 "digest": "sha256:" + "a" * 64}}},
                                  ["compute.image.tag", "exactly one of 'tag' or 'digest'"]),
    "latency objective below held time": ("dev", {"queues": {"interactive": {"latency_objective_seconds": 100}}},
                                          ["queues.interactive.latency_objective_seconds", "100", "= 120",
                                           "healthy work"]),
    "latency objective beyond retention": ("dev", {"queues": {"batch": {"latency_objective_seconds": 400000}}},
                                           ["queues.batch.latency_objective_seconds", "400000",
                                            "less than retention_seconds (345600)"]),
    "memory warning above critical": ("prod", {"monitoring": {"redis_memory": {"warning_percent": 90}}},
                                      ["'prod'", "monitoring.redis_memory.warning_percent", "90",
                                       "less than critical_percent (80"]),
    "memory percent of 100": ("dev", {"monitoring": {"redis_memory": {"critical_percent": 100}}},
                              ["monitoring.redis_memory.critical_percent", "100", "less than 100"]),
    "sub-minute period": ("dev", {"monitoring": {"queue_age": {"period_seconds": 30}}},
                          ["monitoring.queue_age.period_seconds", "30", "multiple of 60"]),
    "window over a day": ("dev", {"monitoring": {"dead_letter": {"period_seconds": 3600, "evaluation_periods": 25}}},
                          ["monitoring.dead_letter.evaluation_periods", "25", "90000 s > 86400 s"]),
    "datapoints beyond periods": ("dev", {"monitoring": {"beat_tasks": {"evaluation_periods": 3,
                                                                        "datapoints_to_alarm": 4}}},
                                  ["monitoring.beat_tasks.datapoints_to_alarm", "4", "at most evaluation_periods (3)"]),
    "connections beyond maxclients": ("dev", {"monitoring": {"redis_connections": {"threshold": 70000}}},
                                      ["monitoring.redis_connections.threshold", "70000", "65000"]),
    "negative lag": ("dev", {"monitoring": {"redis_replication_lag": {"threshold_seconds": 0}}},
                     ["monitoring.redis_replication_lag.threshold_seconds", "greater than 0"]),
    "eviction threshold": ("dev", {"monitoring": {"redis_evictions": {"threshold": 5}}},
                           ["unknown key 'monitoring.redis_evictions.threshold'", "period_seconds"]),
    "bad email": ("staging", {"monitoring": {"subscriptions": [{"protocol": "email", "endpoint": "oncall"}]}},
                  ["monitoring.subscriptions.0.endpoint", "'oncall'", "an e-mail address"]),
    "plain http webhook": ("dev", {"monitoring": {"subscriptions": [{"protocol": "https",
                                                                      "endpoint": "http://pager.example"}]}},
                           ["monitoring.subscriptions.0.endpoint", "https:// URL"]),
    "unknown protocol": ("dev", {"monitoring": {"subscriptions": [{"protocol": "lambda", "endpoint": "x"}]}},
                         ["monitoring.subscriptions.0.protocol", "'email'", "'https'", "'sms'"]),
    "runbook url": ("dev", {"monitoring": {"runbook_base_url": "http://wiki/runbooks"}},
                    ["monitoring.runbook_base_url", "http://wiki/runbooks"]),
    "az power beyond fis limit": ("dev", {"fault_injection": {"az_power": {"duration_minutes": 721}}},
                                  ["fault_injection.az_power.duration_minutes", "721", "less than or equal to 720"]),
    "az power zero minutes": ("dev", {"fault_injection": {"az_power": {"duration_minutes": 0}}},
                              ["fault_injection.az_power.duration_minutes", "0", "greater than or equal to 1"]),
    "az power unknown key": ("prod", {"fault_injection": {"az_power": {"zone": "eu-west-1a"}}},
                             ["unknown key 'fault_injection.az_power.zone'", "duration_minutes, enabled"]),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    with pytest.raises(ConfigError) as raised:
        load_with(env, override)
    message = str(raised.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_az_power_experiments_are_on_in_dev_only_and_off_by_default():
    environments = load_environments(tier_context())
    assert {name: env.fault_injection.az_power.enabled for name, env in environments.items()} == \
        {"dev": True, "staging": False, "prod": False}
    assert environments["dev"].fault_injection.az_power.duration_minutes == 5
    assert EnvironmentConfig(name="bare").fault_injection.az_power.enabled is False


def test_every_problem_of_every_environment_is_reported_at_once():
    context = tier_context()
    context["environments"]["dev"]["cache"]["port"] = 6379
    context["environments"]["prod"]["network"]["max_azs"] = 4
    with pytest.raises(ConfigError) as raised:
        load_environments(context)
    assert "environment 'dev': cache.port" in str(raised.value)
    assert "environment 'prod': network.max_azs" in str(raised.value)


def test_name_key_and_unknown_context_keys_are_rejected():
    context = tier_context()
    context["environments"]["dev"]["name"] = "other"
    with pytest.raises(ConfigError, match="key 'name' is not allowed"):
        load_environments(context)
    with pytest.raises(ConfigError, match="unknown key"):
        load_environments({**tier_context(), "environment": {}})
    with pytest.raises(ConfigError, match="must be an object with an 'environments' object"):
        load_environments(None)


def test_selecting_an_undeclared_environment_names_the_declared_ones():
    environments = load_environments(tier_context())
    assert [e.name for e in select_environments(environments, "staging")] == ["staging"]
    assert len(select_environments(environments, None)) == len(environments)
    with pytest.raises(ConfigError, match=r"context 'env' = 'qa' is not allowed; allowed: one of \['dev', 'prod', 'staging'\]"):
        select_environments(environments, "qa")


def test_engine_version_derives_its_family():
    environments = load_with("dev", {"cache": {"engine": "valkey", "engine_version": "8.0"}})
    assert environments["dev"].cache.family == "valkey8"
