"""Every private name of kombu, Celery and redis-py the settings package relies on, with why, checked one by one:
an upgrade that changes one fails here by its name (the test id), not somewhere deep in a failover test.

Where the package can carry on without one, it falls back to the stock behaviour with one WARNING
(``broker_tier_celery.fallbacks``); the tests at the end force each fallback.
"""

from __future__ import annotations

import inspect
import os
import queue
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from celery import Celery
from celery.app.backends import by_url
from celery.backends.base import BaseKeyValueStoreBackend
from celery.backends.redis import RedisBackend
from celery.worker import state as worker_state
from celery.worker.request import Request
from celery.worker.worker import WorkController
from kombu import Connection, Queue
from kombu.asynchronous import Hub
from kombu.asynchronous.http import get_client
from kombu.transport import redis as kombu_redis
from kombu.transport.SQS import Channel as SqsChannel
from redis.connection import AbstractConnection

from broker_tier.rehearsal.redis_pair import RedisNode
from broker_tier_celery import failover, fallbacks, shutdown, sqs_handback
from broker_tier_celery.failover import FailoverRedisTransport, PrimaryConnection

FAILOVER_TRANSPORT = f"{FailoverRedisTransport.__module__}:{FailoverRedisTransport.__name__}"


def parameters(function: Callable[..., Any]) -> list[str]:
    """Parameter names, without ``self``."""
    return [name for name in inspect.signature(function).parameters if name != "self"]


def _url(node: RedisNode) -> str:
    return f"redis://:{node.password}@127.0.0.1:{node.port}/1"


@dataclass(frozen=True)
class Internal:
    name: str
    why: str
    check: Callable[[RedisNode | None], None]
    needs_redis: bool = False


# -- kombu's Redis transport ------------------------------------------------------------------------------------
def _qos_append(_: RedisNode | None) -> None:
    assert parameters(kombu_redis.QoS.append) == ["message", "delivery_tag"]


def _do_restore_message(_: RedisNode | None) -> None:
    assert parameters(kombu_redis.Channel._do_restore_message) == [
        "payload",
        "exchange",
        "routing_key",
        "pipe",
        "leftmost",
    ]


def _connparams(_: RedisNode | None) -> None:
    assert parameters(kombu_redis.Channel._connparams) == ["asynchronous"]


def _connection_classes(node: RedisNode | None) -> None:
    assert node is not None
    with Connection(_url(node), transport=FAILOVER_TRANSPORT) as connection:
        assert issubclass(connection.default_channel.client.connection_pool.connection_class, PrimaryConnection)


def _collect_clears_client(node: RedisNode | None) -> None:
    assert node is not None
    connection = Connection(_url(node), transport=FAILOVER_TRANSPORT)
    assert connection.default_channel is not None
    transport = connection.transport  # a channel that could not be closed still points at it
    connection.collect()
    assert transport.client is None  # what FailoverRedisChannel._connparams tests for


def _message_raw(node: RedisNode | None) -> None:
    assert node is not None
    with Connection(_url(node), transport=FAILOVER_TRANSPORT) as connection:
        channel = connection.default_channel
        Queue("internals")(channel).declare()
        connection.Producer(channel).publish({"n": 1}, routing_key="internals")
        message = channel.basic_get("internals", no_ack=True)
    assert isinstance(message._raw, dict) and message._raw["body"]
    assert {"exchange", "routing_key"} <= set(message.delivery_info)


def _q_for_pri(_: RedisNode | None) -> None:
    channel = object.__new__(kombu_redis.Channel)  # the methods need no connection
    assert kombu_redis.Channel._q_for_pri(channel, "batch", 0) == "batch"
    assert kombu_redis.Channel._q_for_pri(channel, "batch", 3) == f"batch{kombu_redis.Channel.sep}3"
    assert list(kombu_redis.Channel.priority_steps) == [0, 3, 6, 9]


