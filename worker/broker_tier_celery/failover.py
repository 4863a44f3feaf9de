"""Redis connections that follow the primary endpoint through a failover
(docs/decisions/connections-follow-the-primary.md).

A connection refuses a node that is not the primary (``ROLE`` on connect) and turns ``READONLY`` into a
connection error, as redis-py's Sentinel support does for a demoted master; every retry that covers connection
errors then covers a failover too. The result backend and the Redis broker's transport use them.

A worker leaves a node whose BRPOP goes unanswered once the endpoint's name leads elsewhere, and never loses what an
unanswered BRPOP's node sends after its connection was dropped (docs/decisions/silent-node-confirmed-by-identity.md).
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from queue import Empty
from typing import TYPE_CHECKING, Any

from celery.backends.redis import RedisBackend
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.retry import Retry

from broker_tier_celery import heartbeat
from broker_tier_celery.dropped_brpop import dropped
from broker_tier_celery.fallbacks import warn_once
from broker_tier_celery.name_probe import Node, Probe, Verdict, node_from_replies
from broker_tier_celery.naming import qualified_name
from broker_tier_celery.timeouts import (
    BRPOP_CHECK_PERIOD_SECONDS,
    BRPOP_SILENCE_SECONDS,
    NAME_PROBE_REPLY_TIMEOUT_SECONDS,
    NAME_PROBE_WAIT_SECONDS,
    REDIS_CONNECT_TIMEOUT_SECONDS,
    UNRECORDED_PUT_BACK_PERIOD_SECONDS,
)

REACHED_REPLICA = "the primary endpoint reached a replica: a failover is under way and its DNS name has not moved yet"
TRANSPORT_CLOSED = "the broker connection was closed after a connection error; cannot reconnect this channel"
DEMOTED_PRIMARY = (
    "READONLY: this connection reaches a node that is no longer the primary (a failover demoted "
    "it); reconnecting through the primary endpoint"
)

logger = logging.getLogger("broker_tier.failover")

POOL_OWN_PARAMETERS = ("maint_notifications", "orig_", "himport")
"""Prefixes of the entries redis-py's pool adds to its connections' parameters for itself (not for a connection
opened outside it, as the name probe's)."""

SILENT_NODE_TIMER = "_broker_tier_silent_node_tref"
"""The poller's attribute holding the event loop's entry for :meth:`FailoverRedisTransport.drop_silent`."""

if TYPE_CHECKING:
    _ConnectionBase = Connection
else:
    _ConnectionBase = object


class _FollowsPrimary(_ConnectionBase):
    """Mixin for redis-py's connection classes: refuse a replica on connect, drop a connection on READONLY, and
    hand the socket of an unanswered BRPOP to :data:`dropped_brpop.dropped` instead of closing it."""

    node: Node | None = None
    """The node this connection reached (set on connect)."""
    brpop_pending = False
    """A BRPOP was sent on this connection and nothing of its reply read yet (set by FailoverRedisChannel)."""

    def on_connect_check_health(self, check_health: bool = True) -> None:
        super().on_connect_check_health(check_health=check_health)
        # a replica answers PING: without ROLE a reconnect to the demoted node would "succeed"; INFO's run_id names
        # the node for the silent-node check (both in one round trip)
        self.send_command("ROLE")
        self.send_command("INFO", "server")
        role, info = self.read_response(), self.read_response()
        self.node = node_from_replies(role, info, self._sock)
        if self.node.role != "master":
            self.disconnect()
            raise RedisConnectionError(REACHED_REPLICA)

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        sock, pending = self._sock, self.brpop_pending
        self.brpop_pending = False
        if pending and sock is not None and os.getpid() == self.pid:  # a forked child's copy is the parent's
            self._sock = None  # redis-py then closes nothing
            self.handed_off = sock
            dropped.keep(sock, _keep_unplaced)
        super().disconnect(*args, **kwargs)  # type: ignore[no-untyped-call]  # redis-py: unannotated

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except ReadOnlyError:
            self.disconnect()
            raise RedisConnectionError(DEMOTED_PRIMARY) from None


class PrimaryConnection(_FollowsPrimary, Connection):
    """A plain TCP connection to the primary endpoint (tests; the stack always uses TLS)."""


class PrimarySSLConnection(_FollowsPrimary, SSLConnection):
    """A TLS connection to the primary endpoint."""


FOLLOWING: dict[type[Connection], type[Connection]] = {
    Connection: PrimaryConnection,
    SSLConnection: PrimarySSLConnection,
}


def following_primary(connection_class: type[Connection]) -> type[Connection]:
    """The class that follows the primary in place of ``connection_class`` (itself if it already does)."""
    if issubclass(connection_class, _FollowsPrimary):
        return connection_class
    following = FOLLOWING.get(connection_class)
    if following is None:  # e.g. a Unix socket: no failover to follow, but say so
        warn_once(
            f"connection-class:{qualified_name(connection_class)}",
            "Redis connection class %s is not one of redis-py's TCP classes: its connections do not follow the "
            "primary through a failover",
            qualified_name(connection_class),
        )
        return connection_class
    return following


class FailoverRedisBackend(RedisBackend):  # type: ignore[misc]  # celery has no type information
    """Celery's Redis result backend, with connections that follow the primary."""

    def _get_pool(self, **params: Any) -> Any:
        params["connection_class"] = following_primary(params.get("connection_class", Connection))
        return super()._get_pool(**params)


Kept = tuple[dict[str, Any], str, str]
"""A message this process took off its queue and could not record: (payload, exchange, routing key)."""
_unrecorded: deque[Kept] = deque()
"""Oldest first; :meth:`FailoverRedisChannel.put_back_unrecorded` empties it."""
_unrecorded_lock = threading.Lock()
_unrestored: deque[tuple[str, str, Kept]] = deque()
"""(unacked record's key, delivery tag, this process's copy) of each message this process held when its channel
closed and whose restore Redis refused (a full Redis, a demoted or silent node): put back by the next channel of the
same record, from the record or, if a failover lost it, from the copy."""

QUEUED_COPY_SCAN_LENGTH = 10_000
"""How many messages at the head of a queue (where one a failover left queued stays) are searched for a held
message's delivery tag before its copy is put back (at least 1)."""

PUT_BACK_UNLESS_QUEUED = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'recorded' end
local unchecked = false
for i = 2, #KEYS do
  for _, item in ipairs(redis.call('LRANGE', KEYS[i], -tonumber(ARGV[2]), -1)) do
    if string.find(item, ARGV[1], 1, true) then return 'queued' end
  end
  if redis.call('LLEN', KEYS[i]) > tonumber(ARGV[2]) then unchecked = true end
end
for i = 2, #KEYS do redis.call('RPUSH', KEYS[i], ARGV[3]) end
if unchecked then return 'put back unchecked' end
return 'put back'
"""
"""KEYS: the unacked record, then the lists the message belongs in; ARGV: its delivery tag, the scan length, the
payload. Atomic: a consumer that takes the queued message and records it meanwhile is seen."""


def _keep_unplaced(key: bytes, body: bytes) -> None:
    """A message a dropped BRPOP's node sent and took back no more: kept, for the next put-back."""
    try:
        payload = loads(body)
        delivery = payload["properties"]["delivery_info"]
        kept = (payload, delivery["exchange"], delivery["routing_key"])
    except (ValueError, TypeError, KeyError):
        logger.error("a message from list %r is not kombu's (no delivery_info): lost", key.decode(errors="replace"))
        return
    with _unrecorded_lock:
        _unrecorded.append(kept)


def _forget_unrestored(delivery_tag: str) -> None:
    """A message acknowledged or rejected by its task is never put back from a copy."""
    with _unrecorded_lock:
        kept = [entry for entry in _unrestored if entry[1] != delivery_tag]
        if len(kept) != len(_unrestored):
            _unrestored.clear()
            _unrestored.extend(kept)


def _copy_of(message: Any) -> Kept:
    delivery = message.delivery_info
    return message._raw, delivery["exchange"], delivery["routing_key"]


def _forget_in_child() -> None:
    """Only the process that took a message puts it back (a prefork child opens channels too)."""
    global _unrecorded_lock
    _unrecorded.clear()
    _unrestored.clear()
    _unrecorded_lock = threading.Lock()  # a copy held by another thread of the parent would never be released


os.register_at_fork(after_in_child=_forget_in_child)


def _task_id(payload: dict[str, Any]) -> str:
    """The Celery task id of a message payload (protocol 2 carries it in the headers), or a placeholder."""
    headers = payload.get("headers") if isinstance(payload, dict) else None
    return str((headers or {}).get("id") or "(no task id)")


def _warn_of_kept_messages_at_exit() -> None:
    """A message still kept at exit exists nowhere else: name its task, so it can be sent again."""
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
    """kombu's acknowledgement emulation, keeping a message popped but not recorded as unacknowledged (a failover
    or a full Redis between BRPOP and the record: docs/decisions/keep-messages-whose-unacked-record-fails.md)."""

    def append(self, message: Any, delivery_tag: str) -> None:
        try:
            super().append(message, delivery_tag)  # type: ignore[no-untyped-call]  # kombu: unannotated
        except (*self.channel.connection_errors, RedisError) as error:
            copy = _copy_of(message)
            with _unrecorded_lock:
                _unrecorded.append(copy)
            logger.warning(
                "a message taken off queue %r could not be recorded as unacknowledged (%s): kept, to "
                "be put back at the head of its queue once Redis takes writes again",
                message.delivery_info["routing_key"],
                error,
            )
            raise

    def ack(self, delivery_tag: str) -> None:
        _forget_unrestored(delivery_tag)
        super().ack(delivery_tag)  # type: ignore[no-untyped-call]  # kombu: unannotated

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        _forget_unrestored(delivery_tag)
        super().reject(delivery_tag, requeue)  # type: ignore[no-untyped-call]  # kombu: unannotated

    def restore_unacked(self, client: Any = None) -> None:
        """kombu's restore of the messages this channel holds (at its close, e.g. when the consumer restarts), one by
        one, each with its copy (:meth:`restore_held`). A message Redis will not take back now (a full Redis, or a
        node a failover demoted or silenced) is kept for the next channel, which restores it once it reaches a
        writable primary and its task is not running, instead of leaving it to wait a whole visibility timeout
        (docs/decisions/restore-held-messages-on-the-next-channel.md)."""
        delivered: Any = self._delivered  # kombu declares it None on the class, sets a dict per instance
        refused: list[tuple[str, Kept]] = []
        error: Exception | None = None
        for tag, message in list(delivered.items()):
            copy = _copy_of(message)
            if error is None:
                try:
                    self.restore_held(tag, copy, client=client)
                    continue
                except OutOfMemoryError:
                    pass
                except (*self.channel.connection_errors, RedisError) as failed:
                    error = failed  # the node is gone for this channel: keep this one and the rest untried
            refused.append((tag, copy))
        delivered.clear()
        if refused:
            with _unrecorded_lock:
                _unrestored.extend((self.unacked_key, tag, copy) for tag, copy in refused)
            logger.warning(
                "could not put %d message(s) held by a closing channel back on their queue (%s): kept, "
                "to be put back by the next channel that reaches a writable primary (a running task's once it ends)",
                len(refused),
                "Redis is full" if error is None else type(error).__name__,
            )

    def restore_held(self, tag: str, copy: Kept, *, client: Any = None) -> None:
        """Put a message this process holds unacknowledged back on its queue: from its unacknowledged record, as
        kombu does, or, when the record is gone (a failover lost the writes of its delivery, perhaps of its publish
        too), from ``copy`` unless the message is still queued
        (docs/decisions/restore-held-messages-on-the-next-channel.md)."""
        with self.channel.conn_or_acquire(client) as redis_client:
            restored = redis_client.transaction(
                lambda pipe: self._restore_recorded(tag, pipe), self.unacked_key, value_from_callable=True
            )
            if restored:
                return
            payload, exchange, routing_key = copy
            channel: Any = self.channel
            for flags in (payload.get("headers"), payload.get("properties", {}).get("delivery_info")):
                if isinstance(flags, dict):
                    flags["redelivered"] = True
            priority = channel._get_message_priority(payload, reverse=False)
            lists = [channel._q_for_pri(queue, priority) for queue in channel._lookup(exchange, routing_key)]
            outcome = redis_client.eval(
                PUT_BACK_UNLESS_QUEUED,
                1 + len(lists),
                self.unacked_key,
                *lists,
                tag,
                QUEUED_COPY_SCAN_LENGTH,
                dumps(payload),
            )
        outcome = bytes_to_str(outcome)
        if outcome.startswith("put back"):
            unchecked = outcome != "put back"
            logger.warning(
                "put task %s back on queue %r from this worker's copy: Redis had neither its unacknowledged record nor "
                "the message (a failover lost their writes)%s",
                _task_id(payload),
                routing_key,
                f"; the queue is longer than the {QUEUED_COPY_SCAN_LENGTH} messages searched: it may run twice"
                if unchecked
                else "",
            )

    def _restore_recorded(self, tag: str, pipe: Any) -> bool:
        """kombu's restore transaction; whether the record held the message."""
        recorded = pipe.hget(self.unacked_key, tag)
        pipe.multi()
        self._remove_from_indices(tag, pipe)
        if recorded:
            payload, exchange, routing_key = loads(bytes_to_str(recorded))
            self.channel._do_restore_message(payload, exchange, routing_key, pipe, False)
        return bool(recorded)


def running_delivery_tags() -> set[str]:
    """The delivery tags of the tasks this worker process has started and not finished (Celery's worker state):
    a started task acknowledges its own message, and restoring it while it runs would run it twice."""
    from celery.worker import state  # a worker's: a producer has none running

    tags: set[str] = set()
    for request in list(state.active_requests):
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if tag is not None:
            tags.add(tag)
    return tags


class FailoverRedisChannel(kombu_redis.Channel):
    """kombu's Redis channel: connections that follow the primary, kept messages put back once connected, and
    a connection error instead of kombu's crash on a closed transport
    (docs/decisions/kombu-hostname-crash-work-around.md)."""

    QoS = FailoverRedisQoS
    connection_class = PrimaryConnection
    connection_class_ssl = PrimarySSLConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # connected: its PING passed ROLE
        if getattr(self, "handlers", {}).get("BRPOP") != self._brpop_read:
            warn_once(
                "brpop-handler",
                "kombu's Redis channel no longer reads BRPOP replies with _brpop_read: the worker's heartbeat is not "
                "recorded, and its container health check will fail",
            )
        self.put_back_unrecorded()

    def put_back_unrecorded(self) -> None:
        """Push each kept message back at the head of its queue; on a Redis error keep the rest for the
        next channel, with one warning (never fail the channel's creation: that would leak its pool)."""
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
            self._restore_unrestored()

    def _restore_unrestored(self) -> None:
        """Restore the messages of this channel's record that a closing channel could not, but those of tasks still
        running, kept for a later try (under the lock). One its task acknowledged meanwhile is no longer kept."""
        running = running_delivery_tags()
        mine = [entry for entry in _unrestored if entry[0] == self.qos.unacked_key and entry[1] not in running]
        for entry in mine:
            try:
                self.qos.restore_held(entry[1], entry[2])
            except (*self.connection_errors, RedisError) as error:
                logger.warning(
                    "could not put %d message(s) a closed channel held back on their queue (%s): kept, to be put back "
                    "by the next channel",
                    len(mine),
                    type(error).__name__,
                )
                return
            _unrestored.remove(entry)
        if mine:
            logger.warning("put %d message(s) a closed channel held back on their queue", len(mine))

    def _brpop_start(self, timeout: float | None = None) -> None:
        super()._brpop_start(timeout)  # type: ignore[no-untyped-call]  # kombu: unannotated
        connection = self._in_poll
        if isinstance(connection, _FollowsPrimary):
            connection.brpop_pending = True

    def _brpop_read(self, **options: Any) -> Any:
        connection = self._in_poll
        if isinstance(connection, _FollowsPrimary) and connection.brpop_pending:
            # the event loop reads when the reply is there; kombu's close() reads in any case, and would close a
            # connection whose node stays silent after its socket time-out: hand the socket over instead
            if not _reply_within(connection._sock, connection.socket_timeout):
                connection.disconnect()
                self._in_poll = None
                raise Empty()
            connection.brpop_pending = False
        try:
            read = super()._brpop_read(**options)  # type: ignore[no-untyped-call]  # kombu: unannotated
        except Empty:  # BRPOP's own time-out: no message, but the node answered
            heartbeat.beat()
            raise
        heartbeat.beat()
        return read

    def _on_connection_disconnect(self, connection: Any) -> None:
        super()._on_connection_disconnect(connection)  # type: ignore[no-untyped-call]  # kombu: unannotated
        handed_off = connection.__dict__.pop("handed_off", None)
        if handed_off is not None:  # kept open: without an event loop, kombu's poller still watches it
            try:
                self.connection.cycle.poller.unregister(handed_off)
            except (KeyError, ValueError, OSError, AttributeError, TypeError):
                pass

    def waited_on(self) -> Node | None:
        """The node this channel's BRPOP waits on (None: no BRPOP, or a connection class that does not say)."""
        return getattr(self._in_poll, "node", None)

    def name_prober(self) -> Callable[[], Node]:
        """A function that connects through the endpoint's name once, with short time-outs and no retry, and
        returns the node that answers there (it raises if none does). For a thread: its connection is not
        kombu's, nor in any pool."""
        pool = self.pool
        connection_class = next(
            (c for c in type.mro(pool.connection_class) if c in (PrimaryConnection, PrimarySSLConnection)),
            PrimaryConnection,
        )  # not kombu's asynchronous subclass, whose disconnect reaches into the event loop
        params = {
            key: value for key, value in pool.connection_kwargs.items() if not key.startswith(POOL_OWN_PARAMETERS)
        }
        params.update(
            socket_timeout=NAME_PROBE_REPLY_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            retry_on_error=[],
            health_check_interval=0,
        )

        def probe() -> Node:
            connection = connection_class(**params)
            try:
                connection.connect()  # type: ignore[no-untyped-call]  # redis-py: unannotated
            except RedisConnectionError:
                if connection.node is None:  # nothing answered (a replica answers, and is refused)
                    raise
            finally:
                connection.disconnect()
            if connection.node is None:
                raise RedisConnectionError("the probe's connection did not say which node it reached")
            return connection.node

        return probe

    def unanswered_brpop_seconds(self, now: float) -> float | None:
        """How long this channel's BRPOP has gone unanswered, if that is ``BRPOP_SILENCE_SECONDS`` past its own
        time-out and nothing waits to be read: the node is silent. None otherwise."""
        connection, sent_at = self._in_poll, self._brpop_sent_at
        if not connection or sent_at is None or now - sent_at < self.brpop_timeout + BRPOP_SILENCE_SECONDS:
            return None
        sock = connection._sock
        if sock is None or select.select([sock], [], [], 0)[0]:  # a reply is there: the loop reads it next
            return None
        return float(now - sent_at)

    def close_connections(self) -> None:
        """Close every connection of this channel (BRPOP, commands, pub/sub); each reconnects through the
        endpoint's name on its next use."""
        for pool in (self.async_pool, self.pool):
            pool.disconnect()
        subclient = self.__dict__.get("subclient")  # only if kombu created it (pub/sub)
        if subclient is not None and subclient.connection is not None:
            subclient.connection.disconnect()

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # closed: its transport's client cleared (kombu#582, #970), or the channel itself closed by its connection
        # (kombu sets ``connection`` to None), which a publish on a pooled producer still reaches
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError(TRANSPORT_CLOSED)
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        return params


class FailoverRedisTransport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`FailoverRedisChannel`, whose event loop looks for a silent node every
    ``BRPOP_CHECK_PERIOD_SECONDS`` (docs/decisions/redis-silent-primary.md)."""

    Channel = FailoverRedisChannel

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        super().register_with_event_loop(connection, loop)  # type: ignore[no-untyped-call]  # kombu: unannotated
        previous = getattr(self.cycle, SILENT_NODE_TIMER, None)
        if previous is not None:  # a reconnection registers again: one timer per poller
            previous.cancel()
        setattr(self.cycle, SILENT_NODE_TIMER, loop.call_repeatedly(BRPOP_CHECK_PERIOD_SECONDS, self.drop_silent))

    _probe: Probe | None = None
    _waiting_logged: Any = None
    _next_put_back = 0.0

    def drop_silent(self) -> None:
        """When a BRPOP went unanswered and the endpoint's name no longer leads to its node, close every
        connection of every channel: they all reach that node (kombu alone drops only that BRPOP connection,
        after ``health_check_interval``, whatever the node). A node the name still leads to is waited for."""
        channels = getattr(self.cycle, "_channels", None)
        if channels is None:
            warn_once(
                "poller-channels",
                "kombu's Redis poller has no _channels: a silent primary is left only by kombu's own check "
                "(brpop_timeout + health_check_interval)",
            )
            return
        now, ours = time.monotonic(), [c for c in list(channels) if isinstance(c, FailoverRedisChannel)]
        self._put_back_held_messages(ours, now)
        unanswered = [(seconds, c) for c in ours if (seconds := c.unanswered_brpop_seconds(now)) is not None]
        if not unanswered:
            self._probe = None
            return
        waited, channel = max(unanswered, key=lambda item: item[0])
        verdict = self._name_verdict(channel)
        if verdict is None:
            return
        if verdict is not Verdict.MOVED:
            self._log_waiting_once(channel, waited, verdict)
            return
        logger.warning(
            "Redis BRPOP got no reply for %.1f s (its time-out: %g s) and %s: closing every broker connection, to "
            "reconnect through the endpoint's name",
            waited,
            channel.brpop_timeout,
            verdict.value,
        )
        for each in ours:
            each.close_connections()

    def _name_verdict(self, channel: FailoverRedisChannel) -> Verdict | None:
        """What a probe through the name says about the node ``channel``'s BRPOP waits on; None until one has
        answered (one probe at a time; the next check starts another)."""
        waited_on = channel.waited_on()
        if waited_on is None:
            warn_once(
                "brpop-node-unknown",
                "the connection of an unanswered BRPOP does not say which node it reached: left after its time-out, "
                "whether or not the endpoint's name moved",
            )
            return Verdict.MOVED
        probe = self._probe
        if probe is None:
            probe = self._probe = Probe(channel.name_prober())
            probe.done.wait(NAME_PROBE_WAIT_SECONDS)  # a live node answers at once
        if not probe.done.is_set():
            return None
        self._probe = None  # the next check asks again
        return probe.verdict(waited_on)

    def _log_waiting_once(self, channel: FailoverRedisChannel, waited: float, verdict: Verdict) -> None:
        """One warning per unanswered BRPOP the worker keeps waiting for."""
        episode = (id(channel), channel._brpop_sent_at)
        if self._waiting_logged == episode:
            return
        self._waiting_logged = episode
        logger.warning(
            "Redis BRPOP got no reply for %.1f s (its time-out: %g s), but %s: waiting for it",
            waited,
            channel.brpop_timeout,
            verdict.value,
        )

    def _put_back_held_messages(self, channels: list[FailoverRedisChannel], now: float) -> None:
        """Messages this process holds (a pop it could not record, or put back on its node, or a closed channel's
        restore that was refused) go back through the name every few seconds, not only when a new channel opens."""
        if not (_unrecorded or _unrestored) or not channels or now < self._next_put_back:
            return
        self._next_put_back = now + UNRECORDED_PUT_BACK_PERIOD_SECONDS
        channels[0].put_back_unrecorded()


def _reply_within(sock: Any, timeout: float | None) -> bool:
    """Whether ``sock`` has something to read, or gets it within ``timeout`` seconds."""
    if sock is None:
        return True  # nothing to hand over: let kombu's read fail as it does
    if getattr(sock, "pending", lambda: 0)():  # TLS: already decrypted
        return True
    try:
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):
        return True


RESULT_BACKEND_CLASS = qualified_name(FailoverRedisBackend)
"""For ``result_backend = "<class>+rediss://..."`` (Celery's ``by_url`` splits a ``+`` prefix off the scheme)."""
BROKER_TRANSPORT_CLASS = qualified_name(FailoverRedisTransport)
"""For ``broker_transport``: kombu uses an explicit transport over the one a URL's scheme names."""
