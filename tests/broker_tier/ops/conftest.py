"""The ops tool's AWS: moto plus model-validated fakes (tests/support/fake_aws.py), and a fake clock."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from moto import mock_aws

from fake_aws import ApiPatch, FakeAlarmHistory, FakeClock, FakeReplicationGroup, deploy_tier, make_clients


@pytest.fixture(scope="session")
def boto_clients() -> dict:
    return make_clients()


@pytest.fixture
def aws(monkeypatch, boto_clients):
    """A deployed tier (moto) whose replication group and alarm history are fakes; time is fake."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    clock = FakeClock()
    monkeypatch.setattr(time, "sleep", clock.sleep)  # boto3's waiters sleep through time.sleep
    with mock_aws(), ApiPatch() as api:
        tier = deploy_tier(boto_clients)
        group, history = FakeReplicationGroup(), FakeAlarmHistory()
        group.install(api)
        history.install(api)
        yield SimpleNamespace(api=api, tier=tier, group=group, history=history, clock=clock,
                              clients=tier.clients)