def _held_messages(node: RedisNode | None) -> None:
    assert node is not None
    assert parameters(kombu_redis.QoS._remove_from_indices) == ["delivery_tag", "pipe"]
    assert parameters(kombu_redis.QoS.ack) == ["delivery_tag"]
    assert parameters(kombu_redis.QoS.reject) == ["delivery_tag", "requeue"]
    assert parameters(kombu_redis.Channel._get_message_priority) == ["message", "reverse"]
    with Connection(_url(node), transport=FAILOVER_TRANSPORT) as connection:
        channel = connection.default_channel
        Queue("internals-held")(channel).declare()
        connection.Producer(channel).publish({"n": 1}, routing_key="internals-held")
        message = channel.basic_get("internals-held", no_ack=False)
        assert channel.qos._delivered[message.delivery_tag] is message  # what the channel holds, by tag
        assert channel._lookup(message.delivery_info["exchange"], "internals-held") == ["internals-held"]
        assert channel._get_message_priority(message._raw, reverse=False) == 0
        message.ack()  # Celery's acknowledgement reaches the QoS of the message's own channel
        assert node.client(1).hlen(channel.unacked_key) == 0


def _unacked_options(_: RedisNode | None) -> None:
    assert {"unacked_key", "unacked_index_key", "unacked_mutex_key"} <= set(kombu_redis.Channel.from_transport_options)


def _brpop_state(node: RedisNode | None) -> None:
    assert node is not None
    with Connection(_url(node), transport=FAILOVER_TRANSPORT) as connection:
        channel = connection.default_channel
        Queue("internals")(channel).declare()
        channel.basic_consume("internals", False, lambda message: None, "internals")
        cycle = connection.transport.cycle
        assert channel in cycle._channels
        before = time.monotonic()
        cycle._register_BRPOP(channel)  # what the event loop does: send BRPOP
        assert channel._in_poll is channel.client.connection and channel._in_poll._sock is not None
        assert before <= channel._brpop_sent_at <= time.monotonic()
        assert "subclient" not in channel.__dict__  # a cached property: read without creating it


def _brpop_read(node: RedisNode | None) -> None:
    assert node is not None
    with Connection(_url(node), transport=FAILOVER_TRANSPORT) as connection:
        channel = connection.default_channel
        assert channel.handlers["BRPOP"] == channel._brpop_read  # what the event loop calls for a BRPOP reply
        Queue("internals-empty")(channel).declare()
        channel.basic_consume("internals-empty", False, lambda message: None, "internals")
        connection.transport.cycle._register_BRPOP(channel)
        time.sleep(kombu_redis.Transport.brpop_timeout + 0.2)  # the server's nil reply is there
        with pytest.raises(queue.Empty):
            channel._brpop_read()
    assert parameters(kombu_redis.Channel._brpop_read) == ["options"]


def _brpop_start_and_disconnect_hook(_: RedisNode | None) -> None:
    assert parameters(kombu_redis.Channel._brpop_start) == ["timeout"]
    assert parameters(kombu_redis.Channel._on_connection_disconnect) == ["connection"]
    # the asynchronous (BRPOP) connection's disconnect tells the channel after redis-py's own disconnect
    assert "channel._on_connection_disconnect(self)" in inspect.getsource(kombu_redis.Channel._connparams)
    assert "self.connection.cycle" in inspect.getsource(kombu_redis.Channel._on_connection_disconnect)


def _close_reads_a_pending_brpop(_: RedisNode | None) -> None:
    source = inspect.getsource(kombu_redis.Channel.close)
    assert "if self._in_poll:" in source and "self._brpop_read()" in source and "except Empty" in source


def _connection_socket(node: RedisNode | None) -> None:
    assert node is not None
    connection = redis.Connection(host="127.0.0.1", port=node.port, password=node.password, socket_timeout=2)
    connection.connect()
    sock = connection._sock
    assert sock is not None and connection.pid == os.getpid() and connection.socket_timeout == 2
    connection._sock = None
    connection.disconnect()  # with no socket, redis-py closes nothing
    assert sock.fileno() != -1
    sock.close()


