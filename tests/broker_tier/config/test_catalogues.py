"""The dated catalogues (``catalogues``): each names its public source and the date it was read; the node types,
engine parameters and Regions they hold."""

from __future__ import annotations

import json

import pytest

from broker_tier.config.catalogues import (
    NODE_TYPES_FILE,
    PARAMETERS_FILE,
    REGIONS_FILE,
    aws_regions,
    engine_parameters,
    node_types,
)


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
