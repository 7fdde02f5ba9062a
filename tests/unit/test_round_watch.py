"""Which study the monitor watches for a job in rounds, which records are a job's rounds, and which jobs the
monitor never collects itself because a reviewer may be asked (issue 19)."""

from __future__ import annotations

import pytest

from flows.monitor_studies import may_ask_a_reviewer, watched_view
from tasks.records import collect_decision, is_round_record

JOB = {"job_key": "job", "base_url": "http://api", "study_id": "s1", "batch_id": "b1", "published": True,
       "statuses": {"study": "AWAITING REVIEW"}, "announced_status": "AWAITING REVIEW"}
ROUND_2 = {"number": 2, "key": "job-round-2", "kind": "followup", "study_id": "s2", "batch_id": "b2", "earlier_batches": [[1, "b1"]]}


def test_a_job_past_round_one_is_watched_by_its_current_rounds_study():
    view = watched_view({**JOB, "current_round": ROUND_2})
    assert (view["study_id"], view["batch_id"], view["watching_round"]) == ("s2", "b2", 2)
    assert view["statuses"]["study"] is None and view["announced_status"] is None  # round 2 not seen yet
    assert collect_decision(view, "ACTIVE") == (True, False)  # round 1's finish does not collect round 2
    assert collect_decision(view, "AWAITING REVIEW") == (True, True)


def test_the_status_seen_of_another_rounds_study_is_not_this_rounds():
    stale = {"study_id": "s1", "status": "COMPLETED", "announced_status": "COMPLETED"}
    assert watched_view({**JOB, "current_round": ROUND_2, "round_watch": stale})["announced_status"] is None
    seen = {"study_id": "s2", "status": "ACTIVE", "announced_status": "ACTIVE"}
    view = watched_view({**JOB, "current_round": ROUND_2, "round_watch": seen})
    assert collect_decision(view, "ACTIVE") == (False, False)


@pytest.mark.parametrize("current", [None, {**ROUND_2, "number": 1, "study_id": "s1"}])
def test_round_one_and_jobs_without_rounds_are_watched_as_they_are(current):
    record = {**JOB, **({"current_round": current} if current else {})}
    assert watched_view(record) is record


@pytest.mark.parametrize("record, is_round", [
    ({"job_key": "job-round-2", "round_of": "job", "study_id": "s2"}, True),
    ({"job_key": "job-round-3", "study_id": "s3"}, True),  # written before round_of was kept: no spec
    ({"job_key": "my-round-2", "spec": {"name": "my-round-2"}, "study_id": "s"}, False),  # a job so named
    ({"job_key": "job", "spec": {}, "study_id": "s1"}, False),
])
def test_a_rounds_record_is_told_from_a_jobs(record, is_round):
    assert is_round_record(record) is is_round


@pytest.mark.parametrize("spec, record, asks", [
    ({"pilot": {"then": "approval"}}, {}, True),
    ({"pilot": {"then": "approval"}}, {"pilot_decision": {"go_on": True}}, False),
    ({"pilot": {"then": "auto"}}, {}, False),
    ({"adaptive": {"start_annotators": 2}, "require_approval": True}, {}, True),
    ({"adaptive": {"start_annotators": 2}}, {}, False),
    ({"require_approval": True}, {}, False),  # one round: its approval is the launch's, before PUBLISH
])
def test_the_monitor_leaves_jobs_that_may_ask_a_reviewer_to_a_run_of_their_own(spec, record, asks):
    assert may_ask_a_reviewer({**JOB, **record, "spec": spec}) is asks
