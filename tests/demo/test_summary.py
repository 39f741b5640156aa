"""The demo's closing summary: what a person reads at the end of `make demo`."""

from __future__ import annotations

from driftloop.demo.loop import LoopResult, summary_lines


def _run(merged: list[int] | None) -> dict:
    return {
        "trigger": "drift",
        "decision": "staging",
        "reason": "not worse than Production",
        "model_version": "2",
        "drift_check_id": 6,
        "details": {"model": "et"} | ({"merged_drift_checks": merged} if merged else {}),
    }


def test_a_retrain_that_merged_drift_checks_says_which():
    result = LoopResult(
        batches=[{"batch": f"b{i}", "status": "drift", "drifted": ["pH"]} for i in (4, 5, 6)],
        drift_events=1,
        retrain_runs=[_run([4, 5])],
    )
    lines = summary_lines(result)
    at = lines.index("retrain (drift): staging version 2: not worse than Production")
    assert lines[at + 1] == "  on drift check 6, the newest waiting; checks 4, 5 merged into it"


def test_a_retrain_on_one_drift_check_says_nothing_of_merges():
    lines = summary_lines(LoopResult(retrain_runs=[_run(None)]))
    assert not any("merged" in line for line in lines)
