"""B5: aggregate 1,000,000 responses with ``taskbuilder.aggregate.aggregate``.

Input (generated, seeded, saved once to a temporary folder and loaded by each child): the tidy responses table
that ``taskbuilder.report.parse_report`` returns, for one single-select instruction with three options,
333,334 datapoints × 3 annotators from a pool of 500 participants (accuracy 0.6–0.95, 10 % answering at
random), 5 % of datapoints with a gold value. ``--quick``: 100,000 responses.

Two comparisons, each side in its own child process (median of 3 calls for the first; one call each for the
second, where crowd-kit's Dawid-Skene alone takes about a minute at full size):

1. majority vote + Krippendorff's α, the measure of the issue: ``aggregate()`` with its Dawid-Skene step
   switched off (the benchmark replaces ``_add_dawid_skene`` with a no-op in its child; everything else —
   votes, ties, confidence, α, percent agreement, participant agreement and gold accuracy — still runs)
   against crowd-kit ``MajorityVote().fit_predict`` + ``krippendorff.alpha`` on value counts built with pandas
   from the same frame;
2. the whole ``aggregate()`` as the job calls it (Dawid-Skene included) against crowd-kit ``MajorityVote`` +
   ``DawidSkene(n_iter=100, tol=1e-5)`` (the project's stopping rule) + ``krippendorff.alpha``.

Goal: ≤ 1.0× the baseline's time. Both sides' labels are compared (majority labels where crowd-kit has no
tie; α equal to 1e-9).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, Result, arguments, child_env, median, mib, run_child, scratch, seconds  # noqa: E402

OPTIONS = [{"label": "Positive", "value": "positive"}, {"label": "Neutral", "value": "neutral"},
           {"label": "Negative", "value": "negative"}]
INSTRUCTIONS = [{"type": "multiple_choice", "description": "What is the sentiment?", "answer_limit": 1, "options": OPTIONS}]
RUNS = {"project-mv": 3, "crowdkit-mv": 3, "project": 1, "crowdkit-ds": 1}


def generate(path: Path, responses: int, seed: int = 5) -> None:
    """Write the responses table (pickle) with ``responses`` rows (3 annotators per datapoint)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_datapoints = -(-responses // 3)
    values = np.array([o["value"] for o in OPTIONS], dtype=object)
    truth = rng.integers(0, 3, n_datapoints)
    pool = np.array([f"{n:024x}" for n in rng.integers(0, 2**63, 500)], dtype=object)
    accuracy = np.where(rng.random(500) < 0.1, 1 / 3, rng.uniform(0.6, 0.95, 500))
    datapoint = np.repeat(np.arange(n_datapoints), 3)[:responses]
    # three distinct participants per datapoint: a random start and two fixed offsets into the pool
    start = rng.integers(0, 500, n_datapoints)
    worker = ((start[:, None] + np.array([0, 167, 334])) % 500).ravel()[:responses]
    correct = rng.random(responses) < accuracy[worker]
    answer = np.where(correct, truth[datapoint], (truth[datapoint] + rng.integers(1, 3, responses)) % 3)
    ids = np.array([f"{n:06d}" for n in range(n_datapoints)], dtype=object)
    gold = np.where(rng.random(n_datapoints) < 0.05, values[truth], "")
    frame = pd.DataFrame({
        "datapoint_id": ids[datapoint], "task_group_id": ids[datapoint // 10], "instruction": INSTRUCTIONS[0]["description"],
        "instruction_type": "multiple_choice", "participant_id": pool[worker], "answer": values[answer],
        "answered_at": "2026-11-29T08:00:00.000Z", "id": ids[datapoint], "text": "some text", "META_gold": gold[datapoint],
    }, dtype=str)
    frame.to_pickle(path)


def child(kind: str, path: str) -> None:
    import pandas as pd

    frame = pd.read_pickle(path)
    times, labels, alpha = [], None, None
    if kind.startswith("project"):
        from taskbuilder import aggregate as module

        if kind == "project-mv":
            module._add_dawid_skene = lambda labels, votes, values: None  # this child only: majority vote + α
        for _ in range(RUNS[kind]):
            started = time.perf_counter()
            result = module.aggregate(frame, INSTRUCTIONS, id_column="id", gold_column="META_gold")
            times.append(time.perf_counter() - started)
        labels = dict(zip(result.labels["datapoint_id"], result.labels["label"]))
        alpha = result.summary["instructions"][0]["krippendorff_alpha"]
    else:
        import krippendorff
        from crowdkit.aggregation import DawidSkene, MajorityVote

        crowd = frame[["datapoint_id", "participant_id", "answer"]].set_axis(["task", "worker", "label"], axis=1)
        for _ in range(RUNS[kind]):
            started = time.perf_counter()
            majority = MajorityVote().fit_predict(crowd)
            value_counts = pd.crosstab(crowd["task"], crowd["label"]).to_numpy()
            alpha = float(krippendorff.alpha(value_counts=value_counts, level_of_measurement="nominal"))
            if kind == "crowdkit-ds":
                DawidSkene(n_iter=100, tol=1e-5).fit_predict(crowd)
            times.append(time.perf_counter() - started)
        # crowd-kit breaks ties at random: compare only datapoints whose votes have one clear winner
        counts = crowd.groupby(["task", "label"]).size().unstack(fill_value=0)
        clear = (counts.to_numpy() == counts.to_numpy().max(axis=1, keepdims=True)).sum(axis=1) == 1
        labels = {task: majority[task] for task in counts.index[clear]}
    print(json.dumps({"seconds": times, "alpha": alpha, "labels": labels}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    args = arguments(__doc__.split("\n\n")[0])
    responses = 100_000 if args.quick else 1_000_000
    result = Result("B5", f"aggregate {responses:,} responses")
    runs: dict[str, dict] = {}
    with scratch("b5") as folder:
        path = folder / "responses.pkl"
        generate(path, responses)
        for kind in ("project-mv", "crowdkit-mv", "project", "crowdkit-ds"):
            run = run_child([PYTHON, __file__, "--child", kind, str(path)], env=child_env())
            runs[kind] = {"seconds": run.result["seconds"], "peak_rss_bytes": run.peak_rss_bytes,
                          "alpha": run.result["alpha"], "labels": run.result["labels"]}
    for project, baseline, measure in (("project-mv", "crowdkit-mv", "majority vote + alpha (Dawid-Skene off)"),
                                       ("project", "crowdkit-ds", "whole aggregate() vs MV + DawidSkene + alpha")):
        p, b = runs[project], runs[baseline]
        t_p, t_b = median(p["seconds"]), median(b["seconds"])
        agree = all(p["labels"].get(task) == label for task, label in b["labels"].items())
        same_alpha = abs(p["alpha"] - b["alpha"]) < 1e-9
        runs_text = f"median of {RUNS[project]}" if RUNS[project] > 1 else "one run each"
        result.add(f"{measure}, {runs_text}", seconds(t_p), seconds(t_b), f"{t_p / t_b:.2f}x", "<= 1.0x", t_p <= t_b)
        result.add(f"  same labels / same alpha ({len(b['labels']):,} clear majorities)",
                   "yes" if agree else "NO", "-", "-", "(check)", agree and same_alpha)
        result.add("  peak RSS of the process", mib(p["peak_rss_bytes"]), mib(b["peak_rss_bytes"]),
                   f"{p['peak_rss_bytes'] / b['peak_rss_bytes']:.2f}x", "(information)", None)
    result.details["runs"] = {k: {kk: vv for kk, vv in v.items() if kk != "labels"} for k, v in runs.items()}
    result.emit(args.json_out)


if __name__ == "__main__":
    main()
