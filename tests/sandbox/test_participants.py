"""Simulated participants: answers by instruction type (report encodings), gold accuracy, the
never-the-same-group rule, returns and time-outs, reproducibility from the seed."""

from __future__ import annotations

import io
import json

import boto3
import pandas as pd
from botocore.config import Config

from tests.sandbox.helpers import (AUTO_APPROVE, SENTIMENT, WHY, create_study, publish, ready_batch, ready_dataset,
                                   sentences_csv, study_in, write_csv)
from tests.sandbox.test_batches import FIVE_TYPES

LABELS = {"positive": "Positive", "neutral": "Neutral", "negative": "Negative"}


def run_job(api, control, workspace_id, tmp_path, csv_text, instructions, annotators=1, tasks_per_group=None,
            study_fields=None, **settings):
    """Upload, set up, publish with auto-approval, wait for COMPLETED; the report as a DataFrame (inline)."""
    control.post("/_sandbox/settings", json={"report_delivery": "inline", **settings}).raise_for_status()
    dataset = ready_dataset(api, workspace_id, write_csv(tmp_path, csv_text))
    batch = ready_batch(api, workspace_id, dataset["id"], instructions, tasks_per_group)
    study = create_study(api, batch["id"], annotators_per_task=annotators, completion_codes=AUTO_APPROVE,
                         **(study_fields or {}))
    publish(api, study["id"])
    study_in(api, study["id"], ("COMPLETED",))
    text = api.get(f"/data-collection/batches/{batch['id']}/report/").text
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False), study


def responses(report: pd.DataFrame, kind: str) -> list[str]:
    part = report[report["Task_Type"] == kind]
    columns = [c for c in report.columns if c.endswith("_Response")]
    return [cell for cell in part[columns].to_numpy().ravel() if cell != ""]


