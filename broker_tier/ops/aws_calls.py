"""Which AWS API calls a command made: a dry run says what it read, and every report lists them."""

from __future__ import annotations

import itertools
from collections import Counter

_IDS = itertools.count()


class AwsCallRecorder:
    """Counts each ``service:Operation`` the given boto3 clients call while the context is open (botocore's
    ``before-call`` event, so a call that fails or is retried counts once, as the command made it)."""

    def __init__(self, clients: dict) -> None:
        self.clients = list({id(client): client for client in clients.values()}.values())
        self.calls: Counter[str] = Counter()
        self._unique_id = f"broker-tier-ops-calls-{next(_IDS)}"

    def _record(self, model, **_: object) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def __enter__(self) -> AwsCallRecorder:
        for client in self.clients:
            client.meta.events.register("before-call.*.*", self._record, unique_id=self._unique_id)
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self.clients:
            client.meta.events.unregister("before-call.*.*", unique_id=self._unique_id)

    def summary(self) -> dict[str, int]:
        """``{"sqs:ReceiveMessage": 3, ...}`` in the order first called."""
        return dict(self.calls)
