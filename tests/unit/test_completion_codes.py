"""Completion codes checked to the documented shape (API doc §5.1)."""

import pytest
from pydantic import TypeAdapter, ValidationError

from taskbuilder.jobspec.completion_codes import CompletionCode, check_completion_codes, read_only_problems

codes = TypeAdapter(list[CompletionCode])
APPROVE = [{"action": "AUTOMATICALLY_APPROVE"}]


@pytest.mark.parametrize("raw, found", [
    ([{"code": "A"}], "code_type"),
    ([{"code": "A", "code_type": "COMPLETD", "actions": APPROVE}], "did you mean COMPLETED"),
    ([{"code": "A", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALY_APPROVE"}]}], "did you mean AUTOMATICALLY_APPROVE"),
    ([{"code": " ", "code_type": "COMPLETED", "actions": APPROVE}], "empty"),
    ([{"code": "A", "code_type": "COMPLETED", "actions": APPROVE, "extra": 1}], "extra"),
])
def test_a_malformed_code_is_refused(raw, found):
    with pytest.raises(ValidationError, match=found):
        codes.validate_python(raw)


@pytest.mark.parametrize("raw, found", [
    ([{"code": "A", "code_type": "COMPLETED", "actions": APPROVE}, {"code": "A", "code_type": "OTHER"}], "also completion_codes[0]"),
    ([{"code": "A", "code_type": "OTHER"}], "0 codes have code_type COMPLETED"),
    ([{"code": "A", "code_type": "COMPLETED", "actions": APPROVE}, {"code": "B", "code_type": "COMPLETED", "actions": APPROVE}],
     "2 codes have code_type COMPLETED"),
    ([{"code": "A", "code_type": "COMPLETED"}], "no AUTOMATICALLY_APPROVE or MANUALLY_REVIEW"),
    ([{"code": "A", "code_type": "COMPLETED", "actions": APPROVE},
      {"code": "B", "code_type": "OTHER", "actions": [{"action": "ADD_TO_PARTICIPANT_GROUP"}]}], "needs participant_group"),
])
def test_the_list_rules(raw, found):
    assert any(found in message for _, message, _ in check_completion_codes(codes.validate_python(raw)))


def test_a_good_list_passes():
    raw = [{"code": "C1", "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]},
           {"code": "C2", "code_type": "FAILED_ATTENTION_CHECK",
            "actions": [{"action": "ADD_TO_PARTICIPANT_GROUP", "participant_group": "g1"}]}]
    assert check_completion_codes(codes.validate_python(raw)) == []


def test_status_is_read_only():
    assert [p[0] for p in read_only_problems({"status": "ACTIVE", "name": "x"})] == ["status"]
