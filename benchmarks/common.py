"""Shared helpers of the benchmark scripts: child-process measurement, medians, result tables, temp folders.

Every figure compares the project with a baseline measured in the same run, on the same inputs. Times are
medians of several runs; peak memory is the child process's maximum RSS
(GNU ``/usr/bin/time -f %M``), so the parent's own memory never counts. Generated inputs go to a temporary folder (``$TMPDIR``),
never into the repository, and are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass
class ChildRun:
    """One measured child process: wall time (seconds, spawn to exit), peak RSS (bytes), exit code, the
    JSON object of its last stdout line (``{}`` when none) and its stderr tail."""

    wall_seconds: float
    peak_rss_bytes: int
    returncode: int
    result: dict
    stderr_tail: str = ""


TIME = "/usr/bin/time"


def run_child(command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO,
              timeout_seconds: float = 900) -> ChildRun:
    """Run ``command`` and measure it: wall time and the peak RSS of that process.

    Peak RSS comes from GNU ``/usr/bin/time -f %M`` when it exists (it forks the command from its own small
    process), else from ``getrusage(RUSAGE_CHILDREN)`` (the largest child of this process so far). Children of the child are not counted. Raises ``RuntimeError``
    with the stderr tail when it exits non-zero, ``subprocess.TimeoutExpired`` after ``timeout_seconds``.
    """
    with tempfile.TemporaryDirectory() as folder:
        rss_file = Path(folder) / "rss"
        measured = [TIME, "-f", "%M", "-o", str(rss_file), *command] if Path(TIME).exists() else command
        started = time.perf_counter()
        process = subprocess.Popen(measured, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
        try:
            stdout_bytes, stderr_bytes = process.communicate(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        wall = time.perf_counter() - started
        if measured is command:
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        else:
            lines = rss_file.read_text().strip().splitlines() if rss_file.exists() else []
            peak_kib = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    stdout, stderr = stdout_bytes.decode(errors="replace"), stderr_bytes.decode(errors="replace")
    result = {}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    run = ChildRun(wall, peak_kib * 1024, process.returncode, result, stderr[-3000:])
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} exited {process.returncode}:\n{run.stderr_tail}\n{stdout[-2000:]}")
    return run


def median(values: list[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Row:
    """One line of a result table: the measure, the project's figure, the baseline's, their ratio (project /
    baseline unless stated), the goal and whether it is met (None: informational)."""

    measure: str
    project: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None


@dataclass
class Result:
    """A benchmark's table plus details (every raw sample) and notes, printed and optionally saved."""

    benchmark: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, measure: str, project: str, baseline: str, ratio: str, goal: str, met: bool | None) -> None:
        self.rows.append(Row(measure, project, baseline, ratio, goal, met))

    def table(self) -> str:
        header = ("measure", "project", "baseline", "ratio", "goal", "met")
        lines = [header] + [(r.measure, r.project, r.baseline, r.ratio, r.goal,
                             "-" if r.met is None else ("yes" if r.met else "NO")) for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
        text = [f"{self.benchmark}: {self.title}"]
        for n, line in enumerate(lines):
            text.append("| " + " | ".join(str(cell).ljust(w) for cell, w in zip(line, widths)) + " |")
            if n == 0:
                text.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        text += [f"  note: {note}" for note in self.notes]
        return "\n".join(text)

    def emit(self, json_out: Path | None) -> None:
        print(self.table(), flush=True)
        if json_out is not None:
            data = {"benchmark": self.benchmark, "title": self.title, "rows": [asdict(r) for r in self.rows],
                    "details": self.details, "notes": self.notes, "machine": machine()}
            json_out.write_text(json.dumps(data, indent=2, default=str))


def arguments(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The common command line: ``--quick`` (small sizes, for building and debugging), ``--json-out FILE``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the result table as JSON here")
    if extra:
        extra(parser)
    return parser.parse_args()


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder under ``$TMPDIR`` (never in the repository), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"taskbuilder-bench-{prefix}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def machine() -> dict:
    """Where the figures were taken: cores, memory, Python, platform, load average at the time."""
    memory_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return {"nproc": os.cpu_count(), "memory_gib": round(memory_kib / 2**20, 1), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.1f} ms"


def ratio(project: float, baseline: float) -> float:
    return project / baseline if baseline else float("inf")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for project child processes: this one plus the repository on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds, all CPU seconds) of the whole machine since boot, from ``/proc/stat`` (all cores
    summed; busy = everything but idle and iowait). Differences over a phase give how much of the machine
    the phase used, whatever process (server, database, workers, sandbox) used it."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / tick, sum(fields) / tick


def _proc_table() -> dict[int, tuple[int, float, float]]:
    """pid → (parent pid, own CPU seconds, CPU seconds of its reaped children), from ``/proc/<pid>/stat``."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick)
    return table


def process_tree_cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each named process tree: the root, its live descendants,
    and every descendant already ended and reaped (the kernel adds those to their parent's children time).
    ``roots``: name → pid (a server, the database's postmaster, a worker). A descendant of two roots counts
    for the nearer. Differences of two readings give a phase's CPU per tree."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    owned = set(roots.values())
    totals: dict[str, float] = {}
    for name, root in roots.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            if pid not in table:
                continue
            _, own, reaped = table[pid]
            total += own + reaped
            todo += [child for child in children.get(pid, []) if child not in owned]
        totals[name] = total
    return totals


def command_line(pid: int) -> str:
    """The command line of process ``pid`` (``""`` when it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def parent_pid(pid: int) -> int:
    """The parent of process ``pid`` (0 when it is gone)."""
    return _proc_table().get(pid, (0, 0.0, 0.0))[0]


def pids_whose_command(contains: str) -> list[int]:
    """PIDs whose command line contains ``contains``, only the topmost of such trees (a process whose
    parent's command line does not contain it: a postmaster, not its backends)."""
    return [pid for pid, (ppid, _, _) in _proc_table().items()
            if contains in command_line(pid) and pid != os.getpid() and contains not in command_line(ppid)]


PROJECT_PACKAGES = ("taskbuilder", "tasks", "flows", "deployments", "sandbox")


def byte_compile_project() -> None:
    """Byte-compile the project's packages as ``make install`` does (an editable install is not compiled by
    pip; with ``PYTHONDONTWRITEBYTECODE`` every measured process would compile them again). Up-to-date files
    are skipped."""
    import compileall

    for package in PROJECT_PACKAGES:
        compileall.compile_dir(str(REPO / package), quiet=1, workers=0)
