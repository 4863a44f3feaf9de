"""broker_tier_contract: names round-trip through their parsers, and the module needs no third-party package."""

from __future__ import annotations

import subprocess
import sys

import pytest

import broker_tier_contract as contract


@pytest.mark.parametrize("class_name", ["interactive", "default", "batch", "p1", "a" * 20])
def test_queue_and_service_output_ids_round_trip(class_name):
    for kind in contract.QUEUE_KINDS:
        for attribute in contract.QUEUE_ATTRIBUTES:
            output_id = contract.queue_output_id(kind, class_name, attribute)
            assert contract.parse_queue_output_id(output_id) == (kind, class_name, attribute)
    assert contract.parse_worker_service_output_id(contract.worker_service_output_id(class_name)) == class_name


def test_other_outputs_are_not_mistaken_for_queues_or_services():
    for output_id in (
        "QueueBatch",
        "QueuesBatchUrl",
        "DeadLetterQueueBatchUri",
        "RedisPort",
        "WorkerServiceName",
        contract.ComputeOutputs.BEAT_SERVICE_NAME,
    ):
        assert contract.parse_queue_output_id(output_id) is None
        assert contract.parse_worker_service_output_id(output_id) is None


def test_stack_names_round_trip_and_unknown_parts_are_refused():
    for part in contract.STACK_PARTS:
        assert contract.parse_stack_name(contract.stack_name("prod", part)) == ("prod", part)
    assert contract.parse_stack_name("BrokerTier-prod-Database") is None
    assert contract.parse_stack_name("CDKToolkit") is None
    with pytest.raises(ValueError, match="unknown stack part 'Database'"):
        contract.stack_name("prod", "Database")


def test_database_layout_round_trips():
    layout = {"cache": 0, "broker": 1, "results": 2}
    assert contract.parse_databases(contract.format_databases(layout)) == layout


def test_canary_ledger_lines_parse_from_a_log_line_and_nothing_else_does():
    record = {"token": "t1", "task_id": "id", "queue": "default", "hostname": "h", "pid": 7, "at": 1.5}
    line = f"[2026-11-23 10:00:00,000: WARNING/ForkPoolWorker-1] {contract.canary_ledger_line(record)}"
    assert contract.parse_canary_ledger_line(line) == record
    assert contract.parse_canary_ledger_line("broker-tier-canary not json") is None
    assert contract.parse_canary_ledger_line("an ordinary log line") is None


def test_the_contract_imports_without_any_third_party_package():
    # the worker image has no aws-cdk, and a team may copy the package: standard library only
    code = (
        "import sys; sys.path = [p for p in sys.path if 'site-packages' not in p]; "
        "import broker_tier_contract; print('ok')"
    )
    worker_dir = str(__import__("pathlib").Path(contract.__file__).parents[1])
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env={"PYTHONPATH": worker_dir}, timeout=30
    )
    assert result.stdout.strip() == "ok", result.stderr
