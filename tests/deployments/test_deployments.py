"""The deployments on a real Prefect server (SQLite) with a process worker and the sandbox.

One stack for the module (tests/deployments/stack.py): ``prefect server start`` on a free loopback
port with a temporary PREFECT_HOME, the ``taskbuilder`` process pool, the ``prolific-api`` rate
limit, ``prefect deploy --all`` of deployments/prefect.yaml, one worker, the sandbox, and the
webhook receiver (``python -m deployments.webhooks``). Everything is stopped at the end.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import boto3
import httpx
import jsonschema
import pytest
import yaml
from botocore.config import Config

from deployments.webhooks import sign
from taskbuilder.jobkey import job_key_of
from taskbuilder.jobspec import AnnotationJob
from tests.deployments.stack import BIN, POOL, WEBHOOK_SECRET_BLOCK, Stack, free_port, pause_monitor_schedule, prefect_stack, wait_until
from tests.integration.jobs import write_small_job

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

DEPLOYMENTS = [
    "annotation-batch/launch-annotation-batch",
    "monitor-studies/monitor-studies",
    "collect-report/collect-report",
    "launch-from-s3/launch-from-s3",
    "pause-study/pause-study",
    "resume-study/resume-study",
    "stop-study/stop-study",
    "add-study-places/add-study-places",
    "annotation-batch-from-spec/launch-from-spec",
]
SECRET_WORDS = re.compile(r"token|secret|password|api_key|apikey", re.I)


@pytest.fixture(scope="module")
def stack():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_stack(workers=1) as running, temporary_settings({PREFECT_API_URL: running.api_url}):
        pause_monitor_schedule(running)  # the tests start monitor runs themselves
        port = free_port()
        receiver = running.start(
            "webhooks",
            [str(BIN / "python"), "-m", "deployments.webhooks", "--port", str(port), "--secret-block", WEBHOOK_SECRET_BLOCK],
        )
        running.webhook_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(running.webhook_url + "/health").status_code == 200, 60, f"webhook receiver\n{receiver.log_tail()}")
        yield running


def sandbox_api(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.sandbox.base_url + "/api/v1", headers={"Authorization": f"Token {stack.sandbox.token}"}, timeout=30)


def sandbox_requests(stack: Stack) -> list[dict]:
    return httpx.get(stack.sandbox.base_url + "/_sandbox/requests", timeout=30).json()["requests"]


def publishes_of(stack: Stack, study_id: str) -> int:
    return sum(1 for r in sandbox_requests(stack) if r["method"] == "POST" and r["path"].rstrip("/") == f"/api/v1/studies/{study_id}/transition")


def job_parameters(tmp_path: Path, **overrides) -> dict:
    """A small job (6 rows, 2 task groups × 1 annotator) as the JSON the deployment form sends."""
    spec = write_small_job(tmp_path / "job", **overrides)
    return AnnotationJob.from_yaml(spec).model_dump(mode="json")


def record_of(job_key: str, missing_ok: bool = False) -> dict | None:
    from tasks.records import list_job_records

    found = [r for r in list_job_records() if r["job_key"] == job_key]
    if not found and missing_ok:
        return None
    return found[0]


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def walk_properties(schema: dict):
    """Yield (path, property schema) for the top-level parameters and every definition's fields."""
    for name, prop in schema.get("properties", {}).items():
        yield name, prop
    for model, definition in schema.get("definitions", {}).items():
        for name, prop in definition.get("properties", {}).items():
            yield f"{model}.{name}", prop


