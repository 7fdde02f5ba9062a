"""The client layer (taskbuilder.client, taskbuilder.upload) against the real sandbox: a subprocess
``python -m sandbox --port 0`` serving the API on loopback, with its rclone S3 store behind real
presigned URLs. Control-plane calls (``/_sandbox/…``: settings, faults, request log) go through a plain
httpx client; nothing is imported from ``sandbox/``."""

from __future__ import annotations

import csv
import io
import logging
import math
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from taskbuilder import client as client_module
from taskbuilder.client import ClientTimeouts, ProlificClient
from taskbuilder.errors import (
    BadRequest,
    ConnectionDropped,
    Gone,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UploadRejected,
    UploadSlowDown,
    UploadURLExpired,
)
from taskbuilder.failures import classify
from taskbuilder.models import BatchStatus, DatasetStatus, StudyAction, StudyStatus
from taskbuilder.upload import download_to_file, upload_file

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60
ROWS = 6
INSTRUCTIONS = [
    {"type": "multiple_choice", "created_by": "tests", "description": "Overall sentiment?", "order": 1,
     "answer_limit": 1, "options": [{"label": "Positive", "value": "positive"}, {"label": "Negative", "value": "negative"}]},
    {"type": "free_text", "created_by": "tests", "description": "Why?", "order": 2, "answer_limit": 1},
]


