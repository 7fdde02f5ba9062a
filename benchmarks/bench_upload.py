"""B2: upload a 1 GB file through a presigned PUT to the sandbox's object store with
``taskbuilder.upload.upload_file``.

Baseline in the same run: ``curl -T FILE -H 'Content-Type: text/csv' URL`` to a fresh presigned URL on the same
store (the sandbox's front door in front of ``rclone serve s3``). Goal: throughput ≥ 0.8× curl's; client RSS
growth ≤ 64 MB. Each upload is a child process; the project's child reads its own ``ru_maxrss`` before and after
the upload (growth = peak during the upload − peak before it, imports excluded), curl's peak RSS comes from
``/usr/bin/time``. Throughput = bytes / time of the PUT (project: measured in the child around the call; curl: its
``time_total``). Median of 3 uploads each, alternating; every upload gets its own key and URL, is checked
(size) with a HEAD and deleted. ``--quick``: 100 MB.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PYTHON, Result, arguments, child_env, median, mib, run_child, scratch  # noqa: E402

CHUNK = 16 * 2**20


def generate(path: Path, size_bytes: int) -> None:
    """``size_bytes`` of incompressible bytes (a 16 MiB random block repeated)."""
    block = os.urandom(CHUNK)
    with open(path, "wb") as handle:
        for _ in range(size_bytes // CHUNK):
            handle.write(block)
        handle.write(block[: size_bytes % CHUNK])


def child(url: str, path: str) -> None:
    from taskbuilder.upload import upload_file

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    upload_file(url, Path(path), content_type="text/csv")
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": elapsed, "rss_before_bytes": before, "rss_peak_bytes": after}))


def s3_client(settings: dict):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=settings["object_store_endpoint_url"], region_name=settings["object_store_region"],
        aws_access_key_id=settings["object_store_access_key"], aws_secret_access_key=settings["object_store_secret_key"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    args = arguments(__doc__.split("\n\n")[0], lambda p: p.add_argument("--runs", type=int, default=3))
    import httpx

    from flows.embedded_sandbox import running_sandbox

    curl = shutil.which("curl")
    if curl is None:
        raise SystemExit("B2 needs curl on PATH (apt-get install curl)")
    size = (100 if args.quick else 1024) * 2**20
    result = Result("B2", f"presigned PUT of {size / 2**20:,.0f} MiB to the sandbox's store")
    with scratch("b2") as folder, running_sandbox() as sandbox:
        path = folder / "big.csv"
        generate(path, size)
        settings = httpx.get(f"{sandbox.base_url}/_sandbox/settings", timeout=30).json()
        s3, bucket = s3_client(settings), settings["object_store_bucket"]
        samples: dict[str, list] = {"project": [], "curl": []}
        for n in range(args.runs):
            for kind in (("project", "curl") if n % 2 == 0 else ("curl", "project")):
                key = f"bench/{kind}-{n}.csv"
                url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key, "ContentType": "text/csv"},
                                                ExpiresIn=3600)
                if kind == "project":
                    run = run_child([PYTHON, __file__, "--child", url, str(path)], env=child_env())
                    sample = {"seconds": run.result["seconds"], "rss_growth_bytes": run.result["rss_peak_bytes"] - run.result["rss_before_bytes"],
                              "peak_rss_bytes": run.peak_rss_bytes}
                else:
                    run = run_child([curl, "--silent", "--show-error", "--fail", "-T", str(path), "-H", "Content-Type: text/csv",
                                     "-o", "/dev/null", "-w", '{"seconds": %{time_total}, "status": %{http_code}}\n', url])
                    sample = {"seconds": run.result["seconds"], "peak_rss_bytes": run.peak_rss_bytes}
                stored = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
                assert stored == size, (kind, stored, size)
                s3.delete_object(Bucket=bucket, Key=key)
                sample["mb_per_second"] = size / 1e6 / sample["seconds"]
                samples[kind].append(sample)
        result.details["samples"] = samples
    tp_project = median([s["mb_per_second"] for s in samples["project"]])
    tp_curl = median([s["mb_per_second"] for s in samples["curl"]])
    growth = median([s["rss_growth_bytes"] for s in samples["project"]])
    r = tp_project / tp_curl
    result.add(f"throughput, median of {args.runs}", f"{tp_project:,.0f} MB/s", f"{tp_curl:,.0f} MB/s", f"{r:.2f}x",
               ">= 0.8x", r >= 0.8)
    result.add("client RSS growth during the PUT", mib(growth), "-", "-", "<= 64 MB", growth <= 64 * 2**20)
    result.add("client peak RSS (whole process)", mib(median([s["peak_rss_bytes"] for s in samples["project"]])),
               mib(median([s["peak_rss_bytes"] for s in samples["curl"]])), "-", "(information)", None)
    result.emit(args.json_out)


if __name__ == "__main__":
    main()
