"""Fast tests of the deployment pieces that need no server: webhook verification, the event shape, the
rate-limited transport, the S3 spec loading, the CLI progress bar."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from deployments.webhooks import WebhookRejected, WebhookVerifier, sign
from tasks.events import STUDY_STATUS_CHANGED, study_status_event

SECRET = "whsec-test-0123456789"
BODY = b'{"resource_id": "6278acb09062db3b35bcbeb0", "event_type": "study.status.change", "metadata": {}, "status": "COMPLETED"}'


def test_signature_is_base64_hmac_sha256_of_timestamp_and_body():
    expected = base64.b64encode(hmac.new(SECRET.encode(), b"1700000000" + BODY, hashlib.sha256).digest()).decode()
    assert sign(SECRET, "1700000000", BODY) == expected


def test_verifier_accepts_good_and_rejects_forged_stale():
    now = 1_700_000_000.0
    verifier = WebhookVerifier(SECRET, clock=lambda: now)
    good_ts = str(int(now) - 10)
    good_sig = sign(SECRET, good_ts, BODY)
    verifier.verify(good_ts, good_sig, BODY)
    verifier.verify(good_ts, good_sig, BODY)  # a redelivery is authentic too: the event id decides (test_receiver.py)

    with pytest.raises(WebhookRejected) as forged:
        verifier.verify(good_ts, sign("another-secret", good_ts, BODY), BODY)
    assert forged.value.status == 401 and "signature" in forged.value.reason

    with pytest.raises(WebhookRejected) as tampered:  # body changed after signing
        verifier.verify(str(int(now)), sign(SECRET, str(int(now)), BODY), BODY.replace(b"COMPLETED", b"ACTIVE"))
    assert tampered.value.status == 401

    stale_ts = str(int(now) - 301)
    with pytest.raises(WebhookRejected) as stale:
        verifier.verify(stale_ts, sign(SECRET, stale_ts, BODY), BODY)
    assert stale.value.status == 401 and "stale" in stale.value.reason

    with pytest.raises(WebhookRejected) as missing:
        verifier.verify(None, good_sig, BODY)
    assert missing.value.status == 401


def test_study_status_event_shape():
    kwargs = study_status_event(
        study_id="s1", batch_id="b1", job_key="job-1", status="AWAITING REVIEW", previous_status="ACTIVE", base_url="http://x"
    )
    assert kwargs["event"] == STUDY_STATUS_CHANGED == "prolific.study.status-changed"
    assert kwargs["resource"]["prefect.resource.id"] == "prolific.study.s1"
    assert kwargs["resource"]["prolific.study.status"] == "AWAITING REVIEW"
    assert kwargs["related"] == [{"prefect.resource.id": "prolific.batch.b1", "prefect.resource.role": "batch"}]
    assert kwargs["payload"] == {"status": "AWAITING REVIEW", "previous_status": "ACTIVE", "job_key": "job-1", "base_url": "http://x"}


def test_rate_limited_transport_takes_a_slot_before_each_request(monkeypatch):
    import tasks.ratelimit as ratelimit

    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(ratelimit, "take_slot", lambda name: calls.append(("slot", name)))
    inner = httpx.MockTransport(lambda request: (calls.append(("sent", request.url.path)), httpx.Response(200, json={}))[1])
    with httpx.Client(transport=ratelimit.RateLimitedTransport("prolific-api", inner=inner), base_url="http://api") as client:
        client.get("/a")
        client.get("/b")
    assert calls == [("slot", "prolific-api"), ("sent", "/a"), ("slot", "prolific-api"), ("sent", "/b")]


def _fake_prefect_client(monkeypatch, answers: list):
    """``tasks.ratelimit.prefect_client`` replaced: each increment takes the next of ``answers`` (a status code
    with its headers and JSON); returns the list of (names, slots, mode) asked."""
    import contextlib

    import tasks.ratelimit as ratelimit

    asked: list[tuple] = []

    class Client:
        def increment_concurrency_slots(self, names, slots, mode):
            asked.append((tuple(names), slots, mode))
            status, headers, body = answers.pop(0)
            request = httpx.Request("POST", "http://prefect/api/v2/concurrency_limits/increment")
            response = httpx.Response(status, headers=headers, json=body, request=request)
            if status >= 400:
                raise httpx.HTTPStatusError("no", request=request, response=response)
            return response

    monkeypatch.setattr(ratelimit, "prefect_client", contextlib.contextmanager(lambda: (yield Client())))
    monkeypatch.setattr(ratelimit, "_missing_until", {})
    monkeypatch.setattr(ratelimit, "_warned", set())
    return asked


def test_take_slot_waits_the_servers_retry_after_on_423(monkeypatch):
    import tasks.ratelimit as ratelimit

    slept: list[float] = []
    monkeypatch.setattr(ratelimit.time, "sleep", slept.append)
    granted = [{"id": "x", "name": "prolific-api", "limit": 5}]
    asked = _fake_prefect_client(monkeypatch, [(423, {"Retry-After": "0.35"}, {}), (423, {"Retry-After": "0.2"}, {}), (200, {}, granted)])
    ratelimit.take_slot("prolific-api")
    assert asked == [(("prolific-api",), 1, "rate_limit")] * 3
    assert slept == [0.35, 0.2]


def test_take_slot_survives_a_423_without_a_numeric_retry_after(monkeypatch):
    import tasks.ratelimit as ratelimit

    slept: list[float] = []
    monkeypatch.setattr(ratelimit.time, "sleep", slept.append)
    granted = [{"id": "x", "name": "prolific-api", "limit": 5}]
    _fake_prefect_client(monkeypatch, [(423, {}, {}), (423, {"Retry-After": "Wed, 02 Dec 2026 01:00:00 GMT"}, {}),
                                       (423, {"Retry-After": "-3"}, {}), (200, {}, granted)])
    ratelimit.take_slot("prolific-api")
    assert slept == [0.1, 1.0, 0.0]


def test_take_slot_skips_a_missing_limit_with_one_warning_and_asks_again_later(monkeypatch, caplog):
    import logging

    import tasks.ratelimit as ratelimit

    asked = _fake_prefect_client(monkeypatch, [(200, {}, []), (200, {}, [])])
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="taskbuilder"):
        ratelimit.take_slot("gone")
        ratelimit.take_slot("gone")  # within the recheck time: not asked
        clock[0] += ratelimit.MISSING_LIMIT_RECHECK_SECONDS + 1
        ratelimit.take_slot("gone")
    assert len(asked) == 2
    assert [r.getMessage() for r in caplog.records].count(
        "The Prefect rate limit 'gone' does not exist: Prolific API requests are not throttled "
        "(create it: prefect gcl create gone --limit 5 --slot-decay-per-second 2)") == 1


def test_take_slot_raises_other_prefect_errors(monkeypatch):
    import tasks.ratelimit as ratelimit

    _fake_prefect_client(monkeypatch, [(500, {}, {"detail": "boom"})])
    with pytest.raises(httpx.HTTPStatusError):
        ratelimit.take_slot("prolific-api")


def test_open_client_wires_the_rate_limit_only_when_named(monkeypatch):
    from tasks.connection import ProlificConnection, open_client
    from tasks.ratelimit import RateLimitedTransport

    monkeypatch.setenv("PROLIFIC_API_TOKEN", "t")
    monkeypatch.delenv("PROLIFIC_RATE_LIMIT_NAME", raising=False)
    assert ProlificConnection(base_url="http://127.0.0.1:9").rate_limit_name is None
    monkeypatch.setenv("PROLIFIC_RATE_LIMIT_NAME", "prolific-api")
    connection = ProlificConnection(base_url="http://127.0.0.1:9")
    assert connection.rate_limit_name == "prolific-api"
    with open_client(connection) as client:
        assert isinstance(client._http._transport, RateLimitedTransport)
        assert client._http._transport.limit_name == "prolific-api"


def test_rate_limited_transports_share_the_process_tls_context():
    """A TLS context parses the whole CA bundle: one per process, not one per API step's client."""
    import ssl

    from taskbuilder.client import shared_ssl_context
    from tasks.ratelimit import RateLimitedTransport

    first, second = RateLimitedTransport("prolific-api"), RateLimitedTransport("prolific-api")
    try:
        assert first._inner._pool._ssl_context is shared_ssl_context()
        assert second._inner._pool._ssl_context is first._inner._pool._ssl_context
        context = shared_ssl_context()  # shared, not loosened: certificates and host names are still checked
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    finally:
        first.close()
        second.close()


