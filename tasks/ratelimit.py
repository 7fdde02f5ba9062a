"""A rate limit on Prolific API requests shared by every worker: Prefect's global concurrency limits.

:class:`RateLimitedTransport` wraps the httpx transport of the API client
(:class:`taskbuilder.client.ProlificClient`, ``transport=``) and takes one slot of a Prefect global
concurrency limit used as a rate limit before each request is sent. The limit lives on the Prefect server,
so all processes on all machines that talk to that server share it (``prefect-notes.md`` §10). Create it
once per server::

    prefect gcl create prolific-api --limit 5 --slot-decay-per-second 2

(at most ``limit`` requests in a burst, then ``slot_decay_per_second`` requests per second). Presigned
S3 uploads and report downloads use their own httpx client (:mod:`taskbuilder.upload`), so they are
not counted. A limit that does not exist is skipped with a warning: the job still runs, unthrottled. An
inactive limit grants every slot at once (Prefect's rule). A limit without slot decay cannot rate-limit
(the server answers 422): :class:`taskbuilder.errors.BadInput` naming it and how to recreate it. A Prefect
server that does not answer: :class:`RateLimitUnreachable`, a :class:`taskbuilder.errors.ConnectError` (the
Prolific request was not sent, so it may be sent again) whose message names the rate limit, not Prolific.

How a slot is taken: ``POST /api/v2/concurrency_limits/increment`` (``mode: rate_limit``) through the
project's Prefect client (:func:`tasks.prefect_client.prefect_client`, one per process and server); a
``423 Locked`` answer says, in ``Retry-After``, how long to wait before asking again. That is the request
``prefect.concurrency.sync.rate_limit`` sends, without its per-call hops through a service thread and
event loop (~85 ms of wall time and ~4 ms of CPU per slot, measured on the local server: ~0.7 ms and
~1 ms this way) and without the ``concurrency-limit.acquired`` event it emits for every slot, which the
server stores (~4 ms of its CPU per slot). Issue 18, NOTES.md "Lean runs".

One asker per machine: the processes of one machine (a worker's flow runs, CLI runs) take turns asking for a
slot of one limit (a blocking ``flock`` on a file of this user's, :func:`machine_turn`), so a full limit is
asked by one process per machine, not by every waiting one. Each refused ask costs the server a request and a
row update, and every update restarts the limit's decay clock (Prefect decays by ``floor(decay × seconds since
the row's last update)``): many askers on one machine made most asks refusals (B4: ~63 refused per 33 granted
per flow run). Machines still contend through the server, which alone decides. While the limit is full (an
ask was refused, or an ask had to wait for its pace), the asker that gets a slot sets the machine's next ask one
decay interval later (:class:`Turn`, kept in the turn's file): sooner, the server would refuse it and restart the
clock again. An ask that comes after its pace by itself sets none (demand fell: the limit's burst is free again).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from taskbuilder.client import shared_ssl_context
from taskbuilder.error_details import extract_detail, response_body
from taskbuilder.errors import BadInput, ConnectError
from taskbuilder.private_folder import private_temp_folder
from tasks.logs import run_logger
from tasks.prefect_client import prefect_client

LOCKED = 423
"""The server's answer while the limit has no free slot (``Retry-After``: seconds to wait)."""
UNUSABLE = 422
"""The server's answer for a limit that cannot grant a rate-limit slot (no slot decay, or a limit below 1)."""
CREATE_HINT = "prefect gcl create {name} --limit 5 --slot-decay-per-second 2"
MISSING_LIMIT_RECHECK_SECONDS = 5.0
"""A limit found missing is asked for again after this long (one warning per process and name)."""

_warned: set[str] = set()
_missing_until: dict[str, float] = {}
_lock = threading.Lock()


def take_slot(limit_name: str) -> None:
    """Block until one slot of the Prefect rate limit ``limit_name`` is granted (no timeout: the server's decay
    always frees one). A limit that does not exist (the server grants nothing) is logged once per process and
    skipped for :data:`MISSING_LIMIT_RECHECK_SECONDS`. A limit the server cannot rate-limit with (422: no slot
    decay) raises :class:`taskbuilder.errors.BadInput` naming it. Other errors of the Prefect API
    (``PrefectHTTPStatusError``, ``httpx.HTTPError`` after its client's retries) propagate: the request is not
    sent unthrottled.

    Source: Prefect's ``POST /api/v2/concurrency_limits/increment`` (``prefect-notes.md`` §10)."""
    with _lock:
        if _missing_until.get(limit_name, 0.0) > time.monotonic():
            return
    with machine_turn(limit_name) as turn:
        if turn.unreachable():
            raise httpx.ConnectError("the Prefect server did not answer another process of this machine a moment ago")
        paced = turn.wait()
        try:
            refused = _ask_until_granted(limit_name)
        except httpx.TransportError:
            turn.mark_unreachable()
            raise
        # after a refusal the limit was full, and this grant took the slot that freed: the next slot frees one decay
        # interval after this grant, and an ask before that is refused (and restarts the clock). A paced ask that
        # was granted: still full, most likely. An ask that came after the pace by itself: demand fell, no pace.
        turn.pace(_seconds_per_slot(limit_name) * PACE_MARGIN if refused or paced else 0.0)


