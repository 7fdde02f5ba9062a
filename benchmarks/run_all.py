"""Run every benchmark (B1–B10) one after another and print all their tables, then a summary (``make bench``).

Each benchmark is its own script, run here as a child process with ``--json-out``; ``--quick`` passes small
sizes to each, ``--only B1,B3`` runs a subset. Exit code 1 when a benchmark crashed (a missed goal is a
figure, not a crash). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import machine  # noqa: E402

BENCHMARKS = [  # cheapest first; B4 (a whole Prefect stack and 2 x 50 jobs) last
    ("B1", "bench_validate.py"),
    ("B2", "bench_upload.py"),
    ("B5", "bench_aggregate.py"),
    ("B6", "bench_polling.py"),
    ("B7", "bench_first_error.py"),
    ("B3", "bench_job.py"),
    ("B8", "bench_warm_server.py"),
    ("B9", "bench_monitor.py"),
    ("B4", "bench_workers.py"),
    ("B10", "bench_rounds.py"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. B1,B5")
    args = parser.parse_args()
    wanted = {name.strip().upper() for name in args.only.split(",") if name.strip()}
    print(f"machine: {json.dumps(machine())}", flush=True)
    started = time.perf_counter()
    crashed, tables, timings = [], [], {}
    with tempfile.TemporaryDirectory(prefix="taskbuilder-bench-") as folder:
        for name, script in BENCHMARKS:
            if wanted and name not in wanted:
                continue
            out = Path(folder) / f"{name}.json"
            command = [sys.executable, str(HERE / script), "--json-out", str(out)] + (["--quick"] if args.quick else [])
            print(f"\n=== {name}: {script} ===", flush=True)
            began = time.perf_counter()
            returncode = subprocess.run(command, cwd=HERE.parent).returncode
            timings[name] = time.perf_counter() - began
            if returncode != 0 or not out.exists():
                crashed.append(name)
                print(f"{name} FAILED (exit code {returncode})", flush=True)
                continue
            tables.append(json.loads(out.read_text()))
    total = time.perf_counter() - started
    print("\n=== summary ===")
    for data in tables:
        missed = [row["measure"].strip() for row in data["rows"] if row["met"] is False]
        verdict = "all goals met" if not missed else "missed: " + ", ".join(missed)
        print(f"{data['benchmark']} ({timings[data['benchmark']]:.0f} s): {verdict}")
    for name in crashed:
        print(f"{name}: crashed")
    print(f"total {total / 60:.1f} min" + (" (over the 20 min budget)" if total > 1200 and not args.quick else ""))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
