"""moto's server on loopback, and boto3 pointed at it: what every test that talks to a fake AWS over HTTP shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from loopback import free_port

from broker_tier.rehearsal.moto_atomic import make_atomic


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's threaded server on a free loopback port (receives and conditional writes atomic, as SQS's and
    DynamoDB's are); yields its endpoint URL and stops it on exit."""
    from moto.server import ThreadedMotoServer

    make_atomic()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, region: str) -> None:
    """Every boto3 client the test makes, the code's under test and its own, reaches ``endpoint`` in ``region``
    with moto's test credentials."""
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)
