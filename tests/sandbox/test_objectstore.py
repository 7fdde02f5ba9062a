"""Tests of sandbox.objectstore against a real `rclone serve s3` and the real front door on loopback.

What is checked: presigned PUT/GET behave like S3 (signature, expiry, signed Content-Type, Content-Length),
the front door forwards unchanged and streams, records every request, calls object_put, and applies the
fault rules (status, drop, delay, lost_response); stop() leaves no rclone process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import resource
import socket
import threading
import time

import httpx
import pytest
from boto3.s3.transfer import TransferConfig

from sandbox.objectstore import ObjectStore

KEY = "datasets/d1/reviews.csv"
PATH = f"/sandbox/{KEY}"
CSV = b"text,META_gold\nI loved it,positive\nCaf\xc3\xa9 was cold,negative\n"


class RecordingListener:
    """A StoreListener that hands out one-shot fault rules per HTTP method and remembers every call."""

    def __init__(self) -> None:
        self.rules: dict[str, dict] = {}
        self.fault_queries: list[tuple[str, str, str]] = []
        self.records: list[tuple[str, str, str, int]] = []
        self.object_puts: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def match_fault(self, target: str, method: str, path: str) -> dict | None:
        with self._lock:
            self.fault_queries.append((target, method, path))
            return self.rules.pop(method, None)

    def record(self, target: str, method: str, path: str, status: int) -> None:
        with self._lock:
            self.records.append((target, method, path, status))

    def object_put(self, key: str, size: int) -> None:
        with self._lock:
            self.object_puts.append((key, size))


@pytest.fixture
def listener() -> RecordingListener:
    return RecordingListener()


@pytest.fixture
def store(tmp_path, listener):
    object_store = ObjectStore(tmp_path / "s3", listener=listener)
    object_store.start()
    try:
        yield object_store
    finally:
        object_store.stop()


def _put(url: str, body, content_type: str | None = "text/csv") -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return httpx.put(url, content=body, headers=headers, timeout=30)


def test_presigned_put_streams_a_file_and_stores_its_bytes(store, listener, tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_bytes(CSV)
    with source.open("rb") as body:
        response = _put(store.presign_put(KEY, 300), body)
    assert response.status_code == 200
    with store.open_object(KEY) as stored:
        assert stored.read() == CSV
    assert store.object_size(KEY) == len(CSV)
    assert listener.fault_queries == [("s3", "PUT", PATH)]
    assert listener.records == [("s3", "PUT", PATH, 200)]
    assert listener.object_puts == [(KEY, len(CSV))]


def test_unicode_key_reaches_listener_decoded_and_path_encoded(store, listener):
    key = "datasets/d2/sp ace ü.csv"
    assert _put(store.presign_put(key, 300), CSV).status_code == 200
    assert listener.records == [("s3", "PUT", "/sandbox/datasets/d2/sp%20ace%20%C3%BC.csv", 200)]
    assert listener.object_puts == [(key, len(CSV))]
    with store.open_object(key) as stored:
        assert stored.read() == CSV


def test_tampered_signature_is_refused_and_nothing_is_stored(store, listener):
    url = store.presign_put(KEY, 300)
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    response = _put(tampered, CSV)
    assert response.status_code == 403
    assert "SignatureDoesNotMatch" in response.text
    assert store.object_size(KEY) is None
    assert listener.records == [("s3", "PUT", PATH, 403)]
    assert listener.object_puts == []


def test_presigned_put_for_one_key_cannot_write_another(store):
    url = store.presign_put(KEY, 300).replace("reviews.csv", "other.csv")
    assert _put(url, CSV).status_code == 403
    assert store.object_size("datasets/d1/other.csv") is None


def test_expired_url_is_refused_with_a_time_error(store):
    url = store.presign_put(KEY, 1)
    time.sleep(2.5)
    response = _put(url, CSV)
    assert response.status_code in (400, 403)  # rclone answers 400, AWS 403 (local-s3.md §2.1)
    assert response.text.startswith("<?xml")
    assert "time" in response.text.lower() or "expired" in response.text.lower()
    assert store.object_size(KEY) is None


def test_chunked_upload_without_content_length_is_refused(store, listener):
    def body():
        yield b"text\n"
        yield b"hello\n"

    response = _put(store.presign_put(KEY, 300), body())
    assert response.status_code == 411
    assert "MissingContentLength" in response.text
    assert store.object_size(KEY) is None
    assert listener.records == [("s3", "PUT", PATH, 411)]


def test_content_type_is_free_by_default(store):
    assert _put(store.presign_put(KEY, 300), CSV, "multipart/form-data").status_code == 200
    assert _put(store.presign_put(KEY, 300), CSV, None).status_code == 200


def test_signed_content_type_must_match(store):
    url = store.presign_put(KEY, 300, "text/csv")
    assert "content-type" in url.lower()
    wrong = _put(url, CSV, "application/octet-stream")
    assert wrong.status_code == 403
    assert _put(url, CSV, None).status_code == 403
    assert store.object_size(KEY) is None
    assert _put(url, CSV, "text/csv").status_code == 200
    assert store.object_size(KEY) == len(CSV)


def test_presigned_get_returns_the_object_and_checks_the_signature(store, listener):
    store.put_object(KEY, CSV, "text/csv")
    url = store.presign_get(KEY, 300)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == CSV
    assert response.headers["content-type"] == "text/csv"
    assert httpx.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=f")).status_code == 403
    assert listener.records == [("s3", "GET", PATH, 200), ("s3", "GET", PATH, 403)]
    assert listener.object_puts == []  # put_object is the sandbox's own write: not client traffic


def test_open_object_raises_key_error_when_absent(store):
    with pytest.raises(KeyError):
        store.open_object("datasets/missing.csv")
    with pytest.raises(KeyError):
        store.open_object("../outside.csv")
    assert store.object_size("datasets/missing.csv") is None


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
def test_fault_status_answers_s3_error_xml_and_connection_stays_usable(store, listener, status, code):
    listener.rules["PUT"] = {"effect": "status", "status": status, "retry_after": 2}
    url = store.presign_put(KEY, 300)
    with httpx.Client() as client:
        failed = client.put(url, content=CSV, headers={"Content-Type": "text/csv"})
        assert failed.status_code == status
        assert f"<Code>{code}</Code>" in failed.text
        assert failed.headers["retry-after"] == "2"
        assert store.object_size(KEY) is None
        retried = client.put(url, content=CSV, headers={"Content-Type": "text/csv"})
        assert retried.status_code == 200
        assert client.get(store.presign_get(KEY, 300)).content == CSV
    assert listener.records[:2] == [("s3", "PUT", PATH, status), ("s3", "PUT", PATH, 200)]
    assert listener.object_puts == [(KEY, len(CSV))]


def test_fault_drop_closes_the_connection_without_an_answer(store, listener):
    listener.rules["PUT"] = {"effect": "drop"}
    with pytest.raises(httpx.TransportError):
        _put(store.presign_put(KEY, 300), CSV)
    assert store.object_size(KEY) is None
    assert listener.records == [("s3", "PUT", PATH, 0)]
    assert listener.object_puts == []


def test_fault_lost_response_stores_the_object_but_the_client_sees_no_answer(store, listener):
    listener.rules["PUT"] = {"effect": "lost_response"}
    with pytest.raises(httpx.TransportError):
        _put(store.presign_put(KEY, 300), CSV)
    with store.open_object(KEY) as stored:
        assert stored.read() == CSV
    assert listener.records == [("s3", "PUT", PATH, 0)]
    assert listener.object_puts == [(KEY, len(CSV))]


def test_fault_delay_waits_then_forwards(store, listener):
    listener.rules["PUT"] = {"effect": "delay", "delay_seconds": 0.8}
    started = time.monotonic()
    response = _put(store.presign_put(KEY, 300), CSV)
    assert time.monotonic() - started >= 0.8
    assert response.status_code == 200
    assert store.object_size(KEY) == len(CSV)
    assert listener.records == [("s3", "PUT", PATH, 200)]


def test_boto3_client_through_the_front_door(store, listener, tmp_path):
    """Header-signed requests, Expect: 100-continue and multipart uploads pass through unchanged."""
    s3 = store.boto3_client()
    s3.put_object(Bucket=store.bucket, Key="small.csv", Body=CSV, ContentType="text/csv")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024 * 1024) * 12)
    s3.upload_file(str(big), store.bucket, "big.bin",
                   Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    assert s3.get_object(Bucket=store.bucket, Key="small.csv")["Body"].read() == CSV
    listed = s3.list_objects_v2(Bucket=store.bucket)
    assert sorted(item["Key"] for item in listed["Contents"]) == ["big.bin", "small.csv"]
    assert hashlib.md5(store.open_object("big.bin").read()).digest() == hashlib.md5(big.read_bytes()).digest()
    # one object_put per stored object: not for the three part uploads, once for the multipart completion
    assert listener.object_puts == [("small.csv", len(CSV)), ("big.bin", 12 * 1024 * 1024)]
    part_puts = [r for r in listener.records if r[1] == "PUT" and r[2] == "/sandbox/big.bin"]
    assert [r[3] for r in part_puts] == [200, 200, 200]


def test_boto3_retries_a_slowdown_answered_before_100_continue(store, listener):
    """botocore sends `Expect: 100-continue` with a body: the fault answer comes before any body byte."""
    listener.rules["PUT"] = {"effect": "status", "status": 503}
    body = b"x" * (2 * 1024 * 1024)
    store.boto3_client().put_object(Bucket=store.bucket, Key="retried.bin", Body=body)
    assert [r[3] for r in listener.records] == [503, 200]
    assert listener.object_puts == [("retried.bin", len(body))]


def test_chunked_responses_are_relayed(store):
    """A listing of 300 keys comes back from rclone with Transfer-Encoding: chunked."""
    for number in range(300):
        store.put_object(f"many/{number:04d}-a-longer-key-name.csv", b"a", "text/csv")
    listed = store.boto3_client().list_objects_v2(Bucket=store.bucket, Prefix="many/")
    assert listed["ResponseMetadata"]["HTTPHeaders"].get("transfer-encoding") == "chunked"
    assert [item["Key"] for item in listed["Contents"]] == [f"many/{n:04d}-a-longer-key-name.csv" for n in range(300)]


def test_large_upload_is_streamed_not_buffered(store, listener, tmp_path):
    size = 128 * 1024 * 1024
    source = tmp_path / "large.csv"
    block = os.urandom(1024 * 1024)
    with source.open("wb") as out:
        for _ in range(size // len(block)):
            out.write(block)
    rss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with source.open("rb") as body:
        response = _put(store.presign_put("large.csv", 300), body)
    rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kib) / 1024
    assert response.status_code == 200
    assert listener.object_puts == [("large.csv", size)]
    assert rss_growth_mib < 48, f"client + front door peak memory grew by {rss_growth_mib:.0f} MiB"
    with store.open_object("large.csv") as stored:
        assert hashlib.sha256(stored.read()).digest() == hashlib.sha256(source.read_bytes()).digest()


def test_presigned_urls_are_never_logged_with_their_signature(store, caplog):
    caplog.set_level(logging.DEBUG, logger="sandbox.objectstore")
    url = store.presign_put(KEY, 300)
    _put(url, CSV)
    _put(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), CSV)  # an error that rclone might log
    assert any(PATH in message for message in caplog.messages)
    assert not any("X-Amz-Signature" in message for message in caplog.messages)
    assert "X-Amz-Signature" not in store.rclone_log_path.read_text()


def test_stop_leaves_no_rclone_process_and_closes_both_ports(tmp_path):
    object_store = ObjectStore(tmp_path / "s3")
    object_store.start()
    pid = object_store.rclone_pid
    ports = (object_store.port, object_store.rclone_port)
    assert pid is not None and os.path.exists(f"/proc/{pid}")
    object_store.stop()
    assert object_store.rclone_pid is None
    assert not os.path.exists(f"/proc/{pid}")
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    object_store.stop()  # second stop is harmless


def test_start_fails_cleanly_when_the_front_door_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        object_store = ObjectStore(tmp_path / "s3", port=taken.getsockname()[1])
        with pytest.raises(OSError):
            object_store.start()
    assert object_store.rclone_pid is None
