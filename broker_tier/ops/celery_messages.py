"""What a Celery task message on SQS says: task name, task id and arguments, read from the body kombu's SQS
transport writes (a JSON envelope, base64-encoded; the task's arguments base64-encoded again inside it)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

ARGS_SHOWN_CHARACTERS = 120
"""How much of a task's arguments ``--show-args`` shows (arguments may be large, and may be sensitive)."""


@dataclass(frozen=True)
class CeleryMessage:
    task_name: str
    task_id: str
    args: str
    """The positional arguments as Celery's ``argsrepr`` header gives them (a task can set it to hide or shorten
    them), else decoded from the body; "?" when neither can be read."""
    kwargs: str
    retries: int | None = None
    origin: str | None = None
    """Who published it (``pid@host``), as the message says."""

    def arguments(self, limit: int | None = ARGS_SHOWN_CHARACTERS) -> str:
        """``args ..., kwargs ...`` cut at ``limit`` characters (None: whole)."""
        text = f"args {self.args}, kwargs {self.kwargs}"
        return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _json_or_base64_json(text: str) -> Any:
    """The JSON document ``text`` holds, plain or base64-encoded (kombu's ``sqs_base64_encoding``, on by default)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return json.loads(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        return None


def _body_of(envelope: dict) -> Any:
    """The task body inside kombu's envelope: JSON, base64-encoded when ``properties.body_encoding`` says so."""
    body = envelope.get("body")
    if not isinstance(body, str) or "json" not in str(envelope.get("content-type", "")):
        return None  # another serializer (pickle, msgpack): not decoded here
    if (envelope.get("properties") or {}).get("body_encoding") == "base64":
        try:
            body = base64.b64decode(body).decode()
        except (ValueError, binascii.Error):
            return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def read_celery_message(sqs_body: str) -> CeleryMessage | None:
    """The task an SQS message body carries (task protocol 2, or 1), or None when it is no Celery task message."""
    envelope = _json_or_base64_json(sqs_body)
    if not isinstance(envelope, dict):
        return None
    headers = envelope.get("headers") or {}
    body = _body_of(envelope)
    if headers.get("task") and headers.get("id"):  # protocol 2: the task in the headers, [args, kwargs, embed]
        decoded = body if isinstance(body, list) and len(body) >= 2 else ["?", "?"]
        return CeleryMessage(
            task_name=str(headers["task"]),
            task_id=str(headers["id"]),
            args=str(headers.get("argsrepr") or decoded[0]),
            kwargs=str(headers.get("kwargsrepr") or decoded[1]),
            retries=headers.get("retries"),
            origin=headers.get("origin"),
        )
    if isinstance(body, dict) and body.get("task") and body.get("id"):  # protocol 1: everything in the body
        return CeleryMessage(
            task_name=str(body["task"]),
            task_id=str(body["id"]),
            args=repr(body.get("args", "?")),
            kwargs=repr(body.get("kwargs", "?")),
            retries=body.get("retries"),
        )
    return None
