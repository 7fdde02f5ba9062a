"""The end of every run of a job (one round or several): sweep for late duplicates, read the final statuses,
store the job record and write ``run.json`` to the output location."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from taskbuilder.outputs import output_location, write_outputs

from tasks.connection import ProlificConnection, open_client
from tasks.logs import run_logger
from tasks.reconcile import sweep_duplicates
from tasks.records import now_iso, update_job_record


def finish_job(summary: dict[str, Any], job_key: str, connection: ProlificConnection, destination: str, work_dir: Path) -> dict[str, Any]:
    """Sweep for late duplicates of the first round's batch and study, read their final statuses, store the job
    record (``published``, ``collected_at`` once ``labels.csv`` is written) and write ``run.json`` (not over the
    ``run.json`` of a job collected before, when this run collected nothing: a re-launch that does not wait); return
    the summary (``names`` taken out, ``statuses``, ``notes`` and ``outputs["run.json"]`` added)."""
    names = summary.pop("names")
    summary.setdefault("notes", [])
    summary["notes"] += sweep_duplicates(
        connection, names["workspace_id"], names["batch_name"], names["internal_name"], summary["batch_id"], summary["study_id"]
    )
    with open_client(connection) as client:
        summary["statuses"] = {
            "dataset": str(
                client.get_import_job(summary["dataset_id"], summary["import_id"]).status
                if summary.get("import_id") else client.get_dataset_status(summary["dataset_id"])
            ),
            "batch": str(client.get_batch_status(summary["batch_id"])),
            "study": str(client.get_study(summary["study_id"]).status),
        }
    done = {"published": summary["published"], **({"collected_at": now_iso()} if "labels.csv" in summary["outputs"] else {})}
    record = update_job_record(job_key, connection.base_url, statuses=summary["statuses"], notes=summary.pop("notes", []), **done)
    summary["notes"] = record.get("notes", [])
    summary["outputs"]["run.json"] = output_location(destination, "run.json")
    if record.get("collected_at") and "labels.csv" not in summary["outputs"]:
        # a launch that does not wait, of a job collected before: collect-report's run.json lists the outputs and
        # payments, which this summary does not have; it stays as it is
        run_logger().info("Job %s was collected at %s: %s kept as it was written then", job_key, record["collected_at"],
                          summary["outputs"]["run.json"])
        return summary
    run_json = work_dir / "run.json"
    run_json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    write_outputs(destination, files={"run.json": run_json})
    run_logger().info("Wrote %s", summary["outputs"]["run.json"])
    return summary


def base_summary(job_key: str, version: int, draft: Any, price: Any) -> dict[str, Any]:
    """The run summary of a job whose first round's resources are ``draft`` (a
    :class:`flows.job_round.RoundDraft`) and whose first quote is ``price`` (not published yet)."""
    return {
        "job_key": job_key,
        "dataset_id": draft.dataset_id,
        "dataset_version": version,
        "import_id": draft.import_id,
        "batch_id": draft.batch_id,
        "study_id": draft.study_id,
        "instructions_mode": draft.instructions_mode,
        "total_task_groups": draft.total_task_groups,
        "cost": {"quote": price.model_dump()},
        "published": False,
        "outputs": {},
        "names": dict(draft.names),
        "stopped": None,  # why the job ended before its last round (a job in rounds sets it: flows/rounds.py)
    }
