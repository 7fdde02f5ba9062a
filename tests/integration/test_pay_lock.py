"""The job's pay lock (tasks/pay_lock.py) on a real Prefect server: one holder at a time across payers, created
when missing, and never a pay step without it (Prefect unreachable, or the limit changed by hand)."""

from __future__ import annotations

import threading
import time

import pytest

from tasks.pay_lock import PayLockUnavailable, pay_limit_name, pay_lock

API = "https://api.example.test"


def test_prefect_unreachable_means_the_pay_step_never_runs():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    ran = []
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):   # nothing listens on port 9
        with pytest.raises(PayLockUnavailable, match="nothing was paid"):
            with pay_lock("job-unreachable", API):
                ran.append(True)
    assert ran == []


@pytest.mark.usefixtures("prefect_harness")
def test_two_payers_of_one_job_hold_the_lock_one_after_the_other():
    inside, overlaps, done = [], [], []

    def payer(name: str) -> None:
        with pay_lock("job-two-payers", API):
            inside.append(name)
            overlaps.append(len(inside))
            time.sleep(1.0)
            inside.remove(name)
        done.append(name)

    threads = [threading.Thread(target=payer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(done) == ["a", "b"] and overlaps == [1, 1]


@pytest.mark.usefixtures("prefect_harness")
def test_a_limit_changed_by_hand_is_refused_before_the_pay_step():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    with pay_lock("job-changed-limit", API):        # creates the limit
        pass
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(pay_limit_name("job-changed-limit", API), GlobalConcurrencyLimitUpdate(limit=2))
    ran = []
    with pytest.raises(PayLockUnavailable, match="limit 2"):
        with pay_lock("job-changed-limit", API):
            ran.append(True)
    assert ran == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_limit_deleted_while_held_is_not_created_again_for_a_second_payer():
    """Deleting the limit by hand frees nothing the first payer knows of: a second payer that found it missing and
    created a fresh one would pay beside the first (for up to the lease's renewal time). Refused instead."""
    from prefect.client.orchestration import get_client

    name = pay_limit_name("job-deleted-limit", API)
    ran = []
    with pay_lock("job-deleted-limit", API):            # the first payer holds it
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(name)
        with pytest.raises(PayLockUnavailable, match="deleted"):
            with pay_lock("job-deleted-limit", API):
                ran.append(True)
    assert ran == []
