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
    monkeypatch.setattr(ratelimit, "rate_limit", lambda name, occupy, strict: calls.append(("slot", name)))
    inner = httpx.MockTransport(lambda request: (calls.append(("sent", request.url.path)), httpx.Response(200, json={}))[1])
    with httpx.Client(transport=ratelimit.RateLimitedTransport("prolific-api", inner=inner), base_url="http://api") as client:
        client.get("/a")
        client.get("/b")
    assert calls == [("slot", "prolific-api"), ("sent", "/a"), ("slot", "prolific-api"), ("sent", "/b")]


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