def test_deployments_schedules_triggers_and_parameter_forms(stack, work):
    for name in DEPLOYMENTS:
        deployment = stack.deployment(name)
        assert deployment["work_pool_name"] == "taskbuilder", name
        schema = deployment["parameter_openapi_schema"]
        for path, prop in walk_properties(schema):
            assert (prop.get("description") or "").strip(), f"{name}: parameter field {path} has no description"
            assert prop.get("format") != "password" and not prop.get("writeOnly"), f"{name}: {path} is a secret field"
            if SECRET_WORDS.search(path.rsplit(".", 1)[-1]):
                assert path.endswith("token_secret_block"), f"{name}: {path} looks like a secret"
            if "default" in prop:  # every default must be valid for its own field, or the form cannot submit it
                jsonschema.Draft7Validator({**prop, "definitions": schema.get("definitions", {})}).validate(prop["default"])
        assert stack.sandbox.token not in json.dumps(deployment["parameters"])

    launch = stack.deployment("annotation-batch/launch-annotation-batch")
    assert launch["parameters"] == {"wait_for_completion": False}
    job_schema = resolve(launch["parameter_openapi_schema"], launch["parameter_openapi_schema"]["properties"]["job"])
    assert {"dataset", "batch", "study", "publish", "max_budget", "require_approval"} <= set(job_schema["properties"])
    assert launch["parameter_openapi_schema"]["required"] == ["job"]

    monitor = stack.deployment("monitor-studies/monitor-studies")
    assert [s["schedule"].get("interval") for s in monitor["schedules"]] == [300.0]

    with stack.api() as api:
        automations = api.post("/automations/filter", json={}).raise_for_status().json()
    triggers = {a["actions"][0]["deployment_id"]: a["trigger"] for a in automations}
    collect = triggers[stack.deployment("collect-report/collect-report")["id"]]
    assert collect["expect"] == ["prolific.study.status-changed"]
    assert collect["match"]["prolific.study.status"] == ["AWAITING REVIEW", "COMPLETED"]
    s3 = triggers[stack.deployment("launch-from-s3/launch-from-s3")["id"]]
    assert s3["expect"] == ["s3.object.created"] and s3["match"]["prefect.resource.id"] == "s3://*"


FAST_POLLING = {"interval_seconds": 0.5, "max_interval_seconds": 2.0}


@pytest.fixture(scope="module")
def work(stack, tmp_path_factory):
    """Start every deployment run the tests look at, at once (they overlap while waiting on the worker):
    a job through the form parameters, three approval jobs (approve, reject, over budget) and a CSV
    upload announced as ``s3.object.created``. The sandbox's participants are slowed down (20 s per
    submission) so that studies are still ACTIVE when the launch runs end."""
    from prefect.events import emit_event

    httpx.post(stack.sandbox.base_url + "/_sandbox/settings", json={"submission_seconds": 20.0}, timeout=30).raise_for_status()
    launch = "annotation-batch/launch-annotation-batch"
    started = {}
    folder = tmp_path_factory.mktemp("work")
    for name, overrides in {
        "form": {},
        "approve": {"require_approval": True},
        "reject": {"require_approval": True},
        "over_budget": {"require_approval": True, "max_budget": 10},
    }.items():
        job = job_parameters(folder / name, **overrides)
        started[name] = {"job": job, "flow_run_id": stack.run_deployment(launch, {"job": job, "polling": FAST_POLLING})}
    started["s3"] = upload_csv_and_spec(stack, folder / "s3")
    emit_event(
        event="s3.object.created",
        resource={"prefect.resource.id": f"s3://{started['s3']['bucket']}/{started['s3']['key']}"},
        payload={"bucket": started["s3"]["bucket"], "key": started["s3"]["key"], "size": started["s3"]["size"]},
    )
    return started