def _pool_connection_kwargs(node: RedisNode | None) -> None:
    assert node is not None
    pool = redis.ConnectionPool(host="127.0.0.1", port=node.port, password=node.password, socket_timeout=2)
    params = {k: v for k, v in pool.connection_kwargs.items() if not k.startswith(failover.POOL_OWN_PARAMETERS)}
    assert {"host", "port", "password", "socket_timeout"} <= set(params)
    connection = PrimaryConnection(**params, retry=None)  # what the name probe builds from a channel's pool
    connection.connect()
    assert connection.node is not None and connection.node.run_id
    connection.disconnect()


def _register_with_event_loop(_: RedisNode | None) -> None:
    assert parameters(kombu_redis.Transport.register_with_event_loop) == ["connection", "loop"]
    assert "self.cycle = MultiChannelPoller()" in inspect.getsource(kombu_redis.Transport.__init__)


def _pool_disconnect(node: RedisNode | None) -> None:
    assert node is not None
    pool = redis.ConnectionPool(host="127.0.0.1", port=node.port, password=node.password)
    in_use = pool.get_connection()
    in_use.connect()
    pool.disconnect()  # the default: in-use connections too (the BRPOP one is in use)
    assert in_use._sock is None


def _ensure_connection(_: RedisNode | None) -> None:
    assert parameters(Connection._ensure_connection) == [
        "errback",
        "max_retries",
        "interval_start",
        "interval_step",
        "interval_max",
        "callback",
        "reraise_as_library_errors",
        "timeout",
    ]


def _amqp_connection(_: RedisNode | None) -> None:
    from celery.app.amqp import AMQP

    assert AMQP.Connection is Connection
    assert "self.amqp.Connection(" in inspect.getsource(Celery._connection)


# -- kombu's SQS transport and event loop -------------------------------------------------------------------------
def _sqs_restore(_: RedisNode | None) -> None:
    assert parameters(SqsChannel._restore) == ["message", "unwanted_delivery_info"]
    assert parameters(SqsChannel.canonical_queue_name) == ["queue_name"]
    assert parameters(SqsChannel.sqs) == ["queue"]


def _sqs_receipt(_: RedisNode | None) -> None:
    payload = SqsChannel._envelope_payload(None, {"body": "x"}, "x", {"ReceiptHandle": "r-1"}, "https://q")
    info = payload["properties"]["delivery_info"]
    assert (info[sqs_handback.RECEIPT_KEYS[0]], info[sqs_handback.RECEIPT_KEYS[1]]) == (
        {"ReceiptHandle": "r-1"},
        "https://q",
    )


def _sqs_messages_ready(_: RedisNode | None) -> None:
    assert parameters(SqsChannel._on_messages_ready) == ["queue", "qname", "messages"]
    assert "self._on_messages_ready" in inspect.getsource(SqsChannel._get_async)  # every completed receive


def _consumer_qos(_: RedisNode | None) -> None:
    from celery.worker.consumer import tasks
    from kombu.common import QoS

    assert "c.qos = QoS(" in inspect.getsource(tasks.Tasks.start)
    assert QoS(lambda prefetch_count: None, 4).value == 4


def _beat_tick(_: RedisNode | None) -> None:
    from celery.beat import Service

    assert "self.scheduler.tick()" in inspect.getsource(Service.start)  # looked up on the instance: wrappable


def _http_client(_: RedisNode | None) -> None:
    hub = Hub()
    try:
        client = get_client(hub)
        assert hub._current_http_client is client
        assert len(client._curls) == len(client._free_list) and len(client._pending) == 0
    finally:
        hub.close()


# -- Celery ------------------------------------------------------------------------------------------------------
def _backend_get_pool(_: RedisNode | None) -> None:
    assert parameters(RedisBackend._get_pool) == ["params"]
    assert "connection_class" in inspect.getsource(RedisBackend.__init__)  # connparams carry the class


def _class_plus_url(_: RedisNode | None) -> None:
    backend, url = by_url(f"{failover.RESULT_BACKEND_CLASS}+redis://h:1/2")
    assert backend is failover.FailoverRedisBackend and url == "redis://h:1/2"


def _get_task_meta_for(_: RedisNode | None) -> None:
    assert parameters(BaseKeyValueStoreBackend._get_task_meta_for) == ["task_id"]


