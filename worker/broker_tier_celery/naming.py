"""How a Celery setting names a class of this package (``broker_transport``, the ``class+url`` result backend)."""

from __future__ import annotations


def qualified_name(cls: type) -> str:
    """``module:QualName``, the form Celery's and kombu's ``symbol_by_name`` import."""
    return f"{cls.__module__}:{cls.__qualname__}"
