"""Dead-letter redrive with SQS's message move task: counts, rate, dry run, refusals."""

from __future__ import annotations

import io
import json

import pytest
from fake_aws import ENV, FakeMoveTasks

from broker_tier.evidence.report import Report
from broker_tier.ops.cli import main
from broker_tier.ops.redrive import Redrive, RedriveOptions
from broker_tier.ops.resources import discover


@pytest.fixture
def moves(aws) -> FakeMoveTasks:
    queues = aws.tier.queues
    urls = {q[arn]: q[url] for q in queues.values() for arn, url in (("arn", "url"), ("dlq_arn", "dlq_url"))}
    fake = FakeMoveTasks(aws.clients["sqs"], urls)
    fake.install(aws.api)
    return fake


def redrive(aws, class_name: str = "default", *, dry_run: bool = False, **options) -> Report:
    pair = discover(aws.clients["cloudformation"], ENV).queues[class_name]
    report = Report("redrive", ENV, pair.dead_letter_arn, dry_run, monotonic=aws.clock.monotonic, stream=io.StringIO())
    aws.api.calls.clear()
    settings = RedriveOptions(**{"poll_seconds": 5, "timeout_seconds": 60, **options})
    return Redrive(aws.clients["sqs"], pair, settings, report, sleep=aws.clock.sleep).run()


def visible(aws, url: str) -> int:
    return int(
        aws.clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )


def test_moves_every_dead_letter_back_at_the_given_rate_and_reports_counts(aws, moves):
    for n in range(3):
        aws.tier.send_dead_letter("default", f"task {n}")
    report = redrive(aws, rate=50)
    assert report.outcome == "passed", report.to_markdown()
    assert report.measurements["dead_letters_before"] == {"visible": 3, "in_flight": 0}
    assert (report.measurements["moved"], report.measurements["to_move"]) == (3, 3)
    assert report.measurements["dead_letters_after"] == {"visible": 0, "in_flight": 0}
    queues = aws.tier.queues["default"]
    assert visible(aws, queues["url"]) == 3 and visible(aws, queues["dlq_url"]) == 0
    (start,) = [params for service, op, params in aws.api.calls if op == "StartMessageMoveTask"]
    assert start == {
        "SourceArn": queues["dlq_arn"],
        "DestinationArn": queues["arn"],
        "MaxNumberOfMessagesPerSecond": 50,
    }


def test_dry_run_shows_the_counts_and_moves_nothing(aws, moves):
    aws.tier.send_dead_letter("interactive")
    report = redrive(aws, "interactive", dry_run=True)
    assert report.outcome == "planned" and "about 1 messages" in report.plan[0]
    assert aws.api.mutating_calls() == [] and visible(aws, aws.tier.queues["interactive"]["dlq_url"]) == 1


def test_refuses_while_another_move_runs_on_the_queue(aws, moves):
    aws.tier.send_dead_letter("default")
    moves.polls_until_done = 99
    moves.StartMessageMoveTask(SourceArn=aws.tier.queues["default"]["dlq_arn"])
    report = redrive(aws)
    assert report.outcome == "refused" and report.exit_code == 2
    assert ("sqs", "StartMessageMoveTask") not in aws.api.mutating_calls()


def test_an_empty_dead_letter_queue_needs_no_move(aws, moves):
    report = redrive(aws)
    assert report.outcome == "passed" and "nothing to move" in report.error
    assert aws.api.mutating_calls() == []


def test_a_failed_move_fails_with_its_reason(aws, moves):
    aws.tier.send_dead_letter("default")
    moves.final_status = "FAILED"
    report = redrive(aws)
    assert report.outcome == "failed" and report.exit_code == 1
    assert "NonExistentQueue" in report.verification[0].detail


def test_time_out_leaves_the_move_running_and_says_how_to_cancel(aws, moves):
    aws.tier.send_dead_letter("default")
    moves.polls_until_done = 99
    report = redrive(aws, timeout_seconds=20)
    assert report.outcome == "aborted" and "cancel-message-move-task --task-handle handle-1" in report.error


