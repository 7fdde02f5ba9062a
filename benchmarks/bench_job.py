"""B3: a whole job on the sandbox through the ``annotation_batch`` flow, against a plain httpx script.

Job: 3,000 generated rows × 3 annotators (``--quick``: 300), tasks_per_group 10, a multiple-choice and a
free-text instruction, publish and wait for the study, report, outputs. Sandbox: dataset processing and batch
setup 0 s, fast participants (no think time, 1,000 arrivals/s, no returns or time-outs). Both sides poll at a
fixed 0.1 s (no backoff) so that waiting costs the same.

Baseline in the same run: :func:`plain_job`, a plain script that makes the same API calls in the same order
with raw ``httpx`` (today's path, ``../shared/docs/prolific-api-current.md``: the account's quote, a V4 dataset
with a schema and its import job, a batch with ``batch_items``, the study's own cost and the workspace balance
before PUBLISH, the spending after), their bodies built by the library functions and request models the flow's
tasks use, and does the same local work with the same library functions (validation, upload preparation, the
cost checks, report parsing, aggregation, outputs; no Prefect, no job record, no artifacts). The benchmark
checks that both sent the same sequence of requests to the sandbox (ids normalised, repeated polls collapsed).

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


def _collect(api: httpx.Client, path: str, params: dict | None = None, page_size: int | None = None) -> list:
    """Every item of a list endpoint, paged as the project's client pages (``taskbuilder/client/base.py``):
    ``limit``/``offset`` when ``page_size``; ``_links.next.href`` while present, else offsets up to ``meta.count``."""
    query = dict(params or {}) | ({"limit": page_size, "offset": 0} if page_size else {})
    items, url = [], path
    while True:
        body = api.get(url, params=query if url == path else None).raise_for_status().json()
        if isinstance(body, list):
            return items + body
        items += body["results"]
        href = ((body.get("_links") or {}).get("next") or {}).get("href")
        count = (body.get("meta") or {}).get("count")
        if not body["results"]:
            return items
        if href:
            url = href
        elif page_size and body.get("_links") is None and isinstance(count, int) and len(items) < count:
            query["offset"], url = len(items), path
        else:
            return items


def _wait(read_status, done: set[str], failed: set[str], interval_seconds: float) -> str:
    """Call ``read_status`` every ``interval_seconds`` until it answers one of ``done``; raise on ``failed``."""
    while True:
        status = read_status()
        if status in done:
            return status
        if status in failed:
            raise RuntimeError(f"the sandbox reported {status}")
        time.sleep(interval_seconds)


def plain_job(job, base_url: str, token: str, interval_seconds: float, work_dir: Path) -> dict:
    """Run ``job`` (B3's kind: a V4 dataset, no task-group column, no quality, bonus, reject or approval, no
    approval step) with plain httpx calls, the flow's requests in its order (``flows/annotation_batch.py``,
    ``flows/job_round.py``, ``flows/job_finish.py``; ``../shared/docs/prolific-api-current.md``), their bodies
    built by the library functions and request models the flow's tasks use, and the flow's local work with the
    same library functions; return the flow's run summary (``run.json``). No Prefect, no job record, no artifacts,
    no partial results (the job ends sooner than ``partial_results_every_seconds``), no retries."""
    from taskbuilder.cost import JobPrice, cents, check_before_publish, task_group_count
    from taskbuilder.dataset_file import validate_dataset_file
    from taskbuilder.dataset_schema import displayed_columns, field_types, schema_body
    from taskbuilder.job_results import aggregate_parsed, participants_with_status
    from taskbuilder.job_spending import part_cents, study_cost_cents
    from taskbuilder.jobkey import sha256_file, tag_name
    from taskbuilder.models import (BatchStatus, CreateBatchRequest, CreateDatasetRequest, CreateStudyRequest, ImportStatus,
                                    SetupBatchRequest, Study, StudyCost, StudyCostRequest, StudyStatus, TransitionStudyRequest)
    from taskbuilder.outputs import output_location, write_outputs
    from taskbuilder.payloads import batch_items_payload, instruction_payloads, instructions_as_batch_items, study_payload
    from taskbuilder.report import read_report
    from taskbuilder.upload_preparation import prepare_upload

    # the local work before anything is created (tasks/inputs.py), and the job's names and price
    work_dir.mkdir(parents=True, exist_ok=True)
    csv_path = Path(job.dataset.csv)
    report = validate_dataset_file(csv_path, job)
    assert report.ok, report.format_text()
    assert report.task_group_column is None and job.dataset.version in (None, 4), "B3's kind of job only"
    upload_path = prepare_upload(csv_path, report, job, work_dir / "upload")
    csv_sha256 = sha256_file(upload_path)
    job_key, fingerprint = job.job_key(csv_sha256), job.work_fingerprint(csv_sha256)
    types = field_types(report.columns, id_column=job.dataset.id_column, column_types=job.dataset.column_types)
    batch_name = tag_name(job.batch.name, job_key, fingerprint)
    internal_name = tag_name(job.study.internal_name or job.study.name, job_key, fingerprint)
    filename = f"{Path(job.dataset.csv.rsplit('/', 1)[-1]).stem or 'dataset'}.csv"
    task_groups = task_group_count(report.rows, job.batch.tasks_per_group)
    places = task_groups * job.study.annotators_per_task
    project_id = job.project_id or os.environ.get("PROLIFIC_PROJECT_ID")
    v1, datasets, batches, studies = "/api/v1", "/api/v1/data-collection/datasets", "/api/v1/data-collection/batches", "/api/v1/studies/"
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Token {token}"}, timeout=60) as api:
        def get(path: str) -> dict:
            return api.get(path).raise_for_status().json()

        def post(path: str, body: dict) -> dict:
            response = api.post(path, json=body).raise_for_status()
            return response.json() if response.content else {}

        def job_batch_ids() -> list[str]:
            return [b["id"] for b in _collect(api, batches, {"workspace_id": workspace_id}) if b["name"] == batch_name]

        def job_study_ids() -> list[str]:
            return [s["id"] for s in _collect(api, studies, page_size=200) if s.get("internal_name") == internal_name]

        def study_and_balance() -> tuple[Study, StudyCost, int | None, str]:
            """tasks/costs.py read_study_cost (and tasks/payments.py's spending): the study, its cost, the payer's balance."""
            study = Study.model_validate(get(f"{studies}{study_id}/"))
            study_cost = StudyCost.model_validate(get(f"{studies}{study_id}/cost/"))
            project = study.project or project_id
            if project:
                payer, balance = f"workspace {workspace_id} (project {project})", f"{v1}/workspaces/{workspace_id}/balance/"
            else:
                payer, balance = "your personal balance (the study has no project)", f"{v1}/users/me/"
            return study, study_cost, get(balance)["available_balance"], payer

        workspace_id = job.workspace_id or os.environ.get("PROLIFIC_WORKSPACE_ID")
        if not workspace_id:
            workspaces = _collect(api, f"{v1}/workspaces/", page_size=200)
            assert len(workspaces) == 1, workspaces
            workspace_id = workspaces[0]["id"]
        assert not job_batch_ids()  # the job's tags on the server, read before anything is priced (tasks/job_tags.py)
        # the account's quote before anything is created (tasks/costs.py price_job)
        currency = get(f"{v1}/users/me/").get("currency_code") or "GBP"
        quote = post(f"{v1}/study-cost-calculator/", StudyCostRequest(reward=job.study.reward, total_available_places=places).body())
        price = JobPrice(reward_cents=job.study.reward, task_groups=task_groups, annotators_per_task=job.study.annotators_per_task,
                         places=places, quote_cents=cents(quote["total_cost"]), currency_code=currency, max_budget_cents=job.max_budget)
        price.refuse_over_budget()

        # the V4 dataset, its file and its import job (tasks/datasets.py)
        assert not job_batch_ids()  # the job's batch would name the job's dataset
        schema = schema_body(types)
        dataset_id = post(datasets, CreateDatasetRequest(name=job.dataset.name, workspace_id=workspace_id, dataset_schema=schema).body())["id"]
        assert all(i["status"] == ImportStatus.UNINITIALISED for i in get(f"{datasets}/{dataset_id}").get("imports") or [])
        upload = get(f"{datasets}/{dataset_id}/upload-url/{filename}")
        import_id = upload["import_id"]
        with httpx.Client(timeout=300) as s3, open(upload_path, "rb") as body:
            s3.put(upload["upload_url"], content=body, headers={"Content-Type": upload.get("content_type") or "text/csv"}).raise_for_status()
        imports = f"{datasets}/{dataset_id}/imports/{import_id}"
        _wait(lambda: get(imports)["status"], {ImportStatus.COMPLETE},
              {ImportStatus.PARTIAL, ImportStatus.FAILED, ImportStatus.PENDING_SCHEMA}, interval_seconds)

        # the batch with its batch_items, set up once (tasks/batches.py)
        batch_items = batch_items_payload(job.batch) or instructions_as_batch_items(job.batch, displayed_columns(types))
        task_details = job.batch.task_details.model_dump(mode="json") if job.batch.task_details else None
        assert not job_batch_ids()
        batch_id = post(batches, CreateBatchRequest(name=batch_name, workspace_id=workspace_id, dataset_id=dataset_id,
                                                    task_details=task_details, batch_items=batch_items).body())["id"]
        assert job_batch_ids() == [batch_id]
        assert get(f"{batches}/{batch_id}/status")["status"] == BatchStatus.UNINITIALISED
        post(f"{batches}/{batch_id}/setup", SetupBatchRequest(dataset_id=dataset_id, tasks_per_group=job.batch.tasks_per_group).body())
        _wait(lambda: get(f"{batches}/{batch_id}/status")["status"], {BatchStatus.READY}, {BatchStatus.ERROR}, interval_seconds)
        batch = get(f"{batches}/{batch_id}")

        # the study, its own cost and the paying balance checked, PUBLISH once, the wait (tasks/studies.py, costs.py)
        payload = study_payload(job.study, batch_id, internal_name)
        if project_id:
            payload.setdefault("project", project_id)
        CreateStudyRequest.model_validate(payload)
        assert not job_study_ids()
        study_id = post(studies, payload)["id"]
        assert job_study_ids() == [study_id]
        study, study_cost, balance_cents, payer = study_and_balance()
        checked = check_before_publish(price, study, study_cost, balance_cents=balance_cents, payer=payer)
        assert get(f"{studies}{study_id}/")["status"] == StudyStatus.UNPUBLISHED
        post(f"{studies}{study_id}/transition/", TransitionStudyRequest(action="PUBLISH").body())
        _wait(lambda: get(f"{studies}{study_id}/")["status"], {StudyStatus.AWAITING_REVIEW, StudyStatus.COMPLETED}, set(),
              interval_seconds)

        # the report, kept raw before it is parsed, then the results (tasks/reports.py, results.py, payments.py)
        location = get(f"{batches}/{batch_id}/report/")
        report_path = work_dir / "report.csv"
        with httpx.Client(timeout=300) as s3, s3.stream("GET", location["url"]) as response, open(report_path, "wb") as out:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                out.write(chunk)
        outputs = write_outputs(job.output_dir, files={"report.csv": report_path})
        instructions = instruction_payloads(job)
        parsed = read_report(report_path, instructions, list(report.columns))
        result = aggregate_parsed(job, parsed, instructions)
        submissions = _collect(api, f"{studies}{study_id}/submissions/", page_size=200)
        spent_study, spent_cost, _, _ = study_and_balance()
        parts = spent_cost.rewards
        spent = {"rewards_cents": part_cents(parts, "rewards"), "fees_cents": part_cents(parts, "fees"),
                 "tax_cents": part_cents(parts, "tax"), "bonuses_cents": study_cost_cents(spent_cost)[1],
                 "currency": spent_study.currency_code or "GBP"}
        result.summary.setdefault("stopped", None)
        outputs |= write_outputs(job.output_dir, files={
            "responses.csv": parsed.responses, "labels.csv": result.labels,
            "participants.csv": participants_with_status(result.participants, submissions), "summary.json": result.summary})

        # the last look for late duplicates and the final statuses (flows/job_finish.py, tasks/reconcile.py)
        assert job_batch_ids() == [batch_id] and job_study_ids() == [study_id]
        statuses = {"dataset": get(imports)["status"], "batch": get(f"{batches}/{batch_id}/status")["status"],
                    "study": get(f"{studies}{study_id}/")["status"]}
    summary = {"job_key": job_key, "dataset_id": dataset_id, "dataset_version": 4, "import_id": import_id, "batch_id": batch_id,
               "study_id": study_id, "instructions_mode": "batch_items", "total_task_groups": batch.get("total_task_groups"),
               "cost": {"quote": price.model_dump(), "checked": checked.model_dump()}, "published": True, "outputs": outputs,
               "payments": {"bonus": None, "rejected_submissions": [], "spent": spent}, "statuses": statuses, "notes": []}
    summary["outputs"]["run.json"] = output_location(job.output_dir, "run.json")
    write_outputs(job.output_dir, files={"run.json": json.loads(json.dumps(summary, default=str))})
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
