"""B3: a whole job on the sandbox through the ``annotation_batch`` flow, against a plain httpx script.

Job: 3,000 generated rows × 3 annotators (``--quick``: 300), tasks_per_group 10, a multiple-choice and a
free-text instruction, publish and wait for the study, report, outputs. Sandbox: dataset processing and batch
setup 0 s, fast participants (no think time, 1,000 arrivals/s, no returns or time-outs). Both sides poll at a
fixed 0.1 s (no backoff) so that waiting costs the same.

Baseline in the same run: :func:`plain_job`, a plain script that makes the same API calls in the same order
with raw ``httpx`` and does the same local work with the same library functions (validation, upload preparation,
report parsing, aggregation, outputs; no Prefect, no job record, no artifacts). The benchmark checks that both
sent the same sequence of requests to the sandbox (ids normalised, repeated polls collapsed).

Figure: orchestration overhead per step = (flow run time − plain script time − Prefect's fixed cost of a flow
run) / number of task runs of the flow run. Prefect's own start is reported apart: the first flow run of the
process (temporary server and database), and the fixed cost of every later flow run (an empty flow's run time:
creating the run, states, and the ~1 s join of the heartbeat thread at the end, ``prefect-notes.md`` §8). The
figure without that fixed cost taken out is shown too. Median of several pairs, alternating which goes first;
the sandbox is reset before each run. Goal: ≤ 50 ms per step.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Prefect settings must be in place before Prefect is imported (a private PREFECT_HOME, no analytics); only
# when run as the benchmark (B4 imports write_job from here).
_HOME = Path(tempfile.mkdtemp(prefix="taskbuilder-bench-b3-")) if __name__ == "__main__" else Path(tempfile.gettempdir())
os.environ.update({} if __name__ != "__main__" else {
    "PREFECT_HOME": str(_HOME / "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(_HOME / "results"),
    "TASKBUILDER_LOCK_DIR": str(_HOME / "locks"),
})
for _name in ("PROLIFIC_API_URL", "PROLIFIC_WORKSPACE_ID", "PREFECT_API_URL") if __name__ == "__main__" else ():
    os.environ.pop(_name, None)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import csv  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import httpx  # noqa: E402
import yaml  # noqa: E402

from benchmarks.bench_validate import LABELS, sentence  # noqa: E402
from benchmarks.common import Result, arguments, median, seconds  # noqa: E402

SANDBOX_SETTINGS = {
    "dataset_processing_seconds": 0.0, "batch_setup_seconds": 0.0, "participant_arrival_per_second": 1000.0,
    "submission_seconds": 0.0, "return_rate": 0.0, "timeout_rate": 0.0,
}
STUDY_DONE = {"AWAITING REVIEW", "COMPLETED"}


def write_job(folder: Path, rows: int, name: str) -> Path:
    """``data.csv`` (``id,text,META_gold``) and ``job.yaml`` in ``folder``; returns the spec path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(3)
    with open(folder / "data.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text", "META_gold"])
        writer.writerows([f"{n:05d}", sentence(rng), rng.choice(LABELS)] for n in range(rows))
    spec = {
        "name": name,
        "dataset": {"name": "bench", "csv": "data.csv", "id_column": "id", "gold_column": "META_gold", "max_rows": 100_000},
        "batch": {
            "name": "bench batch",
            "task_details": {"task_name": "Sentiment", "task_introduction": "<p>Read.</p>", "task_steps": "<p>Pick.</p>"},
            "tasks_per_group": 10,
            "instructions": [
                {"order": 1, "type": "multiple_choice", "description": "Sentiment?", "answer_limit": 1,
                 "options": [{"label": label.title(), "value": label} for label in LABELS]},
                {"order": 2, "type": "free_text", "description": "Why?"},
            ],
        },
        "study": {
            "name": "Bench study", "internal_name": "bench", "description": "<p>Bench.</p>", "reward": 150,
            "estimated_completion_time": 5, "maximum_allowed_time": 20, "annotators_per_task": 3,
            "completion_codes": [{"code": "OK1", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALLY_APPROVE"}]}],
        },
        "publish": True, "max_budget": 100_000_000, "wait_for_completion": True, "output_dir": str(folder / "out"),
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------------------
# the baseline: the same API calls, in the same order, with plain httpx


def _collect(api: httpx.Client, path: str, params: dict | None = None) -> list:
    """Every item of a list endpoint: ``_links.next.href`` while present, else offsets up to ``meta.count``."""
    items, url, query = [], path, dict(params or {})
    while True:
        body = api.get(url, params=query if url == path else None).raise_for_status().json()
        if isinstance(body, list):
            return items + body
        items += body["results"]
        href = ((body.get("_links") or {}).get("next") or {}).get("href")
        if not body["results"] or not href:
            return items
        url = href


def _wait(read_status, done: set[str], interval_seconds: float) -> str:
    while True:
        status = read_status()
        if status in done:
            return status
        if status == "ERROR":
            raise RuntimeError("the sandbox reported ERROR")
        time.sleep(interval_seconds)


def plain_job(job, base_url: str, token: str, interval_seconds: float, work_dir: Path) -> dict:
    """Run ``job`` with plain httpx calls (the flow's requests, in its order) and the library's local steps."""
    from taskbuilder.aggregate import aggregate
    from taskbuilder.jobkey import sha256_file, tag_name
    from taskbuilder.outputs import write_outputs
    from taskbuilder.payloads import instructions_payload, study_payload
    from taskbuilder.report import parse_report
    from taskbuilder.upload_preparation import prepare_upload
    from taskbuilder.validation import validate_csv
    from tasks.results import instruction_payloads

    work_dir.mkdir(parents=True, exist_ok=True)
    csv_path = Path(job.dataset.csv)
    report = validate_csv(csv_path, job)
    assert report.ok, report.format_text()
    upload_path = prepare_upload(csv_path, report, job, work_dir / "upload")
    csv_sha256 = sha256_file(upload_path)
    job_key, fingerprint = job.job_key(csv_sha256), job.work_fingerprint(csv_sha256)
    v1 = "/api/v1"
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Token {token}"}, timeout=60) as api:
        workspace_id = _collect(api, f"{v1}/workspaces/", {"limit": 200, "offset": 0})[0]["id"]
        _collect(api, f"{v1}/data-collection/batches", {"workspace_id": workspace_id})  # the flow's check of the job's tags
        datasets = f"{v1}/data-collection/datasets"
        dataset_id = api.post(datasets, json={"name": job.dataset.name, "workspace_id": workspace_id}).raise_for_status().json()["id"]
        api.get(f"{datasets}/{dataset_id}/status").raise_for_status()
        upload = api.get(f"{datasets}/{dataset_id}/upload-url/data.csv").raise_for_status().json()
        with httpx.Client(timeout=300) as s3, open(upload_path, "rb") as body:
            s3.put(upload["upload_url"], content=body, headers={"Content-Type": "text/csv"}).raise_for_status()
        _wait(lambda: api.get(f"{datasets}/{dataset_id}/status").json()["status"], {"READY"}, interval_seconds)

        batches = f"{v1}/data-collection/batches"
        name = tag_name(job.batch.name, job_key, fingerprint)
        assert not [b for b in _collect(api, batches, {"workspace_id": workspace_id}) if b["name"] == name]
        batch_id = api.post(batches, json={"name": name, "workspace_id": workspace_id, "dataset_id": dataset_id,
                                           "task_details": job.batch.task_details.model_dump(mode="json")}).raise_for_status().json()["id"]
        assert [b["id"] for b in _collect(api, batches, {"workspace_id": workspace_id}) if b["name"] == name] == [batch_id]
        api.get(f"{batches}/{batch_id}").raise_for_status()
        assert _collect(api, f"{batches}/{batch_id}/instructions") == []
        api.post(f"{batches}/{batch_id}/instructions", json={"instructions": instructions_payload(job.batch)}).raise_for_status()
        api.get(f"{batches}/{batch_id}/status").raise_for_status()
        api.post(f"{batches}/{batch_id}/setup", json={"dataset_id": dataset_id, "tasks_per_group": job.batch.tasks_per_group}).raise_for_status()
        _wait(lambda: api.get(f"{batches}/{batch_id}/status").json()["status"], {"READY"}, interval_seconds)
        api.get(f"{batches}/{batch_id}").raise_for_status()

        studies = f"{v1}/studies/"
        internal_name = tag_name(job.study.internal_name or job.study.name, job_key, fingerprint)
        assert not [s for s in _collect(api, studies, {"limit": 200, "offset": 0}) if s.get("internal_name") == internal_name]
        study_id = api.post(studies, json=study_payload(job.study, batch_id, internal_name)).raise_for_status().json()["id"]
        assert [s["id"] for s in _collect(api, studies, {"limit": 200, "offset": 0}) if s.get("internal_name") == internal_name] == [study_id]
        study = api.get(f"{studies}{study_id}/").raise_for_status().json()
        api.get(f"{v1}/users/me/").raise_for_status()
        cost = api.get(f"{studies}{study_id}/cost/").raise_for_status().json()  # the draft's own cost, as the flow reads it
        assert study["total_cost"] <= job.max_budget, (cost, job.max_budget)
        assert api.get(f"{studies}{study_id}/").json()["status"] == "UNPUBLISHED"
        api.post(f"{studies}{study_id}/transition/", json={"action": "PUBLISH"}).raise_for_status()
        _wait(lambda: api.get(f"{studies}{study_id}/").json()["status"], STUDY_DONE, interval_seconds)

        location = api.get(f"{batches}/{batch_id}/report/").raise_for_status().json()
        report_path = work_dir / "report.csv"
        with httpx.Client(timeout=300) as s3, s3.stream("GET", location["url"]) as response, open(report_path, "wb") as out:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                out.write(chunk)
        instructions = instruction_payloads(job)
        responses = parse_report(report_path, instructions)
        result = aggregate(responses, instructions, id_column=job.dataset.id_column, gold_column=job.dataset.gold_column,
                           attention_check_column=job.dataset.attention_check_column,
                           min_agreement=job.min_agreement, min_gold_accuracy=job.min_gold_accuracy)
        submissions = _collect(api, f"{studies}{study_id}/submissions/", {"limit": 200, "offset": 0})
        participants = result.participants.copy()
        status_of = {s.get("participant_id"): s.get("status") for s in submissions}
        participants["submission_status"] = participants["participant_id"].map(status_of).fillna("")
        outputs = write_outputs(job.output_dir, files={"report.csv": report_path, "responses.csv": responses,
                                                       "labels.csv": result.labels, "participants.csv": participants,
                                                       "summary.json": result.summary})
        # the flow's last look for late duplicates (tasks/reconcile.py)
        assert [b["id"] for b in _collect(api, batches, {"workspace_id": workspace_id}) if b["name"] == name] == [batch_id]
        assert [s["id"] for s in _collect(api, studies, {"limit": 200, "offset": 0}) if s.get("internal_name") == internal_name] == [study_id]
        statuses = {"dataset": api.get(f"{datasets}/{dataset_id}/status").json()["status"],
                    "batch": api.get(f"{batches}/{batch_id}/status").json()["status"],
                    "study": api.get(f"{studies}{study_id}/").json()["status"]}
    summary = {"job_key": job_key, "dataset_id": dataset_id, "batch_id": batch_id, "study_id": study_id,
               "statuses": statuses, "outputs": outputs, "cost": cost}
    write_outputs(job.output_dir, files={"run.json": summary})
    return summary


# ------------------------------------------------------------------------------------------------------------

_ID = re.compile(r"/(?=[^/]*\d)[0-9a-fA-F-]{16,}(?=/|$)")


def request_shape(requests: list[dict]) -> list[str]:
    """The sandbox's request log as ``target METHOD path`` with ids replaced by ``{id}`` and repeats collapsed."""
    shape: list[str] = []
    for r in requests:
        path = _ID.sub("/{id}", r["path"].rstrip("/"))
        if r["target"] == "s3":
            path = re.sub(r"^/[^/]+/datasets/\{id\}/.*", "/{bucket}/datasets/{id}/{file}", path)
            path = re.sub(r"^/[^/]+/reports/.*", "/{bucket}/reports/{file}", path)
        line = f"{r['target']} {r['method']} {path}"
        if not shape or shape[-1] != line:
            shape.append(line)
    return shape


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], lambda p: p.add_argument("--pairs", type=int, default=None))
    rows = 300 if args.quick else 3000
    pairs = args.pairs or (2 if args.quick else 3)
    from flows.embedded_sandbox import running_sandbox

    result = Result("B3", f"whole job, {rows:,} rows x 3 annotators, flow vs plain httpx")
    try:
        started = time.perf_counter()
        from prefect import flow  # noqa: F401  (the import is part of what a CLI run pays)
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        from flows.annotation_batch import annotation_batch
        from taskbuilder.polling import PollSettings
        from taskbuilder.jobspec import AnnotationJob
        from tasks.connection import ProlificConnection
        import_seconds = time.perf_counter() - started

        @flow(name="bench-empty")
        def empty() -> None:
            """Does nothing: its first run starts Prefect (temporary server, database)."""

        started = time.perf_counter()
        empty()
        prefect_start_seconds = time.perf_counter() - started
        empty_runs = []
        for _ in range(3):
            started = time.perf_counter()
            empty()
            empty_runs.append(time.perf_counter() - started)

        polling = PollSettings(interval_seconds=0.1, max_interval_seconds=0.1, backoff=1.0)
        samples: dict[str, list] = {"flow": [], "plain": []}
        shapes: dict[str, list[str]] = {}
        with running_sandbox() as sandbox:
            os.environ["PROLIFIC_API_TOKEN"] = sandbox.token
            control = httpx.Client(base_url=sandbox.base_url, timeout=60)
            connection = ProlificConnection(base_url=sandbox.base_url)
            for n in range(pairs):
                for kind in (("flow", "plain") if n % 2 == 0 else ("plain", "flow")):
                    control.post("/_sandbox/reset").raise_for_status()
                    control.post("/_sandbox/settings", json=SANDBOX_SETTINGS).raise_for_status()
                    folder = _HOME / f"{kind}-{n}"
                    job = AnnotationJob.from_yaml(write_job(folder, rows, f"bench-{kind}-{n}-{uuid.uuid4().hex[:8]}"))
                    started = time.perf_counter()
                    if kind == "flow":
                        state = annotation_batch(job=job, connection=connection, polling=polling, return_state=True)
                        elapsed = time.perf_counter() - started
                        summary = state.result()
                        with get_client(sync_client=True) as client:
                            task_runs = client.read_task_runs(
                                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
                        sample = {"seconds": elapsed, "task_runs": len(task_runs)}
                    else:
                        summary = plain_job(job, sandbox.base_url, sandbox.token, polling.interval_seconds, folder / "work")
                        sample = {"seconds": time.perf_counter() - started}
                    assert summary["statuses"]["study"] in STUDY_DONE, summary["statuses"]
                    labels = (Path(job.output_dir) / "labels.csv").read_text().count("\n")
                    assert labels >= rows, labels
                    requests = control.get("/_sandbox/requests").json()["requests"]
                    sample["api_requests"] = sum(1 for r in requests if r["target"] == "api")
                    shapes[kind] = request_shape(requests)
                    samples[kind].append(sample)
                    shutil.rmtree(folder, ignore_errors=True)
            control.close()
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)

    t_flow = median([s["seconds"] for s in samples["flow"]])
    t_plain = median([s["seconds"] for s in samples["plain"]])
    steps = samples["flow"][0]["task_runs"]
    t_empty = median(empty_runs)
    per_step = (t_flow - t_plain - t_empty) / steps
    per_step_raw = (t_flow - t_plain) / steps
    result.details.update(samples=samples, request_shapes=shapes, import_seconds=import_seconds,
                          prefect_start_seconds=prefect_start_seconds, empty_flow_run_seconds=empty_runs)
    result.add(f"job time, median of {pairs}", seconds(t_flow), seconds(t_plain), f"{t_flow / t_plain:.2f}x",
               "(information)", None)
    result.add(f"orchestration overhead per step ({steps} task runs)", seconds(per_step), "-", "-", "<= 50 ms", per_step <= 0.05)
    result.add("  same, Prefect's fixed cost per flow run not taken out", seconds(per_step_raw), "-", "-", "(information)", None)
    result.add("API requests per job (median)", f"{median([s['api_requests'] for s in samples['flow']]):.0f}",
               f"{median([s['api_requests'] for s in samples['plain']]):.0f}", "-", "(information)", None)
    result.add("same request sequence (polls collapsed)", "yes" if shapes["flow"] == shapes["plain"] else "NO", "-", "-",
               "same calls, same order", shapes["flow"] == shapes["plain"])
    result.add("Prefect start (first flow run: server + DB)", seconds(prefect_start_seconds), "-", "-", "reported apart", None)
    result.add("Prefect's fixed cost per flow run (empty flow, median of 3)", seconds(t_empty), "-", "-", "reported apart", None)
    result.add("import prefect + flows", seconds(import_seconds), "-", "-", "(information)", None)
    if shapes["flow"] != shapes["plain"]:
        import difflib

        result.notes.append("request sequences differ:\n    " + "\n    ".join(
            difflib.unified_diff(shapes["plain"], shapes["flow"], "plain", "flow", lineterm="", n=1)))
    result.emit(args.json_out)


if __name__ == "__main__":
    main()
