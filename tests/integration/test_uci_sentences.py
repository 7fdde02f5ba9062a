"""The 3,000 UCI review sentences through the sandbox: byte-for-byte text, counts, label quality.

Data: ``../shared/data/sentiment-labelled-sentences`` (CC BY 4.0; Kotzias et al., KDD 2015), read as
plain TSV (split each line at its last tab, on ``\\n`` only) and written as a CSV with ``META_gold``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from flows.annotation_batch import annotation_batch
from taskbuilder.polling import PollSettings
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection

from tests.conftest import UCI_DIR, require_shared

FAST = PollSettings(interval_seconds=0.5, max_interval_seconds=2, study_timeout_seconds=900)
GOLD = {"1": "positive", "0": "negative"}


def read_uci() -> pd.DataFrame:
    """All 3,000 sentences with source and gold label, text exactly as in the files."""
    rows = []
    for path in sorted(require_shared(UCI_DIR).glob("*_labelled.txt")):
        lines = path.read_bytes().decode("utf-8").split("\n")
        for line in lines[1:]:  # header: reviews<TAB>sentiment
            if line == "":
                continue
            sentence, label = line.rsplit("\t", 1)
            rows.append({"sentence": sentence, "META_gold": GOLD[label], "META_source": path.name.split("_")[0]})
    frame = pd.DataFrame(rows)
    frame.insert(0, "id", [f"s{i:04d}" for i in range(len(frame))])
    return frame


def uci_job(tmp_path: Path, frame: pd.DataFrame, annotators: int = 3) -> AnnotationJob:
    csv_path = tmp_path / "uci.csv"
    frame.to_csv(csv_path, index=False, lineterminator="\n")
    return AnnotationJob.from_dict(
        {
            "name": f"uci-{uuid.uuid4().hex[:8]}",
            "dataset": {"name": "UCI sentences", "csv": str(csv_path), "id_column": "id", "gold_column": "META_gold"},
            "batch": {
                "name": "UCI sentiment",
                "task_details": {"task_name": "Sentiment", "task_introduction": "<p>Read each sentence.</p>", "task_steps": "<p>Pick one.</p>"},
                "tasks_per_group": 10,
                "instructions": [
                    {"order": 1, "type": "multiple_choice", "description": "Is this sentence positive or negative?", "answer_limit": 1,
                     "options": [{"label": "Positive", "value": "positive"}, {"label": "Negative", "value": "negative"}]}
                ],
            },
            "study": {
                "name": "UCI sentiment", "description": "<p>Label sentences.</p>", "reward": 100,
                "estimated_completion_time": 5, "maximum_allowed_time": 20, "annotators_per_task": annotators,
                "completion_codes": [{"code": "UCI1", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALLY_APPROVE"}]}],
            },
            "publish": True,
            "max_budget": 10_000_000,
            "output_dir": str(tmp_path / "out"),
        }
    )


FAST_PARTICIPANTS = dict(
    dataset_processing_seconds=0.2, batch_setup_seconds=0.2, participant_arrival_per_second=200.0,
    submission_seconds=0.05, return_rate=0.02, timeout_rate=0.01,
)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "isolated_results")
def test_3000_sentences_come_back_byte_for_byte(tmp_path, sandbox):
    frame = read_uci()
    assert len(frame) == 3000
    sandbox.settings(**FAST_PARTICIPANTS, accuracy_mean=0.85, accuracy_spread=0.05, careless_share=0.1, participant_pool_size=200)
    run = annotation_batch(job=uci_job(tmp_path, frame), connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST)
    assert (run["dataset_version"], run["instructions_mode"]) == (4, "batch_items")
    api = [(r["method"], r["path"]) for r in sandbox.requests() if r["target"] == "api"]
    assert not [call for call in api if "/instructions" in call[1]]  # nothing to the retired endpoint
    assert ("GET", f"/api/v1/data-collection/datasets/{run['dataset_id']}/imports/{run['import_id']}") in api

    out = tmp_path / "out"
    responses = pd.read_csv(out / "responses.csv", dtype=str, keep_default_na=False)
    assert len(responses) == 3000 * 3
    per_datapoint = responses.groupby("id")["participant_id"].nunique()
    assert (per_datapoint == 3).all()
    assert set(responses["sentence"]) == set(frame["sentence"])  # stray quotes, trailing spaces, U+0085 kept
    sent = dict(zip(frame["id"], frame["sentence"]))
    assert all(sent[i] == s for i, s in zip(responses["id"], responses["sentence"]))

    summary = json.loads((out / "summary.json").read_text())
    print("\n[uci] summary:", json.dumps(summary, indent=1, default=str)[:2000])
    labels = pd.read_csv(out / "labels.csv", dtype=str, keep_default_na=False)
    assert len(labels) == 3000


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "isolated_results")
@pytest.mark.parametrize("careless_share", [0.1, 0.45])
def test_label_quality_matches_the_simulated_annotators(careless_share, tmp_path, sandbox):
    """Majority vote and Dawid-Skene accuracy against gold, and α, agree with the answers given.

    With accuracy p for careful participants and a share c answering at random (binary labels), one
    answer is right with probability q = (1-c)·p + c/2. That is the settings' figure; the answers'
    own figure q̂ (share of answers equal to gold) differs from it by how many task groups the careless
    participants happened to take, which depends on arrival timing (one run in three had 0.75 majority
    accuracy against 0.81 from the settings). So: q̂ within ±0.08 of q (the sandbox simulates what it is
    told), a 3-vote majority right with probability q̂³ + 3q̂²(1-q̂) within ±0.04, α within ±0.08 of the
    two-rater expectation at q̂ (1,000 datapoints). With many careless participants, Dawid-Skene, which
    learns who they are, must beat majority vote.
    """
    frame = read_uci().sample(n=1000, random_state=7).reset_index(drop=True)
    p = 0.9
    sandbox.settings(**FAST_PARTICIPANTS, accuracy_mean=p, accuracy_spread=0.05, careless_share=careless_share, participant_pool_size=40, seed=11)
    annotation_batch(job=uci_job(tmp_path, frame), connection=ProlificConnection(base_url=sandbox.base_url), polling=FAST)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    responses = pd.read_csv(tmp_path / "out" / "responses.csv", dtype=str, keep_default_na=False)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv", dtype=str, keep_default_na=False)
    expected_gold = dict(zip(frame["id"].astype(str), frame["META_gold"]))
    assert dict(zip(labels["id"], labels["META_gold"])) == expected_gold, "labels.csv lost or changed the gold column"
    gold = dict(zip(labels["datapoint_id"], labels["META_gold"]))
    assert set(responses["datapoint_id"]) <= set(gold), "responses name datapoints that labels.csv does not list"
    q_answers = float((responses["answer"] == responses["datapoint_id"].map(gold)).mean())
    q_settings = (1 - careless_share) * p + careless_share / 2
    print(f"\n[quality] careless {careless_share}: q from settings {q_settings:.3f}, from answers {q_answers:.3f};",
          json.dumps(summary, default=str)[:1500])
    assert abs(q_answers - q_settings) <= 0.08, (q_answers, q_settings)

    expected_mv = q_answers**3 + 3 * q_answers**2 * (1 - q_answers)
    (sentiment,) = summary["instructions"]
    mv, ds = sentiment["gold"]["majority_vote_accuracy"], sentiment["gold"]["dawid_skene_accuracy"]
    assert abs(mv - expected_mv) <= 0.04, (mv, expected_mv)
    # nominal α for two annotators of accuracy q on balanced binary gold: agreement q²+(1-q)², chance ½
    expected_alpha = (q_answers**2 + (1 - q_answers) ** 2 - 0.5) / 0.5
    assert abs(sentiment["krippendorff_alpha"] - expected_alpha) <= 0.08, (sentiment["krippendorff_alpha"], expected_alpha)
    if careless_share >= 0.4:
        assert ds > mv + 0.01, (ds, mv)
    else:
        assert ds >= mv - 0.02, (ds, mv)

