"""B10: adaptive overlap against a fixed overlap of five, on the 3,000 UCI sentences (issue 19).

Data: ``../shared/data/sentiment-labelled-sentences`` (Kotzias et al., KDD 2015; CC BY 4.0), each line split at
its last tab, with its gold label in ``META_gold`` (``--quick``: the first 300 sentences). Sandbox: the
participant model pinned (accuracy mean 0.8, spread 0.1, careless share 0.1, seed 19, a pool of 20,000 so that
follow-up rounds find participants new to the job), fast processing and arrivals. Both jobs run the
``annotation_batch`` flow in this process, the same spec but for the overlap: ``annotators_per_task: 5``, and
``adaptive: {start_annotators: 2, max_annotators: 5, target_confidence: 0.85}``.

Figures: accuracy of the majority label (the outputs' default ``label``; the goal's measure) against gold, and
for information of the Dawid-Skene label and of the one-coin posterior's label (the rule's own model,
:mod:`taskbuilder.one_coin`), each on both sides; money spent = the fall of the account's balance over the job. Goal: adaptive within 3 points of fixed five at ≤ 0.65× its cost.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="taskbuilder-bench-b10-"))
os.environ.update({
    "PREFECT_HOME": str(_HOME / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120", "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(_HOME / "results"), "TASKBUILDER_LOCK_DIR": str(_HOME / "locks"),
})
for _name in ("PROLIFIC_API_URL", "PROLIFIC_WORKSPACE_ID", "PREFECT_API_URL"):
    os.environ.pop(_name, None)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import csv  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import httpx  # noqa: E402

from benchmarks.common import REPO, Result, arguments, scratch, seconds  # noqa: E402

UCI = REPO.parent / "shared" / "data" / "sentiment-labelled-sentences"
GOLD = {"1": "positive", "0": "negative"}
PARTICIPANTS = {"accuracy_mean": 0.8, "accuracy_spread": 0.1, "careless_share": 0.1, "seed": 19,
                "participant_pool_size": 20_000, "dataset_processing_seconds": 0.1, "batch_setup_seconds": 0.1,
                "participant_arrival_per_second": 400.0, "submission_seconds": 0.02, "return_rate": 0.0, "timeout_rate": 0.0}
ADAPTIVE = {"start_annotators": 2, "max_annotators": 5, "target_confidence": 0.85}


def write_csv(path: Path, limit: int | None) -> int:
    """The sentences as ``id,sentence,META_gold`` (text exactly as in the files); return the row count."""
    rows = []
    for source in sorted(UCI.glob("*_labelled.txt")):
        for line in source.read_bytes().decode("utf-8").split("\n")[1:]:
            if line:
                sentence, label = line.rsplit("\t", 1)
                rows.append((sentence, GOLD[label]))
    rows = rows[:limit] if limit else rows
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "sentence", "META_gold"])
        writer.writerows((f"s{n:04d}", sentence, gold) for n, (sentence, gold) in enumerate(rows))
    return len(rows)


def job_spec(csv_path: Path, out: Path, overlap: dict) -> dict:
    return {
        "name": f"b10-{uuid.uuid4().hex[:8]}",
        "dataset": {"name": "UCI sentences", "csv": str(csv_path), "id_column": "id", "gold_column": "META_gold"},
        "batch": {"name": "UCI sentiment", "tasks_per_group": 10,
                  "task_details": {"task_name": "Sentiment", "task_introduction": "<p>Read each sentence.</p>",
                                   "task_steps": "<p>Pick one.</p>"},
                  "instructions": [{"order": 1, "type": "multiple_choice", "description": "Is this sentence positive or negative?",
                                    "answer_limit": 1, "options": [{"label": "Positive", "value": "positive"},
                                                                   {"label": "Negative", "value": "negative"}]}]},
        "study": {"name": "UCI sentiment", "description": "<p>Label sentences.</p>", "reward": 100, "estimated_completion_time": 5,
                  "maximum_allowed_time": 20, "annotators_per_task": overlap.get("annotators_per_task", 1),
                  "completion_codes": [{"code": "UCI1", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALLY_APPROVE"}]}]},
        **({"adaptive": overlap["adaptive"]} if "adaptive" in overlap else {}),
        "publish": True, "max_budget": 100_000_000, "output_dir": str(out),
    }


def one_coin_accuracy(out: Path) -> float:
    """Accuracy against gold of the one-coin posterior's label (:mod:`taskbuilder.one_coin`) over the job's
    ``responses.csv`` and ``labels.csv`` (a tie of the posterior counts as wrong)."""
    import pandas as pd

    from taskbuilder.one_coin import one_coin_labels

    labels = pd.read_csv(out / "labels.csv", dtype=str, keep_default_na=False)
    responses = pd.read_csv(out / "responses.csv", dtype=str, keep_default_na=False)
    instruction = labels["instruction"].iloc[0]
    fitted = one_coin_labels(responses, labels, instruction)
    gold = labels.loc[labels["instruction"] == instruction, "META_gold"].to_numpy()
    return float((fitted["oc_label"].to_numpy() == gold).mean())


def first_answers_split(out: Path, start_annotators: int) -> dict[str, int]:
    """From ``responses.csv`` (its ``round`` column): of the datapoints whose round-1 answers all agree, how many
    stopped there; of those whose round-1 answers tie, how many were asked again."""
    import pandas as pd

    responses = pd.read_csv(out / "responses.csv", dtype=str, keep_default_na=False)
    first = responses[responses["round"] == "1"].groupby("id")["answer"]
    agree = set(first.nunique().loc[lambda n: n == 1].index) & set(first.size().loc[lambda n: n == start_annotators].index)
    counts = first.apply(lambda answers: answers.value_counts().tolist())
    ties = {key for key, votes in counts.items() if len(votes) > 1 and votes[0] == votes[1]}
    answers = responses.groupby("id").size()
    return {"agree": len(agree), "agree_stopped": int(sum(answers[key] == start_annotators for key in agree)),
            "ties": len(ties), "ties_asked_again": int(sum(answers[key] > start_annotators for key in ties))}


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    from flows.annotation_batch import annotation_batch
    from flows.embedded_sandbox import running_sandbox
    from taskbuilder.jobspec import AnnotationJob
    from taskbuilder.polling import PollSettings
    from tasks.connection import ProlificConnection

    polling = PollSettings(interval_seconds=0.2, max_interval_seconds=1.0, study_timeout_seconds=1800)
    figures: dict[str, dict] = {}
    with scratch("b10") as folder, running_sandbox() as sandbox:
        os.environ["PROLIFIC_API_TOKEN"] = sandbox.token
        rows = write_csv(folder / "uci.csv", 300 if args.quick else None)
        control = httpx.Client(base_url=sandbox.base_url, timeout=60)
        api = httpx.Client(base_url=sandbox.base_url, timeout=60, headers={"Authorization": f"Token {sandbox.token}"})
        for label, overlap in (("fixed 5", {"annotators_per_task": 5}), ("adaptive 2-5 @0.85", {"adaptive": ADAPTIVE})):
            control.post("/_sandbox/reset").raise_for_status()
            control.post("/_sandbox/settings", json=PARTICIPANTS).raise_for_status()
            before = api.get("/api/v1/users/me/").json()["available_balance"]
            out = folder / label.split()[0]
            job = AnnotationJob.from_dict(job_spec(folder / "uci.csv", out, overlap))
            started = time.perf_counter()
            run = annotation_batch(job=job, connection=ProlificConnection(base_url=sandbox.base_url), polling=polling)
            elapsed = time.perf_counter() - started
            after = api.get("/api/v1/users/me/").json()["available_balance"]
            summary = json.loads((out / "summary.json").read_text())
            gold = summary["instructions"][0]["gold"]
            figures[label] = {"spent_cents": before - after, "ds_accuracy": gold["dawid_skene_accuracy"],
                              "oc_accuracy": one_coin_accuracy(out),
                              "mv_accuracy": gold["majority_vote_accuracy"], "responses": summary["responses"],
                              "rounds": summary.get("rounds") or [{"kind": "main", "study_id": run["study_id"]}],
                              "total_cost_cents": summary.get("total_cost_cents"), "below_target": len(summary.get("below_target") or []),
                              "seconds": elapsed,
                              **({"split": first_answers_split(out, ADAPTIVE["start_annotators"])} if "adaptive" in overlap else {})}
        control.close()
        api.close()
    fixed, adaptive = figures["fixed 5"], figures["adaptive 2-5 @0.85"]
    cost_ratio = adaptive["spent_cents"] / fixed["spent_cents"]
    gap_points = 100 * (fixed["mv_accuracy"] - adaptive["mv_accuracy"])
    result = Result("B10", f"adaptive overlap vs fixed 5, {rows:,} UCI sentences, participant model pinned")
    result.details.update(figures=figures, participants=PARTICIPANTS, adaptive=ADAPTIVE)
    result.add("accuracy vs gold (majority label)", f"{adaptive['mv_accuracy']:.4f}", f"{fixed['mv_accuracy']:.4f} (fixed 5)",
               f"{-gap_points:+.2f} points", ">= -3 points", gap_points <= 3.0)
    result.add("accuracy vs gold (Dawid-Skene label)", f"{adaptive['ds_accuracy']:.4f}", f"{fixed['ds_accuracy']:.4f} (fixed 5)",
               f"{100 * (adaptive['ds_accuracy'] - fixed['ds_accuracy']):+.2f} points", "(information)", None)
    result.add("accuracy vs gold (one-coin label)", f"{adaptive['oc_accuracy']:.4f}", f"{fixed['oc_accuracy']:.4f} (fixed 5)",
               f"{100 * (adaptive['oc_accuracy'] - fixed['oc_accuracy']):+.2f} points", "(information)", None)
    result.add("money spent (balance fall)", f"{adaptive['spent_cents'] / 100:,.2f}", f"{fixed['spent_cents'] / 100:,.2f} (fixed 5)",
               f"{cost_ratio:.2f}x", "<= 0.65x", cost_ratio <= 0.65)
    result.add("answers collected", f"{adaptive['responses']:,}", f"{fixed['responses']:,}",
               f"{adaptive['responses'] / fixed['responses']:.2f}x", "(information)", None)
    result.add("rounds (datapoints each)", " / ".join(str(r.get("datapoints")) for r in adaptive["rounds"]), "1", "-", "(information)", None)
    split = adaptive["split"]
    result.add("first answers agree: stopped at start_annotators", f"{split['agree_stopped']:,} of {split['agree']:,}", "-", "-",
               "all", split["agree_stopped"] == split["agree"])
    result.add("first answers tie: asked again", f"{split['ties_asked_again']:,} of {split['ties']:,}", "-", "-",
               "all", split["ties_asked_again"] == split["ties"])
    result.add("datapoints left below the target at 5 answers", str(adaptive["below_target"]), "-", "-", "(information)", None)
    result.add("run time", seconds(adaptive["seconds"]), seconds(fixed["seconds"]), "-", "(information)", None)
    result.emit(args.json_out)


if __name__ == "__main__":
    main()
