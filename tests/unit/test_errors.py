"""Unit tests of taskbuilder.errors and taskbuilder.redact: error parsing, typing, classification, redaction."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import httpx
import pytest

from taskbuilder import errors
from taskbuilder.error_details import extract_detail, parse_retry_after
from taskbuilder.errors import (
    APIStatusError,
    BadRequest,
    BatchSetupFailed,
    Conflict,
    ConnectError,
    ConnectionDropped,
    DatasetProcessingFailed,
    Forbidden,
    Gone,
    MissingCredentials,
    NotFound,
    RateLimited,
    RequestTimeout,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnexpectedResponse,
    UnprocessableEntity,
    UploadRejected,
    UploadServerError,
    UploadSlowDown,
    UploadURLExpired,
    WaitTimedOut,
    api_status_error_from_response,
    transport_error_from_httpx,
    upload_error_from_response,
)
from taskbuilder.failures import classify
from taskbuilder.redact import redact_text, redact_url

SIGNED = "https://bucket.s3.amazonaws.com/ds/reviews.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef42"


def _response(status: int, *, json=None, text: str | None = None, headers=None, method="GET", url="https://api.test/x") -> httpx.Response:
    kwargs = {"json": json} if json is not None else {"text": text or ""}
    return httpx.Response(status, headers=headers, request=httpx.Request(method, url), **kwargs)


def _s3(status: int, code: str, message: str, headers=None) -> httpx.Response:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message><Resource>/ds/reviews.csv</Resource></Error>"
    return httpx.Response(status, text=body, headers=headers, request=httpx.Request("PUT", SIGNED))


# --- redaction ---------------------------------------------------------------------------------


def test_redact_url_drops_query_fragment_and_userinfo_but_keeps_port_and_path():
    assert redact_url(SIGNED) == "https://bucket.s3.amazonaws.com/ds/reviews.csv"
    assert redact_url("http://user:pw@127.0.0.1:9000/b/k%20x.csv?a=1#frag") == "http://127.0.0.1:9000/b/k%20x.csv"


def test_redact_text_redacts_every_url_and_bare_signature_parameters():
    text = f"failed to PUT {SIGNED} (retry) and X-Amz-Signature=cafe1234&X-Amz-Credential=AKID/x"
    cleaned = redact_text(text)
    assert "deadbeef42" not in cleaned and "cafe1234" not in cleaned and "AKID" not in cleaned
    assert "https://bucket.s3.amazonaws.com/ds/reviews.csv (retry)" in cleaned


# --- API error bodies (API doc §1.1) -----------------------------------------------------------


def test_detail_from_standard_error_shape_with_object_detail():
    body = {"error": {"status": 400, "title": "Bad Request", "error_code": 140001,
                      "detail": {"name": ["This field is required."]}, "additional_information": "see docs"}}
    assert extract_detail(body, "fallback") == "Bad Request: name: This field is required. (see docs)"


def test_detail_from_simple_shape():
    assert extract_detail({"message": "Dataset not ready", "detail": "status is PROCESSING"}, "x") == (
        "Dataset not ready: status is PROCESSING"
    )
    assert extract_detail({"detail": "Not found."}, "x") == "Not found."


def test_detail_from_invalid_batch_items_renders_field_paths():
    body = {"type": "INVALID_BATCH_ITEMS", "issues": [
        {"page": 0, "row": 1, "column": 0, "item": 2, "type": "free_text", "message": "description is required"},
        {"page": 1, "row": 0, "column": 0, "item": 0, "type": "dataset_field", "field": "missing_col",
         "message": "Field does not exist in the dataset schema"},
    ]}
    assert extract_detail(body, "x") == (
        "invalid batch_items: batch_items[0].rows[1].columns[0].items[2] (free_text): description is required; "
        "batch_items[1].rows[0].columns[0].items[0] (dataset_field, field 'missing_col'): "
        "Field does not exist in the dataset schema"
    )


def test_detail_falls_back_to_text_then_reason_phrase():
    assert extract_detail("upstream exploded", "Bad Gateway") == "upstream exploded"
    assert extract_detail(None, "Bad Gateway") == "Bad Gateway"
    error = api_status_error_from_response(_response(502), method="GET", path="/api/v1/x")
    assert error.detail == "Bad Gateway" and error.body is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequest), (401, Unauthorized), (403, Forbidden), (404, NotFound), (409, Conflict), (410, Gone),
     (422, UnprocessableEntity), (429, RateLimited), (500, ServerError), (502, ServerError), (599, ServerError),
     (503, ServiceUnavailable), (418, APIStatusError)],
)
def test_status_error_subclass_follows_status(status, cls):
    error = api_status_error_from_response(_response(status, json={"detail": "x"}), method="GET", path="/api/v1/x")
    assert type(error) is cls and error.status_code == status


def test_status_error_attributes_and_message():
    response = _response(
        404, json={"error": {"title": "Not Found", "detail": "No dataset abc"}},
        headers={"X-Request-Id": "req-1"}, url="https://api.test/api/v1/data-collection/datasets/abc?x=1",
    )
    error = api_status_error_from_response(response, method="GET", path="/api/v1/data-collection/datasets/abc")
    assert str(error) == "GET /api/v1/data-collection/datasets/abc → 404: Not Found: No dataset abc"
    assert error.request_id == "req-1" and error.method == "GET"
    assert error.body == {"error": {"title": "Not Found", "detail": "No dataset abc"}}
    assert isinstance(error, errors.ProlificError)


def test_service_unavailable_is_a_server_error_with_retry_after():
    error = api_status_error_from_response(_response(503, headers={"Retry-After": "7"}), method="POST", path="/p")
    assert isinstance(error, ServerError) and error.retry_after_seconds == 7.0


def test_parse_retry_after_seconds_http_date_and_garbage():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("nan") is None


# --- transport errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "expected"),
    [(httpx.ConnectError("refused"), ConnectError), (httpx.ConnectTimeout("t"), ConnectError),
     (httpx.PoolTimeout("t"), ConnectError), (httpx.ReadTimeout("t"), RequestTimeout),
     (httpx.WriteTimeout("t"), RequestTimeout), (httpx.RemoteProtocolError("peer closed"), ConnectionDropped),
     (httpx.ReadError("reset"), ConnectionDropped), (httpx.WriteError("broken pipe"), ConnectionDropped)],
)
def test_transport_errors_map_to_family(raised, expected):
    error = transport_error_from_httpx(raised, method="POST", path="/api/v1/studies/")
    assert type(error) is expected and error.cause is raised
    assert error.method == "POST" and error.path == "/api/v1/studies/"
    assert str(error).startswith("POST /api/v1/studies/: ")


def test_transport_error_message_redacts_a_url_in_the_cause():
    error = transport_error_from_httpx(httpx.ReadError(f"failed reading {SIGNED}"), method="PUT", path=redact_url(SIGNED))
    assert "deadbeef42" not in str(error) and "deadbeef42" not in repr(error)


# --- S3 errors ---------------------------------------------------------------------------------


def test_aws_expired_url_is_recognised_from_its_body():
    error = upload_error_from_response(_s3(403, "AccessDenied", "Request has expired"), method="PUT", url=SIGNED)
    assert type(error) is UploadURLExpired
    assert error.url == "https://bucket.s3.amazonaws.com/ds/reviews.csv"


def test_rclone_expired_url_is_recognised_from_its_400_body():
    message = "Access Denied: the difference between the request time and the server's time exceeds the limit"
    error = upload_error_from_response(_s3(400, "AccessDenied", message), method="PUT", url=SIGNED)
    assert type(error) is UploadURLExpired


def test_access_denied_without_expiry_is_a_rejection_not_an_expiry():
    error = upload_error_from_response(_s3(403, "AccessDenied", "There were headers present in the request which were not signed"),
                                       method="PUT", url=SIGNED)
    assert type(error) is UploadRejected and error.s3_code == "AccessDenied"


def test_signature_mismatch_is_rejected_and_never_echoes_the_body():
    body = ("<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match"
            "</Message><SignatureProvided>deadbeef42</SignatureProvided><StringToSign>AWS4 secret</StringToSign></Error>")
    response = httpx.Response(403, text=body, request=httpx.Request("PUT", SIGNED))
    error = upload_error_from_response(response, method="PUT", url=SIGNED)
    assert type(error) is UploadRejected and error.s3_code == "SignatureDoesNotMatch"
    for text in (str(error), repr(error), repr(error.__dict__)):
        assert "deadbeef42" not in text and "AWS4 secret" not in text
    assert "PUT https://bucket.s3.amazonaws.com/ds/reviews.csv → 403: SignatureDoesNotMatch" in str(error)


def test_slow_down_carries_retry_after_and_other_5xx_are_server_errors():
    slow = upload_error_from_response(_s3(503, "SlowDown", "Please reduce your request rate.", {"Retry-After": "3"}),
                                      method="PUT", url=SIGNED)
    assert type(slow) is UploadSlowDown and slow.retry_after_seconds == 3.0
    assert type(upload_error_from_response(_s3(503, "ServiceUnavailable", "x"), method="PUT", url=SIGNED)) is UploadServerError
    assert type(upload_error_from_response(_s3(500, "InternalError", "x"), method="PUT", url=SIGNED)) is UploadServerError
    assert type(upload_error_from_response(_s3(400, "RequestTimeout", "idle socket"), method="PUT", url=SIGNED)) is UploadServerError


def test_non_xml_s3_error_keeps_the_text_as_message():
    response = httpx.Response(404, text="no such bucket", request=httpx.Request("GET", SIGNED))
    error = upload_error_from_response(response, method="GET", url=SIGNED)
    assert type(error) is UploadRejected and error.s3_code is None and error.s3_message == "no such bucket"


# --- domain errors -----------------------------------------------------------------------------


def test_wait_timed_out_says_work_may_finish_and_rerun_resumes():
    error = WaitTimedOut(resource="batch", id="b1", last_status="PROCESSING", waited_seconds=1800.4)
    text = str(error)
    assert "batch b1" in text and "PROCESSING" in text and "1800 s" in text
    assert "may still finish" in text and "re-running the job resumes" in text


def test_errors_survive_pickling_with_their_attributes():
    originals = [
        api_status_error_from_response(_response(429, json={"detail": "slow"}, headers={"Retry-After": "2"}),
                                       method="GET", path="/api/v1/x"),
        transport_error_from_httpx(httpx.ConnectError("refused"), method="GET", path="/api/v1/x"),
        upload_error_from_response(_s3(503, "SlowDown", "x", {"Retry-After": "4"}), method="PUT", url=SIGNED),
        WaitTimedOut(resource="dataset", id="d", last_status="PROCESSING", waited_seconds=3),
        DatasetProcessingFailed(dataset_id="d", reason="bad CSV"),
    ]
    for original in originals:
        copy = pickle.loads(pickle.dumps(original))
        assert type(copy) is type(original) and str(copy) == str(original)
        assert classify(copy) == classify(original)
    assert pickle.loads(pickle.dumps(originals[0])).retry_after_seconds == 2.0


# --- classify ----------------------------------------------------------------------------------


def _status_error(status: int, retry_after: str | None = None) -> APIStatusError:
    headers = {"Retry-After": retry_after} if retry_after else None
    return api_status_error_from_response(_response(status, json={"detail": "why"}, headers=headers), method="GET", path="/p")


@pytest.mark.parametrize(
    ("exc", "action", "wait_seconds"),
    [
        (transport_error_from_httpx(httpx.ReadTimeout("t"), method="GET", path="/p"), "retry", None),
        (transport_error_from_httpx(httpx.ConnectError("c"), method="GET", path="/p"), "retry", None),
        (_status_error(500), "retry", None),
        (_status_error(502, "5"), "retry", None),
        (_status_error(503), "retry", None),
        (_status_error(503, "12"), "wait", 12.0),
        (_status_error(429, "30"), "wait", 30.0),
        (_status_error(429), "retry", None),
        (upload_error_from_response(_s3(403, "AccessDenied", "Request has expired"), method="PUT", url=SIGNED), "refresh", None),
        (upload_error_from_response(_s3(503, "SlowDown", "x", {"Retry-After": "2"}), method="PUT", url=SIGNED), "wait", 2.0),
        (upload_error_from_response(_s3(503, "SlowDown", "x"), method="PUT", url=SIGNED), "wait", None),
        (upload_error_from_response(_s3(500, "InternalError", "x"), method="PUT", url=SIGNED), "retry", None),
        (upload_error_from_response(_s3(403, "SignatureDoesNotMatch", "x"), method="PUT", url=SIGNED), "stop", None),
        (_status_error(400), "stop", None),
        (_status_error(401), "stop", None),
        (_status_error(403), "stop", None),
        (_status_error(404), "stop", None),
        (_status_error(409), "stop", None),
        (_status_error(410), "stop", None),
        (_status_error(422), "stop", None),
        (DatasetProcessingFailed(dataset_id="d", reason="bad"), "stop", None),
        (BatchSetupFailed(batch_id="b", reason="bad"), "stop", None),
        (WaitTimedOut(resource="study", id="s", last_status="ACTIVE", waited_seconds=5), "stop", None),
        (MissingCredentials("no token"), "stop", None),
        (UnexpectedResponse(method="GET", path="/p", status_code=200, reason="not JSON"), "stop", None),
        (KeyError("bug"), "stop", None),
    ],
)
def test_classify(exc, action, wait_seconds):
    decision = classify(exc)
    assert decision.action == action and decision.wait_seconds == wait_seconds
    assert decision.reason


def test_classify_stop_reason_quotes_the_detail_and_never_a_signature():
    decision = classify(_status_error(422))
    assert decision.reason == "GET /p → 422: why"
    bug = classify(RuntimeError(f"boom at {SIGNED}"))
    assert "deadbeef42" not in bug.reason and "RuntimeError" in bug.reason
