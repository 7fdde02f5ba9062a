"""`validate --job` checks the file `run` will use (C26's kind: "validate says OK" must mean "run accepts")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "review-sentiment"
runner = CliRunner()


def _spec_naming(tmp_path: Path, csv: str) -> Path:
    spec = tmp_path / "job.yaml"
    spec.write_text((EXAMPLE / "job.yaml").read_text().replace("csv: reviews.csv", f"csv: {csv}"))
    return spec


def test_without_file_the_spec_s_own_csv_is_checked(tmp_path):
    shutil.copy(EXAMPLE / "reviews.csv", tmp_path / "reviews.csv")
    result = runner.invoke(app, ["validate", "--job", str(_spec_naming(tmp_path, "reviews.csv")), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] > 0


def test_without_file_a_missing_spec_csv_is_an_error(tmp_path):
    result = runner.invoke(app, ["validate", "--job", str(_spec_naming(tmp_path, "missing.csv"))])
    assert result.exit_code == 2
    assert "missing.csv does not exist" in result.output


def test_without_file_a_spec_csv_with_problems_fails(tmp_path):
    (tmp_path / "semi.csv").write_text("id;review_text\n1;good\n2;bad\n")
    result = runner.invoke(app, ["validate", "--job", str(_spec_naming(tmp_path, "semi.csv"))])
    assert result.exit_code == 2, result.output


def test_a_file_other_than_the_spec_s_is_named_with_it(tmp_path):
    shutil.copy(EXAMPLE / "reviews.csv", tmp_path / "questions.csv")
    result = runner.invoke(app, ["validate", str(tmp_path / "questions.csv"), "--job", str(_spec_naming(tmp_path, "missing.csv"))])
    assert "questions.csv is not the spec's dataset.csv" in result.output and "missing.csv" in result.output


def test_the_spec_s_own_file_under_another_spelling_gets_no_warning(tmp_path):
    shutil.copy(EXAMPLE / "reviews.csv", tmp_path / "reviews.csv")
    (tmp_path / "sub").mkdir()
    spelled = tmp_path / "sub" / ".." / "reviews.csv"
    result = runner.invoke(app, ["validate", str(spelled), "--job", str(_spec_naming(tmp_path, "reviews.csv"))])
    assert result.exit_code == 0 and "not the spec's" not in result.output


def test_neither_file_nor_job_is_a_usage_error():
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2 and "--job" in result.output
