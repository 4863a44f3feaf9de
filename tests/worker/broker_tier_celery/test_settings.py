"""The Celery settings package, per broker mode."""

from __future__ import annotations

import json
import ssl
import time

import pytest
from celery import Celery
from celery.app.backends import by_url
from kombu import Queue
from kombu.transport import redis as kombu_redis
from kombu.transport.redis import Transport as KombuRedisTransport
from settings_environ import QUEUES, environ

import broker_tier_contract as contract
from broker_tier.rehearsal.redis_pair import RedisNode
from broker_tier_celery import SettingsError, settings_from_environment, timeouts
from broker_tier_celery.failover import FailoverRedisBackend, FailoverRedisTransport, PrimarySSLConnection

UNACKED_OPTIONS = tuple(contract.redis_unacked_keys("any"))
"""kombu's transport options that name the record of messages in progress (hash, index, mutex)."""


def test_sqs_mode_uses_predefined_queues_and_leaves_failures_for_redrive():
    settings = settings_from_environment(environ())
    assert settings["broker_url"] == "sqs://"
    options = settings["broker_transport_options"]
    assert options["predefined_queues"] == {name: {"url": url} for name, url in QUEUES.items()}
    assert options["region"] == "eu-west-1" and "visibility_timeout" not in options
    assert settings["task_acks_late"] is True
    assert settings["task_acks_on_failure"] is False  # kombu keeps the message when the queue has a RedrivePolicy
    assert settings["task_reject_on_worker_lost"] is False  # a requeue on SQS would duplicate the message
    assert settings["task_acks_on_timeout"] is True
    assert settings["task_create_missing_queues"] is False
    # SQS mode keeps it: a Redis failover does not touch the broker connection
    assert settings["worker_cancel_long_running_tasks_on_connection_loss"] is True
    assert [q.name for q in settings["task_queues"]] == ["interactive", "default"]
    assert settings["task_default_queue"] == "default"


def test_common_hygiene_for_failover_publishing_and_shutdown():
    settings = settings_from_environment(environ())
    assert settings["broker_channel_error_retry"] is True
    assert settings["broker_connection_retry_on_startup"] is True
    policy = settings["task_publish_retry_policy"]
    assert settings["task_publish_retry"] is True
    # the reach it had at 10 retries of up to 3 s, with pauses capped at the reconnection cap
    assert policy["interval_max"] == timeouts.RECONNECT_INTERVAL_MAX_SECONDS
    pauses = [min(policy["interval_start"] + n * policy["interval_step"], policy["interval_max"]) for n in range(30)]
    assert policy["max_retries"] == 30 and sum(pauses[: policy["max_retries"]]) >= 19.5
    assert settings["result_expires"] == 86400
    # a result write retries through a name's move (the rehearsal's 5 s, AWS's failovers take longer), with pauses
    # no longer than the reconnection cap so that it does not add to the stall once the name has moved
    assert settings["result_backend_always_retry"] is True
    assert settings["result_backend_max_sleep_between_retries_ms"] <= 1000 * timeouts.RECONNECT_INTERVAL_MAX_SECONDS
    assert timeouts.result_store_expected_retry_seconds() >= 25
    # full jitter may draw short pauses: even six standard deviations below the mean, the retries outlast 10 s
    deviation = sum(ceiling**2 / 12 for ceiling in timeouts.result_store_pause_ceilings_seconds()) ** 0.5
    assert timeouts.result_store_expected_retry_seconds() - 6 * deviation >= 10
    assert (settings["task_time_limit"], settings["task_soft_time_limit"]) == (60, 50)
    assert settings["worker_soft_shutdown_timeout"] == 105.0
    assert settings["worker_prefetch_multiplier"] == 1
    assert settings["redis_socket_keepalive"] is True and settings["redis_retry_on_timeout"] is True