def _worker_state(_: RedisNode | None) -> None:
    for requests in (worker_state.reserved_requests, worker_state.active_requests):
        assert isinstance(requests, AbstractSet) and len(requests) == 0  # none outside a worker


def _request(_: RedisNode | None) -> None:
    assert (Request.time_start, Request.time_limits) == (None, (None, None))
    assert parameters(Request.cancel) == ["pool", "signal", "emit_retry"]
    assert parameters(Request.reject) == ["requeue"] and parameters(Request.acknowledge) == []
    assert Request.acknowledged is False  # set to True on the instance by acknowledge() and reject()
    message = SimpleNamespace(delivery_tag="tag")  # the running-task check reads request.message.delivery_tag
    assert isinstance(Request.message, property) and Request.message.fget(SimpleNamespace(_message=message)) is message


def _task_consumer(_: RedisNode | None) -> None:
    from celery.worker.consumer import tasks

    assert "c.task_consumer = c.app.amqp.TaskConsumer(" in inspect.getsource(tasks.Tasks.start)


def _soft_shutdown_reads_the_setting_late(_: RedisNode | None) -> None:
    conf = SimpleNamespace(worker_enable_soft_shutdown_on_idle=True, worker_soft_shutdown_timeout=0.3)
    worker = SimpleNamespace(app=SimpleNamespace(conf=conf))
    conf.worker_soft_shutdown_timeout = 0  # what the hand-back sets before it forwards SIGTERM
    started = time.monotonic()
    WorkController.wait_for_soft_shutdown(worker)
    assert time.monotonic() - started < 0.2


# -- redis-py ----------------------------------------------------------------------------------------------------
def _on_connect_check_health(_: RedisNode | None) -> None:
    assert parameters(AbstractConnection.on_connect_check_health) == ["check_health"]
    assert "on_connect_check_health" in inspect.getsource(AbstractConnection.on_connect)


def _readonly_from_read_response(node: RedisNode | None) -> None:
    assert node is not None
    node.control.replicaof("127.0.0.1", 1)  # a replica of nobody: writes get READONLY
    connection = redis.Connection(host="127.0.0.1", port=node.port, password=node.password)
    try:
        connection.send_command("SET", "k", "v")
        with pytest.raises(redis.exceptions.ReadOnlyError):
            connection.read_response()
    finally:
        connection.disconnect()
        node.control.replicaof("NO", "ONE")


