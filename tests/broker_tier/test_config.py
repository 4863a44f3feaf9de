"""The configuration model: the project's cdk.json is valid, and every guard fires with a clear message."""

from __future__ import annotations

import json

import pytest
from tier_testing import tier_context

from broker_tier.config import ConfigError, EnvironmentConfig, deep_merge, load_environments
from broker_tier.config.catalogues import (
    NODE_TYPES_FILE,
    PARAMETERS_FILE,
    REGIONS_FILE,
    aws_regions,
    engine_parameters,
    node_types,
)


def load_with(env: str, override: dict, *, only: str | None = None) -> dict:
    """``env`` of cdk.json, made environment-agnostic (as shipped; a team may have pinned it), with ``override``."""
    context = tier_context()
    block = {key: value for key, value in context["environments"][env].items() if key not in ("account", "region")}
    context["environments"][env] = deep_merge(block, override)
    return load_environments(context, only=only)


def problems(context: dict, *, only: str | None = None) -> list[str]:
    """The lines of the ConfigError ``context`` raises."""
    with pytest.raises(ConfigError) as raised:
        load_environments(context, only=only)
    return str(raised.value).splitlines()


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
    "t-class node": (
        "dev",
        {"cache": {"node_type": "cache.t3.medium"}},
        ["'dev'", "cache.node_type", '"cache.t3.medium"', "m- or r-class", "Multi-AZ"],
    ),
    "small m node": ("dev", {"cache": {"node_type": "cache.m1.small"}}, ["cache.node_type", "m- or r-class"]),
    "data tiering node": ("prod", {"cache": {"node_type": "cache.r6gd.xlarge"}}, ["cache.node_type", "data-tiering"]),
    "default port": ("staging", {"cache": {"port": 6379}}, ["'staging'", "cache.port", "6379", "AEC5"]),
    "unknown engine": ("dev", {"cache": {"engine": "memcached"}}, ["cache.engine", '"memcached"', "redis", "valkey"]),
    "version of other engine": (
        "dev",
        {"cache": {"engine": "valkey", "engine_version": "7.1"}},
        ["cache.engine_version", '"7.1"', '"7.2"', '"8.0"', "valkey"],
    ),
    "family mismatch": (
        "prod",
        {"cache": {"engine": "valkey", "engine_version": "8.0", "parameter_group_family": "redis7"}},
        ["'prod'", "cache.parameter_group_family", '"redis7"', '"valkey8"'],
    ),
    "eviction policy": (
        "dev",
        {"cache": {"parameters": {"maxmemory-policy": "allkeys-lru"}}},
        ["cache.parameters.maxmemory-policy", '"allkeys-lru"', "noeviction"],
    ),
    "aof": ("dev", {"cache": {"parameters": {"appendonly": "yes"}}}, ["cache.parameters.appendonly", "Multi-AZ"]),
    "no replica": ("dev", {"cache": {"replicas": 0}}, ["cache.replicas = 0 is not allowed; allowed: 1 to 5"]),
    "overlapping windows": (
        "dev",
        {"cache": {"snapshot_window": "05:00-06:00", "maintenance_window": "sun:05:30-sun:06:30"}},
        ["cache.maintenance_window", "does not overlap", "05:00-06:00"],
    ),
    "short snapshot window": (
        "dev",
        {"cache": {"snapshot_window": "03:00-03:30"}},
        ["cache.snapshot_window", "at least 60 minutes"],
    ),
    "bad window format": ("dev", {"cache": {"maintenance_window": "sunday 05:00"}}, ["cache.maintenance_window"]),
    "bad log retention": ("dev", {"cache": {"log_retention_days": 45}}, ["cache.log_retention_days", "45", "30, 60"]),
    "shared database": (
        "dev",
        {"cache": {"databases": {"broker": 0}}},
        ["cache.databases.broker", "0", "not already used by 'cache'"],
    ),
    "bad replication group id": (
        "dev",
        {"cache": {"replication_group_id": "Broker_Tier"}},
        ["cache.replication_group_id", '"Broker_Tier"'],
    ),
    "unknown cache key": (
        "dev",
        {"cache": {"nodetype": "cache.m7g.large"}},
        ["unknown key 'cache.nodetype'", 'did you mean key "node_type"?'],
    ),
    "unknown top-level key": ("staging", {"regoin": "eu-west-1"}, ["unknown key 'regoin'", "region"]),
    "unknown queue key": (
        "dev",
        {"queues": {"batch": {"visibility": 10}}},
        ["unknown key 'queues.batch.visibility'", "visibility_timeout_seconds"],
    ),
    "visibility below time limit": (
        "dev",
        {"queues": {"batch": {"visibility_timeout_seconds": 3600}}},
        ["queues.batch.visibility_timeout_seconds", "3600", "3660", "again"],
    ),
    "visibility below eta": (
        "dev",
        {"queues": {"default": {"max_eta_seconds": 7200}}},
        ["queues.default.visibility_timeout_seconds", "4200", "7560", "ETA"],
    ),
    "eta beyond sqs ceiling": (
        "dev",
        {"queues": {"default": {"max_eta_seconds": 43200, "visibility_timeout_seconds": 43200}}},
        ["queues.default.visibility_timeout_seconds", "43200"],
    ),
    "short dead-letter retention": (
        "dev",
        {"queues": {"batch": {"dead_letter_retention_seconds": 86400}}},
        ["queues.batch.dead_letter_retention_seconds", "86400", "345600", "original enqueue time"],
    ),
    "bad class name": ("dev", {"queues": {"Batch-1": {}}}, ["queues.Batch-1", "lowercase"]),
    "nat beyond azs": ("dev", {"network": {"nat_gateways": 3}}, ["network.nat_gateways", "3", "max_azs (2)"]),
    "one az": ("dev", {"network": {"max_azs": 1}}, ["network.max_azs", "1"]),
    "vpc lookup without env": (
        "dev",
        {"network": {"vpc_id": "vpc-0123456789abcdef0"}},
        ["network.vpc_id", "account and region"],
    ),
    "production destroys": ("prod", {"removal_policy": "destroy"}, ["'prod'", "removal_policy", '"retain"']),
    "production deletes cache": (
        "prod",
        {"cache": {"deletion_policy": "delete"}},
        ["cache.deletion_policy", '"snapshot"'],
    ),
    "bad account": ("prod", {"account": "12345"}, ["account", '"12345"']),
    "second beat": (
        "prod",
        {"compute": {"beat": {"desired_count": 2}}},
        ["compute.beat.desired_count", "2", "only 1", "exactly one Celery Beat"],
    ),
    "overlapping beat deploy": (
        "dev",
        {"compute": {"beat": {"maximum_percent": 200}}},
        ["compute.beat.maximum_percent", "200", "only 100"],
    ),
    "beat min healthy": (
        "dev",
        {"compute": {"beat": {"minimum_healthy_percent": 50}}},
        ["compute.beat.minimum_healthy_percent", "only 0"],
    ),
    "beat autoscaling key": ("dev", {"compute": {"beat": {"max_tasks": 3}}}, ["unknown key 'compute.beat.max_tasks'"]),
    "fargate memory": (
        "dev",
        {"queues": {"batch": {"worker": {"cpu": 1024, "memory_mib": 1024}}}},
        ["queues.batch.worker.memory_mib", "1024", "2048 to 8192 MiB"],
    ),
    "fargate cpu": ("dev", {"queues": {"batch": {"worker": {"cpu": 300}}}}, ["queues.batch.worker.cpu", "300"]),
    "max below min": (
        "dev",
        {"queues": {"default": {"worker": {"min_tasks": 3, "max_tasks": 2}}}},
        ["queues.default.worker.max_tasks", "at least min_tasks (3)"],
    ),
    "stop timeout above fargate": (
        "dev",
        {"compute": {"stop_timeout_seconds": 300}},
        ["compute.stop_timeout_seconds = 300", "allowed: 20 to 120"],
    ),
    "unknown broker": ("dev", {"compute": {"broker": "rabbitmq"}}, ["compute.broker", '"sqs"', '"redis"']),
    "image with tag and digest": (
        "dev",
        {"compute": {"image": {"repository_name": "team/app", "tag": "v1", "digest": "sha256:" + "a" * 64}}},
        ["compute.image.tag", "exactly one of 'tag' or 'digest'"],
    ),
    "latency objective below held time": (
        "dev",
        {"queues": {"interactive": {"latency_objective_seconds": 100}}},
        ["queues.interactive.latency_objective_seconds", "100", "= 120", "healthy work"],
    ),
    "latency objective beyond retention": (
        "dev",
        {"queues": {"batch": {"latency_objective_seconds": 400000}}},
        ["queues.batch.latency_objective_seconds", "400000", "less than retention_seconds (345600)"],
    ),
    "memory warning above critical": (
        "prod",
        {"monitoring": {"redis_memory": {"warning_percent": 90}}},
        ["'prod'", "monitoring.redis_memory.warning_percent", "90", "less than critical_percent (80"],
    ),
    "memory percent of 100": (
        "dev",
        {"monitoring": {"redis_memory": {"critical_percent": 100}}},
        ["monitoring.redis_memory.critical_percent", "100", "less than 100"],
    ),
    "sub-minute period": (
        "dev",
        {"monitoring": {"queue_age": {"period_seconds": 30}}},
        ["monitoring.queue_age.period_seconds", "30", "multiple of 60"],
    ),
    "window over a day": (
        "dev",
        {"monitoring": {"dead_letter": {"period_seconds": 3600, "evaluation_periods": 25}}},
        ["monitoring.dead_letter.evaluation_periods", "25", "90000 s > 86400 s"],
    ),
    "datapoints beyond periods": (
        "dev",
        {"monitoring": {"beat_tasks": {"evaluation_periods": 3, "datapoints_to_alarm": 4}}},
        ["monitoring.beat_tasks.datapoints_to_alarm", "4", "at most evaluation_periods (3)"],
    ),
    "connections beyond maxclients": (
        "dev",
        {"monitoring": {"redis_connections": {"threshold": 70000}}},
        ["monitoring.redis_connections.threshold", "70000", "65000"],
    ),
    "negative lag": (
        "dev",
        {"monitoring": {"redis_replication_lag": {"threshold_seconds": 0}}},
        ["monitoring.redis_replication_lag.threshold_seconds", "more than 0, at most 3600"],
    ),
    "eviction threshold": (
        "dev",
        {"monitoring": {"redis_evictions": {"threshold": 5}}},
        ["unknown key 'monitoring.redis_evictions.threshold'", "period_seconds"],
    ),
    "bad email": (
        "staging",
        {"monitoring": {"subscriptions": [{"protocol": "email", "endpoint": "oncall"}]}},
        ["monitoring.subscriptions.0.endpoint", '"oncall"', "an e-mail address"],
    ),
    "plain http webhook": (
        "dev",
        {"monitoring": {"subscriptions": [{"protocol": "https", "endpoint": "http://pager.example"}]}},
        ["monitoring.subscriptions.0.endpoint", "https:// URL"],
    ),
    "unknown protocol": (
        "dev",
        {"monitoring": {"subscriptions": [{"protocol": "lambda", "endpoint": "x"}]}},
        ["monitoring.subscriptions.0.protocol", '"email"', '"https"', '"sms"'],
    ),
    "runbook url": (
        "dev",
        {"monitoring": {"runbook_base_url": "http://wiki/runbooks"}},
        ["monitoring.runbook_base_url", "http://wiki/runbooks"],
    ),
    "relative runbook url": (
        "dev",
        {"monitoring": {"runbook_base_url": "runbooks/"}},
        ["monitoring.runbook_base_url", '"runbooks/"', "https://"],
    ),
    # node types: only types ElastiCache offers (the dated catalogue), and of those m- and r-class
    "misspelt node type": (
        "dev",
        {"cache": {"node_type": "cache.m7g.lage"}},
        [
            "environment 'dev': cache.node_type = \"cache.m7g.lage\" is not allowed",
            "node type ElastiCache offers",
            "elasticache_node_types.json of 20",
            'did you mean "cache.m7g.large"?',
        ],
    ),
    "invented generation": (
        "dev",
        {"cache": {"node_type": "cache.r9g.large"}},
        ["cache.node_type", "node type ElastiCache offers"],
    ),
    "previous generation": (
        "dev",
        {"cache": {"node_type": "cache.m3.large"}},
        ["cache.node_type", "current-generation", "no new clusters"],
    ),
    "network optimized": (
        "dev",
        {"cache": {"node_type": "cache.c7gn.large"}},
        ["cache.node_type", "m- or r-class", "network optimized"],
    ),
    "valkey-only family on redis": (
        "dev",
        {"cache": {"node_type": "cache.r8g.large"}},
        ["cache.node_type", '"cache.r8g.large"', "offers for redis", "r8g family runs valkey only"],
    ),
    # engine parameters: names of the family, values of their type
    "underscore parameter": (
        "dev",
        {"cache": {"parameters": {"maxmemory_policy": "noeviction"}}},
        ["cache.parameters.maxmemory_policy", 'did you mean "maxmemory-policy"?', "parameter names use hyphens"],
    ),
    "misspelt parameter": (
        "dev",
        {"cache": {"parameters": {"activedefrg": "yes"}}},
        ["cache.parameters.activedefrg", "elasticache_parameters.json", 'did you mean "activedefrag"?'],
    ),
    "parameter of another family": (
        "dev",
        {"cache": {"parameters": {"hash-max-ziplist-entries": 256}}},
        ["cache.parameters.hash-max-ziplist-entries", "family redis7", "only in redis6.x"],
    ),
    "parameter of a later version": (
        "dev",
        {"cache": {"engine": "valkey", "engine_version": "8.0", "parameters": {"commandlog-large-reply-max-len": 64}}},
        ["cache.parameters.commandlog-large-reply-max-len", "only with valkey 8.1 or later", "engine_version is 8.0"],
    ),
    "boolean parameter as true": (
        "dev",
        {"cache": {"parameters": {"activedefrag": True}}},
        ["cache.parameters.activedefrag = true", '"yes" or "no"'],
    ),
    "boolean parameter as string true": (
        "dev",
        {"cache": {"parameters": {"activedefrag": "true"}}},
        ['cache.parameters.activedefrag = "true"', '"yes" or "no"'],
    ),
    "integer parameter out of range": (
        "dev",
        {"cache": {"parameters": {"timeout": 10}}},
        ["cache.parameters.timeout = 10", "20 or more, or 0"],
    ),
    "integer parameter not a number": (
        "dev",
        {"cache": {"parameters": {"reserved-memory-percent": "lots"}}},
        ["cache.parameters.reserved-memory-percent", "from 0 to 100"],
    ),
    "enumeration parameter": (
        "dev",
        {"cache": {"parameters": {"cluster-preferred-endpoint-type": "dns"}}},
        ["cache.parameters.cluster-preferred-endpoint-type", '"ip", "tls-dynamic"'],
    ),
    "unmodifiable parameter": (
        "dev",
        {"cache": {"parameters": {"maxclients": 100}}},
        ["cache.parameters.maxclients", "does not let a parameter group set"],
    ),
    "cluster mode": (
        "dev",
        {"cache": {"parameters": {"cluster-enabled": "yes"}}},
        ["cache.parameters.cluster-enabled", "cluster mode disabled"],
    ),
    "too few databases": (
        "dev",
        {"cache": {"parameters": {"databases": 2}}},
        ["cache.parameters.databases = 2", "more than 2, the highest database number"],
    ),
    # account and region: both or neither, a real region
    "account without region": (
        "prod",
        {"account": "123456789012"},
        ["environment 'prod': region is missing", 'beside account "123456789012"', "set both account and region"],
    ),
    "region without account": (
        "staging",
        {"region": "eu-west-1"},
        ["environment 'staging': account is missing", 'beside region "eu-west-1"'],
    ),
    "unknown region": (
        "prod",
        {"account": "123456789012", "region": "eu-wset-1"},
        ['region = "eu-wset-1"', "AWS Region name", "aws_regions.json", 'did you mean "eu-west-1"?'],
    ),
    "china region": (
        "prod",
        {"account": "123456789012", "region": "cn-north-1"},
        ['region = "cn-north-1"', "commercial partition (aws)", "cn-north-1 is in aws-cn", "not checked"],
    ),
    "govcloud region": (
        "prod",
        {"account": "123456789012", "region": "us-gov-west-1"},
        ['region = "us-gov-west-1"', "commercial partition (aws)", "us-gov-west-1 is in aws-us-gov"],
    ),
    # network: a private IPv4 network that holds the subnets
    "octet out of range": (
        "dev",
        {"network": {"cidr": "10.300.0.0/16"}},
        ['network.cidr = "10.300.0.0/16"', "IPv4 network", "Octet 300"],
    ),
    "host bits set": ("dev", {"network": {"cidr": "10.64.1.0/16"}}, ["network.cidr", 'did you mean "10.64.0.0/16"?']),
    "public network": ("dev", {"network": {"cidr": "8.8.0.0/16"}}, ["network.cidr", "RFC 1918"]),
    "no prefix": ("dev", {"network": {"cidr": "10.64.0.0"}}, ["network.cidr", "with its prefix"]),
    "vpc too large": ("dev", {"network": {"cidr": "10.0.0.0/12"}}, ["network.cidr", "from /16 to /28"]),
    "vpc too small for two azs": (
        "dev",
        {"network": {"cidr": "10.64.0.0/20"}},
        [
            'network.cidr = "10.64.0.0/20"',
            "/18 or larger",
            "max_azs 2",
            "/24 public and a /20 private subnet in each AZ",
        ],
    ),
    "vpc too small for three azs": (
        "prod",
        {"network": {"cidr": "10.66.0.0/19"}},
        ["environment 'prod'", "network.cidr", "/18 or larger", "max_azs 3"],
    ),
    # strict types: nothing coerced
    "boolean as replicas": (
        "dev",
        {"cache": {"replicas": True}},
        ["cache.replicas = true is not allowed; allowed: a JSON integer, 1 to 5"],
    ),
    "string as production": (
        "dev",
        {"production": "no"},
        ['production = "no" is not allowed; allowed: a JSON boolean (true or false)'],
    ),
    "string as port": ("dev", {"cache": {"port": "6380"}}, ['cache.port = "6380"', "a JSON integer"]),
    "fraction as integer": (
        "dev",
        {"queues": {"batch": {"max_receive_count": 2.5}}},
        ["queues.batch.max_receive_count = 2.5", "a JSON integer"],
    ),
    "number as string": ("dev", {"compute": {"celery_app": 5}}, ["compute.celery_app = 5", "a JSON string"]),
    "boolean as number": (
        "prod",
        {"monitoring": {"redis_memory": {"warning_percent": True}}},
        ["monitoring.redis_memory.warning_percent = true", "a JSON number"],
    ),
    "list as block": ("dev", {"network": []}, ["network = []", "a JSON object"]),
    "number as tag": ("dev", {"tags": {"team": 5}}, ["tags.team = 5", "a JSON string"]),
    "missing subscription protocol": (
        "dev",
        {"monitoring": {"subscriptions": [{"endpoint": "a@example.com"}]}},
        ["monitoring.subscriptions.0.protocol is missing", '"email"'],
    ),
    "az power beyond fis limit": (
        "dev",
        {"fault_injection": {"az_power": {"duration_minutes": 721}}},
        ["fault_injection.az_power.duration_minutes", "721", "1 to 720"],
    ),
    "az power zero minutes": (
        "dev",
        {"fault_injection": {"az_power": {"duration_minutes": 0}}},
        ["fault_injection.az_power.duration_minutes", "0", "1 to 720"],
    ),
    "az power unknown key": (
        "prod",
        {"fault_injection": {"az_power": {"zone": "eu-west-1a"}}},
        ["unknown key 'fault_injection.az_power.zone'", "duration_minutes, enabled"],
    ),
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    with pytest.raises(ConfigError) as raised:
        load_with(env, override)
    message = str(raised.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_runbook_links_default_to_this_repository_and_can_point_elsewhere():
    assert (
        load_environments(tier_context())["dev"].monitoring.runbook_base_url
        == "https://github.com/broker-tier/broker-tier/blob/main/runbooks/"
    )
    wiki = "https://wiki.example.com/ops/broker-tier/runbooks/"
    assert load_with("dev", {"monitoring": {"runbook_base_url": wiki}})["dev"].monitoring.runbook_base_url == wiki


def test_az_power_experiments_are_on_in_dev_only_and_off_by_default():
    environments = load_environments(tier_context())
    assert {name: env.fault_injection.az_power.enabled for name, env in environments.items()} == {
        "dev": True,
        "staging": False,
        "prod": False,
    }
    assert environments["dev"].fault_injection.az_power.duration_minutes == 5
    assert EnvironmentConfig(name="bare").fault_injection.az_power.enabled is False


def test_problems_of_several_environments_are_raised_as_one_config_error():
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


def test_a_whole_number_is_accepted_for_a_number_key():
    config = load_with("prod", {"monitoring": {"redis_memory": {"warning_percent": 50}}})["prod"]
    assert config.monitoring.redis_memory.warning_percent == 50.0


def test_parameters_of_the_family_with_values_of_their_type_pass_and_reach_the_group():
    config = load_with(
        "dev",
        {
            "cache": {
                "parameters": {
                    "activedefrag": "yes",
                    "timeout": 300,
                    "tcp-keepalive": "60",
                    "maxmemory-policy": "noeviction",
                }
            }
        },
    )["dev"]
    assert config.cache.parameters == {
        "activedefrag": "yes",
        "timeout": 300,
        "tcp-keepalive": "60",
        "maxmemory-policy": "noeviction",
    }


# -- defaults: validated on its own, named once -----------------------------------------------------
def test_an_error_in_defaults_is_named_once_as_defaults():
    context = tier_context()
    context["defaults"]["cache"]["port"] = "6380"  # no environment sets its own port
    lines = problems(context)
    assert lines == [
        "defaults (inherited by 'dev', 'staging', 'prod'): cache.port = \"6380\" is not allowed; "
        "allowed: a JSON integer, 1024 to 65535, except 6379"
    ]


def test_an_error_in_defaults_is_reported_even_when_every_environment_overrides_the_key():
    context = tier_context()
    context["defaults"]["cache"]["node_type"] = "cache.m7g.lage"
    for environment in context["environments"].values():
        environment["cache"]["node_type"] = "cache.m7g.large"
    lines = problems(context)
    assert len(lines) == 1 and lines[0].startswith('defaults: cache.node_type = "cache.m7g.lage"')


def test_a_rule_broken_by_keys_from_defaults_is_named_once_as_defaults_with_the_environments_it_breaks():
    context = tier_context()
    context["defaults"]["queues"]["batch"]["visibility_timeout_seconds"] = 3600  # time limit 3600 + 60 needed
    lines = problems(context)
    assert len(lines) == 1
    assert lines[0].startswith(
        "defaults (inherited by 'dev', 'staging', 'prod'): "
        "queues.batch.visibility_timeout_seconds = 3600 is not allowed"
    )


def test_defaults_completed_by_every_environment_is_valid():
    # nat_gateways 3 needs max_azs 3: wrong on its own, right in every environment that sets max_azs 3
    context = tier_context()
    context["defaults"]["network"] = {"nat_gateways": 3}
    for environment in context["environments"].values():
        environment["network"]["max_azs"] = 3
        environment["network"].pop("nat_gateways")
    assert {config.network.nat_gateways for config in load_environments(context).values()} == {3}


def test_an_environment_overriding_a_bad_default_is_not_blamed_and_one_inheriting_it_is_named():
    context = tier_context()
    context["defaults"]["network"] = {"nat_gateways": 3}  # dev and staging set their own, prod inherits nothing
    context["environments"]["prod"]["network"].pop("nat_gateways")
    context["environments"]["prod"]["network"]["max_azs"] = 2
    lines = problems(context)
    assert lines == [
        "defaults (inherited by 'prod'): network.nat_gateways = 3 is not allowed; allowed: at most "
        "max_azs (2): one NAT gateway per AZ"
    ]


def test_every_problem_of_every_environment_is_reported_at_once():
    context = tier_context()
    context["environments"]["dev"]["cache"]["port"] = 6379
    context["environments"]["prod"]["network"]["max_azs"] = 4
    lines = problems(context)
    assert any(line.startswith("environment 'dev': cache.port") for line in lines)
    assert any(line.startswith("environment 'prod': network.max_azs") for line in lines)


def test_a_default_snapshot_window_overlapping_the_default_maintenance_window_is_named_once_as_defaults():
    context = tier_context()
    context["defaults"]["cache"]["snapshot_window"] = "05:00-06:00"  # the maintenance window's default: Sunday 05:00
    assert problems(context) == [
        "defaults (inherited by 'dev', 'staging', 'prod'): cache.snapshot_window = \"05:00-06:00\" is not allowed; "
        "allowed: a window that does not overlap maintenance_window (sun:05:00-sun:06:00, the default); "
        "ElastiCache rejects overlapping windows"
    ]


def test_an_environment_whose_own_window_overlaps_one_from_defaults_is_blamed_itself():
    context = tier_context()
    context["defaults"]["cache"]["snapshot_window"] = "05:00-06:00"
    for environment in ("dev", "staging"):
        context["environments"][environment]["cache"]["snapshot_window"] = "03:00-04:00"
    context["environments"]["prod"]["cache"]["maintenance_window"] = "sun:05:30-sun:06:30"
    assert problems(context) == [
        "environment 'prod': cache.maintenance_window = \"sun:05:30-sun:06:30\" is not allowed; allowed: a window "
        "that does not overlap snapshot_window (05:00-06:00 daily); ElastiCache rejects overlapping windows"
    ]


def test_a_rule_broken_at_a_default_key_by_a_key_of_defaults_is_named_once_as_defaults():
    context = tier_context()
    context["defaults"]["compute"]["beat"] = {"cpu": 1024}  # Beat's memory default, 512, is too little for it
    assert problems(context) == [
        "defaults (inherited by 'dev', 'staging', 'prod'): compute.beat.memory_mib = 512 is not allowed; allowed: "
        "a memory size Fargate offers with cpu 1024: 2048 to 8192 MiB in steps of 1024"
    ]


def test_an_environment_that_breaks_the_same_rule_with_its_own_keys_is_named_itself():
    context = tier_context()
    context["defaults"]["compute"]["beat"] = {"cpu": 1024}
    context["environments"]["dev"]["compute"] = {"beat": {"cpu": 1024}}  # dev would break it without defaults
    assert problems(context) == [
        "defaults (inherited by 'staging', 'prod'): compute.beat.memory_mib = 512 is not allowed; allowed: a memory "
        "size Fargate offers with cpu 1024: 2048 to 8192 MiB in steps of 1024",
        "environment 'dev': compute.beat.memory_mib = 512 is not allowed; allowed: a memory size Fargate offers "
        "with cpu 1024: 2048 to 8192 MiB in steps of 1024",
    ]


# -- nulls: the context as written (the CDK's own context has lost them) ----------------------------
def with_null(path: str) -> dict:
    """The project's context with the key at ``path`` (dotted, from the context key) set to null."""
    context = tier_context()
    *parents, key = path.split(".")
    block = context
    for part in parents:
        block = block[part] if isinstance(block, dict) else block[int(part)]
    block[key] = None
    return context


NULLS = {
    "production flag": (
        "environments.prod.production",
        [
            "environment 'prod': production = null is not allowed; allowed: a JSON boolean (true or false); leave the "
            "key out for the default false"
        ],
    ),
    "whole environment": (
        "environments.staging",
        [
            "environment 'staging': null is not allowed; allowed: a JSON object of the environment's keys ({} for "
            "defaults alone), or no key 'staging' in 'environments' (the environment is not synthesized)"
        ],
    ),
    "key with a model default": (
        "environments.dev.cache.node_type",
        [
            "environment 'dev': cache.node_type = null is not allowed; allowed: a JSON string, an m- or r-class node "
            f"type from {NODE_TYPES_FILE.name} ({json.loads(NODE_TYPES_FILE.read_text())['retrieved']}), without "
            'data tiering; leave the key out for the default "cache.m7g.large"'
        ],
    ),
    "key defaults sets": (
        "environments.prod.monitoring.redis_memory.warning_percent",
        [
            "environment 'prod': monitoring.redis_memory.warning_percent = null is not allowed; allowed: a JSON "
            "number, more than 0, less than 100; leave the key out to inherit 70 from defaults"
        ],
    ),
    "optional key": (
        "environments.dev.cache.replication_group_id",
        [
            "environment 'dev': cache.replication_group_id = null is not allowed; allowed: a JSON string, matching "
            "`^[a-z]([a-z0-9]|-[a-z0-9]){0,39}$`; leave the key out for the default (none)"
        ],
    ),
    "key in defaults": (
        "defaults.cache.port",
        [
            "defaults (inherited by 'dev', 'staging', 'prod'): cache.port = null is not allowed; allowed: a JSON "
            "integer, 1024 to 65535, except 6379; leave the key out for the default 6380"
        ],
    ),
    "block in defaults": (
        "defaults.fault_injection",
        [
            "defaults (inherited by 'staging', 'prod'): fault_injection = null is not allowed; allowed: a JSON "
            "object; leave the key out for the default block"
        ],
    ),
    "defaults": (
        "defaults",
        [
            "defaults: null is not allowed; allowed: a JSON object of the keys every environment inherits, or no key "
            "'defaults'"
        ],
    ),
    "unknown key": (
        "environments.dev.cache.nodetype",
        [
            "environment 'dev': unknown key 'cache.nodetype' (value null); did you mean key \"node_type\"?; allowed "
            "keys here: databases, deletion_policy, engine, engine_version, log_retention_days, maintenance_window, "
            "node_type, parameter_group_family, parameters, port, replicas, replication_group_id, "
            "snapshot_retention_days, snapshot_window"
        ],
    ),
}


@pytest.mark.parametrize("path,expected", NULLS.values(), ids=NULLS.keys())
def test_a_null_is_refused_at_its_key_saying_what_leaving_it_out_gives(path, expected):
    assert problems(with_null(path)) == expected


def test_a_null_in_an_array_is_refused():
    context = tier_context()
    context["environments"]["prod"]["monitoring"]["subscriptions"] = [None]
    assert problems(context) == [
        "environment 'prod': monitoring.subscriptions.0 = null is not allowed; allowed: a JSON object"
    ]


def test_a_whole_number_written_with_a_decimal_point_is_refused_for_an_integer_key():
    context = tier_context()
    context["environments"]["prod"]["cache"]["replicas"] = 2.0
    assert problems(context) == [
        "environment 'prod': cache.replicas = 2.0 is not allowed; allowed: a JSON integer, 1 to 5"
    ]


def test_an_account_written_as_a_number_is_refused_saying_string_once():
    context = tier_context()
    context["environments"]["prod"].update(account=123456789012, region="eu-west-1")
    assert problems(context) == [
        "environment 'prod': account = 123456789012 is not allowed; allowed: a JSON "
        'string, 12 digits such as "012345678901"; only together with region'
    ]


# -- -c env=NAME: defaults and that environment only ----------------------------------------------
def test_selecting_an_environment_ignores_a_broken_other_one():
    context = tier_context()
    context["environments"]["prod"]["cache"]["replicas"] = 0
    assert list(load_environments(context, only="dev")) == ["dev"]
    assert problems(context, only="prod") == ["environment 'prod': cache.replicas = 0 is not allowed; allowed: 1 to 5"]


def test_selecting_an_environment_still_validates_defaults():
    context = tier_context()
    context["defaults"]["cache"]["engine"] = "memcached"
    assert problems(context, only="dev")[0].startswith("defaults (inherited by 'dev'): cache.engine = \"memcached\"")


def test_selecting_an_undeclared_environment_names_the_declared_ones():
    assert list(load_environments(tier_context(), only="staging")) == ["staging"]
    assert problems(tier_context(), only="prd") == [
        "context 'env' = \"prd\" is not allowed; allowed: one of dev, "
        'prod, staging (declared in cdk.json); did you mean "prod"?'
    ]


def test_engine_version_derives_its_family():
    environments = load_with("dev", {"cache": {"engine": "valkey", "engine_version": "8.0"}})
    assert environments["dev"].cache.family == "valkey8"


# -- the catalogues ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [NODE_TYPES_FILE, PARAMETERS_FILE, REGIONS_FILE], ids=lambda p: p.name)
def test_every_catalogue_names_its_source_and_date(path):
    data = json.loads(path.read_text())
    assert "https://docs.aws.amazon.com/" in data["source"]
    assert len(data["retrieved"]) == 10 and data["retrieved"].startswith("20")


def test_node_type_catalogue_knows_current_types_and_their_families():
    types = node_types()
    assert {
        "cache.m7g.large",
        "cache.r7g.16xlarge",
        "cache.m5.24xlarge",
        "cache.r6gd.xlarge",
        "cache.c7gn.large",
        "cache.t4g.micro",
    } <= set(types)
    assert types["cache.r7g.xlarge"].node_class == "r" and types["cache.r7g.xlarge"].generation == 7
    assert types["cache.m8g.large"].engines == ("valkey",)
    assert "cache.m3.large" not in types and "cache.t2.micro" not in types  # previous generation


def test_parameter_catalogue_covers_the_four_families():
    parameters = engine_parameters()
    for family in ("redis6.x", "redis7", "valkey7", "valkey8"):
        assert family in parameters["maxmemory-policy"].families
    assert "noeviction" in parameters["maxmemory-policy"].values
    assert parameters["lazyfree-lazy-user-del"].families == ("redis6.x", "redis7", "valkey7")  # removed in Valkey 8
    assert aws_regions()["eu-west-1"] == "aws" and aws_regions()["cn-north-1"] == "aws-cn"
