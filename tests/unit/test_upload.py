"""Unit tests of taskbuilder.upload against httpx.MockTransport (the sandbox test uses a real rclone S3)."""

from __future__ import annotations

import gzip
import logging

import httpx
import pytest

from taskbuilder.errors import ConnectionDropped, RequestTimeout, UploadRejected, UploadServerError, UploadURLExpired
from taskbuilder.upload import download_to_file, upload_file

SIGNED = "http://127.0.0.1:9000/bucket/ds/reviews.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef42"
REDACTED = "http://127.0.0.1:9000/bucket/ds/reviews.csv"


def _s3_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, text=f"<Error><Code>{code}</Code><Message>{message}</Message></Error>")


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes("id,text\n1,\"Caf\u00e9, \u00fcber\"\n2,plain\n".encode())
    return path


class StreamCheckingTransport(httpx.BaseTransport):
    """Records whether the request body arrived as a stream (not one in-memory ``bytes`` body) and how
    it was chunked, before reading it (``httpx.MockTransport`` reads the body before its handler runs)."""

    def __init__(self) -> None:
        self.seen: dict = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen["in_memory_body"] = isinstance(request.stream, httpx.ByteStream)
        chunks = list(request.stream)
        self.seen.update(chunks=len(chunks), body=b"".join(chunks), headers=request.headers, url=str(request.url))
        return httpx.Response(200)


def test_upload_streams_the_file_with_length_and_type_and_no_auth(tmp_path, caplog):
    big = tmp_path / "big.csv"
    big.write_bytes(b"id,text\n" + b"1,some sentence text\n" * 130_000)  # ~2.7 MB: several 1 MiB chunks
    transport = StreamCheckingTransport()
    caplog.set_level(logging.DEBUG, logger="taskbuilder")
    assert upload_file(SIGNED, big, transport=transport) is None
    seen = transport.seen
    assert not seen["in_memory_body"] and seen["chunks"] > 1
    assert seen["body"] == big.read_bytes()
    assert seen["headers"]["Content-Length"] == str(big.stat().st_size)
    assert "transfer-encoding" not in seen["headers"]
    assert seen["headers"]["Content-Type"] == "text/csv"
    assert "authorization" not in seen["headers"]
    assert seen["url"] == SIGNED
    assert REDACTED in caplog.text and "deadbeef42" not in caplog.text


def test_upload_without_content_type_sends_none(csv_file):
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen["headers"] = request.headers
        return httpx.Response(200)

    upload_file(SIGNED, csv_file, content_type=None, transport=httpx.MockTransport(handler))
    assert "content-type" not in seen["headers"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(_s3_error(403, "AccessDenied", "Request has expired"), UploadURLExpired),
     (_s3_error(400, "AccessDenied", "the difference between the request time and the server's time is too large"), UploadURLExpired),
     (_s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match"), UploadRejected),
     (_s3_error(411, "MissingContentLength", "You must provide the Content-Length HTTP header."), UploadRejected),
     (_s3_error(500, "InternalError", "try again"), UploadServerError)],
)
def test_upload_failures_are_typed_and_redacted(csv_file, answer, expected):
    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return answer

    with pytest.raises(expected) as info:
        upload_file(SIGNED, csv_file, transport=httpx.MockTransport(handler))
    assert info.value.url == REDACTED and info.value.method == "PUT"
    assert "deadbeef42" not in str(info.value) and "deadbeef42" not in repr(info.value)


@pytest.mark.parametrize(("raised", "expected"), [(httpx.WriteError("broken pipe"), ConnectionDropped), (httpx.ReadTimeout("t"), RequestTimeout)])
def test_upload_transport_failures_carry_the_redacted_url(csv_file, raised, expected):
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    with pytest.raises(expected) as info:
        upload_file(SIGNED, csv_file, transport=httpx.MockTransport(handler))
    assert info.value.path == REDACTED and "deadbeef42" not in str(info.value)


def test_upload_refuses_a_non_http_url_without_echoing_it(csv_file):
    with pytest.raises(ValueError) as info:
        upload_file("file:///etc/passwd?X-Amz-Signature=deadbeef42", csv_file)
    assert "deadbeef42" not in str(info.value)


def test_download_writes_the_decoded_body_and_returns_its_size(tmp_path):
    payload = "DataPoint_ID,Question\nx,\u00c9t\u00e9?\n".encode() * 1000
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["headers"] = request.headers
        return httpx.Response(200, content=gzip.compress(payload), headers={"Content-Encoding": "gzip", "Content-Type": "text/csv"})

    target = tmp_path / "report.csv"
    assert download_to_file(SIGNED, target, transport=httpx.MockTransport(handler)) == len(payload)
    assert target.read_bytes() == payload
    assert "authorization" not in seen["headers"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_download_error_leaves_no_file(tmp_path):
    handler = httpx.MockTransport(lambda request: _s3_error(403, "AccessDenied", "Request has expired"))
    target = tmp_path / "report.csv"
    with pytest.raises(UploadURLExpired) as info:
        download_to_file(SIGNED, target, transport=handler)
    assert info.value.method == "GET" and "deadbeef42" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_download_dropped_midway_leaves_no_partial_file(tmp_path):
    def chunks():
        yield b"DataPoint_ID,Question\n"
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    handler = httpx.MockTransport(lambda request: httpx.Response(200, content=chunks()))
    target = tmp_path / "report.csv"
    target.write_text("previous complete report")
    with pytest.raises(ConnectionDropped):
        download_to_file(SIGNED, target, transport=handler)
    assert target.read_text() == "previous complete report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]
