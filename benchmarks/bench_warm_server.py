"""B8: with a warm local Prefect server, a CLI run of the 3,000-row job against a plain httpx script, both whole processes.

Job: B3's (3,000 generated rows × 3 annotators, ``--quick``: 300; publish, wait, report, outputs) on a sandbox
started once (B3's fast settings, reset before each run; both sides poll at a fixed 0.1 s). Project:
``taskbuilder run job.yaml --api-url SANDBOX`` as a new process, on the local Prefect server that stays
(:mod:`flows.local_server`, started before the measured runs under a private ``PREFECT_HOME`` and warmed by one
run that is not counted). Baseline in the same run: a new process running B3's plain httpx script
(:func:`benchmarks.bench_job.plain_job`: the same API calls and local work, no Prefect; Prefect not even
imported, checked). Both timed from spawn to exit, median of several pairs, alternating which goes first.
Then two CLI runs of two jobs started at once: both must succeed, with one dataset, batch and study each.
The server is stopped at the end. Goal: ≤ 2x; two runs at once both succeed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, REPO, Result, arguments, byte_compile_project, child_env, median, scratch, seconds  # noqa: E402

POLL = ["--poll-seconds", "0.1", "--poll-max-seconds", "0.1"]
COUNTER = Path(__file__).resolve().parent / "prefect_request_counter"
"""Folder whose ``sitecustomize`` counts a process's Prefect API requests (the CLI runs' figure)."""


def plain_child(spec: str, base_url: str, token: str, work_dir: str, interval_seconds: str = "0.1") -> None:
    """The baseline process: B3's plain script on ``spec`` (polling every ``interval_seconds``); prints
    ``{"study": status, "prefect_imported": bool}``. B4 runs it too."""
    from benchmarks.bench_job import plain_job
    from taskbuilder.jobspec import AnnotationJob

    summary = plain_job(AnnotationJob.from_yaml(Path(spec)), base_url, token, float(interval_seconds), Path(work_dir))
    print(json.dumps({"study": summary["statuses"]["study"], "prefect_imported": "prefect" in sys.modules}))


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return elapsed, done


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    rows, pairs = (300, 2) if args.quick else (3000, 3)
    byte_compile_project()  # as make install leaves it (both sides import the project's modules)
    from benchmarks.bench_job import SANDBOX_SETTINGS, STUDY_DONE, write_job
    from flows.embedded_sandbox import running_sandbox
    from flows.local_server import ensure_server, stop_server
    import httpx

    result = Result("B8", f"warm local Prefect server: CLI run of the {rows:,}-row job vs a plain httpx script")
    samples: dict[str, list[float]] = {"cli": [], "plain": []}
    with scratch("b8") as folder, running_sandbox() as sandbox:
        home = folder / "prefect-home"
        env = child_env(PREFECT_HOME=str(home), TASKBUILDER_LOCAL_SERVER="1", PREFECT_LOGGING_LEVEL="WARNING",
                        PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PROLIFIC_API_TOKEN=sandbox.token,
                        TASKBUILDER_LOCK_DIR=str(folder / "locks"))
        for name in ("PREFECT_API_URL", "PROLIFIC_API_URL", "PROLIFIC_WORKSPACE_ID"):
            env.pop(name, None)
        counts_file = folder / "prefect-requests.jsonl"
        counted_env = {**env, "TASKBUILDER_COUNT_PREFECT_REQUESTS": str(counts_file),
                       "PYTHONPATH": os.pathsep.join([str(COUNTER), env["PYTHONPATH"]])}
        control = httpx.Client(base_url=sandbox.base_url, timeout=60)

        def fresh_sandbox() -> None:
            control.post("/_sandbox/reset").raise_for_status()
            control.post("/_sandbox/settings", json=SANDBOX_SETTINGS).raise_for_status()

        def cli(spec: Path) -> list[str]:
            return [str(Path(PYTHON).with_name("taskbuilder")), "run", str(spec), "--api-url", sandbox.base_url, *POLL]

        try:
            os.environ["PREFECT_HOME"] = str(home)
            started = time.perf_counter()
            ensure_server(home)
            server_start = time.perf_counter() - started
            fresh_sandbox()
            warm_up, _ = run_timed(cli(write_job(folder / "warm", rows, f"bench-warm-{uuid.uuid4().hex[:8]}")), env)
            for n in range(pairs):
                for side in (("cli", "plain") if n % 2 == 0 else ("plain", "cli")):
                    fresh_sandbox()
                    job_folder = folder / f"{side}-{n}"
                    spec = write_job(job_folder, rows, f"bench-{side}-{n}-{uuid.uuid4().hex[:8]}")
                    if side == "cli":
                        elapsed, _ = run_timed(cli(spec), counted_env)
                        status = json.loads((job_folder / "out" / "run.json").read_text())["statuses"]["study"]
                    else:
                        elapsed, done = run_timed([PYTHON, str(Path(__file__).resolve()), "--plain-child", str(spec),
                                                   sandbox.base_url, sandbox.token, str(job_folder / "work")], env)
                        child = json.loads(done.stdout.strip().splitlines()[-1])
                        assert not child["prefect_imported"], "the plain baseline imported Prefect"
                        status = child["study"]
                    assert status in STUDY_DONE, (side, status)
                    samples[side].append(elapsed)
            per_run = [json.loads(line)["requests"] for line in counts_file.read_text().splitlines()] if counts_file.exists() else []
            fresh_sandbox()
            specs = [write_job(folder / f"together-{i}", rows, f"bench-together-{i}-{uuid.uuid4().hex[:8]}") for i in range(2)]
            started = time.perf_counter()
            together = [subprocess.Popen(cli(spec), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True) for spec in specs]
            outputs = [run.communicate(timeout=900)[0] for run in together]
            together_seconds = time.perf_counter() - started
            codes = [run.returncode for run in together]
            log = control.get("/_sandbox/requests").json()["requests"]
            creates = {what: sum(1 for r in log if r["target"] == "api" and r["method"] == "POST" and r["path"].rstrip("/") == path)
                       for what, path in (("datasets", "/api/v1/data-collection/datasets"),
                                          ("batches", "/api/v1/data-collection/batches"), ("studies", "/api/v1/studies"))}
        finally:
            control.close()
            stop_server(home)
    t_cli, t_plain = median(samples["cli"]), median(samples["plain"])
    totals = [sum(run.values()) for run in per_run]
    both_ok = codes == [0, 0] and set(creates.values()) == {2}
    result.details.update(samples=samples, server_start_seconds=server_start, warm_up_seconds=warm_up,
                          together_seconds=together_seconds, together_exit_codes=codes, together_creates=creates,
                          together_output_tails=[o[-1500:] for o in outputs] if not both_ok else [])
    result.add(f"CLI run of the job, whole process, median of {pairs}", seconds(t_cli), f"{seconds(t_plain)} (plain httpx script)",
               f"{t_cli / t_plain:.2f}x", "<= 2x", t_cli / t_plain <= 2.0)
    result.add("  Prefect API requests per CLI run (median; by path in the details)", f"{median(totals):.0f}" if totals else "?",
               "0 (no Prefect)", "-", "(reported)", None)
    result.details["prefect_requests_per_run"] = per_run
    result.add("two CLI runs at once", f"exit {codes[0]} / {codes[1]} in {seconds(together_seconds)}", "-", "-",
               "both succeed", codes == [0, 0])
    result.add("  their creates (datasets / batches / studies)", " / ".join(str(v) for v in creates.values()), "-", "-",
               "2 / 2 / 2", set(creates.values()) == {2})
    result.add("local server start (cold, new database), reported apart", seconds(server_start), "-", "-", "(information)", None)
    result.add("first CLI run on the new server, not counted", seconds(warm_up), "-", "-", "(information)", None)
    result.emit(args.json_out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--plain-child":
        plain_child(*sys.argv[2:7])
    else:
        main()
