"""moto's server on loopback, recording every SQS and S3 request it answers: the action, and for SQS the sizes of
the message bodies sent and received (what SQS bills by the 64 KiB chunk). The moto state is the process's own,
shared with any other moto server the tests run."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from loopback import free_port
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

S3_ACTIONS = {"PUT": "PutObject", "GET": "GetObject", "DELETE": "DeleteObject", "HEAD": "HeadObject"}


@dataclass(frozen=True)
class Call:
    service: str
    """``sqs`` or ``s3``."""
    action: str
    """SQS's action (``SendMessage``...), or for an object request of S3 ``PutObject``, ``GetObject``... (a request
    on a bucket itself is ``<METHOD> bucket``)."""
    body_sizes: tuple[int, ...] = ()
    """SQS: the size of each message body sent (SendMessage) or received (ReceiveMessage), in bytes."""
    key: str | None = None
    """S3: the object's key."""
    content_length: int = 0
    """The request's size in bytes (an S3 put's object)."""


@dataclass
class Recorder:
    """The WSGI application: moto's, with every request it answers appended to ``calls``."""

    app: Any
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = b""
        if target.startswith("AmazonSQS."):
            request = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(request)
        response = list(self.app(environ, start_response))
        call = (
            _sqs_call(target.removeprefix("AmazonSQS."), request, b"".join(response))
            if target
            else _s3_call(environ, length)
        )
        with self.lock:
            self.calls.append(call)
        return response

    def snapshot(self) -> int:
        with self.lock:
            return len(self.calls)

    def since(self, mark: int) -> list[Call]:
        with self.lock:
            return list(self.calls[mark:])


def _sqs_call(action: str, request: bytes, response: bytes) -> Call:
    sizes: tuple[int, ...] = ()
    if action == "SendMessage":
        sizes = (len(json.loads(request)["MessageBody"].encode()),)
    elif action == "ReceiveMessage" and response:
        sizes = tuple(len(m["Body"].encode()) for m in json.loads(response).get("Messages", []))
    return Call("sqs", action, sizes)


def _s3_call(environ: dict[str, Any], length: int) -> Call:
    method = environ["REQUEST_METHOD"]
    _, bucket, key = (unquote(environ.get("PATH_INFO", "")).split("/", 2) + ["", ""])[:3]
    if not key:
        return Call("s3", f"{method} bucket", key=None, content_length=length)
    decoded = int(environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or length)
    return Call("s3", S3_ACTIONS.get(method, method), key=key, content_length=decoded)


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass  # every request is in the recorder; werkzeug's line per request only fills the test's output


class RecordingMotoServer:
    """A moto server on a free loopback port whose requests ``recorder`` records, while the ``with`` block runs."""

    def __init__(self) -> None:
        self.recorder = Recorder(DomainDispatcherApplication(create_backend_app))
        self.server = make_server("127.0.0.1", free_port(), self.recorder, True, request_handler=_QuietHandler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingMotoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self._thread.join(timeout=10)
