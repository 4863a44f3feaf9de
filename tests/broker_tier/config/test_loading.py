"""Reading the configuration (``loading``): the context as written (nulls included), as the CDK CLI passes it
(``CDK_CONTEXT_JSON``, and a file for what does not fit) or as the cdk.json beside app.py holds it; ``defaults``
merged under each environment and validated on its own, each problem named once where it comes from; every
problem of every environment in one ConfigError; a null refused at its key; and ``-c env=NAME``."""

from __future__ import annotations

import json

import pytest
from tier_testing import ROOT, project_context, tier_context

from broker_tier.config import (
    CLI_CONTEXT_ENV,
    CLI_CONTEXT_OVERFLOW_ENV,
    CONTEXT_KEY,
    ConfigError,
    cdk_json_context,
    cli_context,
    load_environments,
)
from broker_tier.config.catalogues import NODE_TYPES_FILE

from .config_testing import problems


def test_the_cli_context_is_read_as_json_with_its_nulls_and_its_overflow_file(tmp_path, monkeypatch):
    overflow = tmp_path / "context-overflow.json"
    overflow.write_text(json.dumps({CONTEXT_KEY: {"environments": {"staging": None}}}))
    monkeypatch.setenv(CLI_CONTEXT_ENV, json.dumps({"env": "prod", "flag": None}))
    monkeypatch.setenv(CLI_CONTEXT_OVERFLOW_ENV, str(overflow))
    assert cli_context() == {"env": "prod", "flag": None, CONTEXT_KEY: {"environments": {"staging": None}}}


def test_without_the_cli_there_is_no_cli_context_and_cdk_json_is_read(monkeypatch):
    monkeypatch.delenv(CLI_CONTEXT_ENV, raising=False)
    monkeypatch.delenv(CLI_CONTEXT_OVERFLOW_ENV, raising=False)
    assert cli_context() is None
    assert cdk_json_context(ROOT / "cdk.json") == project_context()


def test_defaults_are_merged_under_each_environment():
    environments = load_environments(tier_context())
    assert environments["dev"].queues["batch"].max_receive_count == 3  # from "defaults"
    assert environments["dev"].cache.deletion_policy == "delete"  # the environment's own value


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