INTERNALS = [
    Internal(
        "kombu.transport.redis.QoS.append(message, delivery_tag)",
        "FailoverRedisQoS wraps it to keep a message popped by BRPOP whose unacked record failed",
        _qos_append,
    ),
    Internal(
        "kombu.transport.redis.Channel._do_restore_message(payload, exchange, routing_key, pipe, leftmost)",
        "FailoverRedisChannel puts a kept message back at the head of its queue with kombu's own restore",
        _do_restore_message,
    ),
    Internal(
        "kombu.transport.redis.Channel._connparams(asynchronous)",
        "FailoverRedisChannel raises a connection error there once its transport is closed (kombu#582, #970)",
        _connparams,
    ),
    Internal(
        "kombu.transport.redis.Channel.connection_class (and connection_class_ssl)",
        "the class attributes kombu builds its pools with: how the transport's connections follow the primary",
        _connection_classes,
        needs_redis=True,
    ),
    Internal(
        "behaviour: kombu.Connection.collect() clears the transport's client",
        "the state FailoverRedisChannel._connparams detects to avoid kombu's 'NoneType' hostname crash",
        _collect_clears_client,
        needs_redis=True,
    ),
    Internal(
        "kombu.message.Message._raw",
        "the payload FailoverRedisQoS keeps, to push back exactly what was popped",
        _message_raw,
        needs_redis=True,
    ),
    Internal(
        "kombu.transport.redis: QoS._delivered (tag: message), _remove_from_indices(delivery_tag, pipe), ack, "
        "reject; Channel._lookup(exchange, routing_key), _get_message_priority(message, reverse); Message.ack "
        "reaches its channel's QoS",
        "FailoverRedisQoS restores a held message from its record or from its copy, and forgets the copy of one "
        "its task acknowledged",
        _held_messages,
        needs_redis=True,
    ),
    Internal(
        "kombu.transport.redis.Channel._q_for_pri(queue, pri), priority_steps, sep",
        "Beat's backlog metrics count every priority list of a class under kombu's own key names",
        _q_for_pri,
    ),
    Internal(
        "kombu.transport.redis.Channel.from_transport_options: unacked_key, unacked_index_key, unacked_mutex_key",
        "each class's workers keep their own record of messages in progress",
        _unacked_options,
    ),
    Internal(
        "kombu.transport.redis: MultiChannelPoller._channels, Channel._in_poll, _brpop_sent_at, cached subclient",
        "the silent-node check finds each channel's unanswered BRPOP and since when it waits",
        _brpop_state,
        needs_redis=True,
    ),
    Internal(
        "kombu.transport.redis.Channel._brpop_read(**options), handlers['BRPOP'], queue.Empty for a nil reply",
        "a worker's heartbeat: every BRPOP reply, a message or BRPOP's own time-out, is a broker round trip",
        _brpop_read,
        needs_redis=True,
    ),
    Internal(
        "kombu.transport.redis.Channel._brpop_start(timeout), _on_connection_disconnect(connection), called by the "
        "asynchronous connection's disconnect",
        "a connection knows its BRPOP is unanswered, and a socket handed to the dropped-BRPOP keeper leaves the poller",
        _brpop_start_and_disconnect_hook,
    ),
    Internal(
        "behaviour: kombu.transport.redis.Channel.close() reads a pending BRPOP with _brpop_read, Empty ignored",
        "on a node that does not answer, FailoverRedisChannel._brpop_read hands the socket over and raises Empty",
        _close_reads_a_pending_brpop,
    ),
    Internal(
        "redis.connection.Connection._sock, pid, socket_timeout; disconnect() closes nothing without _sock",
        "the socket of an unanswered BRPOP is taken out of its connection and kept open for the reply",
        _connection_socket,
        needs_redis=True,
    ),
    Internal(
        "redis.connection.ConnectionPool.connection_kwargs, with the pool's own maint_notifications*, orig_* and "
        "himport* entries",
        "the name probe opens one connection with a channel's parameters, outside its pool",
        _pool_connection_kwargs,
        needs_redis=True,
    ),
    Internal(
        "kombu.transport.redis.Transport.register_with_event_loop(connection, loop) and Transport.cycle",
        "where FailoverRedisTransport adds its silent-node check to the worker's event loop",
        _register_with_event_loop,
    ),
    Internal(
        "behaviour: redis.ConnectionPool.disconnect() closes connections in use",
        "closing a channel's pools also closes its BRPOP connection, which is in use",
        _pool_disconnect,
        needs_redis=True,
    ),
    Internal(
        "kombu.connection.Connection._ensure_connection(errback, max_retries, interval_start, interval_step, "
        "interval_max, callback, reraise_as_library_errors, timeout)",
        "SteadyReconnectConnection caps its pauses: every reconnection (the consumer's, the publish retry's) goes "
        "through it",
        _ensure_connection,
    ),
    Internal(
        "celery.app.amqp.AMQP.Connection, the class Celery._connection instantiates",
        "how configure() gives the app connections with a short reconnection back-off",
        _amqp_connection,
    ),
    Internal(
        "kombu.transport.SQS.Channel._restore(message, unwanted_delivery_info), canonical_queue_name, sqs",
        "the SQS hand-back replaces kombu's publish-again with a visibility of 0 on the received message",
        _sqs_restore,
    ),
    Internal(
        "kombu.transport.SQS delivery_info['sqs_message'], ['sqs_queue']",
        "the receipt handle and queue URL the hand-back needs",
        _sqs_receipt,
    ),
    Internal(
        "kombu.transport.SQS.Channel._on_messages_ready(queue, qname, messages), called by _get_async",
        "a worker's heartbeat with SQS: every completed receive is a broker round trip",
        _sqs_messages_ready,
    ),
    Internal(
        "celery.worker.consumer: consumer.qos (kombu.common.QoS) and its value",
        "a worker whose every prefetch slot holds a task polls nothing, and records its heartbeat as busy",
        _consumer_qos,
    ),
    Internal(
        "celery.beat.Service.start calls self.scheduler.tick() on the instance",
        "Beat's heartbeat: configure wraps the scheduler's tick, whichever scheduler class runs",
        _beat_tick,
    ),
    Internal(
        "kombu.asynchronous hub._current_http_client and its _curls, _free_list, _pending",
        "at SIGTERM a message is handed back only once this worker's own SQS long poll has returned",
        _http_client,
    ),
    Internal(
        "celery.backends.redis.RedisBackend._get_pool(**params) with params['connection_class']",
        "FailoverRedisBackend swaps in the connection class that follows the primary",
        _backend_get_pool,
    ),
    Internal(
        "behaviour: celery.app.backends.by_url splits a 'module:Class+' prefix off result_backend",
        "how the settings select FailoverRedisBackend with a plain Redis URL",
        _class_plus_url,
    ),
    Internal(
        "celery.backends.base.BaseKeyValueStoreBackend._get_task_meta_for(task_id)",
        "at SIGTERM a result is read once, without the retries of get_task_meta",
        _get_task_meta_for,
    ),
    Internal(
        "celery.worker.state.reserved_requests, active_requests",
        "scale-in protection and the SIGTERM hand-back read the main process's work in progress; a closing Redis "
        "channel keeps the messages it could not restore but those of running tasks",
        _worker_state,
    ),
    Internal(
        "celery.worker.request.Request: time_start, time_limits, acknowledged, cancel(pool, signal, emit_retry), "
        "reject(requeue), acknowledge(), message (its kombu message: delivery_tag)",
        "the SIGTERM hand-back decides per request, stops it without a RETRY and hands its message back",
        _request,
    ),
    Internal(
        "celery.worker.consumer: consumer.task_consumer",
        "the SIGTERM hand-back cancels it so no new message is taken",
        _task_consumer,
    ),
    Internal(
        "behaviour: WorkController.wait_for_soft_shutdown reads worker_soft_shutdown_timeout when it runs",
        "the hand-back sets it to 0 before it forwards SIGTERM, so Celery's cold shutdown does not wait again",
        _soft_shutdown_reads_the_setting_late,
    ),
    Internal(
        "redis.connection.AbstractConnection.on_connect_check_health(check_health), called by on_connect",
        "the connection that follows the primary asks ROLE there, after AUTH and SELECT",
        _on_connect_check_health,
    ),
    Internal(
        "behaviour: redis-py raises ReadOnlyError from Connection.read_response",
        "where the connection that follows the primary turns READONLY into a connection error",
        _readonly_from_read_response,
        needs_redis=True,
    ),
]