def _ask_until_granted(limit_name: str) -> bool:
    """Ask until the server grants a slot; whether it refused one ask first (the limit was full)."""
    refused = False
    while True:
        try:
            with prefect_client() as client:
                granted = client.increment_concurrency_slots(names=[limit_name], slots=1, mode="rate_limit").json()
        except httpx.HTTPStatusError as error:
            if error.response.status_code == UNUSABLE:
                raise BadInput(f"The Prefect rate limit {limit_name!r} cannot throttle Prolific API requests: "
                               f"{extract_detail(response_body(error.response), error.response.reason_phrase)}; recreate it with a limit of 1 or more and a slot decay: prefect gcl delete "
                               f"{limit_name}, then {CREATE_HINT.format(name=limit_name)}") from error
            if error.response.status_code != LOCKED:
                raise
            # a refusal restarted the limit's decay clock: no slot frees before one decay interval has passed
            time.sleep(max(_retry_after_seconds(error.response), _seconds_per_slot(limit_name)))
            refused = True
            continue
        if not granted:
            with _lock:
                _missing_until[limit_name] = time.monotonic() + MISSING_LIMIT_RECHECK_SECONDS
                if limit_name not in _warned:
                    _warned.add(limit_name)
                    run_logger().warning("The Prefect rate limit %r does not exist: Prolific API requests are not throttled "
                                         "(create it: %s)", limit_name, CREATE_HINT.format(name=limit_name))
        return refused


_thread_turns: dict[str, threading.Lock] = {}
_slot_seconds: dict[str, float] = {}


def _seconds_per_slot(limit_name: str) -> float:
    """``1 / slot_decay_per_second`` of the limit (read once per process and name: ``GET
    /api/v2/concurrency_limits/{name}``); 0 when it cannot be read (then the server's ``Retry-After`` alone).

    Why: the server answers a refused ask by updating the limit's row (its denied count), which moves the row's
    ``updated`` time without decaying its active slots (Prefect 3.9 ``bulk_update_denied_slots``; the decay is
    ``floor(decay × seconds since updated)``). After a refusal no slot frees until a whole decay interval has
    passed with no other update, so an ask sooner than that (``Retry-After`` is a random interval around it)
    is refused again and pushes the next free slot further away."""
    with _lock:
        if limit_name in _slot_seconds:
            return _slot_seconds[limit_name]
    seconds = 0.0
    try:
        with prefect_client() as client:
            decay = float(client.read_global_concurrency_limit_by_name(limit_name).slot_decay_per_second or 0.0)
        seconds = 1.0 / decay if decay > 0 else 0.0
    except Exception:  # noqa: BLE001 - an optimisation only: the server's Retry-After still paces the asks
        seconds = 0.0
    with _lock:
        _slot_seconds[limit_name] = seconds
    return seconds


PACE_MARGIN = 1.05
"""A paced ask comes this much later than one decay interval after the grant (clocks and rounding)."""
PACE_WAIT_LIMIT_SECONDS = 30.0
UNREACHABLE_SECONDS = 10.0
"""After an asker found the Prefect server not answering, the others of its machine give up at once this long."""


class Turn:
    """This machine's turn to ask (:func:`machine_turn`), with what the last asker left for the next: the time
    before which nobody on it should ask (its pace), and the time until which the Prefect server is taken as not
    answering. Kept in the turn's file (two wall-clock times, as text), or in this process where there is none."""

    _in_process: dict[str, tuple[float, float]] = {}

    def __init__(self, limit_name: str, fd: int | None) -> None:
        self.limit_name, self.fd = limit_name, fd

    def _read(self) -> tuple[float, float]:
        if self.fd is None:
            return self._in_process.get(self.limit_name, (0.0, 0.0))
        try:
            words = os.pread(self.fd, 128, 0).decode().split()
            values = [float(word) for word in words[:2]] + [0.0, 0.0]
        except (OSError, ValueError, UnicodeDecodeError):
            return 0.0, 0.0
        return tuple(v if v == v and abs(v) != float("inf") else 0.0 for v in values[:2])  # no nan, no inf

    def _write(self, not_before: float, unreachable_until: float) -> None:
        if self.fd is None:
            self._in_process[self.limit_name] = (not_before, unreachable_until)
            return
        data = f"{not_before!r} {unreachable_until!r}".encode()
        try:
            os.pwrite(self.fd, data, 0)
            os.ftruncate(self.fd, len(data))
        except OSError:
            pass

    def wait(self) -> bool:
        """Sleep until the time the last asker set (one decay interval after its grant; nothing when unset), at
        most the longer of :data:`PACE_WAIT_LIMIT_SECONDS` and two decay intervals (a clock set back); whether it
        slept."""
        delay = self._read()[0] - time.time()
        if delay <= 0:
            return False
        if delay > PACE_WAIT_LIMIT_SECONDS:
            delay = min(delay, max(PACE_WAIT_LIMIT_SECONDS, 2 * _seconds_per_slot(self.limit_name)))
        time.sleep(delay)
        return True

    def pace(self, seconds: float) -> None:
        """The next ask on this machine comes no sooner than ``seconds`` from now (0: at once)."""
        self._write(time.time() + seconds if seconds > 0 else 0.0, 0.0)

    def unreachable(self) -> bool:
        """Whether the last asker found the Prefect server not answering less than
        :data:`UNREACHABLE_SECONDS` ago."""
        return self._read()[1] > time.time()

    def mark_unreachable(self) -> None:
        """The Prefect server did not answer this asker (after its client's retries): the askers waiting behind it
        give up at once for :data:`UNREACHABLE_SECONDS` rather than each wait as long again."""
        self._write(self._read()[0], time.time() + UNREACHABLE_SECONDS)


