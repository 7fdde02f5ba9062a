"""B9: one study-monitor run over 10 and over 1,000 job records (1 and 100 of them active), against the sandbox.

Set-up, not measured: a local Prefect server (:mod:`flows.local_server`, private ``PREFECT_HOME``) and the sandbox
with participants so slow that published studies stay ACTIVE. Each case writes its job records through
:func:`tasks.records.update_job_record`, as runs do: the active ones with a published, ACTIVE study on the sandbox
(announced ACTIVE, as after an earlier monitor run), the others collected (``collected_at``), their studies long
gone. Measured: one ``monitor_studies`` flow run in this process (after one warm-up run on 10 other records), median
of 3; the Prolific API requests it made (the sandbox's request log) and its Prefect API requests (counted on the
Prefect client's send). Goals (issue 18): API requests per run ≤ 2 + the active jobs; the 1,000-record run ≤ 3x the
10-record run's wall time.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Result, arguments, median, scratch, seconds  # noqa: E402

SLOW_PARTICIPANTS = {"participant_arrival_per_second": 0.0001, "submission_seconds": 1e6, "dataset_processing_seconds": 0.0,
                     "batch_setup_seconds": 0.0}


def active_studies(api, workspace_id: str, count: int, folder: Path) -> list[str]:
    """``count`` published (ACTIVE) studies on one READY batch of the sandbox."""
    from tests.sandbox.helpers import create_study, publish, ready_batch, ready_dataset, sentences_csv, write_csv

    dataset = ready_dataset(api, workspace_id, write_csv(folder, sentences_csv(30)))
    batch = ready_batch(api, workspace_id, dataset["id"], tasks_per_group=3)
    ids = []
    for _ in range(count):
        study = create_study(api, batch["id"])
        publish(api, study["id"])
        ids.append(study["id"])
    return ids


def write_records(base_url: str, tag: str, total: int, studies: list[str]) -> None:
    """``total`` job records: one per study in ``studies`` active (ACTIVE, announced), the rest collected."""
    from tasks.records import update_job_record

    spec = {"name": "bench", "token_secret_block": None, "dataset": {"csv": "data.csv"}}
    for n in range(total):
        key = f"b9-{tag}-{n}"
        if n < len(studies):
            update_job_record(key, base_url, spec=spec, output_location="/tmp/none", batch_id="b", published=True,
                              study_id=studies[n], statuses={"study": "ACTIVE"}, announced_status="ACTIVE")
        else:
            update_job_record(key, base_url, spec=spec, output_location="/tmp/none", batch_id="b", published=True,
                              study_id=uuid.uuid4().hex[:24], statuses={"study": "COMPLETED"}, announced_status="COMPLETED",
                              collected_at="2026-12-01T00:00:00+00:00")


def finish_case(base_url: str, tag: str, active: int) -> None:
    """Mark a case's active jobs collected (they leave the index of active jobs)."""
    from tasks.records import update_job_record

    for n in range(active):
        update_job_record(f"b9-{tag}-{n}", base_url, collected_at="2026-12-01T00:00:00+00:00")


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    cases = [(10, 1), (100, 10)] if args.quick else [(10, 1), (1000, 100)]
    result = Result("B9", f"one study-monitor run over {cases[0][0]:,} and {cases[1][0]:,} job records")
    import httpx

    from flows.embedded_sandbox import running_sandbox
    from flows.local_server import ensure_server, stop_server

    with scratch("b9") as folder, running_sandbox() as sandbox:
        home = folder / "prefect-home"
        os.environ.update(PREFECT_HOME=str(home), PREFECT_LOGGING_LEVEL="WARNING", PROLIFIC_API_TOKEN=sandbox.token,
                          PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        try:
            os.environ["PREFECT_API_URL"] = ensure_server(home)[0].url
            from flows.monitor_studies import monitor_studies

            control = httpx.Client(base_url=sandbox.base_url, timeout=60)
            control.post("/_sandbox/settings", json=SLOW_PARTICIPANTS).raise_for_status()
            api = httpx.Client(base_url=sandbox.base_url + "/api/v1", headers={"Authorization": f"Token {sandbox.token}"}, timeout=60)
            workspace_id = api.get("/workspaces/").json()["results"][0]["id"]
            from tests.prefect_requests import count_prefect_requests

            prefect_seen, _ = count_prefect_requests()
            figures = {}
            for tag, (total, active) in [("warm", (10, 1)), *((f"r{t}", (t, a)) for t, a in cases)]:
                os.makedirs(folder / tag, exist_ok=True)
                studies = active_studies(api, workspace_id, active, folder / tag)
                started = time.perf_counter()
                write_records(sandbox.base_url, tag, total, studies)
                setup_seconds = time.perf_counter() - started
                walls, prolific, prefect = [], [], []
                for _ in range(1 if tag == "warm" else 3):
                    before = len(control.get("/_sandbox/requests").json()["requests"])
                    prefect_seen.clear()
                    started = time.perf_counter()
                    done = monitor_studies(base_url=sandbox.base_url)
                    walls.append(time.perf_counter() - started)
                    log = control.get("/_sandbox/requests").json()["requests"][before:]
                    prolific.append(sum(1 for r in log if r["target"] == "api"))
                    prefect.append(sum(prefect_seen.values()))
                    assert not any("event_id" in d for d in done), done  # nothing changed: steady state
                figures[tag] = {"total": total, "active": active, "wall": walls, "prolific": prolific, "prefect": prefect,
                                "setup_seconds": setup_seconds, "by_path": dict(prefect_seen)}
                finish_case(sandbox.base_url, tag, active)  # the next case's run must see only its own active jobs
        finally:
            stop_server(home)
    small, large = (figures[f"r{t}"] for t, _ in cases)
    result.details.update(figures=figures)
    for case in (small, large):
        requests = max(case["prolific"])
        result.add(f"Prolific API requests per run, {case['total']:,} records ({case['active']} active)", str(requests),
                   f"{2 + case['active']} (2 + active jobs)", "-", "<= 2 + active jobs", requests <= 2 + case["active"])
        result.add(f"  Prefect API requests per run, {case['total']:,} records", str(max(case["prefect"])), "-", "-",
                   "(information)", None)
    t_small, t_large = median(small["wall"]), median(large["wall"])
    result.add(f"monitor run wall time, median of 3, {large['total']:,} vs {small['total']:,} records", seconds(t_large),
               seconds(t_small), f"{t_large / t_small:.2f}x", "<= 3x", t_large / t_small <= 3.0)
    result.emit(args.json_out)


if __name__ == "__main__":
    main()
