"""The batch job's state machine and the record that carries it through JSON."""

from __future__ import annotations

import itertools
import json

import pytest

from service.batch.states import TERMINAL, InvalidTransition, JobRecord, State, allowed


def _record(state: State = State.QUEUED) -> JobRecord:
    return JobRecord(id="0" * 21, state=state, created=100.0, options={"stopwords": "en"})


def test_the_forward_path_visits_each_stage_once_with_its_times() -> None:
    record = _record()
    record.move_to(State.TOKENIZING, now=101)
    record.move_to(State.COUNTING, now=105)
    record.move_to(State.SUCCEEDED, now=108)
    assert record.state is State.SUCCEEDED
    assert (record.stages["tokenize"].started, record.stages["tokenize"].finished) == (101, 105)
    assert (record.stages["count"].started, record.stages["count"].finished) == (105, 108)
    assert record.reason is None


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(State, State)))
def test_only_the_documented_edges_are_allowed(current: State, wanted: State) -> None:
    forward = {
        (State.QUEUED, State.TOKENIZING),
        (State.TOKENIZING, State.COUNTING),
        (State.COUNTING, State.SUCCEEDED),
    }
    expected = current not in TERMINAL and ((current, wanted) in forward or wanted in (State.FAILED, State.CANCELLED))
    assert allowed(current, wanted) is expected
    record = _record(current)
    if expected:
        record.move_to(wanted, reason="why")
        assert record.state is wanted
    else:
        with pytest.raises(InvalidTransition):
            record.move_to(wanted)
        assert record.state is current


def test_failing_keeps_the_reason_and_closes_the_running_stage() -> None:
    record = _record(State.TOKENIZING)
    record.stages["tokenize"].started = 100
    record.move_to(State.FAILED, reason="the upload is not valid UTF-8", now=103)
    assert record.reason == "the upload is not valid UTF-8"
    assert record.stages["tokenize"].finished == 103
    assert record.stages["count"].started is None


def test_terminal_states_never_move_again() -> None:
    for state in TERMINAL:
        for wanted in State:
            assert not allowed(state, wanted)


def test_the_record_round_trips_through_json() -> None:
    record = _record()
    record.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    record.move_to(State.TOKENIZING, now=101)
    record.stages["tokenize"].job_name = "batch-x-tokenize"
    again = JobRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again == record
    assert again.to_json()["state"] == "tokenizing"


def test_the_owner_round_trips_and_defaults_to_anonymous() -> None:
    record = JobRecord(id="j1", state=State.QUEUED, created=1.0, options={}, owner="system:serviceaccount:ns:alice")
    assert JobRecord.from_json(record.to_json()).owner == "system:serviceaccount:ns:alice"
    legacy = record.to_json()
    del legacy["owner"]
    assert JobRecord.from_json(legacy).owner == ""