def test_the_list_names_each_internal_once_with_a_reason():
    assert len(INTERNALS) >= 20
    assert len({internal.name for internal in INTERNALS}) == len(INTERNALS)
    assert all(internal.why for internal in INTERNALS)


@pytest.mark.parametrize("internal", INTERNALS, ids=[internal.name for internal in INTERNALS])
def test_a_private_internal_is_what_the_package_needs(internal: Internal, request: pytest.FixtureRequest):
    node = request.getfixturevalue("lone_redis") if internal.needs_redis else None
    internal.check(node)


# -- the fallbacks: the stock behaviour, with one warning ---------------------------------------------------------
@pytest.fixture
def fresh_warnings(caplog):
    fallbacks._warned.clear()
    caplog.set_level("WARNING", logger="broker_tier.fallback")
    yield caplog
    fallbacks._warned.clear()


def _fallback_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "broker_tier.fallback"]


def test_a_connection_class_that_cannot_follow_the_primary_is_kept_with_one_warning(fresh_warnings):
    for _ in range(2):
        assert failover.following_primary(redis.UnixDomainSocketConnection) is redis.UnixDomainSocketConnection
    [line] = _fallback_lines(fresh_warnings)
    assert "UnixDomainSocketConnection" in line and "do not follow the primary" in line
    assert failover.following_primary(redis.Connection) is PrimaryConnection  # the usual case: no warning
    assert len(_fallback_lines(fresh_warnings)) == 1


