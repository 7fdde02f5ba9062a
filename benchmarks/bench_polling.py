"""B6: polling — how soon the project sees READY after the sandbox flips the status, and how many GETs a wait costs.

For each processing time P (sandbox settings ``dataset_processing_seconds`` = ``batch_setup_seconds`` = P), a
dataset is created and its CSV uploaded, then the project's task function ``tasks.datasets.wait_for_dataset``
waits for READY with the default ``PollSettings`` (first interval 2 s, ×1.5 after each unchanged poll, cap 30 s);
then a batch on that dataset is set up and ``tasks.batches.wait_for_batch`` waits the same way.

Baseline in the same run: the moment the sandbox flips the status, seen by an observer thread that reads the
resource (``GET …/datasets/{id}`` or ``…/batches/{id}``, not the ``/status`` path the project polls) every
10 ms. Latency = when the project's wait returns − the flip. Goal: READY seen within one poll interval, i.e.
latency ≤ the interval between the project's last two status GETs (times from the sandbox's request log);
GETs per wait = the project's status GETs, counted in that log. ``--quick``: P = 1 s and 3 s.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Result, arguments, scratch  # noqa: E402

CSV = "id,text\n" + "".join(f"{n},sentence number {n}\n" for n in range(200))


class FlipObserver(threading.Thread):
    """Reads ``path`` every 10 ms until its status is READY; ``flip`` = midpoint of the last not-READY and the
    first READY reading (UNIX seconds), ``precision`` = half the gap."""

    def __init__(self, api, path: str) -> None:
        super().__init__(daemon=True)
        self.api, self.path = api, path
        self.flip = self.precision = None

    def run(self) -> None:
        last_not_ready = time.time()
        while True:
            status = self.api.get(self.path).json()["status"]
            now = time.time()
            if status == "READY":
                self.flip, self.precision = (last_not_ready + now) / 2, (now - last_not_ready) / 2
                return
            last_not_ready = now
            time.sleep(0.01)


def status_gets(control, resource_path: str, since: float) -> list[float]:
    """UNIX times of the status GETs on ``resource_path`` logged by the sandbox after ``since``."""
    times = []
    for r in control.get("/_sandbox/requests").json()["requests"]:
        if r["method"] == "GET" and r["path"].rstrip("/") == resource_path + "/status":
            moment = datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
            if moment >= since:
                times.append(moment)
    return times


def measure_wait(result_rows: list, kind: str, processing: float, wait, api, control, resource_path: str,
                 started: float) -> None:
    observer = FlipObserver(api, resource_path)
    observer.start()
    wait()
    seen = time.time()
    observer.join(timeout=60)
    gets = status_gets(control, resource_path.replace("/api/v1", "/api/v1", 1), started)
    interval = gets[-1] - gets[-2] if len(gets) >= 2 else None
    latency = seen - observer.flip
    result_rows.append({"kind": kind, "processing_seconds": processing, "latency_seconds": latency,
                        "flip_precision_seconds": observer.precision, "last_interval_seconds": interval,
                        "status_gets": len(gets), "waited_seconds": seen - started})


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    import httpx

    from flows.embedded_sandbox import running_sandbox
    from taskbuilder.client import ProlificClient
    from taskbuilder.polling import PollSettings
    from tasks.batches import wait_for_batch
    from tasks.connection import ProlificConnection
    from tasks.datasets import wait_for_dataset

    processing_times = [1.0, 3.0] if args.quick else [1.0, 4.0, 10.0]
    polling = PollSettings()
    result = Result("B6", "polling: READY seen vs the moment the sandbox flips it (default PollSettings)")
    rows: list[dict] = []
    with scratch("b6") as folder, running_sandbox() as sandbox:
        os.environ["PROLIFIC_API_TOKEN"] = sandbox.token
        (folder / "data.csv").write_text(CSV)
        control = httpx.Client(base_url=sandbox.base_url, timeout=30)
        api = httpx.Client(base_url=sandbox.base_url, headers={"Authorization": f"Token {sandbox.token}"}, timeout=30)
        connection = ProlificConnection(base_url=sandbox.base_url)
        with ProlificClient(sandbox.base_url, sandbox.token) as client:
            workspace_id = client.list_workspaces()[0].id
            for processing in processing_times:
                control.post("/_sandbox/settings", json={"dataset_processing_seconds": processing,
                                                        "batch_setup_seconds": processing}).raise_for_status()
                dataset = client.create_dataset(name=f"b6-{processing}", workspace_id=workspace_id)
                url = client.get_dataset_upload_url(dataset.id, "data.csv").upload_url
                started = time.time()
                httpx.put(url, content=CSV.encode(), headers={"Content-Type": "text/csv"}).raise_for_status()
                path = f"/api/v1/data-collection/datasets/{dataset.id}"
                measure_wait(rows, "dataset", processing, lambda: wait_for_dataset.fn(connection, dataset.id, polling),
                             api, control, path, started)

                batch = client.create_batch(name=f"b6-{processing}", workspace_id=workspace_id, dataset_id=dataset.id,
                                            task_details={"task_name": "B6", "task_introduction": "<p>x</p>", "task_steps": "<p>y</p>"})
                client.create_instructions(batch.id, [{"type": "free_text", "description": "Why?"}])
                started = time.time()
                client.setup_batch(batch.id, dataset_id=dataset.id, tasks_per_group=5)
                path = f"/api/v1/data-collection/batches/{batch.id}"
                measure_wait(rows, "batch", processing, lambda: wait_for_batch.fn(connection, batch.id, polling),
                             api, control, path, started)
        control.close()
        api.close()
    for row in rows:
        interval = row["last_interval_seconds"]
        within = interval is None or row["latency_seconds"] <= interval  # None: READY on the first poll
        share = f"{row['latency_seconds'] / interval:.2f} of {interval:.2f} s" if interval else "first poll"
        result.add(f"{row['kind']} READY after {row['processing_seconds']:.0f} s: seen after the flip",
                   f"{row['latency_seconds']:.2f} s", f"flip +-{row['flip_precision_seconds'] * 1000:.0f} ms", share,
                   "<= 1 poll interval", within)
        result.add(f"  status GETs for that wait ({row['waited_seconds']:.1f} s)", str(row["status_gets"]), "-", "-",
                   "(reported)", None)
    result.details["waits"] = rows
    result.notes.append("ratio column: the delay as a share of the poll interval in effect when READY was seen (time "
                        "between the last two status GETs of that wait)")
    result.emit(args.json_out)


if __name__ == "__main__":
    main()