class Sandbox:
    """A running sandbox subprocess: its URL, token and control-plane client."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.control = httpx.Client(base_url=base_url, timeout=30)

    def client(self, **kwargs) -> ProlificClient:
        return ProlificClient(self.base_url, self.token, **kwargs)

    def settings(self, **changes) -> dict:
        response = self.control.post("/_sandbox/settings", json=changes)
        response.raise_for_status()
        return response.json()

    def faults(self, *rules: dict) -> None:
        self.control.post("/_sandbox/faults", json={"rules": list(rules)}).raise_for_status()

    def requests(self, method: str, path_prefix: str, target: str = "api") -> list[dict]:
        log = self.control.get("/_sandbox/requests").json()["requests"]
        return [r for r in log if r["target"] == target and r["method"] == method and r["path"].startswith(path_prefix)]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[Sandbox]:
    """``python -m sandbox --host 127.0.0.1 --port 0 --token <random>`` for this module; stopped with SIGTERM."""
    token = "client-itest-" + secrets.token_hex(8)
    stderr_path = tmp_path_factory.mktemp("sandbox") / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", "0", "--token", token],
            cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=START_TIMEOUT_SECONDS)
    except queue.Empty:
        first = ""
    if not first.startswith("Sandbox API at "):
        process.kill()
        pytest.fail(f"sandbox did not start: {first!r}; stderr: {stderr_path.read_text()[-2000:]}")
    running = Sandbox(first.removeprefix("Sandbox API at ").strip(), token)
    defaults = running.control.get("/_sandbox/settings").json()
    try:
        yield running
    finally:
        running.control.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert defaults  # the control plane answered


@pytest.fixture
def restore(sandbox: Sandbox) -> Iterator[None]:
    """Clear fault rules and restore the default settings after the test."""
    defaults = {k: v for k, v in sandbox.control.get("/_sandbox/settings").json().items() if not k.startswith("object_store")}
    yield
    sandbox.control.delete("/_sandbox/faults").raise_for_status()
    sandbox.settings(**defaults)


def wait_until(read: Callable[[], object], done: Callable[[object], bool], timeout_seconds: float = 60) -> object:
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"still {value!r} after {timeout_seconds} s")
        time.sleep(0.2)


def write_csv(path: Path, rows: int = ROWS) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "text", "META_gold"])
    for i in range(rows):
        writer.writerow([i, f"Sentence {i}: caf\u00e9, \u201cquoted\u201d", "positive" if i % 2 else "negative"])
    path.write_bytes(out.getvalue().encode("utf-8"))
    return path


def ready_dataset(client: ProlificClient, workspace_id: str, csv_path: Path) -> str:
    dataset = client.create_dataset(name="client itest", workspace_id=workspace_id)
    upload = client.get_dataset_upload_url(dataset.id, csv_path.name)
    upload_file(upload.upload_url, csv_path)
    wait_until(lambda: client.get_dataset_status(dataset.id), lambda s: s == DatasetStatus.READY)
    return dataset.id


@pytest.fixture(scope="module")
def workspace_id(sandbox: Sandbox) -> str:
    with sandbox.client() as client:
        return client.list_workspaces()[0].id


def test_wrong_token_is_unauthorized_and_the_right_one_reads_the_user(sandbox: Sandbox):
    with ProlificClient(sandbox.base_url + "/api/v1", "not-the-token") as client:
        with pytest.raises(Unauthorized) as info:
            client.get_me()
    assert info.value.status_code == 401 and info.value.detail and classify(info.value).action == "stop"
    with sandbox.client() as client:
        user = client.get_me()
    assert user.id and user.currency_code


def test_full_chain_from_dataset_to_report(sandbox: Sandbox, workspace_id: str, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="taskbuilder")
    csv_path = write_csv(tmp_path / "reviews.csv")
    with sandbox.client() as client:
        dataset = client.create_dataset(name="client itest", workspace_id=workspace_id)
        assert dataset.status is DatasetStatus.UNINITIALISED
        upload = client.get_dataset_upload_url(dataset.id, "reviews.csv")
        assert "X-Amz-Signature=" in upload.upload_url and upload.http_method == "PUT"
        signature = upload.upload_url.split("X-Amz-Signature=")[1].split("&")[0]
        upload_file(upload.upload_url, csv_path)
        wait_until(lambda: client.get_dataset_status(dataset.id), lambda s: s == DatasetStatus.READY)
        assert client.get_dataset(dataset.id).total_datapoint_count == ROWS

        batch = client.create_batch(
            name="client itest [job:itest]", workspace_id=workspace_id, dataset_id=dataset.id,
            task_details={"task_name": "Sentiment", "task_introduction": "<p>Read.</p>", "task_steps": "<ol><li>Pick</li></ol>"},
        )
        assert batch.status is BatchStatus.UNINITIALISED
        created = client.create_instructions(batch.id, INSTRUCTIONS)
        assert [i.type for i in created] == ["multiple_choice", "free_text"] and all(i.id for i in created)
        assert [i.id for i in client.get_instructions(batch.id)] == [i.id for i in created]
        client.setup_batch(batch.id, dataset_id=dataset.id, tasks_per_group=2)
        wait_until(lambda: client.get_batch_status(batch.id), lambda s: s == BatchStatus.READY)
        batch = client.get_batch(batch.id)
        assert batch.total_task_count == ROWS and batch.total_task_groups == math.ceil(ROWS / 2)
        assert batch.id in [b.id for b in client.list_batches(workspace_id)]

        study = client.create_study({
            "name": "Client itest", "internal_name": "client itest [job:itest]", "description": "<p>Label.</p>",
            "estimated_completion_time": 5, "reward": 100, "data_collection_method": "AI_TASK_BUILDER_BATCH",
            "data_collection_id": batch.id, "data_collection_metadata": {"annotators_per_task": 2},
        })
        assert study.status is StudyStatus.UNPUBLISHED and study.total_available_places == 6
        assert study.id in [s.id for s in client.list_studies(status="UNPUBLISHED")]
        assert client.transition_study(study.id, StudyAction.PUBLISH).status in (StudyStatus.ACTIVE, StudyStatus.AWAITING_REVIEW, StudyStatus.COMPLETED)
        with pytest.raises(BadRequest):
            client.transition_study(study.id, StudyAction.PUBLISH)  # never publish twice: the server refuses
        finished = wait_until(lambda: client.get_study(study.id), lambda s: s.status.is_collection_finished)
        assert finished.places_taken == 6

        counts = client.get_submission_counts(study.id)
        monkeypatch.setattr(client_module.studies, "PAGE_SIZE", 2)  # force several pages
        submissions = client.list_submissions(study.id)
        assert len(submissions) == counts["TOTAL"] and len({s.id for s in submissions}) == len(submissions)
        completed = [s for s in submissions if s.status.is_completed]
        assert len(completed) == 6

        location = client.get_batch_report(batch.id)
        assert location.url and location.csv_text is None
        report_path = tmp_path / "report.csv"
        size = download_to_file(location.url, report_path)
        assert size == report_path.stat().st_size > 0
        header = report_path.read_text(encoding="utf-8").splitlines()[0].split(",")
        assert header[:4] == ["DataPoint_ID", "Task_Group_ID", "Task_Type", "Question"]
        assert header[4:7] == ["id", "text", "META_gold"] and "Annotator2_Response" in header
        assert len(client.get_batch_responses(batch.id)) > 0

        # an approval, then the counts show it
        to_approve = [s.id for s in completed if s.status == "AWAITING REVIEW"][:2]
        if to_approve:
            client.bulk_approve_submissions(to_approve)
            assert client.get_submission_counts(study.id).get("APPROVED", 0) >= len(to_approve)

    assert len(sandbox.requests("POST", "/api/v1/data-collection/datasets")) >= 1
    assert sandbox.token not in caplog.text and signature not in caplog.text
    assert f"POST /api/v1/data-collection/batches/{batch.id}/setup → 202" in caplog.text
    deprecations = [r for r in caplog.records if r.levelno == logging.WARNING and "deprecated" in r.getMessage()]
    assert len(deprecations) == 1 and "Sunset: Tue, 01 Sep 2026" in deprecations[0].getMessage()  # POST + GET: once


def annotate(client: ProlificClient, workspace_id: str, csv_path: Path) -> str:
    """Dataset → batch → study → published → finished; return the batch id."""
    dataset_id = ready_dataset(client, workspace_id, csv_path)
    batch = client.create_batch(name="inline itest", workspace_id=workspace_id, dataset_id=dataset_id)
    client.create_instructions(batch.id, INSTRUCTIONS)
    client.setup_batch(batch.id, tasks_per_group=3)
    wait_until(lambda: client.get_batch_status(batch.id), lambda s: s == BatchStatus.READY)
    study = client.create_study({
        "name": "Inline itest", "estimated_completion_time": 5, "reward": 100,
        "data_collection_method": "AI_TASK_BUILDER_BATCH", "data_collection_id": batch.id,
        "data_collection_metadata": {"annotators_per_task": 1},
    })
    client.transition_study(study.id, StudyAction.PUBLISH)
    wait_until(lambda: client.get_study(study.id), lambda s: s.status.is_collection_finished)
    return batch.id


def test_report_inline_delivery_matches_the_pointer_csv(sandbox: Sandbox, workspace_id: str, tmp_path, restore):
    with sandbox.client() as client:
        batch_id = annotate(client, workspace_id, write_csv(tmp_path / "reviews.csv"))
        pointer = client.get_batch_report(batch_id)
        download_to_file(pointer.url, tmp_path / "report.csv")
        sandbox.settings(report_delivery="inline")
        inline = client.get_batch_report(batch_id)
    assert inline.url is None and inline.csv_text == (tmp_path / "report.csv").read_text(encoding="utf-8")
    assert inline.csv_text.count("\n") >= ROWS * len(INSTRUCTIONS)


def test_legacy_instructions_gone_once_retired(sandbox: Sandbox, workspace_id: str, restore, caplog):
    sandbox.settings(legacy_instructions="retired")
    with sandbox.client() as client:
        batch = client.create_batch(name="retired itest", workspace_id=workspace_id)
        with pytest.raises(Gone) as info:
            client.create_instructions(batch.id, INSTRUCTIONS)
    assert info.value.status_code == 410 and classify(info.value).action == "stop"


def test_retry_after_is_waited_out_inside_the_client(sandbox: Sandbox, restore, caplog):
    caplog.set_level(logging.INFO, logger="taskbuilder.client")
    sandbox.faults({"target": "api", "method": "GET", "path": "/api/v1/users/me*", "nth": 1,
                    "effect": "status", "status": 429, "retry_after": 1})
    before = len(sandbox.requests("GET", "/api/v1/users/me"))
    started = time.monotonic()
    with sandbox.client() as client:
        assert client.get_me().id
    assert time.monotonic() - started >= 1.0
    assert len(sandbox.requests("GET", "/api/v1/users/me")) - before == 2
    assert "Retry-After 1.0 s" in caplog.text


def test_503_without_retry_after_and_dropped_connections_raise(sandbox: Sandbox, restore):
    sandbox.faults({"target": "api", "method": "GET", "path": "/api/v1/users/me*", "nth": 1, "effect": "status", "status": 503},
                   {"target": "api", "method": "GET", "path": "/api/v1/workspaces*", "nth": 1, "effect": "drop"})
    with sandbox.client() as client:
        with pytest.raises(ServiceUnavailable) as unavailable:
            client.get_me()
        with pytest.raises(ConnectionDropped) as dropped:
            client.list_workspaces()
        assert client.get_me().id  # the rules fired once each
    assert classify(unavailable.value).action == "retry" and classify(dropped.value).action == "retry"


def test_slow_answer_is_a_request_timeout(sandbox: Sandbox, restore):
    sandbox.faults({"target": "api", "method": "GET", "path": "/api/v1/users/me*", "nth": 1, "effect": "delay", "delay_seconds": 2})
    with sandbox.client(timeouts=ClientTimeouts(read_seconds=0.5)) as client:
        with pytest.raises(RequestTimeout) as info:
            client.get_me()
    assert info.value.path == "/api/v1/users/me/"


def test_expired_upload_url_asks_for_refresh_and_a_fresh_url_works(sandbox: Sandbox, workspace_id: str, tmp_path, restore):
    csv_path = write_csv(tmp_path / "reviews.csv")
    with sandbox.client() as client:
        dataset = client.create_dataset(name="expiry itest", workspace_id=workspace_id)
        sandbox.settings(upload_url_expires_seconds=1)
        stale = client.get_dataset_upload_url(dataset.id, csv_path.name)
        time.sleep(2.5)
        with pytest.raises(UploadURLExpired) as info:
            upload_file(stale.upload_url, csv_path)
        assert classify(info.value).action == "refresh"
        assert "X-Amz" not in str(info.value) and info.value.url in stale.upload_url
        sandbox.settings(upload_url_expires_seconds=3600)
        upload_file(client.get_dataset_upload_url(dataset.id, csv_path.name).upload_url, csv_path)
        wait_until(lambda: client.get_dataset_status(dataset.id), lambda s: s == DatasetStatus.READY)


def test_s3_faults_and_signed_content_type(sandbox: Sandbox, workspace_id: str, tmp_path, restore):
    csv_path = write_csv(tmp_path / "reviews.csv")
    with sandbox.client() as client:
        dataset = client.create_dataset(name="s3 faults itest", workspace_id=workspace_id)
        sandbox.faults({"target": "s3", "method": "PUT", "nth": 1, "effect": "status", "status": 503, "retry_after": 2},
                       {"target": "s3", "method": "PUT", "nth": 2, "effect": "drop"})
        url = client.get_dataset_upload_url(dataset.id, csv_path.name).upload_url
        with pytest.raises(UploadSlowDown) as slow:
            upload_file(url, csv_path)
        assert slow.value.retry_after_seconds == 2 and classify(slow.value).action == "wait"
        with pytest.raises(ConnectionDropped):
            upload_file(url, csv_path)
        sandbox.control.delete("/_sandbox/faults").raise_for_status()

        sandbox.settings(sign_content_type=True)
        signed = client.get_dataset_upload_url(dataset.id, csv_path.name).upload_url
        with pytest.raises(UploadRejected) as rejected:
            upload_file(signed, csv_path, content_type="application/octet-stream")
        assert rejected.value.status_code == 403 and classify(rejected.value).action == "stop"
        upload_file(signed, csv_path, content_type="text/csv")
        wait_until(lambda: client.get_dataset_status(dataset.id), lambda s: s == DatasetStatus.READY)


def test_dataset_with_a_broken_csv_ends_in_error_with_a_reason(sandbox: Sandbox, workspace_id: str, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"id,text\n")  # a header and no datapoint rows
    with sandbox.client() as client:
        dataset = client.create_dataset(name="broken itest", workspace_id=workspace_id)
        upload_file(client.get_dataset_upload_url(dataset.id, broken.name).upload_url, broken)
        wait_until(lambda: client.get_dataset_status(dataset.id), lambda s: s == DatasetStatus.ERROR)
        failed = client.get_dataset(dataset.id)
    assert failed.status is DatasetStatus.ERROR and "no datapoint rows" in (failed.error_reason or "")


def test_webhook_subscription_handshake(sandbox: Sandbox, workspace_id: str):
    with sandbox.client() as client:
        assert "study.status.change" in [t["event_type"] for t in client.list_hook_event_types()]
        secret = client.create_hook_secret(workspace_id)
        assert [s.id for s in client.list_hook_secrets(workspace_id)] == [secret.id]
        subscription = client.create_hook_subscription(
            event_type="study.status.change", target_url="https://hooks.example/prolific", workspace_id=workspace_id
        )
        assert subscription.is_enabled is False and subscription.hook_secret is not None
        assert client.confirm_hook_subscription(subscription.id, subscription.hook_secret).is_enabled is True
        assert subscription.id in [h.id for h in client.list_hook_subscriptions(workspace_id, is_enabled=True)]
        client.delete_hook_subscription(subscription.id)
        assert subscription.id not in [h.id for h in client.list_hook_subscriptions(workspace_id)]
