"""One payer per job across machines: a Prefect global concurrency limit of 1 per job, held around the pay step.

The file lock of a run (``flows/annotation_batch.py``, ``flows/collect_report.py``) serialises runs on one host
only; two hosts (two workers, a worker and a laptop, two collect-report runs started by a duplicated trigger)
share only the Prefect server. :func:`pay_lock` takes the one slot of the limit ``taskbuilder-pay-<job slug>``
(created with ``limit: 1`` when missing; a 409 from a host creating it at the same time is fine) around "read the
record → set up → pay → record", so the second payer reads the first one's ``paid`` and pays nothing.

The slot is a lease (``PAY_LEASE_SECONDS``, renewed by Prefect while held; a payer that dies frees it when the
lease runs out). Strict: a missing or unreachable Prefect server, a limit that is not ``limit: 1`` and active, or
a wait longer than ``PAY_LOCK_WAIT_SECONDS`` raise :class:`PayLockUnavailable` and nothing is paid; so does a
limit the job record names (``pay_lock``, noted the first time it is seen) that had to be created again: deleted
by hand, maybe while another run held it. A lease whose renewal fails stops the holder (Prefect's
``raise_on_lease_renewal_failure``). The limits are kept (one small row
per job with a bonus), like the webhook event claims.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from taskbuilder.errors import Refusal
from taskbuilder.jobkey import storage_slug

from tasks.records import load_job_record, update_job_record

PAY_LOCK_WAIT_SECONDS = 900.0
"""How long a second payer waits for the first (a pay step with its settle waits takes minutes at most)."""
PAY_LEASE_SECONDS = 120.0
"""The slot's lease; Prefect renews it at 75 % while the pay step runs."""


class PayLockUnavailable(Refusal):
    """The job's pay lock could not be taken (Prefect unreachable, the limit changed by hand, another payer
    holding it too long): nothing was paid; the message says what to do."""


class PayLockBusy(PayLockUnavailable):
    """Another run held the job's pay lock for longer than the wait asked (``wait_seconds`` of :func:`pay_lock`)."""


def pay_limit_name(job_key: str, base_url: str) -> str:
    """The global concurrency limit of the job's pay step: ``taskbuilder-pay-<slug of job key and API>``."""
    return f"taskbuilder-pay-{storage_slug(job_key, base_url)}"


def _ensure_limit(name: str, job_key: str, base_url: str) -> None:
    """Create the limit (``POST /api/v2/concurrency_limits/``, ``limit: 1``) unless it exists, and note its name in
    the job record (``pay_lock``) once seen. Raise :class:`PayLockUnavailable` when the one found is not active
    with ``limit: 1``, or when the record names it but it had to be created again: it was deleted by hand, maybe
    while another run held it (that run still pays; a fresh limit would let this one pay beside it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists

    seen_before = (load_job_record(job_key, base_url) or {}).get("pay_lock") == name
    with get_client(sync_client=True) as client:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            found = client.read_global_concurrency_limit_by_name(name)
            if found.limit != 1 or not found.active:
                raise PayLockUnavailable(
                    f"the pay lock {name!r} (a Prefect global concurrency limit) has limit {found.limit} and active "
                    f"{found.active}; it must be limit 1 and active for bonuses to be paid once. Nothing was paid: "
                    f"set it back (prefect gcl update {name} --limit 1; prefect gcl enable {name}) and run again") from None
        else:
            if seen_before:
                raise PayLockUnavailable(
                    f"the pay lock {name!r} (a Prefect global concurrency limit) of job {job_key!r} was deleted by hand "
                    "since an earlier run took it, maybe while another run held it and is paying now. Nothing was paid "
                    "by this run; it was created again (limit 1): run the job again once no other run of it is "
                    "running (a re-run checks the record first and pays only what is unpaid)")
    if not seen_before:
        update_job_record(job_key, base_url, pay_lock=name)


@contextmanager
def pay_lock(job_key: str, base_url: str, wait_seconds: float = PAY_LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the job's pay lock for the ``with`` block (see the module docstring), waiting at most ``wait_seconds``
    for another holder. Raises :class:`PayLockUnavailable` before the block runs when the lock cannot be taken
    (:class:`PayLockBusy` when another run held it all that time)."""
    from prefect.concurrency.sync import concurrency

    name = pay_limit_name(job_key, base_url)
    with ExitStack() as held:
        try:
            _ensure_limit(name, job_key, base_url)
            held.enter_context(concurrency(name, occupy=1, timeout_seconds=wait_seconds, strict=True,
                                           lease_duration=PAY_LEASE_SECONDS, raise_on_lease_renewal_failure=True))
        except PayLockUnavailable:
            raise
        except TimeoutError:
            raise PayLockBusy(
                f"another run has held job {job_key!r}'s pay lock {name!r} for over {wait_seconds:g} s: this run "
                "paid nothing; run the job again once the other run ended (it checks the record first)") from None
        except Exception as error:  # Prefect unreachable, or answering an error: never pay without the lock
            raise PayLockUnavailable(
                f"cannot take job {job_key!r}'s pay lock {name!r} on the Prefect server ({type(error).__name__}: {error}): "
                "nothing was paid; run the job again when the Prefect server answers") from error
        yield
