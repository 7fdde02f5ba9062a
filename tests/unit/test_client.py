"""Unit tests of taskbuilder.client (and credentials) against httpx.MockTransport: one endpoint or one
behaviour of the request path per test. The sandbox tests in tests/integration drive the real thing."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from taskbuilder import client as client_module
from taskbuilder.client import ClientTimeouts, ProlificClient, normalise_base_url
from taskbuilder.credentials import ApiSettings, resolve_api_token
from taskbuilder.errors import (
    BadRequest,
    ConnectError,
    ConnectionDropped,
    Gone,
    MissingCredentials,
    NotFound,
    RateLimited,
    RequestTimeout,
    ServerError,
    ServiceUnavailable,
    UnexpectedResponse,
    UnprocessableEntity,
)
from taskbuilder.models import BatchStatus, DatasetStatus, StudyAction, StudyStatus, SubmissionStatus

TOKEN = "tok-SECRET-1234567890"
BASE = "https://api.test"
SIGNED = "https://bucket.s3.test/ds/reviews.csv?X-Amz-Signature=deadbeef42&X-Amz-Credential=AKID"

DETAILS = {"task_name": "T", "task_introduction": "<p>Read</p>", "task_steps": ""}
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and answers from a route table or a queue."""

    def __init__(self, routes: dict[tuple[str, str], object] | None = None, queue: list[httpx.Response] | None = None):
        self.routes = routes or {}
        self.queue = list(queue or [])
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.queue:
            return self.queue.pop(0)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"detail": f"no route {request.method} {request.url.path}"})
        return answer(request) if callable(answer) else answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make_client(handler: Handler, **kwargs) -> ProlificClient:
    return ProlificClient(BASE, TOKEN, transport=httpx.MockTransport(handler), **kwargs)


def body_of(request: httpx.Request) -> object:
    return json.loads(request.content)


@pytest.fixture
def no_sleep(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(client_module.base.time, "sleep", slept.append)
    return slept


# --- construction, secrets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [("https://api.prolific.com", "https://api.prolific.com"), ("https://api.prolific.com/", "https://api.prolific.com"),
     ("https://api.prolific.com/api/v1", "https://api.prolific.com"), ("http://127.0.0.1:8123/api/v1/", "http://127.0.0.1:8123")],
)
def test_base_url_is_normalised(given, expected):
    assert normalise_base_url(given) == expected


@pytest.mark.parametrize("bad", ["api.prolific.com", "ftp://x", "https://h/?token=1", "https://u:p@h"])
def test_bad_base_url_is_refused_without_echoing_a_query(bad):
    with pytest.raises(ValueError) as info:
        normalise_base_url(bad)
    assert "token=1" not in str(info.value) and "u:p" not in str(info.value)


def test_token_is_sent_as_token_header_and_never_shown(caplog):
    recorder = Recorder({("GET", "/api/v1/users/me/"): httpx.Response(200, json={"id": "u1", "currency_code": "GBP", "balance": 1000})})
    caplog.set_level(logging.DEBUG, logger="taskbuilder")
    with ProlificClient(BASE + "/api/v1/", SecretStr(TOKEN), transport=httpx.MockTransport(recorder)) as client:
        user = client.get_me()
        shown = [repr(client), str(client), repr(client.__dict__), repr(client.timeouts)]
    assert user.id == "u1" and user.balance == 1000 and user.currency_code == "GBP"
    assert recorder.last.headers["Authorization"] == f"Token {TOKEN}"
    assert str(recorder.last.url) == "https://api.test/api/v1/users/me/"
    assert "GET /api/v1/users/me/ → 200" in caplog.text
    for text in [*shown, caplog.text]:
        assert TOKEN not in text


def test_empty_token_is_missing_credentials():
    with pytest.raises(MissingCredentials):
        ProlificClient(BASE, "  ")


