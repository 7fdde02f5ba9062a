"""The HTTP server of the sandbox: standard library ``ThreadingHTTPServer`` around ``Sandbox.handle``.

Chosen over an ASGI server because the "drop" and "lost_response" faults must close the
connection without sending a single response byte.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from sandbox.app import Sandbox
from sandbox.web import ApiError, Request, Response, error_response, parse_query


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "SandboxServer"

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the request log is ``GET /_sandbox/requests``."""

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # the body's end is unknown to us: answer and close
            self._write(error_response(ApiError(411, "Send the request body with a Content-Length header.")))
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = Request(method=self.command, path=unquote(parts.path), query=parse_query(parts.query),
                          headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        response = self.server.sandbox.handle(request)
        if response is None:
            self.close_connection = True  # drop: no status line, no headers, nothing
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class SandboxServer(ThreadingHTTPServer):
    """Serves one ``Sandbox`` on ``(host, port)``; port 0 picks a free port (``server_address`` tells which)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)