def test_result_backend_is_tls_with_the_auth_token_quoted_and_follows_the_primary():
    settings = settings_from_environment(environ())
    backend_class, url = by_url(settings["result_backend"])  # how Celery reads the setting
    # Celery's own Redis backend keeps writing to a demoted primary (a READONLY reply is not a
    # connection error): every result after a failover was lost in the rehearsal (failover.py)
    assert backend_class is FailoverRedisBackend
    assert url == "rediss://:tok%2Fen%40@master.broker-tier-dev.cache.amazonaws.com:6380/2?ssl_cert_reqs=required"
    assert settings["redis_backend_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def test_the_backend_pool_uses_the_connection_class_that_follows_the_primary():
    app = Celery("settings-test")
    app.conf.update(settings_from_environment(environ()))
    pool = app.backend.client.connection_pool
    assert pool.connection_class is PrimarySSLConnection  # TLS, as the URL says, and READONLY-aware


def test_redis_mode_uses_the_broker_db_and_requeues_lost_work():
    settings = settings_from_environment(environ(BROKER_TIER_BROKER="redis"))
    # kombu's Redis transport with connections that follow the primary and the work-around for
    # kombu's "'NoneType' object has no attribute 'hostname'" crash (celery/kombu#582, #970)
    app = Celery("settings-test")
    app.conf.update(settings)
    assert app.connection_for_write().get_transport_cls() is FailoverRedisTransport
    assert settings["broker_url"].startswith("rediss://:tok%2Fen%40@master.") and "/1?" in settings["broker_url"]
    assert settings["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    # without the class's visibility timeout (a producer, Beat) kombu's default
    assert settings["broker_transport_options"]["visibility_timeout"] == 3600
    assert settings["task_reject_on_worker_lost"] is True
    assert "predefined_queues" not in settings["broker_transport_options"]
    # a failover drops the broker connection: cancelling the tasks in flight ran them twice and
    # overwrote SUCCESS results with RETRY in the rehearsal (see the comment in settings.py)
    assert settings["worker_cancel_long_running_tasks_on_connection_loss"] is False


STALL_ALLOWANCE_SECONDS = 5
"""The goal: a silent primary stalls work at most the name's move plus this (integration/test_silent_primary.py)."""


def test_redis_mode_bounds_every_wait_on_a_silent_primary_within_the_goal():
    settings = settings_from_environment(environ(BROKER_TIER_BROKER="redis"))
    options = settings["broker_transport_options"]
    # kombu's defaults are None: a publish to a primary whose packets vanish would wait about 15 minutes
    broker = (options["socket_connect_timeout"], options["socket_timeout"])
    assert broker == (timeouts.REDIS_CONNECT_TIMEOUT_SECONDS, timeouts.REDIS_SOCKET_TIMEOUT_SECONDS)
    assert (settings["redis_socket_connect_timeout"], settings["redis_socket_timeout"]) == broker  # results too
    assert options["retry_on_timeout"] and settings["redis_retry_on_timeout"]  # the retry goes through the name
    # once the name moved: a try that reached the silent node ends, at most one reconnection pause, a try that
    # reaches the new primary
    after_the_move = sum(broker) + timeouts.RECONNECT_INTERVAL_MAX_SECONDS
    assert after_the_move == timeouts.stall_after_the_name_moves_seconds() <= STALL_ALLOWANCE_SECONDS
    # an idle consumer is not cut off: kombu's BRPOP gives the server its own, shorter time-out; one that waits
    # past it on a silent node leaves it within the goal too
    assert FailoverRedisTransport.brpop_timeout == KombuRedisTransport.brpop_timeout == timeouts.BRPOP_TIMEOUT_SECONDS
    assert timeouts.BRPOP_TIMEOUT_SECONDS < options["socket_timeout"]
    assert timeouts.silent_brpop_detected_seconds() <= STALL_ALLOWANCE_SECONDS
    assert "polling_interval" not in options  # which would replace brpop_timeout (kombu's Transport.__init__)


def test_redis_mode_holds_a_message_as_long_as_the_class_visibility_timeout_so_an_eta_is_not_run_twice():
    # the class's visibility timeout covers time limit + longest ETA + 60 s (config/queues.py); kombu
    # hands out a message still un-acked after it again, so time limit + 60 alone would rerun ETA tasks
    settings = settings_from_environment(environ(BROKER_TIER_BROKER="redis", BROKER_TIER_VISIBILITY_TIMEOUT="4200"))
    assert settings["broker_transport_options"]["visibility_timeout"] == 4200
    sqs = settings_from_environment(environ(BROKER_TIER_VISIBILITY_TIMEOUT="4200"))
    assert "visibility_timeout" not in sqs["broker_transport_options"]  # SQS: the queue's own attribute


def test_a_redis_worker_keeps_its_messages_in_progress_in_its_own_class_record_and_beat_in_kombus_default():
    worker = settings_from_environment(environ(BROKER_TIER_BROKER="redis", BROKER_TIER_QUEUE="default"))
    options = worker["broker_transport_options"]
    assert {name: options[name] for name in UNACKED_OPTIONS} == {
        "unacked_key": "unacked:default",
        "unacked_index_key": "unacked_index:default",
        "unacked_mutex_key": "unacked_mutex:default",
    }
    assert set(UNACKED_OPTIONS) <= set(kombu_redis.Channel.from_transport_options)  # names kombu reads
    # Beat and producers consume nothing: kombu's default keys ('unacked', ...), which they never scan
    beat = settings_from_environment(environ(BROKER_TIER_BROKER="redis", BROKER_TIER_QUEUE=None))
    assert not set(UNACKED_OPTIONS) & set(beat["broker_transport_options"])
    sqs = settings_from_environment(environ(BROKER_TIER_QUEUE="default"))
    assert not set(UNACKED_OPTIONS) & set(sqs["broker_transport_options"])


LONG_VISIBILITY_SECONDS, SHORT_VISIBILITY_SECONDS = 30, 1


def _broker_app(node: RedisNode, queue: str, visibility_seconds: int, *, class_record: bool) -> Celery:
    """A Celery app configured as a worker of ``queue`` on the loopback node; ``class_record=False``: with
    kombu's default, shared record of messages in progress instead of its class's own (the defect)."""
    settings = settings_from_environment(
        environ(
            BROKER_TIER_BROKER="redis",
            BROKER_TIER_QUEUE=queue,
            BROKER_TIER_VISIBILITY_TIMEOUT=str(visibility_seconds),
            BROKER_TIER_QUEUE_URLS=json.dumps({"interactive": "unused", "batch": "unused"}),
            BROKER_TIER_REDIS_HOST="127.0.0.1",
            BROKER_TIER_REDIS_PORT=str(node.port),
            BROKER_TIER_REDIS_TLS="false",
            BROKER_TIER_REDIS_AUTH_TOKEN=node.password,
        )
    )
    if not class_record:
        for name in UNACKED_OPTIONS:
            settings["broker_transport_options"].pop(name, None)
    app = Celery(f"{queue}-worker")
    app.conf.update(settings)
    return app


@pytest.mark.parametrize(
    "class_record, batch_restored", [(True, False), (False, True)], ids=["class-record", "kombu-default-shared-record"]
)
def test_a_short_class_worker_does_not_hand_out_a_long_class_task_still_running(
    lone_redis, class_record, batch_restored
):
    """A batch worker (30 s visibility timeout) holds a message it received and has not acknowledged (its task
    runs); an interactive worker (1 s) runs kombu's periodic restore (``QoS.restore_visible``) more than 1 s
    later. With kombu's shared record the interactive worker puts the batch message back in its queue, to run
    a second time; with each class's own record it restores only an interactive message past its 1 s."""
    broker = lone_redis.client(int(environ()["BROKER_TIER_REDIS_DB_BROKER"]))
    batch_app = _broker_app(lone_redis, "batch", LONG_VISIBILITY_SECONDS, class_record=class_record)
    interactive_app = _broker_app(lone_redis, "interactive", SHORT_VISIBILITY_SECONDS, class_record=class_record)
    with batch_app.connection_for_write() as batch, interactive_app.connection_for_write() as interactive:
        held = {}
        for name, connection in (("batch", batch), ("interactive", interactive)):
            channel = connection.default_channel  # the project's transport: FailoverRedisChannel and its QoS
            assert isinstance(channel.qos, FailoverRedisTransport.Channel.QoS)
            Queue(name)(channel).declare()
            connection.Producer(channel).publish({"class": name}, routing_key=name)
            held[name] = channel.basic_get(name, no_ack=False)  # received, not acked: in the record
            assert held[name] is not None and broker.llen(name) == 0
        record = {
            name: contract.redis_unacked_keys(name)["unacked_key"] if class_record else "unacked" for name in held
        }
        assert broker.hexists(record["batch"], held["batch"].delivery_tag)
        time.sleep(SHORT_VISIBILITY_SECONDS + 0.2)
        interactive.default_channel.qos.restore_visible(num=10, interval=1)  # the periodic scan, unthrottled
        assert broker.llen("interactive") == 1  # its own class's message, past its timeout: restored
        assert broker.llen("batch") == int(batch_restored)
        assert broker.hexists(record["batch"], held["batch"].delivery_tag) is not batch_restored
        held["batch"].ack()  # the batch task ends; closing would otherwise restore it
    assert broker.llen("batch") == int(batch_restored)  # with the shared record: it runs again


def test_local_sqs_endpoint_for_tests():
    settings = settings_from_environment(environ(BROKER_TIER_SQS_ENDPOINT_URL="http://127.0.0.1:5123"))
    assert settings["broker_url"] == "sqs://@127.0.0.1:5123"
    assert settings["broker_transport_options"]["is_secure"] is False


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"BROKER_TIER_QUEUE_URLS": None}, "BROKER_TIER_QUEUE_URLS is required"),
        ({"BROKER_TIER_QUEUE_URLS": "not json"}, "not JSON"),
        ({"BROKER_TIER_BROKER": "rabbitmq"}, "'rabbitmq' is not 'sqs' or 'redis'"),
        ({"BROKER_TIER_QUEUE": "batch"}, "'batch' is not one of the declared classes"),
        ({"BROKER_TIER_REDIS_PORT": "six"}, "BROKER_TIER_REDIS_PORT = 'six' is not an integer"),
        ({"BROKER_TIER_REDIS_TLS": "maybe"}, "not 'true' or 'false'"),
    ],
)
def test_bad_environment_is_refused_naming_the_variable(overrides, message):
    with pytest.raises(SettingsError, match=message):
        settings_from_environment(environ(**overrides))