def test_resolve_api_token_and_settings_from_env():
    token = resolve_api_token({"PROLIFIC_API_TOKEN": f" {TOKEN}\n"})
    assert token.get_secret_value() == TOKEN and TOKEN not in repr(token) and TOKEN not in str(token)
    with pytest.raises(MissingCredentials, match="PROLIFIC_API_TOKEN.*Secret block"):
        resolve_api_token({"PROLIFIC_API_TOKEN": "  "})
    settings = ApiSettings.from_env(
        {"PROLIFIC_API_URL": "http://127.0.0.1:9/api/v1", "PROLIFIC_WORKSPACE_ID": "w1", "PROLIFIC_PROJECT_ID": "", "PROLIFIC_API_TOKEN": TOKEN}
    )
    assert settings == ApiSettings(base_url="http://127.0.0.1:9", workspace_id="w1", project_id=None)
    assert TOKEN not in repr(settings) and TOKEN not in settings.model_dump_json()
    assert ApiSettings.from_env({}).base_url == "https://api.prolific.com"


# --- endpoints: paths, bodies, parsing ----------------------------------------------------------


def test_create_dataset_posts_name_and_workspace():
    created = {"id": "d1", "name": "reviews", "status": "UNINITIALISED", "total_datapoint_count": 0, "workspace_id": "w1"}
    recorder = Recorder({("POST", "/api/v1/data-collection/datasets"): httpx.Response(201, json=created)})
    dataset = make_client(recorder).create_dataset(name="reviews", workspace_id="w1")
    assert body_of(recorder.last) == {"name": "reviews", "workspace_id": "w1"}
    assert recorder.last.headers["Content-Type"] == "application/json"
    assert dataset.status is DatasetStatus.UNINITIALISED and dataset.total_datapoint_count == 0


def test_dataset_status_known_and_unknown_values():
    answers = iter(["READY", "ARCHIVED"])
    recorder = Recorder({("GET", "/api/v1/data-collection/datasets/d1/status"): lambda r: httpx.Response(200, json={"status": next(answers)})})
    client = make_client(recorder)
    assert client.get_dataset_status("d1") is DatasetStatus.READY
    unknown = client.get_dataset_status("d1")
    assert unknown == "ARCHIVED" and not isinstance(unknown, DatasetStatus)


def test_dataset_keeps_unknown_fields_and_reports_error_reason():
    recorder = Recorder({("GET", "/api/v1/data-collection/datasets/d1"): httpx.Response(
        200, json={"id": "d1", "status": "ERROR", "reason": "row 3: bad quoting", "sandbox_note": 3})})
    dataset = make_client(recorder).get_dataset("d1")
    assert dataset.status is DatasetStatus.ERROR and dataset.status.is_terminal
    assert dataset.error_reason == "row 3: bad quoting" and dataset.model_extra["sandbox_note"] == 3


def test_upload_url_path_encodes_filename_and_repr_hides_signature():
    recorder = Recorder({("GET", "/api/v1/data-collection/datasets/d1/upload-url/my data.csv"): httpx.Response(
        201, json={"upload_url": SIGNED, "expires_at": "2025-01-10T13:00:00Z", "http_method": "PUT", "dataset_id": "d1"})})
    upload = make_client(recorder).get_dataset_upload_url("d1", "my data.csv")
    assert recorder.last.url.raw_path == b"/api/v1/data-collection/datasets/d1/upload-url/my%20data.csv"
    assert upload.upload_url == SIGNED and upload.expires_at.year == 2025
    assert "deadbeef42" not in repr(upload) and "deadbeef42" not in str(upload)


def test_ids_cannot_change_the_path():
    recorder = Recorder()
    with pytest.raises(NotFound):
        make_client(recorder).get_batch("../../users/me")
    assert recorder.last.url.raw_path == b"/api/v1/data-collection/batches/..%2F..%2Fusers%2Fme"


def test_create_batch_sends_only_given_fields():
    answer = {"id": "b1", "name": "n", "status": "UNINITIALISED", "total_task_count": 0, "workspace_id": "w1"}
    recorder = Recorder({("POST", "/api/v1/data-collection/batches"): httpx.Response(201, json=answer)})
    client = make_client(recorder)
    batch = client.create_batch(name="n", workspace_id="w1", dataset_id="d1", task_details=DETAILS)
    assert body_of(recorder.last) == {"name": "n", "workspace_id": "w1", "dataset_id": "d1", "task_details": DETAILS}
    assert batch.status is BatchStatus.UNINITIALISED
    client.create_batch(name="n", workspace_id="w1", batch_items=[{"rows": []}])
    assert body_of(recorder.last) == {"name": "n", "workspace_id": "w1", "batch_items": [{"rows": []}]}


