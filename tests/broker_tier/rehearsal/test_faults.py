"""A rehearsal fault is one record: its goals cover every broker, every goal can fail, and the CLI, the series
script and the docs come from the records."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from tier_testing import ROOT

from broker_tier.ops.cli import build_parser
from broker_tier.rehearsal import faults as records
from broker_tier.rehearsal.faults import BROKERS, FAULTS, fault_named, goals_for
from broker_tier.rehearsal.goals import MAX_DELAY, Goal, blind_goals, check_goals
from broker_tier.rehearsal.runner import RehearsalOptions, refuse_options
from broker_tier.rehearsal.util import RehearsalError

PAIRS = [(broker, fault.name) for broker in BROKERS for fault in FAULTS]
GOALS = sorted(
    {(broker, name, goal) for broker, name in PAIRS for goal in goals_for(broker, name)},
    key=lambda item: (item[0], item[1], item[2].figure),
)
IMPOSED = {"dns_delay_seconds": 5, "backlog_seconds": 2}


def test_the_issue_s_faults_are_there_and_every_broker_x_fault_has_goals():
    assert {"promote", "power-loss", "crash"} <= {fault.name for fault in FAULTS}
    assert len(PAIRS) == len(BROKERS) * len(FAULTS) >= 6
    for broker, name in PAIRS:
        assert goals_for(broker, name), f"{broker} {name} has no goal"
        assert set(fault_named(name).goals) == set(BROKERS), f"{name} does not cover every broker"


@pytest.mark.parametrize("broker", BROKERS)
@pytest.mark.parametrize("name", ["promote", "power-loss", "crash"])
def test_every_failover_is_held_to_the_issue_s_goals(broker, name):
    figures = {goal.figure for goal in goals_for(broker, name)}
    assert {
        "lost",
        "publish_errors",
        "worker_restarts",
        "longest_stall_seconds",
        "results_lost_outside_split_window",
    } <= figures
    assert ("duplicated_not_in_flight" if broker == "redis" else "duplicated") in figures


def test_an_unknown_broker_or_fault_is_a_clear_error_not_a_key_error():
    with pytest.raises(RehearsalError, match="--fault 'melt' is not allowed; allowed: promote, power-loss, crash"):
        goals_for("sqs", "melt")
    with pytest.raises(RehearsalError, match="--broker 'rabbitmq' is not allowed for promote"):
        goals_for("rabbitmq", "promote")


def test_goal_checking_reads_missing_figures_as_not_measured_never_a_key_error():
    assert GOALS
    for broker, name in PAIRS:
        checks = check_goals(goals_for(broker, name), {})
        assert checks and all(check.passed is False for check in checks)


@pytest.mark.parametrize("broker,name,goal", GOALS, ids=lambda value: getattr(value, "figure", value))
def test_each_goal_passes_at_its_bound_and_fails_past_it(broker, name, goal: Goal):
    bound = goal.bound(IMPOSED)
    assert bound == goal.at_most + sum(IMPOSED.get(n, 0) for n in goal.plus)
    at_bound = {c.name: c.passed for c in check_goals((goal,), {**IMPOSED, "throughput_before": 9, goal.figure: bound})}
    past = {c.name: c.passed for c in check_goals((goal,), {**IMPOSED, "throughput_before": 9, goal.figure: bound + 1})}
    assert at_bound == {"tasks_ran_before_the_fault": True, f"{goal.figure} <= {bound:g}": True}
    assert past == {"tasks_ran_before_the_fault": True, f"{goal.figure} <= {bound:g}": False}


def test_a_run_where_nothing_ran_before_the_fault_fails():
    (before,) = [c for c in check_goals((), {"throughput_before": 0}) if c.name == "tasks_ran_before_the_fault"]
    assert before.passed is False


def test_a_visibility_timeout_within_the_max_delay_bound_makes_that_goal_blind_and_the_run_is_refused():
    options = RehearsalOptions(broker="sqs", fault="promote", dns_delay_seconds=5, visibility_timeout_seconds=10)
    assert blind_goals((MAX_DELAY,), options.imposed()) == [
        "--visibility-timeout 10 is not above the max-delay bound (10 s): a message held in flight would come back "
        "within the bound and pass; allowed: above 10"
    ]
    with pytest.raises(RehearsalError, match="a goal could not fail in this set-up: --visibility-timeout 10"):
        refuse_options(options)
    refuse_options(RehearsalOptions(broker="sqs", fault="promote", dns_delay_seconds=5, visibility_timeout_seconds=11))
    # the redis broker has no such queue: its stranded goal catches a held message directly
    refuse_options(RehearsalOptions(broker="redis", fault="promote", dns_delay_seconds=5, visibility_timeout_seconds=1))


def test_the_cli_offers_and_explains_exactly_the_recorded_faults():
    parser = build_parser()
    (rehearse,) = [a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "rehearse"]
    (fault,) = [action for action in rehearse[1]._actions if action.dest == "fault"]
    assert tuple(fault.choices) == tuple(f.name for f in FAULTS)
    # the help names them and points to where each is explained (the whole --help fits one screen: test_cli)
    assert fault.help.startswith(f"{' | '.join(f.name for f in FAULTS)}: docs/rehearsal.md#the-faults")
    faults = (ROOT / "docs" / "rehearsal.md").read_text().split("\n## The faults\n", 1)[1].split("\n## ", 1)[0]
    explained = re.findall(r"^\| `(\w[\w-]*)` \| \w", faults, re.M)  # the rows, not the header
    assert explained == [f.name for f in FAULTS]
    args = parser.parse_args(["rehearse", "--fault", "crash", "--split-window", "0.1", "--runs", "3"])
    assert (args.fault, args.split_window, args.runs) == ("crash", 0.1, 3)


def test_the_series_script_loops_over_the_records():
    names = subprocess.run(
        [sys.executable, "-m", "broker_tier.rehearsal.faults"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert names == [fault.name for fault in FAULTS]
    script = (ROOT / "scripts" / "rehearse-all.sh").read_text()
    assert "python -m broker_tier.rehearsal.series" in script and "python -m broker_tier.rehearsal.faults" in script
    assert not re.search(r"--faults?[ =]+[\"']?[a-z]", script)  # no fault named by hand (FAULTS=... is the caller's)


def test_the_series_covers_every_broker_x_fault_at_both_rates():
    from broker_tier.rehearsal.series import cells

    found = {(o.broker, o.fault, o.rate) for o in cells([10, 40])}
    assert found == {(broker, name, rate) for broker, name in PAIRS for rate in (10, 40)}
    windows = {o.split_window_seconds for o in cells([10, 40]) if o.fault == "promote"}
    assert windows == {0.0, 0.01, 0.1}


def test_records_are_the_only_place_a_fault_is_named():
    assert records.BY_NAME == {fault.name: fault for fault in FAULTS}
    assert all(callable(fault.inject) and fault.help and fault.what_happens for fault in FAULTS)
