"""Which Prefect API a CLI run uses (issue 18): an explicit one wins, a stale server record is dropped,
and the local server can be turned off."""

from __future__ import annotations

import json

import pytest

import flows.local_server
from flows.cli import _prefect_api
from flows.local_server import STATE_NAME, local_server_wanted, running_server, stop_server


@pytest.fixture
def no_server_start(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a local server was started")

    monkeypatch.setattr(flows.local_server, "ensure_server", refuse)
    monkeypatch.setenv("TASKBUILDER_LOCAL_SERVER", "1")


def test_an_explicit_prefect_api_url_wins(no_server_start, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with _prefect_api(announce_always=False):
        pass


def test_a_harness_or_profile_api_url_wins(no_server_start):
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with _prefect_api(announce_always=False):
            assert get_current_settings().api.url == "http://127.0.0.1:9/api"


@pytest.mark.parametrize("value, wanted", [(None, True), ("1", True), ("0", False), ("off", False), ("False", False)])
def test_the_local_server_can_be_turned_off(value, wanted):
    assert local_server_wanted({} if value is None else {"TASKBUILDER_LOCAL_SERVER": value}) is wanted


def test_a_record_of_a_dead_server_is_dropped_and_never_signalled(tmp_path):
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record = {"url": "http://127.0.0.1:9/api", "pid": gone.pid, "port": 9, "log": "x", "started_at": 0.0}
    (tmp_path / STATE_NAME).write_text(json.dumps(record))
    assert running_server(tmp_path) is None
    assert not (tmp_path / STATE_NAME).exists()
    (tmp_path / STATE_NAME).write_text(json.dumps({**record, "pid": __import__("os").getpid()}))
    assert stop_server(tmp_path).pid == __import__("os").getpid()  # not a Prefect server: not signalled
    assert not (tmp_path / STATE_NAME).exists()
