"""No layer logs a presigned URL with its signature, whatever the logging configuration (the HTTP stack's
own loggers included), and S3 errors name their code and request id."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from taskbuilder.errors import UploadSlowDown
from taskbuilder.upload import download_to_file, upload_file

REPO = Path(__file__).resolve().parents[2]
SIGNED_QUERY = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDLEAK%2F20260101&X-Amz-Signature=deadbeefSECRET"


class _Store(BaseHTTPRequestHandler):
    def do_PUT(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"a\n1")

    def log_message(self, *args):
        pass


@pytest.fixture
def store_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/bucket/key.csv?{SIGNED_QUERY}"
    server.shutdown()
    server.server_close()


def test_the_http_stack_logs_requests_without_their_signature_even_at_debug(tmp_path, store_url, caplog):
    for name in ("httpx", "httpcore", "httpcore.http11", "httpcore.connection"):
        caplog.set_level("DEBUG", logger=name)
    data = tmp_path / "data.csv"
    data.write_text("id\n1\n")
    upload_file(store_url, data)
    download_to_file(store_url, tmp_path / "back.csv")
    assert "HTTP Request: PUT http://127.0.0.1" in caplog.text and "/bucket/key.csv" in caplog.text
    for secret in ("SECRET", "AKIDLEAK", "X-Amz-Signature=", "X-Amz-Credential="):
        assert secret not in caplog.text


SCRIPT = """
import logging, logging.config, sys
{setup}
import httpx
from pathlib import Path
from taskbuilder.upload import upload_file
Path("x.csv").write_text("id\\n1\\n")
upload_file("https://b.s3.amazonaws.com/k?" + sys.argv[1], Path("x.csv"),
            transport=httpx.MockTransport(lambda request: httpx.Response(200)))
"""
SETUPS = {
    "basicConfig INFO": "logging.basicConfig(level=logging.INFO)",
    "basicConfig DEBUG after import": "import taskbuilder.upload\nlogging.basicConfig(level=logging.DEBUG)",
    "dictConfig httpx DEBUG": textwrap.dedent("""
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
            "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
            "loggers": {"httpx": {"level": "DEBUG", "handlers": ["out"]}}})"""),
    "dictConfig after import": textwrap.dedent("""
        import taskbuilder.upload
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
            "root": {"level": "DEBUG", "handlers": ["out"]},
            "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
            "loggers": {"httpx": {"level": "DEBUG"}}})"""),
}


@pytest.mark.parametrize("setup", SETUPS, ids=list(SETUPS))
def test_no_signature_in_a_programs_log_whatever_its_logging_setup(tmp_path, setup):
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(setup=SETUPS[setup]), SIGNED_QUERY],
                            cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HTTP Request: PUT https://b.s3.amazonaws.com/k" in result.stderr  # the line is there, redacted
    assert "SECRET" not in result.stderr and "AKIDLEAK" not in result.stderr


def test_s3_errors_name_the_code_and_the_request_id(tmp_path):
    data = tmp_path / "x.csv"
    data.write_text("id\n1\n")
    body = (b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
            b"<RequestId>REQ123ABC</RequestId></Error>")
    transport = httpx.MockTransport(lambda r: httpx.Response(503, headers={"x-amz-request-id": "REQ123ABC"}, content=body))
    with pytest.raises(UploadSlowDown) as raised:
        upload_file(f"https://b.s3.amazonaws.com/k?{SIGNED_QUERY}", data, transport=transport)
    assert "SlowDown" in str(raised.value) and "REQ123ABC" in str(raised.value)
    assert "SECRET" not in str(raised.value)
