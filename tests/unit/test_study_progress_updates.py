"""The study wait's progress artifact (and its log line) changes only when the figure changes: a poll that
reads the same status and places sends nothing to the Prefect API (issue 18); the CLI's bar still hears
every poll."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from types import SimpleNamespace

import tasks.studies as studies
from taskbuilder.polling import PollSettings
from tasks.progress import listening


def test_the_artifact_is_updated_only_when_status_or_places_change(monkeypatch):
    polls = [("ACTIVE", 0), ("ACTIVE", 0), ("ACTIVE", 0), ("ACTIVE", 3), ("ACTIVE", 3), ("AWAITING REVIEW", 6)]
    reads = iter(polls)

    class Client:
        def get_study(self, study_id):
            status, taken = next(reads)
            return SimpleNamespace(status=status, places_taken=taken, total_available_places=6)

    @contextmanager
    def client(connection):
        yield Client()

    updates: list[tuple[float, str]] = []
    monkeypatch.setattr(studies, "open_client", client)
    monkeypatch.setattr(studies, "run_logger", lambda: logging.getLogger("test-study-progress"))
    monkeypatch.setattr(studies, "create_progress_artifact", lambda *args, **kwargs: "artifact-1")
    monkeypatch.setattr(studies, "update_progress_artifact", lambda artifact_id, percent, description: updates.append((percent, description)))
    heard: list[float] = []
    polling = PollSettings(interval_seconds=0.001, max_interval_seconds=0.001, backoff=1.0)
    with listening(lambda key, percent, description: heard.append(percent)):
        status = studies.wait_for_study.fn(connection=None, study_id="s1", polling=polling)
    assert status == "AWAITING REVIEW"
    assert [percent for percent, _ in updates] == [0.0, 50.0, 100.0]
    assert [description for _, description in updates][-1] == "Study s1: AWAITING REVIEW, 6/6 places taken"
    assert len(heard) == len(polls)
