"""Small job specs for integration tests, written to a temporary folder."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

SMALL_CSV = (
    "id,text,META_gold\n"
    "001,I loved it,positive\n"
    "002,Broken on arrival,negative\n"
    "003,NA,negative\n"
    '004,"Quote "" inside, and a comma",positive\n'
    "005,trailing spaces   ,positive\n"
    "006,Would not buy again,negative\n"
)


def write_small_job(folder: Path, *, name: str | None = None, rows: str = SMALL_CSV, **overrides) -> Path:
    """Write ``data.csv`` and ``job.yaml`` (2 task groups × 1 annotator, auto-approve) into ``folder``.

    ``overrides`` replace top-level spec keys (e.g. ``publish=False``). Returns the spec path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text(rows)
    spec = {
        "name": name or f"t-{uuid.uuid4().hex[:12]}",
        "dataset": {"name": "small", "csv": "data.csv", "id_column": "id", "gold_column": "META_gold"},
        "batch": {
            "name": "small batch",
            "task_details": {"task_name": "Sentiment", "task_introduction": "<p>Read.</p>", "task_steps": "<p>Pick.</p>"},
            "tasks_per_group": 3,
            "instructions": [
                {
                    "order": 1,
                    "type": "multiple_choice",
                    "description": "Sentiment?",
                    "answer_limit": 1,
                    "options": [{"label": "Positive", "value": "positive"}, {"label": "Negative", "value": "negative"}],
                }
            ],
        },
        "study": {
            "name": "Small study",
            "internal_name": "small",
            "description": "<p>Small.</p>",
            "reward": 150,
            "estimated_completion_time": 5,
            "maximum_allowed_time": 20,
            "annotators_per_task": 1,
            "completion_codes": [{"code": "OK1", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALLY_APPROVE"}]}],
        },
        "publish": True,
        "max_budget": 100000,
        "wait_for_completion": True,
        "output_dir": str(folder / "out"),
    }
    spec.update(overrides)
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
