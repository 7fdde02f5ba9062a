"""The strict YAML reader: repeated keys, alias bombs, retyped keys and text kept as written."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from taskbuilder.jobspec.strict_yaml import MAX_EXPANDED_VALUES, StrictYamlError, read_yaml


def problems(text: str) -> list:
    with pytest.raises(StrictYamlError) as caught:
        read_yaml(text)
    return caught.value.problems


@pytest.mark.parametrize("text, key, lines", [
    ("publish: false\nmax_budget: 1\npublish: true\n", "publish", (1, 3)),
    ("study:\n  reward: 1\n  name: x\n  reward: 2\n", "study.reward", (2, 4)),
    ("a: [{x: 1, 'x': 2}]\n", "a[0].x", (1, 1)),  # quoted and plain spellings of one key
    ('"publish": false\npublish: true\n', "publish", (1, 2)),
])
def test_a_repeated_key_is_refused_naming_both_lines(text, key, lines):
    [problem] = problems(text)
    assert problem.path == key
    assert problem.line == lines[1]
    assert f"lines {lines[0]} and {lines[1]}" in problem.message


def _bomb(levels: int, width: int = 9) -> str:
    text = f"l0: &l0 [{', '.join(['lol'] * width)}]\n"
    for i in range(1, levels):
        text += f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]\n"
    return text


@pytest.mark.parametrize("text", [
    _bomb(9),  # 9^9 leaves
    "a: &a [*a]\n",  # a recursive alias
    "m0: &m0 {k: 1}\n" + "".join(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}], k{i}: [{', '.join([f'*m{i - 1}'] * 9)}]}}\n"
                                  for i in range(1, 9)),  # merges and aliases together
])
def test_an_alias_bomb_fails_fast_with_a_clear_message(text):
    started = time.monotonic()
    found = problems(text)
    # Expanded in full, these bombs take minutes and gigabytes; refused, well under a second on a quiet machine.
    # The bound leaves room for a machine busy with the rest of the suite (2.6 s was seen under four test processes).
    assert time.monotonic() - started < 20
    assert f"more than {MAX_EXPANDED_VALUES:,} values" in found[0].message or "levels deep" in found[0].message


def test_small_aliases_and_merges_read_as_yaml_defines_them():
    doc = read_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd: *b\n")
    assert doc.data == {"base": {"x": 1, "y": 2}, "c": {"x": 1, "y": 3}, "d": {"x": 1, "y": 2}}


@pytest.mark.parametrize("text, shown", [("yes: 1\n", "True"), ("1: a\n", "1"), ("~: a\n", "None")])
def test_a_key_yaml_would_retype_is_refused(text, shown):
    [problem] = problems(text)
    assert shown in problem.message and "quote it" in problem.hint


class _Inner(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True, extra="allow")
    label: str
    count: int = 0


class _Outer(BaseModel):
    items: list[_Inner]


@pytest.mark.parametrize("written", ["01", "1.10", "1_000", "0123", "yes", "off", "2026-01-01", "1:30", "0x1F", ".5", "1e3", "007"])
def test_a_text_field_keeps_exactly_what_was_written(written):
    doc = read_yaml(f"items:\n  - label: {written}\n")
    assert doc.validate(_Outer.model_validate).items[0].label == written


@pytest.mark.parametrize("written, read", [("0300", "octal number 192"), ("1:30", "number 90"), ("1_000", "number 1000"),
                                           ("0x10", "number 16")])
def test_a_number_field_written_in_a_retyped_form_is_refused(written, read):
    doc = read_yaml(f"items:\n  - label: a\n    count: {written}\n")
    with pytest.raises(StrictYamlError) as caught:
        doc.validate(_Outer.model_validate)
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (3, "items[0].count")
    assert read in problem.message and "plain digits" in problem.hint


def test_plain_numbers_and_booleans_keep_their_type():
    doc = read_yaml("items:\n  - {label: a, count: 300, flag: true, share: 0.25}\n")
    item = doc.validate(_Outer.model_validate).items[0]
    assert (item.count, item.model_extra) == (300, {"flag": True, "share": 0.25})


@pytest.mark.parametrize("written", ["2026-12-01", "0123", "1_000", "on"])
def test_a_retyped_value_in_a_pass_through_field_is_refused_with_the_quoting(written):
    doc = read_yaml(f"items:\n  - label: a\n    extra_field: {written}\n")
    with pytest.raises(StrictYamlError) as caught:
        doc.validate(_Outer.model_validate)
    [problem] = caught.value.problems
    assert problem.path == "items[0].extra_field" and f'extra_field: "{written}"' in problem.hint


def test_a_pass_through_text_field_keeps_its_text():
    doc = read_yaml("items:\n  - label: a\n    code: 0123\n")
    item = doc.validate(_Outer.model_validate, text_fields=lambda path: path[-1] == "code").items[0]
    assert item.model_extra == {"code": "0123"}


def test_syntax_errors_name_the_line():
    [problem] = problems("a: 1\nb: [2\n")
    assert problem.line == 3 and "syntax" in problem.message
    [problem] = problems("a: 1\n---\nb: 2\n")
    assert problem.line == 2


class _Switches(BaseModel):
    publish: bool = False
    max_budget: int = 0


@pytest.mark.parametrize("written, value", [("yes", True), ("off", False), ("true", True), ("False", False)])
def test_yaml_booleans_are_booleans_where_a_boolean_is_expected(written, value):
    assert read_yaml(f"publish: {written}\n").validate(_Switches.model_validate).publish is value


@pytest.mark.parametrize("text", ["publish: 1\n", "max_budget: yes\n", "max_budget: 2026-01-01\n"])
def test_a_value_of_the_wrong_kind_is_refused_not_converted(text):
    with pytest.raises((StrictYamlError, ValidationError)):
        read_yaml(text).validate(_Switches.model_validate)