def test_update_batch_sends_fields_as_given_including_null():
    recorder = Recorder({("PATCH", "/api/v1/data-collection/batches/b1"): httpx.Response(200, json={"id": "b1"})})
    make_client(recorder).update_batch("b1", batch_items=None, name="x")
    assert body_of(recorder.last) == {"batch_items": None, "name": "x"}


def test_batch_status_and_batch_fields():
    recorder = Recorder({
        ("GET", "/api/v1/data-collection/batches/b1/status"): httpx.Response(200, json={"status": "PROCESSING"}),
        ("GET", "/api/v1/data-collection/batches/b1"): httpx.Response(200, json={
            "id": "b1", "status": "READY", "total_task_count": 150, "total_task_groups": 30, "tasks_per_group": 5,
            "datasets": [{"id": "d1", "status": "READY"}]}),
    })
    client = make_client(recorder)
    status = client.get_batch_status("b1")
    assert status is BatchStatus.PROCESSING and not status.is_terminal
    batch = client.get_batch("b1")
    assert (batch.total_task_count, batch.total_task_groups, batch.datasets[0].id) == (150, 30, "d1")


def test_instructions_wrapped_and_unwrapped():
    created = [{"id": "i1", "type": "multiple_choice", "description": "Sentiment?", "order": 1,
                "options": [{"label": "Positive", "value": "positive"}], "answer_limit": 1}]
    recorder = Recorder({
        ("POST", "/api/v1/data-collection/batches/b1/instructions"): httpx.Response(201, json=created),
        ("PUT", "/api/v1/data-collection/batches/b1/instructions"): httpx.Response(200, json=created),
        ("GET", "/api/v1/data-collection/batches/b1/instructions"): httpx.Response(200, json={"results": created, "meta": {"count": 1}}),
    })
    client = make_client(recorder)
    payload = [{"type": "multiple_choice", "description": "Sentiment?", "order": 1}]
    made = client.create_instructions("b1", payload)
    assert body_of(recorder.last) == {"instructions": payload}
    assert made[0].id == "i1" and made[0].model_extra["options"][0]["value"] == "positive"
    assert client.replace_instructions("b1", payload)[0].id == "i1" and body_of(recorder.last) == {"instructions": payload}
    assert [i.id for i in client.get_instructions("b1")] == ["i1"]


def test_setup_batch_posts_given_fields_and_accepts_202():
    recorder = Recorder({("POST", "/api/v1/data-collection/batches/b1/setup"): httpx.Response(202)})
    assert make_client(recorder).setup_batch("b1", dataset_id="d1", tasks_per_group=5) is None
    assert body_of(recorder.last) == {"dataset_id": "d1", "tasks_per_group": 5}


def test_report_as_presigned_pointer_or_inline_csv():
    pointer = {"url": SIGNED, "expires_at": "2026-01-01T00:00:00Z", "http_method": "GET"}
    recorder = Recorder({("GET", "/api/v1/data-collection/batches/b1/report/"): httpx.Response(200, json=pointer)})
    location = make_client(recorder).get_batch_report("b1")
    assert location.url == SIGNED and location.csv_text is None and "deadbeef42" not in repr(location)
    csv_text = "DataPoint_ID,Question\nx,Caf\u00e9 \u2014 \u00fc\n"
    recorder = Recorder({("GET", "/api/v1/data-collection/batches/b1/report/"): httpx.Response(
        200, content=csv_text.encode("utf-8"), headers={"Content-Type": "text/csv"})})
    assert make_client(recorder).get_batch_report("b1").csv_text == csv_text


def test_study_create_get_update_transition():
    study = {"id": "s1", "name": "n", "internal_name": "n [job:k]", "status": "UNPUBLISHED", "reward": 300,
             "total_available_places": 90, "data_collection_id": "b1"}
    recorder = Recorder({
        ("POST", "/api/v1/studies/"): httpx.Response(201, json=study),
        ("GET", "/api/v1/studies/s1/"): httpx.Response(200, json=study),
        ("PATCH", "/api/v1/studies/s1/"): httpx.Response(200, json={**study, "reward": 350}),
        ("POST", "/api/v1/studies/s1/transition/"): httpx.Response(200, json={**study, "status": "ACTIVE"}),
    })
    client = make_client(recorder)
    assert client.create_study({"name": "n", "reward": 300}).status is StudyStatus.UNPUBLISHED
    assert client.update_study("s1", reward=350).reward == 350 and body_of(recorder.last) == {"reward": 350}
    published = client.transition_study("s1", StudyAction.PUBLISH)
    assert body_of(recorder.last) == {"action": "PUBLISH"} and published.status is StudyStatus.ACTIVE


