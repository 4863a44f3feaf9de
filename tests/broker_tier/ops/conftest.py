"""The ops tool's AWS: moto plus model-validated fakes (tests/support/fake_aws.py), and a fake clock."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from fake_aws import (
    ApiPatch,
    FakeAlarmHistory,
    FakeCanaryWorker,
    FakeClock,
    FakeReplicationGroup,
    deploy_tier,
    make_clients,
)
from moto import mock_aws

import broker_tier_contract as contract


@pytest.fixture(scope="session")
def boto_clients() -> dict:
    return make_clients()


@pytest.fixture
def aws(monkeypatch, boto_clients):
    """A deployed tier (moto) whose replication group and alarm history are fakes, whose workers run
    canaries (a fake worker over moto's queues and logs), and whose AZ power experiments (moto's
    FIS) cut the power of the fake group's AZ; time is fake."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    clock = FakeClock()
    monkeypatch.setattr(time, "sleep", clock.sleep)  # boto3's waiters sleep through time.sleep
    with mock_aws(), ApiPatch() as api:
        tier = deploy_tier(boto_clients)
        group, history = FakeReplicationGroup(), FakeAlarmHistory()
        group.install(api)
        history.install(api)
        worker = FakeCanaryWorker(api, boto_clients, {name: urls["url"] for name, urls in tier.queues.items()})
        worker.install()

        def power_off(params: dict) -> None:
            template = api.passthrough(boto_clients["fis"], "GetExperimentTemplate", id=params["experimentTemplateId"])
            target = template["experimentTemplate"]["targets"][contract.AZ_POWER_TARGET]
            group.interrupt_az(target["parameters"][contract.AZ_POWER_ZONE_PARAMETER])

        api.observers[("fis", "StartExperiment")] = power_off
        yield SimpleNamespace(
            api=api, tier=tier, group=group, history=history, clock=clock, worker=worker, clients=tier.clients
        )
