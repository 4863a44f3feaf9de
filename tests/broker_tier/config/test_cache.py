"""The replication group (``cache``): m- and r-class node types of the dated catalogue, engine, version and
parameter-group family; engine parameters of the family with values of their type, the tier's own reserved;
port, replicas, windows and the database layout."""

from __future__ import annotations

import pytest

from .config_testing import assert_refused_naming, load_with

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
}


@pytest.mark.parametrize("env,override,expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_value_fails_with_environment_key_value_and_allowed(env, override, expected):
    assert_refused_naming(env, override, expected)


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


def test_engine_version_derives_its_family():
    environments = load_with("dev", {"cache": {"engine": "valkey", "engine_version": "8.0"}})
    assert environments["dev"].cache.family == "valkey8"
