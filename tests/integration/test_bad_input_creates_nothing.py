"""Every failing input of the validation corpus stops the real flow before any API call."""

from __future__ import annotations

import pytest

from flows.annotation_batch import annotation_batch
from taskbuilder.jobspec import AnnotationJob
from tasks.connection import ProlificConnection
from tasks.inputs import InputInvalid

from tests.unit.test_validation import CASES, CORPUS, _case_id, _merge

FAILING = [case for case in CASES["cases"] if not case["ok"]]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "isolated_results")
@pytest.mark.parametrize("case", FAILING, ids=[_case_id(c) for c in FAILING])
def test_failing_input_makes_no_api_call(case, sandbox, tmp_path):
    spec = _merge(CASES["base_job"], case["job"] or {})
    spec["dataset"]["csv"] = str(CORPUS / case["file"])
    spec["output_dir"] = str(tmp_path / "out")
    spec["publish"] = True
    job = AnnotationJob.from_dict(spec)
    with pytest.raises(InputInvalid) as error:
        annotation_batch(job=job, connection=ProlificConnection(base_url=sandbox.base_url))
    expected_codes = {problem[0] for problem in case["problems"]}
    assert any(code in str(error.value) for code in expected_codes), str(error.value)
    assert case["file"] in str(error.value)
    assert [r for r in sandbox.requests() if r["target"] == "api"] == []
    assert not (tmp_path / "out").exists()

