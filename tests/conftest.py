"""Session fixtures: every environment of cdk.json synthesized once per test session; and the order
and grouping of tests for pytest-xdist (scripts/test.sh runs ``-n 6 --dist loadgroup``)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest
from image_venvs import ImageVenvs, shared_root
from loopback import redis_server, sqs_server
from tier_testing import (
    PINNED_REGIONS,
    REDIS_MODE_CHANGES,
    REUSE_CDK_OUT,
    SPOT_CHANGES,
    SynthesizedEnvironments,
    synthesize_variant,
    synthesize_with_nag,
)

__all__ = ["redis_server", "sqs_server"]
"""Session fixtures of tests/support/loopback.py, for every test: a ``redis-server`` and moto's SQS server."""
pytest_plugins = ["measurements"]
"""tests/support/measurements.py: the ``measured`` fixture and ``--record-measurements FILE``."""

# One botocore data loader for every session a test process makes: each new session otherwise parses the service
# models and endpoint data again (about a third of the CPU of the ops tool's tests against moto: docs/measuring.md).
# The loader only reads botocore's data files and caches what it read, as it already does within one session.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)

PINNED = tuple(f"pinned_{region.replace('-', '_')}" for region in PINNED_REGIONS)
"""The session fixtures of every environment pinned to one region (``tier_testing.PINNED_REGIONS``)."""
SYNTHESES = ("agnostic", *PINNED)
"""Every environment synthesized: as cdk.json declares them, and pinned to each region."""
SYNTHESIS_FIXTURES = {
    "synthesized",
    "every_synthesis",
    *SYNTHESES,
    "redis_mode_dev",
    "redis_broker_dev",
    "prod_variant",
    "spot_prod",
}
"""The session fixtures that synthesize. Under pytest-xdist a session is one worker's, so the tests that use
them are put in one group, which ``--dist loadgroup`` runs in a single worker: each synthesis is made once per
run, not once per worker, and jsii starts once for them (about 5 s of CPU a process). (The rehearsal's tests use
one too: their module's rehearsals, run side by side once, stay in that worker.)"""
SYNTHESIS_GROUP = "synthesis"
CDK_GROUP = "cdk"
"""The pytest-xdist group of every other test that runs the CDK in its process (bare stacks, an app built in the
test): one more worker starts jsii for them all, instead of each worker that takes one."""


def synthesis_group(item: pytest.Item) -> str | None:
    """The pytest-xdist group of a test that uses a synthesis or the CDK in its process, or that its module names
    with ``pytest.mark.xdist_group(name)`` (its tests share a real process in a module fixture: one worker starts it
    once), or None."""
    named = item.get_closest_marker("xdist_group")
    if named is not None and named.args:
        return str(named.args[0])
    params = getattr(item, "callspec", None)
    used = set(item.fixturenames) | {
        value for value in (params.params.values() if params else ()) if isinstance(value, str)
    }
    if used & SYNTHESIS_FIXTURES:
        return SYNTHESIS_GROUP
    return CDK_GROUP if _runs_the_cdk(getattr(item, "module", None)) else None


CDK_MODULES = ("aws_cdk", "broker_tier.app_builder", "bare_stack")
"""Where a test module's names come from when it runs the CDK in its own process."""


def _runs_the_cdk(module: object) -> bool:
    names = vars(module).values() if module is not None else ()
    return any(
        str(getattr(value, "__name__", "")).startswith(CDK_MODULES)
        or str(getattr(value, "__module__", "")).startswith(CDK_MODULES)
        for value in names
    )


