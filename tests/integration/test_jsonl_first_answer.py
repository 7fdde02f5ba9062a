"""`taskbuilder run` checks a JSONL dataset as JSON lines before Prefect starts, as `validate` does (it once
read it as a CSV and refused every well-formed JSONL job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _job(tmp_path: Path, records: list[dict]) -> Path:
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: jsonl-first-answer\n"
        "dataset: {name: d, csv: data.jsonl, id_column: id}\n"
        "batch:\n  name: b\n  task_details: {task_name: T, task_introduction: I, task_steps: S}\n"
        "  instructions:\n    - {type: free_text, description: 'Why this?', order: 1}\n"
        "study: {name: s, description: d, reward: 100, estimated_completion_time: 1, maximum_allowed_time: 5}\n"
        f"output_dir: {tmp_path / 'out'}\n"
    )
    return spec


def _first_answer(spec: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROLIFIC_API_TOKEN": "unused", "TASKBUILDER_LOCAL_SERVER": "0"}
    code = ("import sys; from flows.first_answer import first_answer; from taskbuilder.jobspec import AnnotationJob; "
            "r = first_answer(AnnotationJob.from_yaml(sys.argv[1]), api_url=None, destination=sys.argv[2]); "
            "print('REFUSED' if r else 'OK'); print(r.message if r else '')")
    return subprocess.run([sys.executable, "-c", code, str(spec), str(spec.parent / "out")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_good_jsonl_file_passes_the_first_answer(tmp_path):
    result = _first_answer(_job(tmp_path, [{"id": "1", "text": "a \"b\", c"}, {"id": "2", "text": "d"}]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "OK", result.stdout


def test_a_number_in_a_displayed_jsonl_field_is_refused_with_its_record(tmp_path):
    result = _first_answer(_job(tmp_path, [{"id": "1", "text": "a"}, {"id": "2", "text": 7}]))
    assert result.stdout.splitlines()[0] == "REFUSED", result.stdout
    assert "value_type" in result.stdout and "record 2" in result.stdout, result.stdout
