"""`taskbuilder preview`: the job's draft and a test study, the task page served at its URL, nothing published
or paid, and a second preview (or the run after it) reuses what the first made (issue 19)."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from flows.annotation_batch import JobChanged, annotation_batch
from flows.cli import app
from flows.preview import PreviewRefused, preview_job
from taskbuilder.jobspec import AnnotationJob
from taskbuilder.polling import PollSettings
from tasks.connection import ProlificConnection

from tests.integration.jobs import write_small_job

FAST = PollSettings(interval_seconds=0.2, max_interval_seconds=1.0, dataset_timeout_seconds=60, batch_timeout_seconds=60,
                    study_timeout_seconds=120)
pytestmark = pytest.mark.usefixtures("prefect_harness", "isolated_results")


def _creates(sandbox) -> dict[str, int]:
    return {
        "datasets": sandbox.count("POST", "/api/v1/data-collection/datasets"),
        "batches": sandbox.count("POST", "/api/v1/data-collection/batches"),
        "studies": sandbox.count("POST", "/api/v1/studies"),
        "test_studies": sum(1 for r in sandbox.requests() if r["method"] == "POST" and "/test-study" in r["path"]),
        "publish": sum(1 for r in sandbox.requests() if r["method"] == "POST" and r["path"].rstrip("/").endswith("/transition")),
    }


def test_preview_makes_a_draft_and_a_test_page_once_and_the_run_reuses_the_draft(tmp_path, sandbox):
    job = AnnotationJob.from_yaml(write_small_job(tmp_path / "job"))  # publish: true in the spec
    connection = ProlificConnection(base_url=sandbox.base_url)
    first = preview_job(job=job, connection=connection, polling=FAST)
    assert first["published"] is False and first["statuses"]["study"] == "UNPUBLISHED"
    page = httpx.get(first["test_study"]["study_url"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Sentiment?" in page.text and "I loved it" in page.text  # the instruction and the first datapoint
    assert _creates(sandbox) == {"datasets": 1, "batches": 1, "studies": 1, "test_studies": 1, "publish": 0}
    balance = httpx.get(f"{sandbox.base_url}/api/v1/users/me/", headers={"Authorization": f"Token {sandbox.token}"}).json()

    second = preview_job(job=job, connection=connection, polling=FAST)
    assert second["test_study"] == first["test_study"] and second["study_id"] == first["study_id"]
    assert _creates(sandbox) == {"datasets": 1, "batches": 1, "studies": 1, "test_studies": 1, "publish": 0}
    after = httpx.get(f"{sandbox.base_url}/api/v1/users/me/", headers={"Authorization": f"Token {sandbox.token}"}).json()
    assert after["available_balance"] == balance["available_balance"], "a preview spent money"

    run = annotation_batch(job=job, connection=connection, polling=FAST)
    assert run["study_id"] == first["study_id"] and run["published"] is True
    assert _creates(sandbox) == {"datasets": 1, "batches": 1, "studies": 1, "test_studies": 1, "publish": 1}
    with pytest.raises(PreviewRefused, match="draft only"):
        preview_job(job=job, connection=connection, polling=FAST)


def test_a_preview_of_changed_work_under_a_used_name_is_refused_on_a_host_that_remembers_nothing(tmp_path, sandbox):
    from tests.integration.test_resumption import _forget_this_host

    spec = write_small_job(tmp_path / "job", publish=False, wait_for_completion=False)
    connection = ProlificConnection(base_url=sandbox.base_url)
    first = annotation_batch(job=AnnotationJob.from_yaml(spec), connection=connection, polling=FAST)
    forget, other_storage = _forget_this_host(tmp_path)
    forget(first["job_key"], sandbox.base_url)
    csv = tmp_path / "job" / "data.csv"
    csv.write_text(csv.read_text().replace("Broken on arrival", "Broken"))
    before = _creates(sandbox)
    with other_storage, pytest.raises(JobChanged, match="for other work"):
        preview_job(job=AnnotationJob.from_yaml(spec), connection=connection, polling=FAST)
    assert _creates(sandbox) == before  # no dataset, batch, study or test study made; nothing published


def test_preview_command_prints_the_url(tmp_path, sandbox, monkeypatch):
    spec = write_small_job(tmp_path / "job")
    result = CliRunner().invoke(app, ["preview", str(spec), "--api-url", sandbox.base_url])
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1].split(": ", 1)[1]
    assert url.startswith(sandbox.base_url) and httpx.get(url).status_code == 200
    assert _creates(sandbox)["publish"] == 0