def test_s3_spec_points_at_the_csv_and_resolves_output_dir(tmp_path):
    import yaml

    from flows.launch_from_s3 import JobSpecMissing, load_job_from_s3
    from tests.integration.jobs import write_small_job

    spec = yaml.safe_load(write_small_job(tmp_path, name="s3-job").read_text())
    spec["output_dir"] = "results/"

    class FakeS3:  # one function's collaborator: the S3 client's get_object
        class exceptions:
            class NoSuchKey(Exception):
                pass

        def get_object(self, Bucket, Key):
            if Key != "in/data.csv.job.yaml":
                raise self.exceptions.NoSuchKey()
            return {"Body": _Body(yaml.safe_dump(spec).encode())}

    job = load_job_from_s3(FakeS3(), "bkt", "in/data.csv", "in/data.csv.job.yaml")
    assert job.dataset.csv == "s3://bkt/in/data.csv"
    assert job.output_dir == "s3://bkt/in/results/"
    with pytest.raises(JobSpecMissing, match="in/other.csv.job.yaml"):
        load_job_from_s3(FakeS3(), "bkt", "in/other.csv", "in/other.csv.job.yaml")


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def read(self) -> bytes:
        return self._data


def test_cli_progress_bar_shows_reported_progress(capsys):
    from flows.cli import _progress_bar
    from tasks.progress import report_progress

    with _progress_bar():
        report_progress("study-s1", 50.0, "Study s1: ACTIVE, 9/18 places taken")
        report_progress("study-s1", 100.0, "Study s1: AWAITING REVIEW, 18/18 places taken")
    report_progress("study-s1", 10.0, "after the run: nobody listens")
    err = capsys.readouterr().err
    assert "Study s1: AWAITING REVIEW, 18/18 places taken" in err and "100%" in err
    assert "nobody listens" not in err