@contextmanager
def machine_turn(limit_name: str) -> Iterator[Turn]:
    """Hold this machine's turn to ask for a slot of ``limit_name`` on the current Prefect server: one thread of
    this process at a time (a lock), one process of this user on this machine at a time (a blocking ``flock``
    on ``<temp folder>/taskbuilder-rate-limits-<uid>/<digest of the server URL and name>.lock``; the kernel
    wakes the next waiter, nothing polls; a process that dies lets go). Where there is no ``fcntl`` (Windows),
    or the folder cannot be made this user's alone, only the threads take turns. Yields the :class:`Turn`."""
    with _lock:
        turn = _thread_turns.setdefault(limit_name, threading.Lock())
    with turn:
        fd = _open_turn_file(limit_name)
        if fd is None:
            yield Turn(limit_name, None)
            return
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            yield Turn(limit_name, fd)
        finally:
            os.close(fd)  # releases the flock


_turn_paths: dict[tuple[str, str, str], str | None] = {}


def _open_turn_file(limit_name: str) -> int | None:
    """The turn file of ``limit_name`` on the current Prefect server, opened (its path found once per process, temp
    folder, server and name); ``None`` without ``fcntl`` or a folder of this user's alone."""
    try:
        import fcntl  # noqa: F401 - POSIX only
    except ImportError:
        return None
    from prefect.settings import PREFECT_API_URL

    server = PREFECT_API_URL.value() or ""
    key = (tempfile.gettempdir(), server, limit_name)
    if key not in _turn_paths:
        folder = private_temp_folder("taskbuilder-rate-limits")
        digest = hashlib.sha256(f"{server}\n{limit_name}".encode()).hexdigest()[:24]
        _turn_paths[key] = os.path.join(folder, digest + ".lock") if folder else None
    path = _turn_paths[key]
    if path is None:
        return None
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        del _turn_paths[key]  # the folder went (a temp cleaner): looked for again next time
        return None


def _retry_after_seconds(response: httpx.Response) -> float:
    """The 423's ``Retry-After`` in seconds (Prefect sends a number); 0.1 when absent, 1.0 when not a number
    (an HTTP date, say), never below 0."""
    value = response.headers.get("Retry-After")
    if value is None:
        return 0.1
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


class RateLimitUnreachable(ConnectError):
    """The Prefect server gave no answer (after its client's retries) when asked for a slot of the rate limit
    ``limit_name``: the Prolific request ``method path`` was not sent. Attributes: those of
    :class:`taskbuilder.errors.ConnectError` (``cause``: the ``httpx`` error of the Prefect request) and
    ``limit_name``."""

    def __init__(self, *, method: str, path: str, limit_name: str, cause: BaseException | None = None) -> None:
        self.limit_name = limit_name
        self.kind = (f"not sent: the Prefect server did not answer for a slot of the Prefect rate limit {limit_name!r} "
                     "(is PREFECT_API_URL's server up?)")
        super().__init__(method=method, path=path, cause=cause)


class RateLimitedTransport(httpx.BaseTransport):
    """An httpx transport that waits for a slot of the Prefect rate limit ``limit_name`` per request.

    Args:
        limit_name: name of a Prefect global concurrency limit with a slot decay
            (``prefect gcl create NAME --limit N --slot-decay-per-second R``).
        inner: the transport that sends the request (default: an ``httpx.HTTPTransport`` on the process's shared
            TLS context, :func:`taskbuilder.client.shared_ssl_context`).

    Each request blocks until the Prefect server grants a slot (:func:`take_slot`). Errors of the inner
    transport propagate unchanged.
    """

    def __init__(self, limit_name: str, inner: httpx.BaseTransport | None = None) -> None:
        self.limit_name = limit_name
        # the shared context: httpx builds a new one per transport otherwise, parsing the whole CA bundle (~20 ms of
        # CPU), once per API step's client (a flow run's profile: ~15% of its main thread; issue 18)
        self._inner = inner or httpx.HTTPTransport(verify=shared_ssl_context())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Take one slot of the rate limit, then send ``request`` through the inner transport. Raises
        :class:`RateLimitUnreachable` when the Prefect server does not answer (``request`` not sent)."""
        try:
            take_slot(self.limit_name)
        except httpx.TransportError as error:
            raise RateLimitUnreachable(method=request.method, path=request.url.path, limit_name=self.limit_name,
                                       cause=error) from error
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the inner transport (its connection pool)."""
        self._inner.close()
