"""The drift event's payload: built by drift_monitor, read by retrain, one shape."""

from __future__ import annotations

from driftloop.events import drift_check_ids, drift_event


def _outcome(batch_id: int, status: str = "drift", new: bool = True) -> dict:
    return {
        "batch_id": batch_id,
        "report_id": 100 + batch_id,
        "model_version": "1",
        "status": status,
        "new": new,
    }


def test_one_event_lists_every_new_drift_and_names_the_newest():
    outcomes = [_outcome(6), None, _outcome(4), _outcome(5, "no_drift"), _outcome(3, new=False)]
    extra = drift_event(outcomes)
    assert extra == {
        "batch_id": 6,
        "report_id": 106,
        "model_version": "1",
        "drift_checks": [{"batch_id": 4, "report_id": 104}, {"batch_id": 6, "report_id": 106}],
    }
    assert drift_check_ids([extra]) == [104, 106]


def test_no_new_drift_is_no_event():
    assert drift_event([None, _outcome(1, "no_drift"), _outcome(2, new=False)]) is None
    assert drift_event([]) is None


def test_events_of_several_runs_and_an_older_single_drift_event_are_all_read():
    older = {"batch_id": 1, "report_id": 11, "model_version": "1"}  # one drift per event
    newer = drift_event([_outcome(2), _outcome(3)])
    assert drift_check_ids([older, newer]) == [11, 102, 103]
