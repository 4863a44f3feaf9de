"""Redis connections that follow the primary endpoint through a failover.

After an ElastiCache failover the old primary comes back as a replica, and every connection still
open to it answers writes with ``READONLY You can't write against a read only replica``. redis-py
treats that as an ordinary reply (``ReadOnlyError``, a ``ResponseError``): the connection stays
open and goes back to its pool, and its health check (a PING, which a replica answers) keeps
passing. Neither Celery's result backend nor kombu retries a ``ResponseError``, so, as the
rehearsal shows (``broker-tier-ops rehearse``), a worker keeps writing its results to the demoted
node until it restarts: every result is lost, and on SQS the succeeded tasks stay un-acked, run
again at each visibility timeout and end in the dead-letter queue. With the Redis broker the same
reply reaches callers of ``apply_async``: the publish retry reconnects once, the reconnect reaches
the demoted node again (the DNS name has not moved yet) and "succeeds", and kombu re-raises.

The connection classes here do what redis-py's own Sentinel support does for a demoted master
(``SentinelManagedConnection.read_response`` in ``redis/sentinel.py``): on ``READONLY`` they drop
the connection and raise ``ConnectionError``; and on connect they refuse a node that is not the
primary (``ROLE``), so a reconnect fails until the name has moved. Every retry that already covers
connection errors (Celery's result backend retry, the publish retry, the worker's reconnect) now
covers the failover too. On ElastiCache's primary endpoint ``READONLY`` and a replica's ``ROLE``
have no other meaning. They are installed by a result backend class and, with the Redis broker, a
kombu transport (both here) that the settings package names in ``result_backend`` and
``broker_transport``. The transport's channel also works around kombu's "'NoneType' object has no
attribute 'hostname'" crash after a power loss (:class:`FailoverRedisChannel`), and keeps a message that a
failover or a full Redis would otherwise lose between taking it off its queue and recording it as
unacknowledged (:class:`FailoverRedisQoS`).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque

from celery.backends.redis import RedisBackend
from kombu.transport import redis as kombu_redis
from redis.connection import Connection, SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.utils import str_if_bytes

from broker_tier_celery.naming import qualified_name

REACHED_REPLICA = "the primary endpoint reached a replica: a failover is under way and its DNS name has not moved yet"
TRANSPORT_CLOSED = "the broker connection was closed after a connection error; cannot reconnect this channel"
DEMOTED_PRIMARY = (
    "READONLY: this connection reaches a node that is no longer the primary (a failover demoted "
    "it); reconnecting through the primary endpoint"
)

logger = logging.getLogger("broker_tier.failover")


class _FollowsPrimary:
    """Mixin for a redis-py connection class: a connection must reach the primary.

    - On connect (after AUTH and SELECT) it asks ``ROLE`` and refuses a replica with
      ``ConnectionError``: until the endpoint's DNS name moves, a reconnect reaches the demoted node,
      whose PING succeeds, so without this check a reconnect "succeeds" and the next write fails
      again (kombu's publish retry then gives up: it re-raises an error that persists after a
      successful reconnect on transports without error classes, ``kombu.Connection.ensure``).
      Refused, the reconnect is retried at the retry policy's intervals until the name has moved.
    - A ``READONLY`` reply on an open connection closes it and becomes ``ConnectionError``.
    """

    def on_connect_check_health(self, *args, **kwargs):
        super().on_connect_check_health(*args, **kwargs)
        self.send_command("ROLE")
        role = self.read_response()
        if str_if_bytes(role[0]) != "master":
            self.disconnect()
            raise RedisConnectionError(REACHED_REPLICA)

    def read_response(self, *args, **kwargs):
        try:
            return super().read_response(*args, **kwargs)
        except ReadOnlyError:
            self.disconnect()
            raise RedisConnectionError(DEMOTED_PRIMARY) from None


class PrimaryConnection(_FollowsPrimary, Connection):
    """A plain TCP connection to the primary endpoint (tests; the stack always uses TLS)."""


class PrimarySSLConnection(_FollowsPrimary, SSLConnection):
    """A TLS connection to the primary endpoint."""


FOLLOWING = {Connection: PrimaryConnection, SSLConnection: PrimarySSLConnection}


def following_primary(connection_class: type) -> type:
    """The class that follows the primary in place of ``connection_class`` (itself if it already does
    or if it is neither of redis-py's TCP classes, e.g. a Unix socket)."""
    return FOLLOWING.get(connection_class, connection_class)


class FailoverRedisBackend(RedisBackend):
    """Celery's Redis result backend, with connections that follow the primary."""

    def _get_pool(self, **params):
        params["connection_class"] = following_primary(params.get("connection_class", Connection))
        return super()._get_pool(**params)


_unrecorded: deque[tuple[dict, str, str]] = deque()
"""(payload, exchange, routing key) of every message this process took off its queue but could not record
as unacknowledged, oldest first; :meth:`FailoverRedisChannel.put_back_unrecorded` empties it."""
_unrecorded_lock = threading.Lock()


def _forget_in_child() -> None:
    """A forked process (a prefork pool child) took none of those messages: only the process that took
    one puts it back (a child that publishes opens channels too)."""
    global _unrecorded_lock
    _unrecorded.clear()
    _unrecorded_lock = threading.Lock()  # a copy held by another thread of the parent would never be released


os.register_at_fork(after_in_child=_forget_in_child)


def _task_id(payload: dict) -> str:
    """The Celery task id of a message payload (protocol 2 carries it in the headers), or a placeholder."""
    headers = payload.get("headers") if isinstance(payload, dict) else None
    return str((headers or {}).get("id") or "(no task id)")


def _warn_of_kept_messages_at_exit() -> None:
    """A message still kept when the process exits exists nowhere else (not in its queue, not in the unacked
    hash): say which tasks are lost, so they are not lost silently and can be sent again."""
    with _unrecorded_lock:
        kept = list(_unrecorded)
    if kept:
        logger.warning(
            "exiting with %d message(s) taken off their queues that could not be put back (Redis kept "
            "refusing the write): lost unless sent again; task ids: %s",
            len(kept),
            ", ".join(f"{_task_id(payload)} (queue {routing_key!r})" for payload, _, routing_key in kept),
        )


atexit.register(_warn_of_kept_messages_at_exit)


class FailoverRedisQoS(kombu_redis.QoS):
    """kombu's Redis acknowledgement emulation, keeping a message it could not record as unacknowledged.

    kombu takes a message off its queue with ``BRPOP`` and only then, with a second command, records it
    in the unacked hash (the channel's ``unacked_key``: with the settings package, the worker's class's
    own); the two are not atomic (celery/kombu#305). When a failover demotes the
    primary, or it loses power, between the two, the pop has already reached the replica but the record
    fails (``READONLY``, here a connection error): the message is in neither the queue nor the hash, and
    the consumer, restarting on the connection error, drops it. The rehearsal (redis broker, promote)
    lost such a message about once in ten runs. The same happens when Redis is full: with ``noeviction``
    BRPOP still pops (it is not denied on OOM) but the record is refused (``OutOfMemoryError``, a
    ``ResponseError``: a channel error, on which ``broker_channel_error_retry`` restarts the consumer, whose
    next BRPOP pops the next message). So on any Redis error the message is kept in this process and put
    back at the head of its queue by the next channel that can write. If the pop had not reached the new
    primary, the message runs twice: a duplicate beats a loss (``task_acks_late`` promises at least once).
    """

    def append(self, message, delivery_tag):
        try:
            super().append(message, delivery_tag)
        except (*self.channel.connection_errors, RedisError) as error:
            delivery = message.delivery_info
            with _unrecorded_lock:
                _unrecorded.append((message._raw, delivery["exchange"], delivery["routing_key"]))
            logger.warning(
                "a message taken off queue %r could not be recorded as unacknowledged (%s): kept, to "
                "be put back at the head of its queue once Redis takes writes again",
                delivery["routing_key"],
                error,
            )
            raise


class FailoverRedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, with connections that follow the primary, putting back what
    :class:`FailoverRedisQoS` kept as soon as it is connected, and with a work-around for kombu's
    "'NoneType' object has no attribute 'hostname'" crash (celery/kombu#582, #970).

    The crash, as the rehearsal meets it after a power loss: Celery's consumer handles the broken
    connection with ``Connection.collect()``, which clears the transport's ``client`` even when a
    channel could not be closed (its close raised a connection error on the dead socket, and that
    aborted closing the rest); ``Connection.close()`` then closes that channel, whose restore of its
    unacked messages builds a new connection pool from the transport's ``client``: AttributeError,
    which no ``ignore_errors`` expects, so the worker stops ("Unrecoverable error"). kombu 5.7.0, the
    newest release, still does this. Here a channel whose transport is closed raises a connection
    error instead, which those close paths ignore as designed: the messages stay in the unacked
    hash, and the visibility timeout brings them back, as for any worker that vanished.
    """

    QoS = FailoverRedisQoS
    connection_class = PrimaryConnection
    connection_class_ssl = PrimarySSLConnection

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # connected: its PING reached the primary (the ROLE check)
        self.put_back_unrecorded()

    def put_back_unrecorded(self) -> None:
        """Put every message of :class:`FailoverRedisQoS`'s list back at the head of its queue (one at a time,
        each removed from the list once pushed). A Redis error (a full Redis refuses the push too, a connection
        error) leaves the rest for the next channel, with one warning: it must not fail the channel's
        creation, which kombu has registered by then (a raise would leak its connection pool, a socket per
        consumer restart, while the messages wait in this process either way)."""
        with _unrecorded_lock:
            while _unrecorded:
                payload, exchange, routing_key = _unrecorded[0]
                try:
                    with self.conn_or_acquire() as client, client.pipeline() as pipe:
                        self._do_restore_message(payload, exchange, routing_key, pipe, leftmost=False)
                        pipe.execute()
                except (*self.connection_errors, RedisError) as error:  # the error's text quotes the payload
                    logger.warning(
                        "could not put %d kept message(s) back on their queues (%s): kept, to try "
                        "again with the next channel",
                        len(_unrecorded),
                        type(error).__name__,
                    )
                    return
                _unrecorded.popleft()
                logger.warning(
                    "put a message back at the head of queue %r (it could not be recorded as unacknowledged before)",
                    routing_key,
                )

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            raise RedisConnectionError(TRANSPORT_CLOSED)
        return super()._connparams(asynchronous=asynchronous)


class FailoverRedisTransport(kombu_redis.Transport):
    """kombu's Redis transport, with :class:`FailoverRedisChannel`."""

    Channel = FailoverRedisChannel


RESULT_BACKEND_CLASS = qualified_name(FailoverRedisBackend)
"""For ``result_backend = "<class>+rediss://..."`` (Celery's ``by_url`` splits a ``+`` prefix off the scheme)."""
BROKER_TRANSPORT_CLASS = qualified_name(FailoverRedisTransport)
"""For ``broker_transport``: kombu uses an explicit transport over the one a URL's scheme names."""