def test_study_progress_percent():
    from tasks.studies import study_progress_percent

    assert study_progress_percent(9, 18) == 50.0
    assert study_progress_percent(0, 0) == 0.0
    assert study_progress_percent(20, 18) == 100.0


def test_engine_command_is_recognised_from_any_interpreter_path():
    from deployments.work_pool import engine_command, is_engine_command

    assert is_engine_command(engine_command())
    assert is_engine_command(engine_command("/path with space/.venv/bin/python"))
    assert is_engine_command("/old/.venv/bin/python -m prefect.engine")
    assert engine_command().endswith(" -m deployments.flow_run")
    assert not is_engine_command("uv run python -m prefect.engine")
    assert not is_engine_command("python -m json.tool")
    assert not is_engine_command("python -m prefect.engine --extra")
    assert not is_engine_command("python 'unclosed")


def test_flow_run_process_leaves_the_workers_session_then_runs_prefects_engine():
    """``python -m deployments.flow_run``: a session of its own (so the worker's Ctrl-C does not reach it), then
    ``prefect.engine`` as ``__main__`` (its own refusal of a bad flow run id shows it ran)."""
    import os
    import subprocess
    import sys

    probe = ("import os, runpy, sys; import deployments.flow_run as f; "
             "runpy.run_module = lambda name, **kw: print(os.getsid(0), os.getpid(), name, kw['run_name']); f.main()")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out[0] == out[1] and int(out[0]) != os.getsid(0), out  # the session leader of a new session
    assert out[2:] == ["prefect.engine", "__main__"]
    engine = subprocess.run([sys.executable, "-m", "deployments.flow_run", "not-a-flow-run-id"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"})
    assert engine.returncode == 1
    assert "Invalid flow run id" in engine.stdout + engine.stderr


def test_work_pool_set_up_without_a_reachable_prefect_server_says_so_in_one_line(capsys):
    """``python -m deployments.work_pool`` with PREFECT_API_URL at a closed port: exit 1 and one line naming the
    server and what to do, not a traceback."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.work_pool import main

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        assert main([]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and url in err and "not set up" in err and "prefect server start" in err, err
