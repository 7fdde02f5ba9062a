"""The job's tag in server-side names: both forms parsed, and look-ups by job key that refuse other work."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from taskbuilder.errors import BadInput
from taskbuilder.failures import classify
from taskbuilder.jobkey import JobTag, job_key_of, tag_name, tag_of, work_tag
from taskbuilder.rounds import round_key
from tasks.job_tags import JobChanged, of_job

FINGERPRINT = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4


@pytest.mark.parametrize("key", ["sentiment-v2", "my job", "t-5f2c", "labels (x)", round_key("job", 3)])
def test_the_new_form_carries_key_and_work_and_parses_back(key):
    name = tag_name("Sentiment batch", key, FINGERPRINT)
    assert name == f"Sentiment batch [job:{key} work:{FINGERPRINT[:12]}]"
    assert tag_of(name) == JobTag(key, FINGERPRINT[:12])
    assert job_key_of(name) == key


def test_the_older_form_parses_with_no_work_tag():
    assert tag_name("b", "sentiment") == "b [job:sentiment]"
    assert tag_of("b [job:sentiment]") == JobTag("sentiment", None)
    assert job_key_of("Reviews [job:sentiment-round-2]") == "sentiment-round-2"


@pytest.mark.parametrize("name", [None, "", "no tag", "b [job:k] trailing", "b [other:k]"])
def test_a_name_without_a_tag_at_its_end_has_none(name):
    assert tag_of(name) is None and job_key_of(name) is None


def test_a_work_part_that_is_not_12_hex_is_part_of_the_key():
    assert tag_of("b [job:k work:xyz]") == JobTag("k work:xyz", None)
    assert work_tag(FINGERPRINT.upper()) == FINGERPRINT[:12]


def _batch(batch_id: str, name: str):
    return SimpleNamespace(id=batch_id, name=name)


def test_look_up_matches_by_key_and_adopts_the_older_form():
    wanted = tag_name("renamed batch", "job-a", FINGERPRINT)
    batches = [
        _batch("b1", tag_name("batch", "job-a")),  # older form: cannot tell, adopted
        _batch("b2", tag_name("batch", "job-a", FINGERPRINT)),
        _batch("b3", tag_name("batch", "job-a-round-2", OTHER)),  # a round key is another key
        _batch("b4", tag_name("batch", "job-b", OTHER)),
        _batch("b5", "job-a"),
    ]
    assert [b.id for b in of_job(batches, wanted, "batch", "http://127.0.0.1:1")] == ["b1", "b2"]


def test_look_up_refuses_other_work_under_the_key_as_bad_input():
    batches = [_batch("b1", tag_name("batch", "job-a", OTHER))]
    with pytest.raises(JobChanged) as refused:
        of_job(batches, tag_name("batch", "job-a", FINGERPRINT), "batch", "http://127.0.0.1:1")
    message = str(refused.value)
    assert "b1" in message and "'job-a'" in message and "new `name:`" in message and "restore" in message
    assert isinstance(refused.value, BadInput)
    assert classify(refused.value).action == "stop" and "bug" not in classify(refused.value).reason.lower()


def test_look_up_without_refusal_leaves_other_work_out():
    studies = [SimpleNamespace(id="s1", internal_name=tag_name("s", "k", OTHER)),
               SimpleNamespace(id="s2", internal_name=tag_name("s", "k", FINGERPRINT))]
    assert [s.id for s in of_job(studies, tag_name("s", "k", FINGERPRINT), "study", "u", refuse=False)] == ["s2"]


def test_an_untagged_name_matches_only_itself():
    batches = [_batch("b1", "plain"), _batch("b2", "plain [job:k]")]
    assert [b.id for b in of_job(batches, "plain", "batch", "u")] == ["b1"]


def test_study_controls_without_a_record_find_the_study_by_key_in_either_form():
    from flows.study_control import _of_job

    studies = [SimpleNamespace(id="s1", internal_name=tag_name("small", "k", FINGERPRINT)),
               SimpleNamespace(id="s2", internal_name=tag_name("small", "k")),
               SimpleNamespace(id="s3", internal_name=tag_name("small", "k-round-2", FINGERPRINT)),
               SimpleNamespace(id="s4", internal_name=None)]
    assert [s.id for s in _of_job(studies, tag_name("small", "k"))] == ["s1", "s2"]
