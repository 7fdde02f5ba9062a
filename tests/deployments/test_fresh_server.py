"""The scheduled monitor and collect-report on a Prefect server where no job ran yet (no job record, the
record's block type never registered): they answer, they do not crash."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from prefect.exceptions import PrefectHTTPStatusError

import tasks.records as records

REPO = Path(__file__).resolve().parents[2]


class _ClientWithoutTheBlockType:
    """A Prefect client whose server answers 404 for the job record's block type (never registered)."""

    def __init__(self, status_code: int = 404):
        self.status_code = status_code

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def read_block_documents_by_type(self, slug, **page):  # offset, limit
        request = httpx.Request("GET", f"http://prefect/api/block_types/slug/{slug}/block_documents")
        response = httpx.Response(self.status_code, request=request)
        raise PrefectHTTPStatusError.from_httpx_error(httpx.HTTPStatusError("answer", request=request, response=response))


def test_no_block_type_means_no_job_records(monkeypatch):
    monkeypatch.setattr(records, "prefect_client", lambda: _ClientWithoutTheBlockType())
    assert records.list_job_records() == []


def test_other_server_errors_still_raise(monkeypatch):
    monkeypatch.setattr(records, "prefect_client", lambda: _ClientWithoutTheBlockType(500))
    with pytest.raises(PrefectHTTPStatusError):
        records.list_job_records()


FRESH_SERVER_SCRIPT = """
from flows.collect_report import JobNotFound, collect_report
from flows.monitor_studies import monitor_studies
print("monitor:", monitor_studies())
try:
    collect_report("no-such-job")
except JobNotFound as error:
    print("collect:", type(error).__name__, error)
"""


@pytest.mark.slow
def test_monitor_and_collect_answer_on_a_fresh_prefect_server(tmp_path):
    """A new PREFECT_HOME and no PREFECT_API_URL: Prefect's temporary server with an empty database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=tempfile.mkdtemp(dir=tmp_path), PYTHONPATH=str(REPO), PROLIFIC_API_TOKEN="unused")
    result = subprocess.run([sys.executable, "-c", FRESH_SERVER_SCRIPT], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "monitor: []" in result.stdout
    assert "collect: JobNotFound no job record for job key 'no-such-job'" in result.stdout