def test_every_instruction_type_is_answered_in_the_report_encoding(api, control, workspace_id, tmp_path):
    exclusive = {**SENTIMENT, "description": "All that apply?", "answer_limit": -1,
                 "options": [*SENTIMENT["options"], {"label": "None of the above", "value": "none", "exclusive": True}]}
    report, _ = run_job(api, control, workspace_id, tmp_path, sentences_csv(8, gold=False), [*FIVE_TYPES, exclusive],
                        annotators=2)
    assert len(report) == 8 * 6
    assert set(responses(report, "multiple_choice")) - {"Positive", "Neutral", "Negative"} != set()  # multi-select cells
    for cell in responses(report, "multiple_choice_with_free_text"):
        answer = json.loads(cell)
        assert len(answer) == 1 and answer[0]["label"] in ("A", "B") and answer[0]["explanation"]
    for cell in responses(report, "free_text"):
        assert 10 <= len(cell) <= 50
    bounds = {"°C": (30, 45), "°F": (86, 113)}
    for cell in responses(report, "free_text_with_unit"):
        answer = json.loads(cell)
        low, high = bounds[answer["unit"]]
        assert isinstance(answer["value"], str) and low <= float(answer["value"]) <= high
    settings = control.get("/_sandbox/settings").json()
    s3 = boto3.client("s3", endpoint_url=settings["object_store_endpoint_url"], region_name="us-east-1",
                      aws_access_key_id=settings["object_store_access_key"],
                      aws_secret_access_key=settings["object_store_secret_key"],
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    files = [item for cell in responses(report, "file_upload") for item in json.loads(cell)]
    assert files
    for item in files:
        assert set(item) == {"file_name", "file_key", "file_size_mb", "content_type"}
        assert item["file_name"].endswith((".jpg", ".png")) and item["content_type"] in ("image/jpeg", "image/png")
        head = s3.head_object(Bucket=settings["object_store_bucket"], Key=item["file_key"])
        assert abs(head["ContentLength"] / 1_000_000 - item["file_size_mb"]) < 1e-6
    # multiple choice cells: labels in option order joined by "|"; exclusive option alone
    part = report[report["Question"] == "All that apply?"]
    order = ["Positive", "Neutral", "Negative", "None of the above"]
    for cell in [c for c in part[[c for c in report.columns if c.endswith("_Response")]].to_numpy().ravel() if c]:
        labels = cell.split("|")
        assert labels == sorted(labels, key=order.index)
        assert "None of the above" not in labels or labels == ["None of the above"]


def test_accurate_participants_match_gold_and_inaccurate_ones_never_do(api, control, workspace_id, tmp_path):
    csv_text = sentences_csv(9)
    gold = pd.read_csv(io.StringIO(csv_text), dtype=str)["META_gold"].map(LABELS).tolist()
    settings = {"accuracy_spread": 0.0, "careless_share": 0.0}
    report, _ = run_job(api, control, workspace_id, tmp_path, csv_text, [SENTIMENT, WHY], annotators=2,
                        accuracy_mean=1.0, **settings)
    choice = report[report["Task_Type"] == "multiple_choice"].reset_index(drop=True)
    for k in (1, 2):
        assert choice[f"Annotator{k}_Response"].tolist() == gold
    control.post("/_sandbox/reset").raise_for_status()
    report, _ = run_job(api, control, workspace_id, tmp_path, csv_text, [SENTIMENT, WHY], annotators=2,
                        accuracy_mean=0.0, **settings)
    choice = report[report["Task_Type"] == "multiple_choice"].reset_index(drop=True)
    for k in (1, 2):
        assert all(given != right for given, right in zip(choice[f"Annotator{k}_Response"], gold))


def test_small_pool_never_takes_a_group_twice(api, control, workspace_id, tmp_path):
    _, study = run_job(api, control, workspace_id, tmp_path, sentences_csv(3, gold=False), [SENTIMENT],
                       annotators=2, participant_pool_size=2, return_rate=0.0, timeout_rate=0.0)
    done = api.get(f"/studies/{study['id']}/submissions/").json()["results"]
    assert len(done) == 6 and len({s["participant_id"] for s in done}) == 2
    pairs = [(s["participant_id"], s["task_group_id"]) for s in done]
    assert len(set(pairs)) == 6


def test_returns_and_time_outs_free_places(api, control, workspace_id, tmp_path):
    report, study = run_job(api, control, workspace_id, tmp_path, sentences_csv(10, gold=False), [SENTIMENT],
                            annotators=2, return_rate=0.3, timeout_rate=0.2)
    counts = api.get(f"/studies/{study['id']}/submissions/counts/").json()
    assert counts["APPROVED"] == 20 and counts["RETURNED"] > 0 and counts["TIMED-OUT"] > 0
    submissions = api.get(f"/studies/{study['id']}/submissions/", params={"limit": 500}).json()["results"]
    completed = {(s["participant_id"], s["task_group_id"]) for s in submissions if s["status"] == "APPROVED"}
    in_report = {(row[f"Annotator{k}_ID"], row["Task_Group_ID"]) for _, row in report.iterrows() for k in (1, 2)}
    assert in_report == completed          # only completed submissions appear, each once per row


def test_same_seed_same_answers(api, control, workspace_id, tmp_path):
    def answers():
        report, _ = run_job(api, control, workspace_id, tmp_path, sentences_csv(6), [SENTIMENT, WHY], annotators=2,
                            return_rate=0.0, timeout_rate=0.0, seed=7)
        columns = [c for c in report.columns if c.endswith(("_ID", "_Response")) and c.startswith("Annotator")]
        return report[["Question", "id", *columns]]

    first = answers()
    control.post("/_sandbox/reset").raise_for_status()
    pd.testing.assert_frame_equal(first, answers())


def test_a_second_study_over_the_same_datapoints_errs_independently(api, control, workspace_id, tmp_path):
    """A follow-up round (other participants, the same datapoints in the same task groups) must not replay the
    first study's draws: with every participant at accuracy 0.5, two studies' answers agree about half the time,
    not always (the n-th submission of each study was once seeded alike)."""
    csv_text = sentences_csv(60)
    model = {"accuracy_mean": 0.5, "accuracy_spread": 0.0, "careless_share": 0.0, "return_rate": 0.0, "timeout_rate": 0.0}
    first, study = run_job(api, control, workspace_id, tmp_path, csv_text, [SENTIMENT], **model)
    blocklist = {"filters": [{"filter_id": "previous_studies_blocklist", "selected_values": [study["id"]]}]}
    second, _ = run_job(api, control, workspace_id, tmp_path, csv_text, [SENTIMENT], study_fields=blocklist, **model)
    by_question = [dict(zip(report["id"], report["Annotator1_Response"])) for report in (first, second)]
    assert set(first["Annotator1_ID"]).isdisjoint(set(second["Annotator1_ID"]))
    same = sum(by_question[0][key] == by_question[1][key] for key in by_question[0])
    assert same <= 45, f"{same} of 60 answers alike: the second study's participants replayed the first's draws"
