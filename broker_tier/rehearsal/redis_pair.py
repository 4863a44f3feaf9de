"""Two ``redis-server`` nodes on loopback standing in for a replication group with one replica: ``REPLICAOF``
(asynchronous, as in ElastiCache), AUTH (and TLS), nothing persisted, so a restarted node comes back empty.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from broker_tier.rehearsal.tls import LoopbackTls
from broker_tier.rehearsal.util import RehearsalError, free_port, stop_process, wait_until

NODE_HOST = "127.0.0.1"
PORT_TRIES = 3
"""Ports tried by a node's first start (another process may take a free port before redis-server binds it)."""


def _port_taken(log: Path, offset: int) -> bool:
    """Whether redis-server logged, past ``offset``, that its port was in use."""
    if not log.exists():
        return False
    with log.open("rb") as lines:
        lines.seek(offset)
        return b"Address already in use" in lines.read()


@dataclass(kw_only=True)
class RedisNode:
    """One ``redis-server`` process on a fixed loopback port (kept across restarts, like a node's address)."""

    name: str
    """``node-a`` or ``node-b``: names the node in the report (roles change, names do not)."""
    password: str
    """The AUTH token (``requirepass``, and ``masterauth`` to follow a primary)."""
    workdir: Path
    """Its working directory and log file."""
    tls: LoopbackTls | None
    """TLS files; None: plain TCP."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0
    _control: redis.Redis | None = None

    @property
    def control(self) -> redis.Redis:
        """A connection kept open to this node, so a fault's commands go out without a TLS handshake
        (which would widen the moment in which both nodes take writes)."""
        if self._control is None:
            self._control = self.client()
        return self._control

    @property
    def address(self) -> tuple[str, int]:
        return NODE_HOST, self.port

    def command(self, *, replica_of: RedisNode | None) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RehearsalError("redis-server is not installed (scripts/ensure-redis.sh installs Debian's package)")
        listen = (
            [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls.cert_file),
                "--tls-key-file",
                str(self.tls.key_file),
                "--tls-ca-cert-file",
                str(self.tls.ca_file),
                "--tls-auth-clients",
                "no",
                "--tls-replication",
                "yes",
            ]
            if self.tls
            else ["--port", str(self.port)]
        )
        command = [
            binary,
            "--bind",
            NODE_HOST,
            *listen,
            "--requirepass",
            self.password,
            "--masterauth",
            self.password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "noeviction",
            # a replica starts its full sync at once and an empty one loads it from the socket: no wait for
            # more replicas, no fsynced file, so a first sync stays quick on a busy disk
            "--repl-diskless-sync-delay",
            "0",
            "--repl-diskless-load",
            "on-empty-db",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / f"{self.name}.log"),
        ]
        if replica_of is not None:
            command += ["--replicaof", NODE_HOST, str(replica_of.port)]
        return command

    def start(self, *, replica_of: RedisNode | None = None) -> None:
        """Start the process and wait until it answers. A first start whose port another process took since
        :func:`free_port` chose it (tests run side by side) moves to another port; a restart keeps its port."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, PORT_TRIES + 1):
            self._control = None
            log = self.workdir / f"{self.name}.log"
            logged = log.stat().st_size if log.exists() else 0
            self.process = subprocess.Popen(
                self.command(replica_of=replica_of), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                wait_until(self.answers, 15, f"redis-server {self.name} to answer PING")
            except RehearsalError:
                stop_process(self.process)
                if self.starts or attempt == PORT_TRIES or not _port_taken(log, logged):
                    raise
                self.port = free_port()
                continue
            self.starts += 1
            return

    def client(self, db: int = 0, **kwargs) -> redis.Redis:
        """A direct client of this node (not through the endpoint): the rehearsal's own view."""
        tls: dict[str, Any] = {}
        if self.tls:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls.ca_file), "ssl_cert_reqs": "required"}
        options = {"socket_timeout": 5, "socket_connect_timeout": 2, **tls, **kwargs}
        return redis.Redis(host=NODE_HOST, port=self.port, db=db, password=self.password, **options)

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RehearsalError(
                f"redis-server {self.name} exited with {self.process.returncode}; see "
                f"{self.workdir / (self.name + '.log')}"
            )
        try:  # one short try: on a port another process took, nothing may answer at all
            with self.client(socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def role(self) -> str:
        return self.control.role()[0].decode()

    def promote(self) -> int:
        """``REPLICAOF NO ONE``: this node becomes a primary (keeps its data). Returns its replication
        offset then: how much of the old primary's writes it has."""
        self.control.replicaof("NO", "ONE")
        return self.replication_offset()

    def follow(self, primary: RedisNode) -> int:
        """``REPLICAOF``: this node becomes a replica of ``primary``; its clients' writes get READONLY.
        Returns its replication offset just before: how much it had written."""
        offset = self.replication_offset()
        self.control.replicaof(NODE_HOST, primary.port)
        return offset

    def replication_offset(self) -> int:
        return int(self.control.info("replication").get("master_repl_offset") or 0)

    def key_counts(self) -> dict[int, int]:
        """Keys per database (``INFO keyspace``)."""
        keyspace = self.control.info("keyspace")
        return {int(name[2:]): values["keys"] for name, values in keyspace.items() if name.startswith("db")}

    def kill(self) -> None:
        """SIGKILL: the node disappears at once, with whatever it had not replicated."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process)


FIRST_SYNC_TIMEOUT_SECONDS = 60
"""A bound, not an expectation: an empty pair syncs in milliseconds, but a loaded machine can stall it."""


@dataclass(kw_only=True)
class RedisPair:
    """A primary and a replica that follows it. ``primary``/``replica`` follow the roles as faults move them."""

    primary: RedisNode
    replica: RedisNode

    @classmethod
    def start(cls, *, workdir: Path, password: str, tls: LoopbackTls | None) -> RedisPair:
        node_a = RedisNode(name="node-a", password=password, workdir=workdir / "node-a", tls=tls)
        node_b = RedisNode(name="node-b", password=password, workdir=workdir / "node-b", tls=tls)
        node_a.start()
        try:
            node_b.start(replica_of=node_a)
            pair = cls(primary=node_a, replica=node_b)
            wait_until(pair.in_sync, FIRST_SYNC_TIMEOUT_SECONDS, "the replica to finish its first sync")
        except BaseException:
            node_a.stop()
            node_b.stop()
            raise
        return pair

    def in_sync(self) -> bool:
        """The replica's link is up and it follows the primary's current replication history (a
        restarted primary starts a new one, which the replica adopts with a full resynchronization)."""
        with self.primary.client() as client:
            history = client.info("replication").get("master_replid")
        with self.replica.client() as client:
            replication = client.info("replication")
        return replication.get("master_link_status") == "up" and replication.get("master_replid") == history

    def swap_roles(self) -> None:
        self.primary, self.replica = self.replica, self.primary

    def stop(self) -> None:
        for node in (self.primary, self.replica):
            node.stop()


def wait_for_role(node: RedisNode, role: str, timeout: float = 10) -> None:
    wait_until(lambda: node.role() == role, timeout, f"{node.name} to report role {role}")
