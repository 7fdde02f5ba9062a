"""B7: time to the first error on a bad 100,000-row CSV, ``taskbuilder run`` against ``taskbuilder validate``.

Input (generated into a temporary folder, seeded): the B3 job (``id,text,META_gold``, 100,000 rows; ``--quick``:
20,000) with one id used twice in the last record, so the whole file must be read to find it. Project:
``taskbuilder run job.yaml`` as a user types it (no ``--api-url``: the embedded sandbox's path, with the local
Prefect server on and a fresh ``PREFECT_HOME``). Baseline in the same run: ``taskbuilder validate --job job.yaml``,
the command that only checks. Both are whole processes (interpreter start and imports included), timed from
spawn to exit, median of several runs, the two sides alternating; both must exit 2 naming the duplicate id.
Checked too: the run started no Prefect server and made no Prefect home (nothing was started for bad input).
Goal: ≤ 1.5x.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_job import write_job  # noqa: E402
from benchmarks.common import PYTHON, REPO, Result, arguments, child_env, median, scratch, seconds  # noqa: E402

TASKBUILDER = Path(PYTHON).with_name("taskbuilder")


def command(*args: str) -> list[str]:
    """The CLI as a user runs it: the ``taskbuilder`` console script beside this Python, else ``-m flows.cli``."""
    return [str(TASKBUILDER), *args] if TASKBUILDER.exists() else [PYTHON, "-m", "flows.cli", *args]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - started, done


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    rows, repeats = (20_000, 3) if args.quick else (100_000, 5)
    result = Result("B7", f"time to the first error, bad {rows:,}-row CSV: run vs validate")
    samples: dict[str, list[float]] = {"run": [], "validate": []}
    with scratch("b7") as folder:
        spec = write_job(folder / "job", rows, "bench-first-error")
        data = folder / "job" / "data.csv"
        with open(data, "a", encoding="utf-8") as handle:
            handle.write("00005,A record whose id is taken,positive\n")
        home = folder / "prefect-home"
        env = child_env(PREFECT_HOME=str(home), TASKBUILDER_LOCAL_SERVER="1", PREFECT_LOGGING_LEVEL="WARNING")
        for name in ("PREFECT_API_URL", "PROLIFIC_API_URL"):
            env.pop(name, None)
        sides = {"run": command("run", str(spec)), "validate": command("validate", "--job", str(spec))}
        for n in range(repeats):
            for side in (("run", "validate") if n % 2 == 0 else ("validate", "run")):
                elapsed, done = timed(sides[side], env)
                output = done.stdout + done.stderr
                assert done.returncode == 2 and "id_duplicate" in output, (side, done.returncode, output[-2000:])
                samples[side].append(elapsed)
        nothing_started = not home.exists()
        size_bytes = data.stat().st_size
    t_run, t_validate = median(samples["run"]), median(samples["validate"])
    result.details.update(samples=samples, rows=rows, size_bytes=size_bytes)
    result.add(f"time to the first error, median of {repeats}", seconds(t_run), f"{seconds(t_validate)} (`taskbuilder validate --job`)",
               f"{t_run / t_validate:.2f}x", "<= 1.5x", t_run / t_validate <= 1.5)
    result.add("Prefect server started / Prefect home made for the bad input", "no" if nothing_started else "YES", "-", "-",
               "nothing started", nothing_started)
    result.emit(args.json_out)


if __name__ == "__main__":
    main()
