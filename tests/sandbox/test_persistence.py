"""``--state FILE.sqlite``: datasets, batches, studies (and the object store's folder) survive a restart."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.sandbox.conftest import REPO, start_sandbox, stop_sandbox
from tests.sandbox.helpers import (AUTO_APPROVE, create_dataset, create_study, publish, ready_batch, ready_dataset,
                                   sentences_csv, study_in, upload, wait_for, write_csv)


def client(running):
    return httpx.Client(base_url=running.base_url + "/api/v1", headers={"Authorization": f"Token {running.token}"},
                        timeout=30)


@pytest.mark.slow
def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "state.sqlite"
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"dataset_processing_seconds": 0.2, "report_delivery": "inline"}))
    running = start_sandbox("--state", str(state), "--settings", str(settings))
    try:
        with client(running) as api:
            workspace_id = api.get("/workspaces/").json()["results"][0]["id"]
            dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, sentences_csv(4)))
            batch = ready_batch(api, workspace_id, dataset["id"], tasks_per_group=2)
            study = create_study(api, batch["id"], completion_codes=AUTO_APPROVE)
            publish(api, study["id"])
            study = study_in(api, study["id"], ("COMPLETED",))
            report = api.get(f"/data-collection/batches/{batch['id']}/report/").text
            # an upload made just before the restart is processed after it
            pending = create_dataset(api, workspace_id, "pending")
            httpx.post(running.base_url + "/_sandbox/settings", json={"dataset_processing_seconds": 8})
            upload(api, pending["id"], write_csv(tmp_path, "a\n1\n", "pending.csv"))
            wait_for(lambda: api.get(f"/data-collection/datasets/{pending['id']}").json(),
                     lambda d: d["status"] == "PROCESSING")
    finally:
        stop_sandbox(running.process)
    assert (tmp_path / "state.sqlite.objects").is_dir()

    running = start_sandbox("--state", str(state), "--settings", str(settings))
    try:
        with client(running) as api:
            assert api.get(f"/data-collection/datasets/{dataset['id']}").json()["status"] == "READY"
            assert api.get(f"/data-collection/batches/{batch['id']}").json()["total_task_groups"] == 2
            assert api.get(f"/studies/{study['id']}/").json()["status"] == "COMPLETED"
            assert api.get(f"/studies/{study['id']}/submissions/counts/").json()["APPROVED"] == 2
            assert api.get(f"/data-collection/batches/{batch['id']}/report/").text == report
            resumed = wait_for(lambda: api.get(f"/data-collection/datasets/{pending['id']}").json(),
                               lambda d: d["status"] == "READY")
            assert resumed["total_datapoint_count"] == 1
    finally:
        stop_sandbox(running.process)


def test_settings_file_and_token_from_environment(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"seed": 99, "legacy_instructions": "retired"}))
    running = start_sandbox("--settings", str(settings), token=None, env_token="from-env")
    try:
        current = httpx.get(running.base_url + "/_sandbox/settings").json()
        assert current["seed"] == 99 and current["legacy_instructions"] == "retired"
        me = running.base_url + "/api/v1/users/me"
        assert httpx.get(me, headers={"Authorization": "Token from-env"}).status_code == 200
        assert httpx.get(me, headers={"Authorization": "Token sandbox-token"}).status_code == 401
    finally:
        stop_sandbox(running.process)


def test_default_token_for_local_use(tmp_path):
    running = start_sandbox(token=None)
    try:
        me = running.base_url + "/api/v1/users/me"
        assert httpx.get(me, headers={"Authorization": "Token sandbox-token"}).status_code == 200
    finally:
        stop_sandbox(running.process)


def test_bad_settings_file_stops_with_a_clear_message(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"accuracy_mean": 3}))
    result = subprocess.run([sys.executable, "-m", "sandbox", "--port", "0", "--settings", str(settings)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and str(settings) in result.stderr and "accuracy_mean" in result.stderr
