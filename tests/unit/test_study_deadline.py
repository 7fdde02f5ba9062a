"""The study deadline can be set from the spec and from the CLI (C23's kind); the CLI wins."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import flows.annotation_batch
from flows.cli import app

from tests.integration.jobs import write_small_job

runner = CliRunner()


@pytest.fixture
def captured(monkeypatch):
    """Stand in for the flow (unit test of the CLI's wiring): record the polling it is given."""
    seen = {}

    def fake_flow(*, job, connection, polling, output_dir):
        seen["polling"] = polling
        return {"job_key": "k", "study_id": "s", "statuses": {"study": "UNPUBLISHED"}, "outputs": {}}

    monkeypatch.setattr(flows.annotation_batch, "annotation_batch", fake_flow)
    monkeypatch.setenv("PROLIFIC_API_TOKEN", "t")
    return seen


@pytest.mark.parametrize("spec_minutes, cli_minutes, seconds", [(None, None, 7 * 24 * 3600), (90, None, 5400), (90, 3, 180)])
def test_the_deadline_reaches_the_study_wait(tmp_path, captured, spec_minutes, cli_minutes, seconds):
    extra = {"study_deadline_minutes": spec_minutes} if spec_minutes else {}
    spec = write_small_job(tmp_path, **extra)
    options = ["--study-deadline-minutes", str(cli_minutes)] if cli_minutes else []
    result = runner.invoke(app, ["run", str(spec), "--api-url", "http://127.0.0.1:9", *options])
    assert result.exit_code == 0, result.output
    assert captured["polling"].study_timeout_seconds == seconds


def test_a_deadline_below_one_minute_is_refused(tmp_path, captured):
    spec = write_small_job(tmp_path)
    assert runner.invoke(app, ["run", str(spec), "--api-url", "http://127.0.0.1:9", "--study-deadline-minutes", "0"]).exit_code == 2
    spec = write_small_job(tmp_path, study_deadline_minutes=0)
    result = runner.invoke(app, ["run", str(spec), "--api-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "study_deadline_minutes" in result.output