def pair_queues(aws, class_name: str = "default") -> dict[str, str]:
    """Give the class's work queue the redrive policy the State stack deploys."""
    queues = aws.tier.queues[class_name]
    aws.clients["sqs"].set_queue_attributes(
        QueueUrl=queues["url"],
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": queues["dlq_arn"], "maxReceiveCount": "5"})},
    )
    return queues


@pytest.mark.parametrize("given", ["url", "arn"])
def test_explicit_queues_need_no_stack(aws, moves, capsys, tmp_path, given):
    queues = pair_queues(aws)
    aws.tier.send_dead_letter("default")
    for part in ("State", "Compute", "Monitoring"):  # a tier whose stacks can't be read
        aws.clients["cloudformation"].delete_stack(StackName=f"BrokerTier-{ENV}-{part}")
    source, dead = (queues["url"], queues["dlq_url"]) if given == "url" else (queues["arn"], queues["dlq_arn"])
    argv = ["redrive", "--source-queue", source, "--dead-letter-queue", dead, "--poll", "1"]  # no --env needed
    code = main([*argv, "--report-dir", str(tmp_path)], clients=aws.clients)
    assert code == 0, capsys.readouterr().err
    (report,) = tmp_path.glob(f"redrive-{ENV}-*.json")  # the environment read from the tier's queue name
    assert json.loads(report.read_text())["verdict"].startswith("1 of the dead letters in ")
    assert visible(aws, queues["url"]) == 1 and visible(aws, queues["dlq_url"]) == 0
    (start,) = [params for _, op, params in aws.api.calls if op == "StartMessageMoveTask"]
    assert start == {"SourceArn": queues["dlq_arn"], "DestinationArn": queues["arn"]}
    assert not any(op == "DescribeStacks" for _, op, _ in aws.api.calls)


def test_explicit_queues_that_do_not_belong_together_are_refused(aws, moves, capsys, tmp_path):
    pair_queues(aws, "default")
    code = main(
        [
            "redrive",
            "--env",
            ENV,
            "--source-queue",
            aws.tier.queues["default"]["url"],
            "--dead-letter-queue",
            aws.tier.queues["interactive"]["dlq_arn"],
            "--report-dir",
            str(tmp_path),
        ],
        clients=aws.clients,
    )
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "sends its dead letters to" in last and "give the pair that belongs together" in last
    assert ("sqs", "StartMessageMoveTask") not in aws.api.mutating_calls()
    assert len(list(tmp_path.glob("redrive-*.md"))) == 1


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--dead-letter-queue", "https://sqs.eu-west-1.amazonaws.com/123456789012/x-dlq"], "needs --source-queue"),
        (
            ["--queue-class", "default", "--source-queue", "https://sqs.eu-west-1.amazonaws.com/123456789012/x"],
            "--source-queue goes with --dead-letter-queue",
        ),
    ],
)
def test_incomplete_explicit_queues_are_refused(aws, capsys, tmp_path, argv, message):
    code = main(["redrive", "--env", ENV, *argv, "--report-dir", str(tmp_path)], clients=aws.clients)
    assert code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_class_needs_the_environment_its_queues_are_read_from(aws, capsys, tmp_path):
    code = main(["redrive", "--queue-class", "default", "--report-dir", str(tmp_path)], clients=aws.clients)
    assert code == 2 and "--queue-class needs --env" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_queue_that_does_not_exist_is_named_by_aws(aws, capsys, tmp_path):
    code = main(
        [
            "redrive",
            "--env",
            ENV,
            "--source-queue",
            "arn:aws:sqs:eu-west-1:123456789012:nowhere",
            "--dead-letter-queue",
            aws.tier.queues["default"]["dlq_arn"],
            "--report-dir",
            str(tmp_path),
        ],
        clients=aws.clients,
    )
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 7 and "AWS refused GetQueueUrl (AWS.SimpleQueueService.NonExistentQueue" in last


def test_a_malformed_queue_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["redrive", "--env", ENV, "--dead-letter-queue", "sqs://x-dlq", "--source-queue", "x"])
    assert exited.value.code == 2 and "is neither a queue URL" in capsys.readouterr().err