def upload_csv_and_spec(stack: Stack, folder: Path) -> dict:
    """Put a small job's spec (``<key>.job.yaml``) and then its CSV into the sandbox's object store."""
    settings = httpx.get(stack.sandbox.base_url + "/_sandbox/settings").json()
    s3 = boto3.client(
        "s3", endpoint_url=settings["object_store_endpoint_url"], region_name=settings["object_store_region"],
        aws_access_key_id=settings["object_store_access_key"], aws_secret_access_key=settings["object_store_secret_key"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    spec_path = write_small_job(folder / "job")
    spec = yaml.safe_load(spec_path.read_text())
    spec["output_dir"] = str(folder / "out")
    bucket, key = settings["object_store_bucket"], f"incoming/{spec['name']}.csv"
    s3.put_object(Bucket=bucket, Key=key + ".job.yaml", Body=yaml.safe_dump(spec).encode())
    csv_bytes = (spec_path.parent / "data.csv").read_bytes()
    s3.put_object(Bucket=bucket, Key=key, Body=csv_bytes)
    return {"bucket": bucket, "key": key, "size": len(csv_bytes), "job": spec}


@pytest.fixture(scope="module")
def launched_job(stack, work):
    """The job launched with form parameters, once its run has completed."""
    run = stack.wait_for_state(work["form"]["flow_run_id"], {"COMPLETED"}, 180)
    return {"flow_run": run, "job": work["form"]["job"], "record": record_of(work["form"]["job"]["name"])}


def test_form_run_completes_without_waiting_for_the_study(stack, launched_job):
    record = launched_job["record"]
    assert record["study_id"] and record["batch_id"] and record["dataset_id"]
    assert publishes_of(stack, record["study_id"]) == 1
    assert launched_job["flow_run"]["parameters"]["wait_for_completion"] is False
    assert record["statuses"]["study"] == "ACTIVE"
    assert not (Path(launched_job["job"]["output_dir"]) / "labels.csv").exists()  # not waited for: collect-report's job


def test_monitor_emits_event_and_collect_report_writes_outputs_once(stack, launched_job):
    record = launched_job["record"]
    study_id, out = record["study_id"], Path(launched_job["job"]["output_dir"])
    with sandbox_api(stack) as api:  # the sandbox's participants finish the study
        wait_until(lambda: api.get(f"/studies/{study_id}/").json()["status"] in ("AWAITING REVIEW", "COMPLETED"), 90, "study finished")

    monitor_run = stack.run_deployment("monitor-studies/monitor-studies")
    stack.wait_for_state(monitor_run, {"COMPLETED"}, 120)

    def study_events():
        return [e for e in stack.events("prolific.study.status-changed") if e["resource"]["prefect.resource.id"] == f"prolific.study.{study_id}"]

    try:  # the server stores events in batches, a few seconds after they arrive
        events = wait_until(study_events, 30, "the monitor's event")
    except TimeoutError:
        pytest.fail(f"the monitor emitted no event for study {study_id}; its log:\n{stack.flow_run_logs(monitor_run)}")
    event = events[0]
    assert event["payload"]["job_key"] == record["job_key"] and event["payload"]["previous_status"] == "ACTIVE"
    assert event["payload"]["status"] in ("AWAITING REVIEW", "COMPLETED")
    assert {"prefect.resource.id": f"prolific.batch.{record['batch_id']}", "prefect.resource.role": "batch"}.items() <= {
        k: v for r in event["related"] for k, v in r.items() if r.get("prefect.resource.role") == "batch"
    }.items()

    # the same event again at once (a duplicate delivery): two collect-report runs; they serialise on the
    # job's lock, one writes the outputs, the other sees the same report and writes nothing
    from prefect.events import emit_event

    emit_event(event=event["event"], resource=event["resource"], related=[r for r in event["related"] if r.get("prefect.resource.role") == "batch"], payload=event["payload"])

    def collect_runs():
        runs = [r for r in stack.flow_runs_of("collect-report/collect-report") if r["parameters"].get("job_key") == record["job_key"]]
        return runs if len(runs) >= 2 and all(r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED") for r in runs) else None

    runs = wait_until(collect_runs, 180, "two collect-report runs triggered by the two events")
    assert len(runs) == 2 and all(r["state"]["type"] == "COMPLETED" for r in runs), [r["state"] for r in runs]
    for name in ("report.csv", "responses.csv", "labels.csv", "participants.csv", "summary.json", "run.json"):
        assert (out / name).is_file(), name
    logs = {r["id"]: "" for r in runs}

    def both_logged():
        logs.update({flow_run_id: stack.flow_run_logs(flow_run_id) for flow_run_id in logs})
        return all("written before" in text or "': wrote " in text for text in logs.values())

    wait_until(both_logged, 30, "the collect-report runs' logs")
    assert sorted("written before" in text for text in logs.values()) == [False, True], logs
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["study_id"] == study_id and run_json["collected_by"] == "collect-report"


def test_s3_object_created_event_launches_a_job(stack, work):
    bucket, key, spec = work["s3"]["bucket"], work["s3"]["key"], work["s3"]["job"]

    def launched():
        runs = [r for r in stack.flow_runs_of("launch-from-s3/launch-from-s3") if r["parameters"].get("key") == key]
        return runs[0] if runs else None

    stack.wait_for_state(wait_until(launched, 60, "launch-from-s3 run")["id"], {"COMPLETED"}, 150)
    job_runs = [r for r in stack.flow_runs_of("annotation-batch/launch-annotation-batch") if r["parameters"]["job"]["name"] == spec["name"]]
    assert len(job_runs) == 1
    assert job_runs[0]["parameters"]["job"]["dataset"]["csv"] == f"s3://{bucket}/{key}"
    assert job_runs[0]["parameters"]["wait_for_completion"] is False
    stack.wait_for_state(job_runs[0]["id"], {"COMPLETED"}, 150)
    record = record_of(spec["name"])
    assert record["study_id"] and publishes_of(stack, record["study_id"]) == 1


def test_approval_from_a_deployment_both_ways_and_over_budget(stack, work):
    approve, reject, over_run = (work[name]["flow_run_id"] for name in ("approve", "reject", "over_budget"))
    over = work["over_budget"]["job"]

    for flow_run_id in (approve, reject):
        run = stack.wait_for_state(flow_run_id, {"PAUSED"}, 180)
        assert run["state"]["name"] == "Suspended"  # the worker is free: the run's process has exited
    failed = stack.wait_for_state(over_run, {"FAILED"}, 180)
    assert "max_budget" in failed["state"]["message"]
    assert not (record_of(over["name"], missing_ok=True) or {}).get("study_id")  # priced over budget: nothing created

    jobs = {flow_run_id: stack.flow_run(flow_run_id)["parameters"]["job"]["name"] for flow_run_id in (approve, reject)}
    studies = {flow_run_id: record_of(name)["study_id"] for flow_run_id, name in jobs.items()}
    assert [publishes_of(stack, s) for s in studies.values()] == [0, 0]

    with stack.api() as api:
        for flow_run_id, answer in ((approve, True), (reject, False)):
            resumed = api.post(f"/flow_runs/{flow_run_id}/resume", json={"run_input": {"approve": answer, "reviewer": "test"}})
            assert resumed.json()["status"] == "ACCEPT", resumed.text
    stack.wait_for_state(approve, {"COMPLETED"}, 180)
    rejected = stack.wait_for_state(reject, {"FAILED"}, 180)
    assert "rejected" in rejected["state"]["message"]
    assert publishes_of(stack, studies[approve]) == 1
    assert publishes_of(stack, studies[reject]) == 0
    # the resumed runs found the study the first attempt created (one study per job on the server)
    with sandbox_api(stack) as api:
        internal_names = [s.get("internal_name") or "" for s in api.get("/studies/", params={"limit": 200}).json()["results"]]
    for name in jobs.values():
        assert sum(1 for n in internal_names if job_key_of(n) == name) == 1, name


def test_webhook_rejects_forged_stale_acknowledges_a_redelivery_and_turns_a_good_one_into_the_event(stack, work):
    stack.wait_for_state(work["reject"]["flow_run_id"], {"FAILED"}, 180)  # a job not collected (never published)
    record = record_of(work["reject"]["job"]["name"])
    body = json.dumps({"resource_id": record["study_id"], "event_type": "study.status.change", "metadata": {}, "status": "PAUSED"}).encode()
    url = stack.webhook_url + "/prolific/webhook"

    def post(timestamp: str, signature: str) -> httpx.Response:
        headers = {"X-Prolific-Request-Timestamp": timestamp, "X-Prolific-Request-Signature": signature, "Content-Type": "application/json"}
        return httpx.post(url, content=body, headers=headers, timeout=30)

    now = str(int(time.time()))
    assert post(now, sign("not-the-secret", now, body)).status_code == 401
    stale = str(int(time.time()) - 600)
    assert post(stale, sign(stack.webhook_secret, stale, body)).status_code == 401
    good = post(now, sign(stack.webhook_secret, now, body))
    assert good.status_code == 200 and good.json()["emitted"] is True, good.text
    again = post(now, sign(stack.webhook_secret, now, body))  # no X-Event-ID: the signature identifies the event
    assert again.status_code == 200 and again.json()["emitted"] is False and again.json()["redelivery"] is True

    def event():
        return [
            e for e in stack.events("prolific.study.status-changed")
            if e["resource"]["prefect.resource.id"] == f"prolific.study.{record['study_id']}" and e["payload"]["status"] == "PAUSED"
        ]

    found = wait_until(event, 30, "event from the webhook")
    assert len(found) == 1 and found[0]["payload"]["job_key"] == record["job_key"]
    assert found[0]["payload"]["previous_status"] == record["statuses"]["study"]
    assert record_of(record["job_key"])["statuses"]["study"] == "PAUSED"


def test_no_flow_run_parameter_holds_the_token(stack):
    with stack.api() as api:
        runs = api.post("/flow_runs/filter", json={"limit": 200}).raise_for_status().json()
    assert runs
    assert all(stack.sandbox.token not in json.dumps(run["parameters"]) for run in runs)


def test_work_pool_starts_the_engine_directly_and_its_set_up_is_repeatable(stack):
    """deployments/work_pool.py on the real server: the stack's pool starts each flow run as this interpreter's
    ``-m deployments.flow_run`` (Prefect's engine, no supervisor process first); a pool whose template lost that default is updated
    with its other settings kept, a second set-up changes nothing, and a command of the user's own is kept."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    from deployments.work_pool import engine_command, set_up_work_pool

    with get_client(sync_client=True) as client:
        pool = client.read_work_pool(POOL)
        assert pool.base_job_template["variables"]["properties"]["command"]["default"] == engine_command()
        assert set_up_work_pool(POOL) == "unchanged"
        name = f"pool-{uuid.uuid4().hex[:6]}"
        assert set_up_work_pool(name) == "created"
        template = client.read_work_pool(name).base_job_template
        template["variables"]["properties"]["command"]["default"] = None
        template["variables"]["properties"]["stream_output"]["default"] = False
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
        assert set_up_work_pool(name) == "updated"
        properties = client.read_work_pool(name).base_job_template["variables"]["properties"]
        assert properties["command"]["default"] == engine_command()
        assert properties["stream_output"]["default"] is False
        own = "uv run --project /srv/labels python -m prefect.engine"
        template["variables"]["properties"]["command"]["default"] = own
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
        assert set_up_work_pool(name) == "kept"
        assert client.read_work_pool(name).base_job_template["variables"]["properties"]["command"]["default"] == own
        template["variables"]["properties"]["command"]["default"] = "/old/checkout/.venv/bin/python -m prefect.engine"
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
        assert set_up_work_pool(name) == "updated"  # the project moved: its own command follows
        client.delete_work_pool(name)


def test_rate_limited_client_is_throttled_by_the_server_limit(stack, monkeypatch):
    """The transport of tasks/ratelimit.py against the real server: 70 requests through a limit of 5
    slots decaying at 5 per second take at least (70 - 5) / 5 = 13 s, and no 10 s window holds more
    than 5 + 5 × 11 (1 s allowed between a slot being granted and the sandbox logging the request)."""
    import datetime as dt

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from tasks.connection import ProlificConnection, open_client

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="burst-test", limit=5, slot_decay_per_second=5.0))
    monkeypatch.setenv("PROLIFIC_API_TOKEN", stack.sandbox.token)
    started = time.monotonic()
    with open_client(ProlificConnection(base_url=stack.sandbox.base_url, rate_limit_name="burst-test")) as client:
        for _ in range(70):
            client.get_me()
    elapsed = time.monotonic() - started
    assert elapsed >= 13 * 0.9, elapsed
    times = sorted(
        dt.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
        for r in sandbox_requests(stack) if r["path"].rstrip("/") == "/api/v1/users/me"
    )[-70:]
    busiest = max(sum(1 for t in times[i:] if t < start + 10) for i, start in enumerate(times))
    assert busiest <= 5 + 5 * 11, busiest
