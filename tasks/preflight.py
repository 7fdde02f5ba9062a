"""The pre-flight checks of a flow run: checks that need no Prolific call, run before anything is created remotely.

See :mod:`taskbuilder.preflight`: the API URL is https (or loopback), the output location can be written,
and no output file would overwrite the job's input. A plain function, not a task: no API call, nothing to
retry, and a task run costs the Prefect server ~30 ms of CPU and its events (issue 18, NOTES.md "Lean runs").
"""

from __future__ import annotations

from taskbuilder.preflight import check_api_url, check_output_location, check_outputs_spare_inputs

from tasks.logs import run_logger


def preflight(base_url: str, destination: str, inputs: list[str]) -> None:
    """Run the pre-flight checks for a job whose outputs go to `destination` (a folder or ``s3://`` prefix)
    and whose input files are `inputs` (the dataset CSV, the spec when known).

    Raises :class:`taskbuilder.preflight.PreflightFailed` (one line: what, and what to do).
    """
    check_api_url(base_url)
    check_outputs_spare_inputs(destination, inputs)
    check_output_location(destination)
    run_logger().info("Pre-flight: %s can be written", destination)
