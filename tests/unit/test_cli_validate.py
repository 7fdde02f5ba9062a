"""`taskbuilder validate`: exit codes 0 / 2 / 1, text and JSON reports (the CLI run in-process)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app

CORPUS = Path(__file__).resolve().parents[1] / "validation_corpus"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "review-sentiment"
runner = CliRunner()


def test_good_file_exits_0():
    result = runner.invoke(app, ["validate", str(EXAMPLE / "reviews.csv"), "--job", str(EXAMPLE / "job.yaml")])
    assert result.exit_code == 0, result.output


def test_errors_exit_2_and_json_names_record_line_column():
    result = runner.invoke(app, ["validate", str(CORPUS / "id_duplicate.csv"), "--job", str(EXAMPLE / "job.yaml"), "--json"])
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    assert body["ok"] is False
    duplicates = [p for p in body["problems"] if p["code"] == "id_duplicate"]
    assert duplicates and all(p["column"] == "id" and p["record"] and p["line"] and p["hint"] for p in duplicates)


def test_semicolon_file_passes_with_the_delimiter_option():
    assert runner.invoke(app, ["validate", str(CORPUS / "semicolon.csv")]).exit_code == 2
    assert runner.invoke(app, ["validate", str(CORPUS / "semicolon.csv"), "--delimiter", ";"]).exit_code == 0


def test_bad_spec_exits_2_naming_the_field(tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text((EXAMPLE / "job.yaml").read_text().replace("reward: 300", "reward: 1.5"))
    result = runner.invoke(app, ["validate", str(EXAMPLE / "reviews.csv"), "--job", str(spec)])
    assert result.exit_code == 2
    assert "study.reward" in result.output and "cents" in result.output


def test_tool_failure_exits_1(monkeypatch):
    import taskbuilder.dataset_file

    def broken(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr(taskbuilder.dataset_file, "validate_csv", broken)
    result = runner.invoke(app, ["validate", str(EXAMPLE / "reviews.csv")])
    assert result.exit_code == 1
    assert "disk went away" in result.output


def test_spec_errors_do_not_hide_file_errors(tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text((EXAMPLE / "job.yaml").read_text().replace("reward: 300", "reward: 1.5"))
    result = runner.invoke(app, ["validate", str(CORPUS / "too_many_fields.csv"), "--job", str(spec), "--json"])
    assert result.exit_code == 2
    codes = [p["code"] for p in json.loads(result.stdout)["problems"]]
    assert "spec_invalid" in codes and "ragged_row" in codes


def test_bad_delimiter_option_is_a_usage_error():
    result = runner.invoke(app, ["validate", str(CORPUS / "semicolon.csv"), "--delimiter", "ab"])
    assert result.exit_code == 2
    assert "--delimiter" in result.output



def test_refusals_are_logged_without_traceback_other_errors_keep_it():
    import io
    import logging

    from flows.cli_support import refusals_without_traceback as _refusals_without_traceback

    class Refused(Exception):
        pass

    def log(logger, error):
        try:
            raise error
        except Exception:
            logger.error("Encountered exception during execution: %r", error, exc_info=True)

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("prefect")
    logger.addHandler(handler)
    try:
        with _refusals_without_traceback((Refused,)):
            log(logging.getLogger("prefect.flow_runs"), Refused("over budget"))
            during = stream.getvalue()
            log(logging.getLogger("prefect.flow_runs"), ValueError("a bug"))
        bug = stream.getvalue()[len(during):]
        log(logging.getLogger("prefect.flow_runs"), Refused("after the run"))
        after = stream.getvalue()[len(during) + len(bug):]
    finally:
        logger.removeHandler(handler)
    assert during == "Encountered exception during execution: Refused('over budget')\n"
    assert "Traceback" in bug and "ValueError: a bug" in bug
    assert "Traceback" in after, "the filter is removed after the run"
