"""The suite's own set-up: under ``make test`` (``pytest -n N --dist loadgroup``), tests that share a
module-scoped fixture are one xdist group (``tests/conftest.py``), so one worker runs them in order on one
fixture. Without it a module's tests were spread over the workers, each starting its own Prefect stack, and a
test that reads what the one before it did (approval, then the webhook) waited on a stack where it never
happened."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def shared_in_module():
    return object()


def test_a_test_with_a_module_fixture_is_in_its_module_group(shared_in_module, request):
    if not (os.environ.get("PYTEST_XDIST_WORKER") and getattr(request.config.option, "loadgroup", False)):  # set by xdist on its workers
        pytest.skip("checks the grouping of `pytest -n N --dist loadgroup` (make test); this run is not one")
    assert request.node.nodeid.endswith(f"@{request.module.__name__}"), request.node.nodeid
