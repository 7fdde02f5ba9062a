"""The object store's "front door": a pass-through HTTP proxy in front of `rclone serve s3`.

Clients (presigned uploads and downloads) talk to the front door; it keeps the request line and every
header, Host included, so rclone still verifies each signature; it streams bodies both ways in chunks;
it tells a `StoreListener` about each request; and it applies the S3 fault rules the listener returns.
Standard library `ThreadingHTTPServer`, because a fault has to be able to drop a TCP connection, which
ASGI servers cannot do.
"""

from __future__ import annotations

import http.client
import logging
import math
import secrets
import select
import socket
import threading
import time
import typing
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

logger = logging.getLogger("sandbox.objectstore")

_CHUNK_BYTES = 1024 * 1024
_UPSTREAM_TIMEOUT_SECONDS = 600.0
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

class Upstream(typing.Protocol):
    """What the front door needs of its object store (implemented by `ObjectStore`)."""

    host: str
    rclone_port: int
    bucket: str
    listener: StoreListener | None

    def object_size(self, key: str) -> int | None:
        """Size of object `key` in bytes, or None if it does not exist."""


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


class FrontDoorServer(ThreadingHTTPServer):
    """The front door's listening server; knows its store and tracks open client connections."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Upstream) -> None:
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
    server: FrontDoorServer

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