def _put_group_in_node_id(item: pytest.Item, group: str) -> None:
    """What pytest-xdist 3.8 does for ``--dist loadgroup``: its scheduler reads a test's group from the
    ``@group`` suffix of its node id. It sets ``item._nodeid``, which pytest 9.2 no longer reads (node ids
    are structured there), so the group is silently ignored (pytest-xdist#1386); this sets the structured
    id, as that issue's proposed fix (pytest-xdist#1388) does. Remove once pytest-xdist does it again."""
    from _pytest.nodeid import NodeId

    item._id = NodeId.parse(f"{item.nodeid}@{group}")
    if not item.nodeid.endswith(f"@{group}"):  # a pytest whose node ids work otherwise: fail, never ignore
        raise pytest.UsageError(f"cannot put {item.nodeid} in pytest-xdist group {group!r}: see tests/conftest.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("loadgroup", default=False):  # True in pytest-xdist's workers for --dist loadgroup
        for item in items:
            group = synthesis_group(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))
                _put_group_in_node_id(item, group)
    # Tests marked slow first (the sort is stable): under pytest-xdist the worker that takes one has
    # the rest of the run to overlap it, instead of it starting last and running alone.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def agnostic(tmp_path_factory) -> SynthesizedEnvironments:
    """Every environment as cdk.json declares them: the cloud assembly scripts/test.sh has just synthesized
    (``REUSE_CDK_OUT``), else synthesized here."""
    reused = os.environ.get(REUSE_CDK_OUT)
    if reused:
        return SynthesizedEnvironments.from_cdk_out(Path(reused))
    return SynthesizedEnvironments(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def pinned_us_east_1(tmp_path_factory) -> SynthesizedEnvironments:
    """Every environment pinned to us-east-1, with the AZ look-up in the context as cdk.context.json holds it."""
    return SynthesizedEnvironments(tmp_path_factory.mktemp("pinned-us-east-1"), region="us-east-1")


@pytest.fixture(scope="session")
def synthesized(agnostic) -> SynthesizedEnvironments:
    """Every environment as cdk.json declares them (the template tests of constructs/ and stacks/ override it
    with ``every_synthesis``)."""
    return agnostic


@pytest.fixture(params=SYNTHESES)
def every_synthesis(request) -> SynthesizedEnvironments:
    """Each synthesis of ``SYNTHESES`` in turn, each made once per session (when a test first asks for it)."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def redis_mode_dev(tmp_path_factory) -> dict[str, dict]:
    """dev in redis broker mode with a team image (``REDIS_MODE_CHANGES``), synthesized once: templates by part."""
    return synthesize_variant(tmp_path_factory.mktemp("redis-mode"), "dev", REDIS_MODE_CHANGES)


@pytest.fixture(scope="session")
def redis_broker_dev(tmp_path_factory) -> dict[str, dict]:
    """dev with ``compute.broker: redis`` and otherwise cdk.json's configuration (the reference image),
    synthesized once: templates by part."""
    return synthesize_variant(tmp_path_factory.mktemp("redis-broker"), "dev", {"compute": {"broker": "redis"}})


@pytest.fixture(scope="session")
def spot_prod(tmp_path_factory):
    """prod with classes on Fargate Spot and ARM64 tasks (``SPOT_CHANGES``), synthesized once with cdk-nag: the
    output directory (``outdir``) and the templates by part (``templates``)."""
    from types import SimpleNamespace

    outdir = tmp_path_factory.mktemp("spot-prod")
    return SimpleNamespace(outdir=outdir, templates=synthesize_with_nag(outdir, "prod", SPOT_CHANGES))


@pytest.fixture(scope="session")
def image_venvs(tmp_path_factory) -> ImageVenvs:
    """Virtual environments with an image's packages (``image_venvs.python_for(context)``), installed as its
    Dockerfile does once per run, and shared by every test and pytest-xdist worker that needs the same pins."""
    return ImageVenvs(shared_root(tmp_path_factory.getbasetemp()))


@pytest.fixture
def lone_redis(tmp_path):
    """A started ``redis-server`` on loopback, with AUTH (``.password``) and ``noeviction`` as the tier's
    (the rehearsal's ``RedisNode`` command line); stopped after the test."""
    from broker_tier.rehearsal.redis_pair import RedisNode

    node = RedisNode(name="lone", password="lone-test-token-0123456789", workdir=tmp_path / "lone-redis", tls=None)
    node.start()
    yield node
    node.stop()
