"""Hundreds of generated specs through the one spec loader: a spec either reads as a person reads its text,
or is refused. Repeated keys, numbers and dates where text is expected, money fields written in odd forms or
put in odd places (tests/spec_generator.py)."""

from __future__ import annotations

import random

import pytest

from flows.cli import _load_spec
from tests.spec_generator import CSV, generate

SEEDS = range(400)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("generated")
    (path / "data.csv").write_text(CSV)
    return path


def _load(folder, text):
    from taskbuilder.jobspec import SpecError

    spec_file = folder / "job.yaml"
    spec_file.write_text(text)
    try:
        return _load_spec(spec_file), None
    except SpecError as error:
        return None, error


def test_generated_specs_read_as_written_or_are_refused(folder):
    refused = loaded = 0
    for seed in SEEDS:
        spec = generate(random.Random(seed))
        job, error = _load(folder, spec.text)
        context = f"seed {seed}: {spec.why}\n{spec.text}\n{error}"
        assert (job is None) == spec.must_refuse, context
        if job is None:
            refused += 1
            if any(why.startswith("repeated") for why in spec.why):
                assert "given twice, on lines" in str(error), context
            continue
        loaded += 1
        if spec.publish_says_false:
            assert job.publish is False, context
        assert [job.max_budget] == spec.max_budget_read, context
        assert [job.study.reward] == spec.reward_read, context
        assert [o.value for o in job.batch.instructions[0].options] == spec.option_values, context
        assert job.study.completion_codes[0].code == spec.code, context
    assert refused > 50 and loaded > 50, (refused, loaded)  # both sides exercised
