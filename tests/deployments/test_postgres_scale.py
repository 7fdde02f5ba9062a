"""Scale-out: the deployments on a Prefect server backed by PostgreSQL 15, two process workers, ten jobs
launched at once (plus two duplicate launches of one job), the API rate limit shared through a Prefect
global concurrency limit.

The PostgreSQL cluster is a throwaway one (initdb in a temporary folder, run as user ``postgres`` on a
free loopback port); everything is stopped at the end, also on failure.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from taskbuilder.jobkey import job_key_of
from taskbuilder.jobspec import AnnotationJob
from tests.deployments.stack import postgres_cluster, prefect_stack, request_counting_env, wait_until
from tests.integration.jobs import write_small_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(720)]

RATE_LIMIT = 6  # slots
SLOT_DECAY_PER_SECOND = 3.0
WINDOW_SECONDS = 10.0
JOBS = 10
INCREMENT = "POST /api/v2/concurrency_limits/increment"


def test_ten_jobs_on_postgres_with_two_workers_create_once_within_the_rate_limit(tmp_path):
    counts_file = tmp_path / "prefect-requests.jsonl"
    counting = request_counting_env(counts_file)
    with postgres_cluster() as database_url, prefect_stack(
        database_url=database_url, workers=2, worker_limit=4, rate_limit=(RATE_LIMIT, SLOT_DECAY_PER_SECOND),
        worker_env_extra=counting,
    ) as stack:
        with stack.api() as api:
            assert api.get("/admin/version").status_code == 200
        assert "postgresql" in stack.env["PREFECT_API_DATABASE_CONNECTION_URL"]

        jobs = [AnnotationJob.from_yaml(write_small_job(tmp_path / f"job-{n}")).model_dump(mode="json") for n in range(JOBS)]
        launch = "annotation-batch/launch-annotation-batch"
        polling = {"interval_seconds": 1.0, "max_interval_seconds": 2.0}
        runs = [stack.run_deployment(launch, {"job": job, "polling": polling}) for job in jobs]
        runs += [stack.run_deployment(launch, {"job": jobs[0], "polling": polling}) for _ in range(2)]  # duplicates
        finished = [stack.wait_for_state(flow_run_id, {"COMPLETED"}, 360) for flow_run_id in runs]
        assert len(finished) == JOBS + 2

        requests = [r for r in httpx.get(stack.sandbox.base_url + "/_sandbox/requests", timeout=30).json()["requests"] if r["target"] == "api"]
        api = httpx.Client(base_url=stack.sandbox.base_url + "/api/v1", headers={"Authorization": f"Token {stack.sandbox.token}"}, timeout=30)
        studies = api.get("/studies/", params={"limit": 200}).json()["results"]
        workspace = api.get("/workspaces/").json()["results"][0]["id"]
        batches = api.get("/data-collection/batches", params={"workspace_id": workspace}).json()["results"]
        for job in jobs:  # each job's resources exist once, and its study was published once
            mine = [s for s in studies if job_key_of(s.get("internal_name")) == job["name"]]
            assert len(mine) == 1, (job["name"], len(mine))
            assert sum(1 for b in batches if job_key_of(b["name"]) == job["name"]) == 1, job["name"]
            publishes = [r for r in requests if r["method"] == "POST" and r["path"].rstrip("/") == f"/api/v1/studies/{mine[0]['id']}/transition"]
            assert len(publishes) == 1, job["name"]
        assert sum(1 for r in requests if r["method"] == "POST" and r["path"].rstrip("/") == "/api/v1/data-collection/datasets") == JOBS

        # both workers ran flow runs
        for number in range(2):
            assert "submitting flow run" in (stack.home / f"worker-{number}.log").read_text(), f"worker-{number} ran nothing"

        # the shared rate limit: at most limit + decay × 10 s requests in any 10-second window (plus the
        # decay of 1 s for the gap between a slot being granted and the sandbox logging the request)
        times = sorted(dt.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() for r in requests)
        busiest = max(sum(1 for t in times[i:] if t < start + WINDOW_SECONDS) for i, start in enumerate(times))
        bound = RATE_LIMIT + SLOT_DECAY_PER_SECOND * (WINDOW_SECONDS + 1)
        print(f"{len(times)} API requests over {times[-1] - times[0]:.0f} s; busiest 10 s window: {busiest} (bound {bound:.0f})")
        assert busiest <= bound

        # every one of those requests took a slot of the one limit on the server: the slots granted to the flow
        # runs' processes (each counts its Prefect requests answered 2xx, benchmarks/prefect_request_counter)
        # add up to at least the API requests, so the limit was shared by all flow runs of both workers
        def granted() -> tuple[int, int]:
            lines = [json.loads(line) for line in counts_file.read_text().splitlines()] if counts_file.exists() else []
            mine = [line for line in lines if line.get("flow_run_id") in set(runs)]
            # a run forked by its worker's preloader writes two lines: its process's (no request) and its child's
            return (len({line["flow_run_id"] for line in mine if line["requests"]}),
                    sum(line["answered_2xx"].get(INCREMENT, 0) for line in mine))

        wait_until(lambda: granted()[0] == len(runs), 60, f"the request counts of {len(runs)} flow runs (saw {granted()[0]})")
        processes, slots = granted()
        print(f"{slots} rate-limit slots granted to {processes} flow runs for {len(requests)} API requests")
        assert slots >= len(requests), (slots, len(requests))
