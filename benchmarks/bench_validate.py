"""B1: validate a generated CSV with ``taskbuilder.validation.validate_csv``.

Baseline in the same run: ``pandas.read_csv(path, dtype=str, keep_default_na=False, engine="pyarrow")`` alone.
Goal: time ≤ 1.3× the baseline's, peak RSS ≤ 1.5× the baseline's. Each side runs in its own child process
(peak RSS = that process's maximum RSS from ``/usr/bin/time``, imports included on both sides); times are measured inside the
child around the call only, median of several runs, the two sides alternating.

Input (generated into a temporary folder, seeded): ``id,text,product,rating,META_gold``, 1,000,000 rows
(~150 MB; ``--quick``: 50,000) of ids, sentences with commas, doubled quotes and some non-ASCII text
(accents, CJK, emoji), product names and a gold label.
"""

from __future__ import annotations

import csv
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, Result, arguments, child_env, median, mib, ratio, run_child, scratch, seconds  # noqa: E402

WORDS = ("the", "battery", "lasts", "all", "day", "screen", "is", "bright", "but", "sound", "quality", "poor",
         "delivery", "was", "late", "and", "box", "arrived", "damaged", "great", "value", "for", "money", "would",
         "buy", "again", "never", "works", "after", "update", "customer", "service", "helpful", "price", "too",
         "high", "light", "easy", "to", "use", "manual", "confusing", "colour", "exactly", "as", "pictured")
UNICODE_WORDS = ("café", "naïve", "Zürich", "façade", "señor", "日本語のレビュー", "très bien", "😀", "👍 super", "Ελληνικά")
PRODUCTS = ("Headphones X1", "Phone Case", "Kettle 1.7L", "USB-C Cable, 2m", "Desk Lamp", "Backpack \"Urban\"",
            "Coffee Grinder", "Smart Watch", "Yoga Mat", "Blender Pro")
LABELS = ("positive", "neutral", "negative")


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(12, 22))
    if rng.random() < 0.08:
        words[rng.randrange(len(words))] = rng.choice(UNICODE_WORDS)
    if rng.random() < 0.5:
        words[rng.randrange(len(words))] += ","
    if rng.random() < 0.12:
        i = rng.randrange(len(words))
        words[i] = f'"{words[i]}"'
    return " ".join(words).capitalize() + rng.choice((".", "!", "...", "?"))


def generate(path: Path, rows: int, seed: int = 8) -> int:
    """Write the benchmark CSV (RFC 4180, minimal quoting, ``\\n`` line ends); return its size in bytes."""
    rng = random.Random(seed)
    pool = [sentence(rng) for _ in range(min(rows, 50_000))]  # distinct sentences, reused (generation speed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text", "product", "rating", "META_gold"])
        writer.writerows([f"r{n:07d}", text, product, rating, label] for n, text, product, rating, label in zip(
            range(rows), rng.choices(pool, k=rows), rng.choices(PRODUCTS, k=rows),
            rng.choices("12345", k=rows), rng.choices(LABELS, k=rows)))
    return path.stat().st_size


def child(kind: str, path: str) -> None:
    """Run one side once in this process and print ``{"seconds", "rows", ...}`` as the last line."""
    if kind == "project":
        from taskbuilder.jobspec import AnnotationJob  # noqa: F401  (what validate_csv imports anyway)
        from taskbuilder.validation import validate_csv

        started = time.perf_counter()
        report = validate_csv(path)
        elapsed = time.perf_counter() - started
        codes = sorted({p.code for p in report.problems})
        print(json.dumps({"seconds": elapsed, "rows": report.rows, "problem_codes": codes}))
    else:
        import pandas as pd

        started = time.perf_counter()
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, engine="pyarrow")
        elapsed = time.perf_counter() - started
        print(json.dumps({"seconds": elapsed, "rows": len(frame)}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    args = arguments(__doc__.split("\n\n")[0], lambda p: p.add_argument("--runs", type=int, default=None))
    rows = 50_000 if args.quick else 1_000_000
    runs = args.runs or 5
    result = Result("B1", f"validate_csv on a generated {rows:,}-row CSV")
    with scratch("b1") as folder:
        path = folder / "reviews.csv"
        started = time.perf_counter()
        size = generate(path, rows)
        result.details["input"] = {"rows": rows, "bytes": size, "generate_seconds": time.perf_counter() - started}
        samples: dict[str, list] = {"project": [], "baseline": []}
        # one unmeasured pass of each side first: the file just written, the imports and the page cache warm
        # for both, so neither side's first sample pays what the other's did not
        for kind in ("baseline", "project"):
            run_child([PYTHON, __file__, "--child", kind, str(path)], env=child_env())
        for n in range(runs):
            for kind in (("project", "baseline") if n % 2 == 0 else ("baseline", "project")):
                run = run_child([PYTHON, __file__, "--child", kind, str(path)], env=child_env())
                assert run.result["rows"] == rows, run.result
                samples[kind].append({"seconds": run.result["seconds"], "peak_rss_bytes": run.peak_rss_bytes,
                                      **{k: v for k, v in run.result.items() if k not in ("seconds",)}})
        result.details["samples"] = samples
    t_project = median([s["seconds"] for s in samples["project"]])
    t_base = median([s["seconds"] for s in samples["baseline"]])
    m_project = median([s["peak_rss_bytes"] for s in samples["project"]])
    m_base = median([s["peak_rss_bytes"] for s in samples["baseline"]])
    r_time, r_mem = ratio(t_project, t_base), ratio(m_project, m_base)
    result.add(f"time, median of {runs} ({size / 1e6:,.0f} MB)", seconds(t_project), seconds(t_base),
               f"{r_time:.2f}x", "<= 1.3x", r_time <= 1.3)
    result.add("peak RSS of the process (median)", mib(m_project), mib(m_base), f"{r_mem:.2f}x", "<= 1.5x", r_mem <= 1.5)
    result.notes.append(f"problems reported on this file: {samples['project'][0]['problem_codes'] or 'none'}"
                        + (" (too_many_rows: the default max_rows is 100,000; every check still runs)" if rows > 100_000 else ""))
    result.emit(args.json_out)


if __name__ == "__main__":
    main()