def test_transition_answer_without_a_study_reads_the_study_back():
    recorder = Recorder({
        ("POST", "/api/v1/studies/s1/transition/"): httpx.Response(200, json={"action": "PAUSE"}),
        ("GET", "/api/v1/studies/s1/"): httpx.Response(200, json={"id": "s1", "status": "PAUSED"}),
    })
    assert make_client(recorder).transition_study("s1", StudyAction.PAUSE).status is StudyStatus.PAUSED


def test_submissions_counts_and_bulk_approve():
    recorder = Recorder({
        ("GET", "/api/v1/studies/s1/submissions/"): httpx.Response(200, json={
            "results": [{"id": "sub1", "participant_id": "p1", "status": "TIMED-OUT", "started_at": "2026-01-01T00:00:00.123Z"},
                        {"id": "sub2", "participant_id": "p2", "status": "AWAITING REVIEW"}],
            "_links": {"next": {"href": None}}, "meta": {"count": 2}}),
        ("GET", "/api/v1/studies/s1/submissions/counts/"): httpx.Response(200, json={"ACTIVE": 1, "AWAITING REVIEW": 2, "TOTAL": 3}),
        ("POST", "/api/v1/submissions/bulk-approve/"): httpx.Response(200, json={}),
    })
    client = make_client(recorder)
    submissions = client.list_submissions("s1")
    assert [s.status for s in submissions] == [SubmissionStatus.TIMED_OUT, SubmissionStatus.AWAITING_REVIEW]
    assert not submissions[0].status.is_completed and submissions[1].status.is_completed
    assert client.get_submission_counts("s1")["AWAITING REVIEW"] == 2
    client.bulk_approve_submissions(["sub2"])
    assert body_of(recorder.last) == {"submission_ids": ["sub2"]}


def test_workspaces_projects_balance():
    recorder = Recorder({
        ("GET", "/api/v1/workspaces/"): httpx.Response(200, json={"results": [{"id": "w1", "title": "Main"}], "meta": {"count": 1}}),
        ("GET", "/api/v1/workspaces/w1/projects/"): httpx.Response(200, json={"results": [{"id": "p1", "title": "P"}], "meta": {"count": 1}}),
        ("GET", "/api/v1/workspaces/w1/balance/"): httpx.Response(200, json={"currency_code": "GBP", "available_balance": 5000}),
    })
    client = make_client(recorder)
    assert [w.title for w in client.list_workspaces()] == ["Main"]
    assert [p.id for p in client.list_projects("w1")] == ["p1"]
    assert client.get_workspace_balance("w1").available_balance == 5000


# --- pagination --------------------------------------------------------------------------------


def test_list_studies_follows_next_links_and_filters_status():
    pages = {
        "0": {"results": [{"id": "s1", "status": "ACTIVE"}, {"id": "s2", "status": "UNPUBLISHED"}],
              "_links": {"next": {"href": f"{BASE}/api/v1/studies/?limit=2&offset=2"}}, "meta": {"count": 3}},
        "2": {"results": [{"id": "s3", "status": "UNPUBLISHED"}], "_links": {"next": {"href": None}}, "meta": {"count": 3}},
    }
    recorder = Recorder({("GET", "/api/v1/studies/"): lambda r: httpx.Response(200, json=pages[r.url.params["offset"]])})
    client = make_client(recorder)
    assert [s.id for s in client.list_studies()] == ["s1", "s2", "s3"]
    assert recorder.requests[0].url.params["limit"] == "200"
    assert [s.id for s in client.list_studies(status="UNPUBLISHED")] == ["s2", "s3"]


def test_pagination_by_offset_when_only_meta_count_is_given():
    data = [{"id": f"sub{i}"} for i in range(5)]

    def page(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"results": data[offset:offset + 2], "meta": {"count": 5}})

    recorder = Recorder({("GET", "/api/v1/studies/s1/submissions/"): page})
    assert [s.id for s in make_client(recorder).list_submissions("s1")] == [d["id"] for d in data]
    assert [r.url.params["offset"] for r in recorder.requests] == ["0", "2", "4"]