def test_an_sqs_message_without_its_receipt_is_published_again_with_one_warning(fresh_warnings, monkeypatch):
    published = []
    monkeypatch.setattr(SqsChannel, "_restore", lambda self, message, unwanted: published.append(message))
    channel = object.__new__(sqs_handback.Channel)  # no SQS needed: the receipt check comes first
    for n in range(2):
        channel._restore(SimpleNamespace(delivery_info={"routing_key": "default", "n": n}))
    assert len(published) == 2
    [line] = _fallback_lines(fresh_warnings)
    assert "sqs_message and sqs_queue" in line and "may run twice" in line


def test_an_http_client_without_kombus_counters_counts_no_receive_with_one_warning(fresh_warnings, monkeypatch):
    hub = SimpleNamespace(_current_http_client=SimpleNamespace(curls=[]))  # a kombu that renamed them
    monkeypatch.setattr(shutdown, "get_event_loop", lambda: hub)
    assert [shutdown.receives_in_flight(), shutdown.receives_in_flight()] == [0, 0]
    [line] = _fallback_lines(fresh_warnings)
    assert "cannot count kombu's SQS receives in flight" in line


def test_a_consumer_without_a_task_consumer_is_not_cancelled_with_one_warning(fresh_warnings, monkeypatch):
    monkeypatch.setattr(shutdown.signal, "getsignal", lambda sig: None)
    consumer = SimpleNamespace(app=SimpleNamespace(conf=SimpleNamespace()))  # a Celery that renamed it
    for _ in range(2):
        shutdown.SigtermHandBack(consumer, None)._stop_consuming()
    [line] = _fallback_lines(fresh_warnings)
    assert "task_consumer" in line


def test_a_redis_channel_whose_brpop_replies_bypass_the_heartbeat_warns_once(fresh_warnings, lone_redis, monkeypatch):
    stock_init = kombu_redis.Channel.__init__

    def renamed(self, *args, **kwargs):  # a kombu that reads BRPOP replies with another method
        stock_init(self, *args, **kwargs)
        self.handlers = {**self.handlers, "BRPOP": lambda **options: None}

    monkeypatch.setattr(kombu_redis.Channel, "__init__", renamed)
    for _ in range(2):
        with Connection(_url(lone_redis), transport=FAILOVER_TRANSPORT) as connection:
            assert connection.default_channel is not None
    [line] = _fallback_lines(fresh_warnings)
    assert "heartbeat is not recorded" in line and "_brpop_read" in line


def test_an_sqs_channel_without_the_receive_hook_warns_once(fresh_warnings, monkeypatch):
    monkeypatch.setattr(SqsChannel, "__init__", lambda self, *args, **kwargs: None)
    monkeypatch.delattr(SqsChannel, "_on_messages_ready")  # a kombu that renamed it
    for _ in range(2):
        sqs_handback.Channel()
    [line] = _fallback_lines(fresh_warnings)
    assert "heartbeat is not recorded" in line and "_on_messages_ready" in line


def test_a_poller_without_its_channel_set_leaves_silence_to_kombus_own_check_with_one_warning(fresh_warnings):
    transport = SimpleNamespace(cycle=SimpleNamespace())  # a kombu whose poller keeps its channels elsewhere
    for _ in range(2):
        FailoverRedisTransport.drop_silent(transport)
    [line] = _fallback_lines(fresh_warnings)
    assert "no _channels" in line and "kombu's own check" in line


def test_an_unanswered_brpop_whose_node_is_unknown_is_left_by_time_with_one_warning(fresh_warnings):
    transport = SimpleNamespace(_probe=None)
    channel = SimpleNamespace(waited_on=lambda: None)  # a connection class that does not record its node
    for _ in range(2):
        assert FailoverRedisTransport._name_verdict(transport, channel) is failover.Verdict.MOVED
    [line] = _fallback_lines(fresh_warnings)
    assert "does not say which node it reached" in line
