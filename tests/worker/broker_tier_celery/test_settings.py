"""The Celery settings package, per broker mode."""

from __future__ import annotations

import ssl

import pytest

from celery import Celery
from celery.app.backends import by_url
from kombu.transport.redis import Transport as KombuRedisTransport

from broker_tier_celery import SettingsError, settings_from_environment
from broker_tier_celery.failover import FailoverRedisBackend, FailoverRedisTransport, PrimarySSLConnection
from settings_environ import QUEUES, environ


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
    assert settings["task_publish_retry"] is True and settings["task_publish_retry_policy"]["max_retries"] == 10
    assert settings["result_expires"] == 86400
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


def test_redis_mode_bounds_every_broker_command_and_connect_so_a_blackholed_primary_cannot_hang_a_caller():
    options = settings_from_environment(environ(BROKER_TIER_BROKER="redis"))["broker_transport_options"]
    # kombu's defaults are None: a publish to a primary whose packets vanish would wait about 15 minutes
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (10, 5)
    # an idle consumer is not cut off: kombu's BRPOP gives the server its own, shorter time-out
    assert FailoverRedisTransport.brpop_timeout == KombuRedisTransport.brpop_timeout < options["socket_timeout"]
    assert "polling_interval" not in options  # which would replace brpop_timeout (kombu's Transport.__init__)


def test_redis_mode_holds_a_message_as_long_as_the_class_visibility_timeout_so_an_eta_is_not_run_twice():
    # the class's visibility timeout covers time limit + longest ETA + 60 s (config/queues.py); kombu
    # hands out a message still un-acked after it again, so time limit + 60 alone would rerun ETA tasks
    settings = settings_from_environment(environ(BROKER_TIER_BROKER="redis", BROKER_TIER_VISIBILITY_TIMEOUT="4200"))
    assert settings["broker_transport_options"]["visibility_timeout"] == 4200
    sqs = settings_from_environment(environ(BROKER_TIER_VISIBILITY_TIMEOUT="4200"))
    assert "visibility_timeout" not in sqs["broker_transport_options"]  # SQS: the queue's own attribute


def test_local_sqs_endpoint_for_tests():
    settings = settings_from_environment(environ(BROKER_TIER_SQS_ENDPOINT_URL="http://127.0.0.1:5123"))
    assert settings["broker_url"] == "sqs://@127.0.0.1:5123"
    assert settings["broker_transport_options"]["is_secure"] is False


@pytest.mark.parametrize("overrides,message", [
    ({"BROKER_TIER_QUEUE_URLS": None}, "BROKER_TIER_QUEUE_URLS is required"),
    ({"BROKER_TIER_QUEUE_URLS": "not json"}, "not JSON"),
    ({"BROKER_TIER_BROKER": "rabbitmq"}, "'rabbitmq' is not 'sqs' or 'redis'"),
    ({"BROKER_TIER_QUEUE": "batch"}, "'batch' is not one of the declared classes"),
    ({"BROKER_TIER_REDIS_PORT": "six"}, "BROKER_TIER_REDIS_PORT = 'six' is not an integer"),
    ({"BROKER_TIER_REDIS_TLS": "maybe"}, "not 'true' or 'false'"),
])
def test_bad_environment_is_refused_naming_the_variable(overrides, message):
    with pytest.raises(SettingsError, match=message):
        settings_from_environment(environ(**overrides))
