"""One asker per machine for a rate-limit slot (``tasks.ratelimit.machine_turn``): threads of a process and processes
of a machine take turns; a holder that dies lets go; another limit, or another Prefect server, is another turn.
Real threads, real processes, real ``flock`` (no Prefect server: the turn is taken before anything is asked)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

fcntl = pytest.importorskip("fcntl")

from tasks.ratelimit import machine_turn  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
HOLD = ("import sys, time; from tasks.ratelimit import machine_turn\n"
        "with machine_turn(sys.argv[1]):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n")


API_URL = "http://127.0.0.1:9/turns/api"
"""The Prefect server the turns are for (never asked: the turn is taken first), the same in every process here."""


@pytest.fixture
def own_temp(tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", API_URL)
    tempfile.tempdir = None
    with temporary_settings({PREFECT_API_URL: API_URL}):
        yield tmp_path
    tempfile.tempdir = None


def _holder(limit: str, seconds: float, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, limit, str(seconds)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})})
    assert holder.stdout.readline().strip() == "held"
    return holder


def _seconds_to_take(limit: str) -> float:
    started = time.monotonic()
    with machine_turn(limit):
        return time.monotonic() - started


def test_threads_take_turns(own_temp):
    inside: list[int] = []
    overlaps: list[int] = []

    def ask():
        for _ in range(20):
            with machine_turn("limit-a"):
                inside.append(1)
                overlaps.append(len(inside))
                time.sleep(0.002)
                inside.pop()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(overlaps) == 80 and max(overlaps) == 1


def test_processes_take_turns_and_a_dead_holder_lets_go(own_temp):
    holder = _holder("limit-a", 1.5)
    waited = _seconds_to_take("limit-a")  # blocks until the other process lets go
    holder.wait(10)
    assert waited >= 0.8, waited
    assert _seconds_to_take("limit-a") < 0.5  # free now

    holder = _holder("limit-a", 60)
    holder.send_signal(signal.SIGKILL)  # dies holding it: the kernel releases the lock
    holder.wait(10)
    assert _seconds_to_take("limit-a") < 0.5


def test_another_limit_or_another_prefect_server_is_another_turn(own_temp):
    holder = _holder("limit-a", 30)
    try:
        assert _seconds_to_take("limit-b") < 0.5
        other_server = _holder("limit-a", 0.1, {"PREFECT_API_URL": "http://127.0.0.1:9/other/api"})
        other_server.wait(10)  # got its turn while the first holder still holds "limit-a" on this server
    finally:
        holder.kill()
        holder.wait(10)


def test_a_folder_others_can_open_is_not_used(own_temp):
    folder = own_temp / f"taskbuilder-rate-limits-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    holder = _holder("limit-a", 30)  # holds only its own threads' turn: no file in a folder others can write
    try:
        assert _seconds_to_take("limit-a") < 0.5
        assert list(folder.iterdir()) == []
    finally:
        holder.kill()
        holder.wait(10)


def test_a_paced_grant_makes_the_next_asker_on_the_machine_wait(own_temp):
    pace = ("import sys; from tasks.ratelimit import machine_turn\n"
            "with machine_turn('limit-a') as turn:\n    turn.pace(float(sys.argv[1]))\n")
    subprocess.run([sys.executable, "-c", pace, "3.0"], check=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    with machine_turn("limit-a") as turn:  # another process set it: shared through the turn's file
        started = time.monotonic()
        turn.wait()
        assert time.monotonic() - started >= 1.0  # (the other process's exit took some of the 3 s)
        turn.pace(0.0)  # a grant with no refusal before it: the limit had room, nobody waits
    with machine_turn("limit-a") as turn:
        started = time.monotonic()
        turn.wait()
        assert time.monotonic() - started < 0.2


def test_a_server_that_did_not_answer_one_asker_fails_the_next_at_once(own_temp):
    import httpx

    from tasks.ratelimit import take_slot

    with pytest.raises(httpx.TransportError) as first:  # nothing listens at API_URL: the first asker's own failure
        take_slot("limit-a")
    assert "another process" not in str(first.value)
    started = time.monotonic()
    with pytest.raises(httpx.ConnectError, match="another process of this machine"):
        take_slot("limit-a")  # the next one of the machine gives up at once (its client's retries not waited)
    assert time.monotonic() - started < 0.5


def test_a_corrupted_turn_file_makes_nobody_wait(own_temp):
    with machine_turn("limit-a") as turn:
        turn.pace(0.0)
    (lock,) = (own_temp / f"taskbuilder-rate-limits-{os.getuid()}").iterdir()
    for junk in ("nan nan", "inf inf", "not a number", "\xff\xfe"):
        lock.write_bytes(junk.encode("latin-1"))
        with machine_turn("limit-a") as turn:
            started = time.monotonic()
            assert turn.wait() is False and not turn.unreachable(), junk
            assert time.monotonic() - started < 0.2
