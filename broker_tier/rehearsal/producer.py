"""The rehearsal's producer: the reference app (configured by the settings package, as a team's app) calling
``apply_async`` on the canary at a steady rate, one JSON line per call on stdout (``token``, ``task_id``,
``sent_at``, ``returned_at``, ``error``) until SIGTERM.

``python -m broker_tier.rehearsal.producer --queue default --rate 10 --run-id abc``
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid

from broker_tier.rehearsal.util import OVERRIDES_VARIABLE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker_tier.rehearsal.producer")
    parser.add_argument("--queue", required=True, help="the latency class to publish to")
    parser.add_argument("--rate", type=float, required=True, help="tasks per second")
    parser.add_argument("--run-id", required=True, help="prefix of every canary token")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    module = "broker_tier.rehearsal.experiment_app" if os.environ.get(OVERRIDES_VARIABLE) else "broker_tier_worker.app"
    canary = importlib.import_module(module).canary
    print(json.dumps({"ready": True}), flush=True)
    started, number = time.time(), 0
    while not stop.is_set():
        delay = started + number / args.rate - time.time()
        if delay > 0 and stop.wait(delay):
            break
        token = f"{args.run_id}-{number:06d}"
        # the id is chosen here, so a call that raised can still be matched with an execution
        sent_at, task_id, error = time.time(), str(uuid.uuid4()), None
        try:
            canary.apply_async(args=[token], queue=args.queue, task_id=task_id)
        except Exception as exc:  # noqa: BLE001 - whatever the caller of apply_async would see
            error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, (ConnectionError, TimeoutError)):
                traceback.print_exc(file=sys.stderr)  # the log says where an unexpected error came from
        print(
            json.dumps(
                {"token": token, "task_id": task_id, "sent_at": sent_at, "returned_at": time.time(), "error": error}
            ),
            flush=True,
        )
        number += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
