"""A probe through the endpoint's name, against real redis-servers behind a loopback forwarder playing the name:
it tells the node an unanswered BRPOP waits on from another node, a demoted one, and silence."""

from __future__ import annotations

import time

import pytest
from kombu import Connection
from silent_forwarder import SilentForwarder

from broker_tier.rehearsal.redis_pair import RedisNode
from broker_tier_celery import timeouts
from broker_tier_celery.failover import FailoverRedisTransport
from broker_tier_celery.name_probe import Node, Probe, Verdict, node_from_replies

FAILOVER_TRANSPORT = f"{FailoverRedisTransport.__module__}:{FailoverRedisTransport.__name__}"
INFO = b"# Server\r\nredis_version:7.0.15\r\nrun_id:4b1e0c2d\r\ntcp_port:6379\r\n"


class Peer:
    def __init__(self, address):
        self.address = address

    def getpeername(self):
        return self.address


def test_a_node_is_known_by_its_run_id_or_else_by_its_address():
    node = node_from_replies([b"master", 0, []], INFO, Peer(("10.0.1.5", 6379)))
    assert node == Node(run_id="4b1e0c2d", role="master", address="10.0.1.5:6379")
    same_process_elsewhere = Node(run_id="4b1e0c2d", role="master", address="127.0.0.1:7000")  # behind a proxy
    restarted = Node(run_id="9f00aa11", role="master", address="10.0.1.5:6379")
    assert node.is_the_same_as(same_process_elsewhere) and not node.is_the_same_as(restarted)
    no_run_id = node_from_replies([b"slave", "10.0.2.7", 6379, "connected", 0], "# Server\r\n", Peer(("10.0.1.5", 1)))
    assert (no_run_id.run_id, no_run_id.role) == (None, "slave")
    assert no_run_id.is_the_same_as(Node(run_id=None, role="master", address="10.0.1.5:1"))
    assert not no_run_id.is_the_same_as(Node(run_id=None, role="master", address="10.0.1.6:1"))


@pytest.fixture
def other_node(lone_redis, tmp_path):
    other = RedisNode(name="other", password=lone_redis.password, workdir=tmp_path / "other", tls=None)
    other.start()
    yield other
    other.stop()


def _probe(prober) -> Probe:
    probe = Probe(prober)
    assert probe.done.wait(timeouts.probe_in_flight_seconds() + 2)  # the slack: a loaded machine
    return probe


def test_a_probe_tells_the_same_primary_from_another_node_a_demoted_one_and_silence(lone_redis, other_node):
    url = f"redis://:{lone_redis.password}@127.0.0.1:{{}}/1"
    with (
        SilentForwarder(lone_redis.address) as name,
        Connection(url.format(name.port), transport=FAILOVER_TRANSPORT) as connection,
    ):
        prober = connection.default_channel.name_prober()  # as a worker's channel makes it: through the name
        waited_on = _probe(prober).node
        assert waited_on is not None and waited_on.run_id and waited_on.role == "master"
        assert _probe(prober).verdict(waited_on) is Verdict.SAME_PRIMARY
        name.point_at(other_node.address)
        assert _probe(prober).verdict(waited_on) is Verdict.MOVED
        name.point_at(lone_redis.address)
        lone_redis.control.replicaof("127.0.0.1", other_node.port)  # demoted: the name still leads to it
        try:
            demoted = _probe(prober)
            assert demoted.node is not None and demoted.node.role == "slave" and demoted.node.is_the_same_as(waited_on)
            assert demoted.verdict(waited_on) is Verdict.MOVED
        finally:
            lone_redis.control.replicaof("NO", "ONE")
        name.blackhole(lone_redis.address)  # the name still leads to it, and nothing answers
        started = time.monotonic()
        silent = _probe(prober)
        assert silent.verdict(waited_on) is Verdict.NO_ANSWER and "Timeout" in (silent.failure or "")
        assert time.monotonic() - started <= timeouts.probe_in_flight_seconds() + 1
        name.heal(lone_redis.address)