def test_pagination_link_to_another_host_is_refused_before_sending_the_token():
    recorder = Recorder({("GET", "/api/v1/studies/"): httpx.Response(
        200, json={"results": [{"id": "s1"}], "_links": {"next": {"href": "https://evil.test/api/v1/studies/?offset=1"}}})})
    with pytest.raises(UnexpectedResponse, match="another host"):
        make_client(recorder).list_studies()
    assert all(r.url.host == "api.test" for r in recorder.requests)


def test_batch_responses_relative_next_link_without_limit():
    pages = {None: {"results": [{"id": "r1"}], "_links": {"next": {"href": "/api/v1/data-collection/batches/b1/responses?page=2"}}},
             "2": {"results": [{"id": "r2"}], "_links": {"next": {"href": None}}}}
    recorder = Recorder({("GET", "/api/v1/data-collection/batches/b1/responses"): lambda r: httpx.Response(
        200, json=pages[r.url.params.get("page")])})
    assert make_client(recorder).get_batch_responses("b1") == [{"id": "r1"}, {"id": "r2"}]
    assert "limit" not in recorder.requests[0].url.params


def test_list_batches_sends_workspace_and_accepts_results_only():
    recorder = Recorder({("GET", "/api/v1/data-collection/batches"): httpx.Response(200, json={"results": [{"id": "b1", "name": "x [job:k]"}]})})
    batches = make_client(recorder).list_batches("w1")
    assert [b.name for b in batches] == ["x [job:k]"] and recorder.last.url.params["workspace_id"] == "w1"


# --- errors and Retry-After ------------------------------------------------------------------------


def test_error_status_raises_typed_error_with_path_but_no_query():
    recorder = Recorder(queue=[httpx.Response(400, json={"error": {"title": "Bad Request", "detail": "dataset is not READY"}})])
    with pytest.raises(BadRequest) as info:
        make_client(recorder).setup_batch("b1", tasks_per_group=2)
    assert str(info.value) == "POST /api/v1/data-collection/batches/b1/setup → 400: Bad Request: dataset is not READY"


def test_legacy_instructions_422_and_410_are_typed():
    issues = {"type": "INVALID_BATCH_ITEMS", "issues": [{"page": 0, "row": 0, "column": 0, "item": 1, "message": "x"}]}
    recorder = Recorder(queue=[httpx.Response(422, json=issues), httpx.Response(410, json={"detail": "retired"})])
    client = make_client(recorder)
    with pytest.raises(UnprocessableEntity, match=r"batch_items\[0\]\.rows\[0\]\.columns\[0\]\.items\[1\]: x"):
        client.create_instructions("b1", [])
    with pytest.raises(Gone):
        client.create_instructions("b1", [])


def test_retry_after_429_is_waited_out_then_succeeds(no_sleep, caplog):
    caplog.set_level(logging.INFO, logger="taskbuilder.client")
    recorder = Recorder(queue=[httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(201, json={"id": "d1"})])
    assert make_client(recorder).create_dataset(name="n", workspace_id="w").id == "d1"
    assert no_sleep == [2.0] and len(recorder.requests) == 2
    assert "Retry-After 2.0 s" in caplog.text and TOKEN not in caplog.text


def test_retry_after_wait_is_capped_and_attempts_are_bounded(no_sleep):
    timeouts = ClientTimeouts(max_retry_after_wait_seconds=3, max_retry_after_attempts=2)
    recorder = Recorder(queue=[httpx.Response(503, headers={"Retry-After": "100"})] * 3)
    with pytest.raises(ServiceUnavailable) as info:
        make_client(recorder, timeouts=timeouts).get_me()
    assert no_sleep == [3.0, 3.0] and len(recorder.requests) == 3
    assert info.value.retry_after_seconds == 100.0


@pytest.mark.parametrize("answer", [httpx.Response(429), httpx.Response(500, headers={"Retry-After": "1"}), httpx.Response(502)])
def test_no_waiting_without_retry_after_or_for_other_statuses(no_sleep, answer):
    recorder = Recorder(queue=[answer, httpx.Response(200, json={"id": "u"})])
    with pytest.raises((RateLimited, ServerError)):
        make_client(recorder).get_me()
    assert no_sleep == [] and len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("raised", "expected"),
    [(httpx.ConnectError("refused"), ConnectError), (httpx.ReadTimeout("slow"), RequestTimeout),
     (httpx.RemoteProtocolError("Server disconnected without sending a response."), ConnectionDropped)],
)
def test_transport_failures_are_mapped_with_method_and_path(raised, expected):
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    with pytest.raises(expected) as info:
        make_client(handler).get_study("s1")
    assert info.value.method == "GET" and info.value.path == "/api/v1/studies/s1/" and info.value.cause is raised
    assert TOKEN not in str(info.value)


def test_poll_gets_use_the_poll_read_timeout_and_creates_the_normal_one():
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"status": "READY", "id": "x"})

    client = make_client(handler, timeouts=ClientTimeouts(read_seconds=31, poll_read_seconds=7, connect_seconds=2))
    client.get_batch_status("b1")
    client.create_study({"name": "n", "reward": 300})
    assert seen[0]["read"] == 7 and seen[1]["read"] == 31 and seen[0]["connect"] == 2


def test_redirect_and_non_json_and_wrong_shape_are_unexpected_responses():
    recorder = Recorder(queue=[
        httpx.Response(301, headers={"Location": "https://elsewhere.test/x?sig=1"}),
        httpx.Response(200, text="<html>maintenance</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, json={"name": "no id"}),
    ])
    client = make_client(recorder)
    with pytest.raises(UnexpectedResponse, match="redirect to https://elsewhere.test/x$"):
        client.get_me()
    with pytest.raises(UnexpectedResponse, match="expected a JSON body, got text/html"):
        client.get_me()
    with pytest.raises(UnexpectedResponse, match="does not fit User: id: Field required"):
        client.get_me()


def test_deprecation_header_warns_once_per_endpoint(caplog):
    caplog.set_level(logging.WARNING, logger="taskbuilder.client")
    headers = {"Deprecation": "true", "Sunset": "Tue, 01 Sep 2026 23:59:59 GMT"}
    recorder = Recorder({
        ("POST", "/api/v1/data-collection/batches/b1/instructions"): httpx.Response(201, json=[], headers=headers),
        ("POST", "/api/v1/data-collection/batches/b2/instructions"): httpx.Response(201, json=[], headers=headers),
    })
    client = make_client(recorder)
    client.create_instructions("b1", [])
    client.create_instructions("b2", [])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Sunset: Tue, 01 Sep 2026 23:59:59 GMT" in warnings[0].getMessage()
    assert "/api/v1/data-collection/batches/{batch_id}/instructions" in warnings[0].getMessage()
    make_client(recorder).create_instructions("b1", [])
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_hook_secrets_and_subscription_handshake_stay_secret():
    recorder = Recorder({
        ("POST", "/api/v1/hooks/secrets/"): httpx.Response(201, json={"id": "h1", "value": "whsec-PLAIN", "workspace_id": "w1"}),
        ("POST", "/api/v1/hooks/subscriptions/"): httpx.Response(
            201, json={"id": "sub1", "event_type": "study.status.change", "target_url": "https://x.test/hook",
                       "is_enabled": False, "workspace_id": "w1"}, headers={"X-Hook-Secret": "handshake-PLAIN"}),
        ("POST", "/api/v1/hooks/subscriptions/sub1/"): httpx.Response(200, json={"id": "sub1", "is_enabled": True}),
        ("DELETE", "/api/v1/hooks/subscriptions/sub1/"): httpx.Response(204),
    })
    client = make_client(recorder)
    secret = client.create_hook_secret("w1")
    assert secret.value.get_secret_value() == "whsec-PLAIN"
    subscription = client.create_hook_subscription(event_type="study.status.change", target_url="https://x.test/hook", workspace_id="w1")
    assert subscription.hook_secret.get_secret_value() == "handshake-PLAIN" and subscription.is_enabled is False
    for shown in (repr(secret), str(secret), secret.model_dump_json(), repr(subscription), subscription.model_dump_json()):
        assert "PLAIN" not in shown
    assert client.confirm_hook_subscription("sub1", subscription.hook_secret).is_enabled is True
    assert body_of(recorder.last) == {"secret": "handshake-PLAIN"}
    assert client.delete_hook_subscription("sub1") is None
